"""Replaying share groups (KIP-932) from __consumer_offsets when this broker becomes a partition's leader,
as Kafka's GroupMetadataManager.replay does: later records win, a null value deletes (the subscription
tombstone removes a member, the epoch tombstone the group). Every replayed member gets a fresh session
deadline.
"""

from __future__ import annotations

from strom.coordinator.share import records as rec
from strom.coordinator.share.base import ShareBase
from strom.coordinator.share.group import ShareGroup, ShareMember


class ShareLoader(ShareBase):
    def begin_loading(self, partition: int) -> None:
        super().begin_loading(partition)  # type: ignore[misc]
        self._share_loads[partition] = {}

    def load_record(self, partition: int, key: bytes | None, value: bytes | None) -> None:
        decoded = None if key is None else rec.decode_key(key)
        if decoded is None:
            super().load_record(partition, key, value)  # type: ignore[misc]
            return
        staged = self._share_loads.setdefault(partition, {})
        t, gid = decoded.type, decoded.group
        if t == rec.GROUP_METADATA and value is None:
            staged.pop(gid, None)
            return
        group = staged.get(gid)
        if group is None:
            if value is None:
                return
            group = staged[gid] = ShareGroup(gid, 0)
        if t == rec.GROUP_METADATA:
            group.group_epoch, group.metadata_hash = rec.decode_group_metadata(value)  # type: ignore[arg-type]
        elif t == rec.MEMBER_METADATA:
            if value is None:
                group.members.pop(decoded.member, None)
                return
            v = rec.decode_member_metadata(value)
            m = group.members.setdefault(decoded.member, ShareMember(decoded.member))
            m.rack_id, m.client_id, m.client_host = v.rack_id, v.client_id, v.client_host
            m.subscribed_topic_names = v.subscribed_topic_names
        elif t == rec.CURRENT_MEMBER_ASSIGNMENT:
            if value is None:
                return
            a = rec.decode_current_assignment(value)
            m = group.members.setdefault(decoded.member, ShareMember(decoded.member))
            m.member_epoch, m.previous_member_epoch, m.assigned = (
                a.member_epoch,
                a.previous_member_epoch,
                a.assigned,
            )
        elif t == rec.TARGET_ASSIGNMENT_MEMBER:
            if value is None:
                group.target.pop(decoded.member, None)
            else:
                group.target[decoded.member] = rec.decode_target_member(value)
        elif t == rec.TARGET_ASSIGNMENT_METADATA:
            if value is not None:
                group.assignment_epoch = rec.decode_target_metadata(value)
        elif t == rec.STATE_PARTITION_METADATA:
            if value is None:
                group.initialized = {}
            else:
                v = rec.decode_state_partition_metadata(value)
                group.initialized = {i.topic_id: (i.topic_name, i.partitions) for i in v.initialized}

    def finish_loading(self, partition: int, now_ms: int) -> None:
        for group_id, loaded in self._share_loads.pop(partition, {}).items():
            group = ShareGroup(group_id, now_ms)
            group.group_epoch, group.metadata_hash = loaded.group_epoch, loaded.metadata_hash
            group.assignment_epoch = loaded.assignment_epoch
            group.initialized = loaded.initialized
            # a member whose subscription was deleted left: only members with metadata remain
            group.members = {m: v for m, v in loaded.members.items() if v.subscribed_topic_names}
            group.target = {m: t for m, t in loaded.target.items() if m in group.members}
            for member_id in group.members:
                self._schedule_share_session(group_id, member_id, now_ms)
            self.share_groups[group_id] = group
        super().finish_loading(partition, now_ms)  # type: ignore[misc]

    def unload(self, partition: int) -> None:
        self._share_loads.pop(partition, None)
        for group_id in self._share_groups_of_partition(partition):
            group = self.share_groups.pop(group_id)
            group.dead = True
            for member_id in group.members:
                self.timers.cancel(("share-session", group_id, member_id))
        super().unload(partition)  # type: ignore[misc]
