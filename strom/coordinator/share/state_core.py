"""The share coordinator (KIP-932) as a sans-io state machine: the durable state of every share-partition
whose key maps to a __share_group_state partition this broker leads, as Kafka's ShareCoordinatorShard.

- A share-partition's key is "group:topicId:partition" (the topic id in Kafka's base64 form); its
  __share_group_state partition is abs(javaHashCode(key)) % share.coordinator.state.topic.num.partitions,
  which FindCoordinator key type 2 also answers.
- InitializeShareGroupState writes a ShareSnapshot with the given state epoch and start offset and no
  batches (a state epoch below the stored one is FENCED_STATE_EPOCH).
- WriteShareGroupState (from the partition's leader) is refused with FENCED_STATE_EPOCH below the stored
  state epoch and FENCED_LEADER_EPOCH below the stored leader epoch; otherwise its batches are merged over
  the stored ones (newer wins for each offset, nothing kept below the start offset; start offset -1 keeps
  it) and written as a ShareUpdate, or as a whole ShareSnapshot once
  share.coordinator.snapshot.update.records.per.snapshot updates followed the last snapshot.
- ReadShareGroupState answers the state and raises the stored leader epoch to the reader's (a
  ShareUpdate); ReadShareGroupStateSummary answers epochs and the start offset only. Both answer
  UNKNOWN_TOPIC_OR_PARTITION for a share-partition never initialized.
- DeleteShareGroupState writes tombstones for both record types.

State changes apply at once; the shell writes the returned records and reloads the partition from the log
if a write fails. Replay (`load_record`) applies snapshots, updates and tombstones in log order.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, replace

from strom.coordinator.group.schemas import partition_for
from strom.coordinator.share import state_records as rec
from strom.coordinator.share.partition import StateBatch
from strom.coordinator.share.state_records import StateKey
from strom.protocol.errors import ErrorCode

Record = tuple[bytes, bytes | None]


def java_uuid(topic_id: uuid.UUID) -> str:
    """Kafka's Uuid.toString(): URL-safe base64 without padding."""
    return base64.urlsafe_b64encode(topic_id.bytes).rstrip(b"=").decode()


def coordinator_key(key: StateKey) -> str:
    return f"{key.group_id}:{java_uuid(key.topic_id)}:{key.partition}"


@dataclass(frozen=True, slots=True)
class ShareState:
    snapshot_epoch: int
    state_epoch: int
    leader_epoch: int
    start_offset: int
    create_timestamp: int
    write_timestamp: int
    batches: tuple[StateBatch, ...]
    delivery_complete_count: int = -1
    updates_since_snapshot: int = 0


def merge_batches(
    old: Iterable[StateBatch], new: Iterable[StateBatch], start_offset: int
) -> tuple[StateBatch, ...]:
    """Kafka's combineStateBatches: `new` overrides `old` where they overlap; nothing below
    `start_offset` is kept; the result is in offset order."""
    pieces = list(old)
    for n in new:
        cut: list[StateBatch] = []
        for b in pieces:
            if b.last_offset < n.first_offset or b.first_offset > n.last_offset:
                cut.append(b)
                continue
            if b.first_offset < n.first_offset:
                cut.append(replace(b, last_offset=n.first_offset - 1))
            if b.last_offset > n.last_offset:
                cut.append(replace(b, first_offset=n.last_offset + 1))
        cut.append(n)
        pieces = cut
    out = []
    for b in sorted(pieces, key=lambda b: b.first_offset):
        if b.last_offset < start_offset:
            continue
        out.append(replace(b, first_offset=max(b.first_offset, start_offset)))
    return tuple(out)


class ShareStateCore:
    def __init__(self, num_partitions: int = 50, snapshot_every: int = 500) -> None:
        self.num_partitions = num_partitions
        self.snapshot_every = snapshot_every
        self.states: dict[StateKey, ShareState] = {}
        self.owned: set[int] = set()
        self.loading: set[int] = set()
        self._loads: dict[int, dict[StateKey, ShareState]] = {}

    def partition_for(self, key: StateKey) -> int:
        return partition_for(coordinator_key(key), self.num_partitions)

    def status(self, key: StateKey) -> ErrorCode:
        partition = self.partition_for(key)
        if partition in self.loading:
            return ErrorCode.coordinator_load_in_progress
        if partition not in self.owned:
            return ErrorCode.not_coordinator
        return ErrorCode.none

    # --- requests ------------------------------------------------------------------------------------

    def initialize(
        self, key: StateKey, state_epoch: int, start_offset: int, now_ms: int
    ) -> tuple[ErrorCode, list[Record]]:
        old = self.states.get(key)
        if old is not None and state_epoch < old.state_epoch:
            return ErrorCode.fenced_state_epoch, []
        state = ShareState(
            snapshot_epoch=0 if old is None else old.snapshot_epoch + 1,
            state_epoch=state_epoch,
            leader_epoch=-1,
            start_offset=start_offset,
            create_timestamp=now_ms,
            write_timestamp=now_ms,
            batches=(),
        )
        self.states[key] = state
        return ErrorCode.none, [self._snapshot_record(key, state)]

    def write(
        self,
        key: StateKey,
        state_epoch: int,
        leader_epoch: int,
        start_offset: int,
        batches: tuple[StateBatch, ...],
        delivery_complete_count: int,
        now_ms: int,
    ) -> tuple[ErrorCode, list[Record]]:
        old = self.states.get(key)
        if old is None:
            old = ShareState(0, state_epoch, -1, start_offset, now_ms, now_ms, ())
            start = start_offset
            snapshot = True
        else:
            if state_epoch < old.state_epoch:
                return ErrorCode.fenced_state_epoch, []
            if leader_epoch < old.leader_epoch:
                return ErrorCode.fenced_leader_epoch, []
            start = old.start_offset if start_offset == -1 else start_offset
            snapshot = old.updates_since_snapshot + 1 >= self.snapshot_every
        merged = merge_batches(old.batches, batches, start)
        state = replace(
            old,
            leader_epoch=max(leader_epoch, old.leader_epoch),
            start_offset=start,
            write_timestamp=now_ms,
            batches=merged,
            delivery_complete_count=delivery_complete_count,
        )
        if snapshot:
            state = replace(
                state,
                snapshot_epoch=old.snapshot_epoch + (key in self.states),
                updates_since_snapshot=0,
            )
            self.states[key] = state
            return ErrorCode.none, [self._snapshot_record(key, state)]
        state = replace(state, updates_since_snapshot=old.updates_since_snapshot + 1)
        self.states[key] = state
        update = rec.ShareUpdate(
            state.snapshot_epoch, state.leader_epoch, start_offset, batches, delivery_complete_count
        )
        return ErrorCode.none, [(rec.encode_key(rec.SHARE_UPDATE, key), rec.encode_update(update))]

    def read(self, key: StateKey, leader_epoch: int) -> tuple[ErrorCode, ShareState | None, list[Record]]:
        state = self.states.get(key)
        if state is None:
            return ErrorCode.unknown_topic_or_partition, None, []
        if leader_epoch != -1 and leader_epoch < state.leader_epoch:
            return ErrorCode.fenced_leader_epoch, None, []
        if leader_epoch <= state.leader_epoch:
            return ErrorCode.none, state, []
        # the reader is a new leader: its epoch fences writes of the previous one
        state = replace(
            state, leader_epoch=leader_epoch, updates_since_snapshot=state.updates_since_snapshot + 1
        )
        self.states[key] = state
        update = rec.ShareUpdate(state.snapshot_epoch, leader_epoch, -1, (), state.delivery_complete_count)
        return ErrorCode.none, state, [(rec.encode_key(rec.SHARE_UPDATE, key), rec.encode_update(update))]

    def summary(self, key: StateKey) -> tuple[ErrorCode, ShareState | None]:
        state = self.states.get(key)
        if state is None:
            return ErrorCode.unknown_topic_or_partition, None
        return ErrorCode.none, state

    def delete(self, key: StateKey) -> list[Record]:
        self.states.pop(key, None)
        return [
            (rec.encode_key(rec.SHARE_SNAPSHOT, key), None),
            (rec.encode_key(rec.SHARE_UPDATE, key), None),
        ]

    @staticmethod
    def _snapshot_record(key: StateKey, s: ShareState) -> Record:
        value = rec.ShareSnapshot(
            s.snapshot_epoch,
            s.state_epoch,
            s.leader_epoch,
            s.start_offset,
            s.create_timestamp,
            s.write_timestamp,
            s.batches,
            s.delivery_complete_count,
        )
        return rec.encode_key(rec.SHARE_SNAPSHOT, key), rec.encode_snapshot(value)

    # --- ownership and replay ------------------------------------------------------------------------

    def begin_loading(self, partition: int) -> None:
        self.loading.add(partition)
        self._loads[partition] = {}

    def load_record(self, partition: int, key: bytes | None, value: bytes | None) -> None:
        decoded = None if key is None else rec.decode_key(key)
        if decoded is None:
            return
        record_type, state_key = decoded
        staged = self._loads.setdefault(partition, {})
        if value is None:
            staged.pop(state_key, None)
            return
        if record_type == rec.SHARE_SNAPSHOT:
            s = rec.decode_snapshot(value)
            staged[state_key] = ShareState(
                s.snapshot_epoch,
                s.state_epoch,
                s.leader_epoch,
                s.start_offset,
                s.create_timestamp,
                s.write_timestamp,
                s.state_batches,
                s.delivery_complete_count,
            )
            return
        old = staged.get(state_key)
        if old is None:
            return
        u = rec.decode_update(value)
        start = old.start_offset if u.start_offset == -1 else u.start_offset
        staged[state_key] = replace(
            old,
            leader_epoch=max(old.leader_epoch, u.leader_epoch),
            start_offset=start,
            batches=merge_batches(old.batches, u.state_batches, start),
            delivery_complete_count=u.delivery_complete_count,
            updates_since_snapshot=old.updates_since_snapshot + 1,
        )

    def finish_loading(self, partition: int) -> None:
        self.states.update(self._loads.pop(partition, {}))
        self.loading.discard(partition)
        self.owned.add(partition)

    def unload(self, partition: int) -> None:
        self._loads.pop(partition, None)
        self.loading.discard(partition)
        self.owned.discard(partition)
        for key in [k for k in self.states if self.partition_for(k) == partition]:
            del self.states[key]
