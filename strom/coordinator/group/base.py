"""State and helpers shared by every part of the classic group coordinator core.

`CoreBase` holds all the state of the groups this broker coordinates (one owner for it) and the small
helpers each request family needs: routing a group id to its __consumer_offsets partition (Kafka's
`abs(hash) % offsets.topic.num.partitions`), answering NOT_COORDINATOR / COORDINATOR_LOAD_IN_PROGRESS,
heartbeat and offset-expiry deadlines, and the error mapping Kafka applies to failed writes of
__consumer_offsets for the group APIs. The request families live in their own modules and are combined
in `strom.coordinator.group.core.GroupCoordinatorCore`.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

from strom.coordinator.group import schemas
from strom.coordinator.group.config import GroupConfig
from strom.coordinator.group.group import CommittedOffset, Group, GroupState
from strom.coordinator.group.member import Member
from strom.coordinator.group.results import JoinResult, OffsetToCommit, SyncResult
from strom.coordinator.group.timers import Timers
from strom.protocol.errors import ErrorCode, KafkaError

Record = tuple[bytes, bytes | None]
AppendDone = Callable[[KafkaError | None], None]
AppendSink = Callable[[int, list[Record], AppendDone], None]
TxnAppendSink = Callable[[int, list[Record], AppendDone, int, int], None]
TopicPartition = tuple[str, int]
# A group being replayed: its latest metadata value (or None) and offsets.
LoadedGroup = tuple[schemas.GroupValue | None, dict[TopicPartition, CommittedOffset]]

_S = GroupState

# Errors from writing __consumer_offsets, as Kafka maps them for the group APIs.
_APPEND_ERROR_MAP = {
    ErrorCode.unknown_topic_or_partition: ErrorCode.coordinator_not_available,
    ErrorCode.not_enough_replicas: ErrorCode.coordinator_not_available,
    ErrorCode.not_enough_replicas_after_append: ErrorCode.coordinator_not_available,
    ErrorCode.request_timed_out: ErrorCode.coordinator_not_available,
    ErrorCode.not_leader_or_follower: ErrorCode.not_coordinator,
    ErrorCode.kafka_storage_error: ErrorCode.not_coordinator,
    ErrorCode.message_too_large: ErrorCode.unknown_server_error,
    ErrorCode.record_list_too_large: ErrorCode.unknown_server_error,
    ErrorCode.invalid_fetch_size: ErrorCode.unknown_server_error,
}


def append_error_code(error: KafkaError | None) -> ErrorCode:
    """The error a group API answers when its write to __consumer_offsets failed with `error`."""
    if error is None:
        return ErrorCode.none
    return _APPEND_ERROR_MAP.get(error.code, error.code)


def default_member_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4()}"


class CoreBase:
    """Every group of the __consumer_offsets partitions this broker leads. One instance per broker; all
    calls come from one thread (the event loop), so no locking."""

    def __init__(
        self,
        config: GroupConfig,
        append: AppendSink,
        *,
        new_member_id: Callable[[str], str] = default_member_id,
    ) -> None:
        self.config = config
        self._append = append
        self._new_member_id = new_member_id
        self.groups: dict[str, Group] = {}
        self.owned: set[int] = set()
        self.loading: set[int] = set()
        # keys: ("hb", group, member), ("pending", group, member), ("join", group), ("sync", group),
        # ("expire",)
        self.timers: Timers[tuple[str, ...]] = Timers()
        self._initial_join_remaining: dict[str, int] = {}
        self._loads: dict[int, dict[str, LoadedGroup]] = {}
        # TxnOffsetCommit (KIP-98): offsets written in a transaction, by producer id then group, until
        # the transaction's marker lands in the group's partition
        self.pending_txn_offsets: dict[int, dict[str, dict[TopicPartition, CommittedOffset]]] = {}
        # writes a transactional batch: (partition, records, done, producer id, producer epoch)
        self.append_transactional: TxnAppendSink | None = None
        # whether the broker's newest metadata makes it the leader of an offsets partition: such a
        # partition is about to be loaded (its metadata listener has not run yet), so requests for it
        # are told to retry (COORDINATOR_LOAD_IN_PROGRESS), not to look for another coordinator
        self.leads: Callable[[int], bool] = lambda _partition: False

    def partition_for(self, group_id: str) -> int:
        return schemas.partition_for(group_id, self.config.num_partitions)

    def _status(self, group_id: str | None, allow_empty: bool) -> ErrorCode:
        if group_id is None or (not allow_empty and group_id == ""):
            return ErrorCode.invalid_group_id
        partition = self.partition_for(group_id)
        if partition in self.loading:
            return ErrorCode.coordinator_load_in_progress
        if partition not in self.owned:
            if self.leads(partition):
                return ErrorCode.coordinator_load_in_progress
            return ErrorCode.not_coordinator
        return ErrorCode.none

    def _schedule_heartbeat(self, group: Group, member: Member, now_ms: int) -> None:
        self.timers.schedule(("hb", group.group_id, member.member_id), now_ms + member.session_timeout_ms)

    def _fail_waiters(self, member: Member, error: ErrorCode) -> None:
        join_cb, sync_cb = member.awaiting_join, member.awaiting_sync
        member.awaiting_join = member.awaiting_sync = None
        if join_cb is not None:
            join_cb(JoinResult(error, member.member_id))
        if sync_cb is not None:
            sync_cb(SyncResult(error))

    def _schedule_expiry(self, now_ms: int) -> None:
        if self.timers.deadline(("expire",)) is None:
            self.timers.schedule(("expire",), now_ms + self.config.offsets_retention_check_interval_ms)

    def _drop_if_unused(self, group: Group) -> None:
        """A group that never got a member or an offset is not kept (nor written)."""
        if (
            group.state is _S.EMPTY
            and group.generation_id == 0
            and not group.members
            and not group.pending_members
            and not group.offsets
            and self.groups.get(group.group_id) is group
        ):
            del self.groups[group.group_id]

    def _offset_records(
        self, group_id: str, offsets: list[OffsetToCommit], now_ms: int
    ) -> tuple[list[ErrorCode], list[Record], list[tuple[int, TopicPartition, CommittedOffset]]]:
        """The __consumer_offsets records of an (Txn)OffsetCommit: per requested partition its error so far
        (OFFSET_METADATA_TOO_LARGE or none), the records to write, and (request index, partition, offset)
        of each accepted one, to apply once the write succeeds."""
        results = [ErrorCode.none] * len(offsets)
        records: list[Record] = []
        accepted: list[tuple[int, TopicPartition, CommittedOffset]] = []
        for i, o in enumerate(offsets):
            metadata = o.metadata or ""
            if len(metadata.encode()) > self.config.offset_metadata_max_bytes:
                results[i] = ErrorCode.offset_metadata_too_large
                continue
            committed = CommittedOffset(o.offset, o.leader_epoch, metadata, now_ms)
            accepted.append((i, (o.topic, o.partition), committed))
            value = schemas.OffsetValue(o.offset, o.leader_epoch, metadata, now_ms)
            key = schemas.encode_offset_key(group_id, o.topic, o.partition)
            records.append((key, schemas.encode_offset_value(value)))
        return results, records, accepted
