"""Ownership of __consumer_offsets partitions: replaying a partition's records into groups and offsets
when this broker becomes its leader, and dropping its groups when leadership moves away.

Replay follows Kafka's GroupMetadataManager: later records win, a null value (tombstone) deletes an
offset or a group; a replayed group with members comes back Stable with the stored generation, leader and
assignments, and every member gets a fresh session deadline. Requests for a partition being loaded answer
COORDINATOR_LOAD_IN_PROGRESS; after `unload`, NOT_COORDINATOR (parked requests are answered so).
"""

from __future__ import annotations

from strom.coordinator.group import schemas
from strom.coordinator.group.base import CoreBase
from strom.coordinator.group.group import CommittedOffset, Group, GroupState
from strom.coordinator.group.member import Member
from strom.protocol.errors import ErrorCode

_S = GroupState


class GroupLoader(CoreBase):
    def begin_loading(self, partition: int) -> None:
        self.loading.add(partition)
        self._loads[partition] = {}

    def load_record(self, partition: int, key: bytes | None, value: bytes | None) -> None:
        """Replay one record of __consumer_offsets (later records win, null values delete)."""
        if key is None:
            return
        decoded = schemas.decode_key(key)
        state = self._loads[partition]
        if isinstance(decoded, schemas.OffsetKey):
            entry = state.setdefault(decoded.group, (None, {}))
            tp = (decoded.topic, decoded.partition)
            if value is None:
                entry[1].pop(tp, None)
            else:
                v = schemas.decode_offset_value(value)
                entry[1][tp] = CommittedOffset(
                    v.offset, v.leader_epoch, v.metadata, v.commit_timestamp, v.expire_timestamp
                )
        elif isinstance(decoded, schemas.GroupKey):
            offsets = state.get(decoded.group, (None, {}))[1]
            if value is None:
                # A group tombstone follows the tombstones of its offsets; anything later starts afresh.
                state.pop(decoded.group, None)
            else:
                state[decoded.group] = (schemas.decode_group_value(value), offsets)

    def finish_loading(self, partition: int, now_ms: int) -> None:
        for group_id, (value, offsets) in self._loads.pop(partition, {}).items():
            if value is None and not offsets:
                continue
            group = Group(group_id, now_ms)
            group.offsets = offsets
            if value is not None:
                group.generation_id = value.generation
                group.protocol_type = value.protocol_type or None
                group.protocol_name = value.protocol
                if value.current_state_timestamp >= 0:
                    group.state_timestamp = value.current_state_timestamp
                for mv in value.members:
                    member = Member(
                        member_id=mv.member_id,
                        group_instance_id=mv.group_instance_id,
                        client_id=mv.client_id,
                        client_host=mv.client_host,
                        rebalance_timeout_ms=mv.rebalance_timeout,
                        session_timeout_ms=mv.session_timeout,
                        protocol_type=value.protocol_type,
                        protocols=[(value.protocol or "", mv.subscription)],
                        assignment=mv.assignment,
                    )
                    group.add(member)
                    self._schedule_heartbeat(group, member, now_ms)
                group.leader_id = value.leader if value.leader in group.members else group.leader_id
                if group.members:
                    group.state = _S.STABLE
            self.groups[group_id] = group
        self.loading.discard(partition)
        self.owned.add(partition)
        self._schedule_expiry(now_ms)

    def unload(self, partition: int) -> None:
        """Leadership of a partition moved away: drop its groups, answering parked requests."""
        self.loading.discard(partition)
        self.owned.discard(partition)
        self._loads.pop(partition, None)
        for producer_id, by_group in list(self.pending_txn_offsets.items()):
            for group_id in [g for g in by_group if self.partition_for(g) == partition]:
                del by_group[group_id]  # the new owner replays them from the log
            if not by_group:
                del self.pending_txn_offsets[producer_id]
        for group_id in [g for g in self.groups if self.partition_for(g) == partition]:
            group = self.groups.pop(group_id)
            for member in group.members.values():
                self._fail_waiters(member, ErrorCode.not_coordinator)
                self.timers.cancel(("hb", group_id, member.member_id))
            for pending in group.pending_members:
                self.timers.cancel(("pending", group_id, pending))
            self.timers.cancel(("join", group_id))
            self.timers.cancel(("sync", group_id))
            self._initial_join_remaining.pop(group_id, None)
            group.state = _S.DEAD
