"""DescribeClientQuotas (api key 48), versions 0-1 (KIP-546; v1 is flexible).

Behaviour, as Kafka 4.4 answers from its ClientQuotasImage: the filter's components are (entity type,
match type, match): match type 0 names one entity (`match`), 1 the default entity (`match` null), 2 any
entity of that type. An entity is listed when it has every filtered type with the named names; with
`strict` it must have no other type; an empty non-strict filter lists every entity. Each entry carries
its entity ((type, name) pairs, a null name for a default) and its quota keys and values. Quotas come from
the broker's table (strom.security.quotas), which each mode's store keeps current.

Errors (top level, entries null): CLUSTER_AUTHORIZATION_FAILED without DESCRIBE_CONFIGS on the cluster;
INVALID_REQUEST for an empty entity type, a type given twice, a match string where the match type takes
none (or none where it needs one), an unknown match type, an ip component beside user or client-id
components; UNSUPPORTED_VERSION "Unsupported entity type <t>" for a type other than user, client-id, ip.
"""

from __future__ import annotations

from typing import Any

from strom.apis._admin_util import NO_THROTTLE, kio_module
from strom.protocol.errors import ErrorCode
from strom.protocol.registry import ApiSpec
from strom.security.authorizer import AclOperation, ResourceType
from strom.security.quotas.entities import QuotaFilterError, describe, java_hash_order

API_KEY = 48
CLUSTER_NAME = "kafka-cluster"


async def handle(ctx: Any, request: Any) -> Any:
    mod = kio_module("describe_client_quotas", ctx.api_version, "response")

    def refused(code: ErrorCode, message: str) -> Any:
        return mod.DescribeClientQuotasResponse(
            throttle_time=NO_THROTTLE, error_code=code, error_message=message, entries=None
        )

    if not ctx.authorize(AclOperation.DESCRIBE_CONFIGS, ResourceType.CLUSTER, CLUSTER_NAME):
        return refused(ErrorCode.cluster_authorization_failed, "Cluster authorization failed.")
    components = [(str(c.entity_type), int(c.match_type), c.match) for c in request.components]
    try:
        found = describe(ctx.broker.quotas.quotas, components, bool(request.strict))
    except QuotaFilterError as exc:
        return refused(exc.code, exc.message)
    entries = tuple(
        mod.EntryData(
            entity=tuple(mod.EntityData(entity_type=t, entity_name=n) for t, n in entity.parts),
            values=tuple(mod.ValueData(key=k, value=values[k]) for k in java_hash_order(values)),
        )
        for entity, values in found
    )
    return mod.DescribeClientQuotasResponse(
        throttle_time=NO_THROTTLE, error_code=ErrorCode.none, error_message=None, entries=entries
    )


SPEC = ApiSpec(api_key=API_KEY, min_version=0, max_version=1, handler=handle, name="DescribeClientQuotas")
