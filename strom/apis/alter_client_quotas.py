"""AlterClientQuotas (api key 49), versions 0-1 (KIP-546; v1 is flexible).

Behaviour, as Kafka 4.4's ClientQuotaControlManager decides: each entry names an entity ({user},
{client-id}, {user, client-id} or {ip}; a null name is the default entity) and ops setting or removing
quota keys (producer_byte_rate, consumer_byte_rate, request_percentage, controller_mutation_rate; an ip
takes connection_creation_rate). One result per distinct entity, in request order. Entries that pass are
written together to the mode's store (ZooKeeper's /config/users, /config/clients, /config/ips with
change notifications; the single node's client-quotas.json; KRaft's ClientQuotaRecords through the
backend's `quota_store()`), unless `validate_only`. Removing a key the entity lacks changes nothing.

Errors, per entity: INVALID_REQUEST with Kafka's messages ("Invalid empty client quota entity", "Unhandled
client quota entity type: <t>", "Empty <t> not supported", "Invalid configuration key <k>", "Configuration
<k> must be a Long value", "Ignoring duplicate entity ...", "<ip> is not a valid IP or resolvable
host."); CLUSTER_AUTHORIZATION_FAILED on every entity without ALTER_CONFIGS on the cluster.
"""

from __future__ import annotations

from typing import Any

from strom.apis._admin_util import NO_THROTTLE, kio_module
from strom.protocol.errors import ErrorCode
from strom.protocol.registry import ApiSpec
from strom.security.authorizer import AclOperation, ResourceType
from strom.security.quotas.entities import AlterEntry, alter

API_KEY = 49
CLUSTER_NAME = "kafka-cluster"


async def handle(ctx: Any, request: Any) -> Any:
    mod = kio_module("alter_client_quotas", ctx.api_version, "response")

    def entry(parts: Any, code: ErrorCode, message: str | None) -> Any:
        return mod.EntryData(
            error_code=code,
            error_message=message,
            entity=tuple(mod.EntityData(entity_type=t, entity_name=n) for t, n in parts),
        )

    asked = [
        AlterEntry(
            tuple((str(e.entity_type), e.entity_name) for e in item.entity),
            tuple((str(op.key), None if op.remove else float(op.value)) for op in item.ops),
        )
        for item in request.entries
    ]
    if not ctx.authorize(AclOperation.ALTER_CONFIGS, ResourceType.CLUSTER, CLUSTER_NAME):
        return mod.AlterClientQuotasResponse(
            throttle_time=NO_THROTTLE,
            entries=tuple(
                entry(a.entity, ErrorCode.cluster_authorization_failed, "Cluster authorization failed.")
                for a in asked
            ),
        )
    current = ctx.broker.quotas.quotas
    results, updated = alter(current, asked)
    changed = {e: updated.get(e, {}) for e in {*current, *updated} if current.get(e) != updated.get(e)}
    if changed and not request.validate_only:
        await ctx.broker.quota_store.write(changed)
    return mod.AlterClientQuotasResponse(
        throttle_time=NO_THROTTLE,
        entries=tuple(
            entry(parts, ErrorCode.none if msg is None else ErrorCode.invalid_request, msg)
            for parts, msg in results
        ),
    )


SPEC = ApiSpec(api_key=API_KEY, min_version=0, max_version=1, handler=handle, name="AlterClientQuotas")
