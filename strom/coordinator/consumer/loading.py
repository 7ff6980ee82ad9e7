"""Replaying consumer groups (KIP-848) from __consumer_offsets when this broker becomes a partition's
leader, as Kafka's GroupMetadataManager.replay does: later records win; a null value deletes (a member's
subscription tombstone removes the member, the epoch tombstone the group). Offsets of a consumer group
come from the same OffsetCommit records the classic loader collects, handed over when loading finishes.
Every replayed member gets a fresh session deadline, and one still asked to revoke its rebalance
deadline; partition owners are rebuilt from the members' current assignments.
"""

from __future__ import annotations

from dataclasses import replace

from strom.coordinator.consumer import records as rec
from strom.coordinator.consumer.base import REBALANCE, ConsumerBase
from strom.coordinator.consumer.group import ConsumerGroup, ResolvedRegex
from strom.coordinator.consumer.member import ConsumerMember, MemberState


class ConsumerLoader(ConsumerBase):
    def begin_loading(self, partition: int) -> None:
        super().begin_loading(partition)  # type: ignore[misc]
        self._consumer_loads[partition] = {}

    def load_record(self, partition: int, key: bytes | None, value: bytes | None) -> None:
        decoded = None if key is None else rec.decode_key(key)
        if decoded is None:
            super().load_record(partition, key, value)  # type: ignore[misc]
            return
        staged = self._consumer_loads.setdefault(partition, {})
        group = staged.get(decoded.group)
        t = decoded.type
        if t == rec.GROUP_METADATA:
            if value is None:
                staged.pop(decoded.group, None)
                return
            group = group or staged.setdefault(decoded.group, ConsumerGroup(decoded.group, 0))
            v = rec.decode_group_metadata(value)
            group.group_epoch, group.metadata_hash = v.epoch, v.metadata_hash
            return
        if group is None:
            if value is None:
                return
            group = staged.setdefault(decoded.group, ConsumerGroup(decoded.group, 0))
        if t == rec.MEMBER_METADATA:
            if value is None:
                group.members.pop(decoded.sub, None)
                return
            m = rec.decode_member_metadata(value)
            old = group.members.get(decoded.sub, ConsumerMember(decoded.sub))
            group.members[decoded.sub] = replace(
                old,
                instance_id=m.instance_id,
                rack_id=m.rack_id,
                client_id=m.client_id,
                client_host=m.client_host,
                subscribed_topic_names=m.subscribed_topic_names,
                subscribed_topic_regex=m.subscribed_topic_regex or "",
                rebalance_timeout_ms=m.rebalance_timeout_ms,
                server_assignor=m.server_assignor,
                classic=m.classic,
            )
        elif t == rec.CURRENT_MEMBER_ASSIGNMENT:
            old = group.members.get(decoded.sub, ConsumerMember(decoded.sub))
            if value is None:
                group.members[decoded.sub] = replace(
                    old, member_epoch=0, previous_member_epoch=0, assigned={}, pending_revocation={}
                )
                return
            a = rec.decode_current_assignment(value)
            group.members[decoded.sub] = replace(
                old,
                member_epoch=a.member_epoch,
                previous_member_epoch=a.previous_member_epoch,
                state=MemberState.of(a.state),
                assigned=a.assigned,
                pending_revocation=a.pending_revocation,
            )
        elif t == rec.TARGET_ASSIGNMENT_MEMBER:
            if value is None:
                group.target.pop(decoded.sub, None)
            else:
                group.target[decoded.sub] = rec.decode_target_member(value)
        elif t == rec.TARGET_ASSIGNMENT_METADATA:
            if value is not None:
                v = rec.decode_target_metadata(value)
                group.assignment_epoch, group.assignment_timestamp = (
                    v.assignment_epoch,
                    v.assignment_timestamp,
                )
        elif t == rec.REGULAR_EXPRESSION:
            if value is None:
                group.regexes.pop(decoded.sub, None)
            else:
                r = rec.decode_regex(value)
                group.regexes[decoded.sub] = ResolvedRegex(frozenset(r.topics), -1, r.timestamp)
        # PARTITION_METADATA: replaced by the metadata hash in Kafka 4.1+; nothing to keep

    def finish_loading(self, partition: int, now_ms: int) -> None:
        staged = self._consumer_loads.pop(partition, {})
        classic_loads = self._loads.get(partition, {})
        for group_id, loaded in staged.items():
            group = ConsumerGroup(group_id, now_ms)
            group.group_epoch, group.metadata_hash = loaded.group_epoch, loaded.metadata_hash
            group.assignment_epoch = loaded.assignment_epoch
            group.assignment_timestamp = loaded.assignment_timestamp
            group.regexes = loaded.regexes
            group.target = {m: t for m, t in loaded.target.items() if m in loaded.members}
            for member in loaded.members.values():
                group.update_member(member)
                self._schedule_session(group_id, member.member_id, now_ms)
                if member.state is MemberState.UNREVOKED_PARTITIONS:
                    key = (REBALANCE, group_id, member.member_id, str(member.member_epoch))
                    self.timers.schedule(key, now_ms + max(member.rebalance_timeout_ms, 0))
            entry = classic_loads.pop(group_id, None)
            if entry is not None:
                group.offsets = entry[1]
            self.consumer_groups[group_id] = group
        super().finish_loading(partition, now_ms)  # type: ignore[misc]

    def unload(self, partition: int) -> None:
        self._consumer_loads.pop(partition, None)
        for group_id in self._consumer_group_of_partition(partition):
            group = self.consumer_groups.pop(group_id)
            group.dead = True
            for member in group.members.values():
                self._cancel_member_timers(group_id, member)
        super().unload(partition)  # type: ignore[misc]
