"""Replaying streams groups (KIP-1071) from __consumer_offsets when this broker becomes a partition's leader,
as Kafka's GroupMetadataManager.replay does: later records win; a null value deletes (a member's metadata
tombstone removes the member, the epoch tombstone the group). Offsets of a streams group come from the
OffsetCommit records the classic loader collects, handed over when loading finishes. Every replayed member
gets a fresh session deadline, one still asked to revoke its rebalance deadline, and the topology is
configured again against the topics of the moment. The initial rebalance delay's timer is not persisted
(nor is it in Kafka): a reloaded group whose target is behind its group epoch gets it at the next
heartbeat (the assignment interval still counting from the replayed assignment timestamp), and an
empty one waits the delay again when a member joins.
"""

from __future__ import annotations

from dataclasses import replace

from strom.coordinator.streams import records as rec
from strom.coordinator.streams.base import STREAMS_REBALANCE, StreamsBase, initial_rebalance_key
from strom.coordinator.streams.group import MemberState, StreamsGroup, StreamsMember
from strom.coordinator.streams.topology import configure


class StreamsLoader(StreamsBase):
    def begin_loading(self, partition: int) -> None:
        super().begin_loading(partition)  # type: ignore[misc]
        self._streams_loads[partition] = {}

    def load_record(self, partition: int, key: bytes | None, value: bytes | None) -> None:
        decoded = None if key is None else rec.decode_key(key)
        if decoded is None:
            super().load_record(partition, key, value)  # type: ignore[misc]
            return
        staged = self._streams_loads.setdefault(partition, {})
        group = staged.get(decoded.group)
        t = decoded.type
        if t == rec.GROUP_METADATA and value is None:
            staged.pop(decoded.group, None)
            return
        if group is None:
            if value is None:
                return
            group = staged.setdefault(decoded.group, StreamsGroup(decoded.group, 0))
        if t == rec.GROUP_METADATA:
            v = rec.decode_group_metadata(value)  # type: ignore[arg-type]
            group.group_epoch, group.metadata_hash = v.epoch, v.metadata_hash
            group.validated_topology_epoch = v.validated_topology_epoch
            group.assignment_configs = tuple(sorted(v.last_assignment_configs or ()))
        elif t == rec.TOPOLOGY:
            group.topology = None if value is None else rec.decode_topology(value)
        elif t == rec.MEMBER_METADATA:
            if value is None:
                group.members.pop(decoded.member, None)
                return
            m = rec.decode_member_metadata(value)
            old = group.members.get(decoded.member, StreamsMember(decoded.member))
            group.members[decoded.member] = replace(
                old,
                instance_id=m.instance_id,
                rack_id=m.rack_id,
                client_id=m.client_id,
                client_host=m.client_host,
                rebalance_timeout_ms=m.rebalance_timeout_ms,
                topology_epoch=m.topology_epoch,
                process_id=m.process_id,
                user_endpoint=m.user_endpoint,
                client_tags=m.client_tags,
            )
        elif t == rec.CURRENT_MEMBER_ASSIGNMENT:
            old = group.members.get(decoded.member, StreamsMember(decoded.member))
            if value is None:
                group.members[decoded.member] = replace(old, member_epoch=0, previous_member_epoch=0)
                return
            a = rec.decode_current_assignment(value)
            group.members[decoded.member] = replace(
                old,
                member_epoch=a.member_epoch,
                previous_member_epoch=a.previous_member_epoch,
                state=MemberState.of(a.state),
                assigned=a.assigned,
                pending_revocation=a.pending_revocation,
            )
        elif t == rec.TARGET_ASSIGNMENT_MEMBER:
            if value is None:
                group.target.pop(decoded.member, None)
            else:
                group.target[decoded.member] = rec.decode_target_member(value)
        elif t == rec.TARGET_ASSIGNMENT_METADATA and value is not None:
            group.assignment_epoch, group.assignment_timestamp = rec.decode_target_metadata(value)

    def finish_loading(self, partition: int, now_ms: int) -> None:
        staged = self._streams_loads.pop(partition, {})
        classic_loads = self._loads.get(partition, {})
        topics = self.topics_view()
        for group_id, loaded in staged.items():
            group = StreamsGroup(group_id, now_ms)
            group.group_epoch, group.metadata_hash = loaded.group_epoch, loaded.metadata_hash
            group.validated_topology_epoch = loaded.validated_topology_epoch
            group.assignment_configs = loaded.assignment_configs
            group.assignment_epoch = loaded.assignment_epoch
            group.assignment_timestamp = loaded.assignment_timestamp
            group.topology = loaded.topology
            group.target = {m: t for m, t in loaded.target.items() if m in loaded.members}
            if group.topology is not None:
                group.configured = configure(group.topology, topics)
            for member in loaded.members.values():
                group.update_member(member)
                self._schedule_streams_session(group_id, member.member_id, now_ms)
                if member.state is MemberState.UNREVOKED_TASKS:
                    key = (STREAMS_REBALANCE, group_id, member.member_id, str(member.member_epoch))
                    self.timers.schedule(key, now_ms + max(member.rebalance_timeout_ms, 0))
            entry = classic_loads.pop(group_id, None)
            if entry is not None:
                group.offsets = entry[1]
            self.streams_groups[group_id] = group
        super().finish_loading(partition, now_ms)  # type: ignore[misc]

    def unload(self, partition: int) -> None:
        self._streams_loads.pop(partition, None)
        for group_id in self._streams_groups_of_partition(partition):
            group = self.streams_groups.pop(group_id)
            group.dead = True
            self.timers.cancel(initial_rebalance_key(group_id))
            for member in group.members.values():
                self._cancel_streams_timers(group_id, member)
        super().unload(partition)  # type: ignore[misc]
