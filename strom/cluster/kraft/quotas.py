"""Client quotas in KRaft mode (KIP-546 on KIP-500): ClientQuotaRecords in `__cluster_metadata`, as Kafka
4.4's ClientQuotaControlManager writes them, one record per changed key (`remove` for a key taken away).

`MetadataQuotaStore` is the `strom.security.quotas.store.QuotaStore` of a KRaft node. It follows its
owner's replayed `MetadataState` (a KRaftBackend's on a broker, the QuorumController's on a controller)
through the owner's state watchers, and hands the quota manager the whole table whenever replay changed
it, so a quota altered through any broker applies on every broker once its records are replayed there.
On the active controller, `write` appends one alteration's records as one batch and returns once they are
committed (NOT_CONTROLLER elsewhere). A broker forwards AlterClientQuotas to the controller
(strom.cluster.kraft.forwarding) and never writes quotas itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from strom.metadata.image import MetadataState
from strom.metadata.records import ClientQuotaRecord
from strom.metadata.serde import ApiMessageAndVersion
from strom.protocol.errors import ErrorCode, KafkaError
from strom.security.quotas.entities import QuotaEntity, Quotas
from strom.security.quotas.store import OnChange

__all__ = ["MetadataQuotaStore", "quota_records", "replayed_quotas"]


def replayed_quotas(state: MetadataState) -> Quotas:
    """The quota table of a replayed metadata state."""
    return {QuotaEntity(entity): dict(values) for entity, values in state.client_quotas.items()}


def quota_records(
    current: Quotas, changes: Mapping[QuotaEntity, Mapping[str, float]]
) -> list[ApiMessageAndVersion]:
    """The records that turn `current` into `changes` (each entity gets exactly its new values): a removal
    for every key that goes, a value for every key that is new or changed, in key order per entity."""
    records = []
    for entity, values in changes.items():
        before = current.get(entity, {})
        entity_data = tuple(
            ClientQuotaRecord.EntityData(entity_type=t, entity_name=n) for t, n in entity.parts
        )
        for key in sorted(set(before) | set(values)):
            if key in values and before.get(key) == values[key]:
                continue
            gone = key not in values
            value = 0.0 if gone else float(values[key])
            record = ClientQuotaRecord(entity=entity_data, key=key, value=value, remove=gone)
            records.append(ApiMessageAndVersion(record, 0))
    return records


class MetadataQuotaStore:
    """The client quotas of `owner.state`; `write` needs the owner to be the quorum controller."""

    def __init__(self, owner: Any) -> None:
        self.owner = owner
        self._seen: tuple[int, int] | None = None
        self._on_change: OnChange | None = None

    async def start(self, on_change: OnChange) -> None:
        self._on_change = on_change
        self.owner.watchers.append(self._watch)
        self._watch(self.owner.state)

    async def stop(self) -> None:
        if self._watch in self.owner.watchers:
            self.owner.watchers.remove(self._watch)

    def _watch(self, state: MetadataState) -> None:
        # the watcher runs after every replay step: hand over a new table only when the quotas changed
        # (a new state object after a controller fail-over counts from zero again, so compare identity too)
        version = (id(state), state.quotas_version)
        if version == self._seen or self._on_change is None:
            return
        self._seen = version
        self._on_change(replayed_quotas(state))

    async def write(self, changes: Mapping[QuotaEntity, Mapping[str, float]]) -> None:
        owner = self.owner
        if not hasattr(owner, "append"):
            # unreachable in a running broker: AlterClientQuotas is forwarded to the controller
            raise KafkaError("client quotas are altered by the controller", code=ErrorCode.not_controller)
        if not owner.is_active:
            raise KafkaError("This is not the active controller.", code=ErrorCode.not_controller)
        records = quota_records(replayed_quotas(owner.state), changes)
        if records:
            await owner.wait_committed(owner.append(records))
