"""State shared by the share-group (KIP-932) parts of the group coordinator core.

Share groups live beside the classic and consumer groups and share their __consumer_offsets partitions,
append sink, ownership sets, timers and view of the cluster's topics (through `ConsumerBase`); a group id
names one group of one type. `ShareBase` adds the share groups, their settings and the record helpers.
Timer key: ("share-session", group, member).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from strom.coordinator.consumer.base import ConsumerBase
from strom.coordinator.group.base import Record
from strom.coordinator.share import records as rec
from strom.coordinator.share.config import ShareGroupConfig
from strom.coordinator.share.group import STABLE_MEMBER_STATE, ShareGroup, ShareMember

SHARE_SESSION = "share-session"

# (group id, [(topic id, partition)]) of a share group deleted, whose share state is to be deleted too
StateDeleted = Callable[[str, list[tuple[uuid.UUID, int]]], None]


class ShareBase(ConsumerBase):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.share_groups: dict[str, ShareGroup] = {}
        self.share_config = ShareGroupConfig()
        self.on_share_state_deleted: StateDeleted = lambda _group, _partitions: None
        self._share_loads: dict[int, dict[str, ShareGroup]] = {}

    def _is_other_type(self, group_id: str) -> bool:
        return group_id in self.groups or group_id in self.consumer_groups

    # --- records -------------------------------------------------------------------------------------

    @staticmethod
    def _share_member_record(group_id: str, m: ShareMember) -> Record:
        value = rec.MemberMetadataValue(m.rack_id, m.client_id, m.client_host, m.subscribed_topic_names)
        return rec.member_key(rec.MEMBER_METADATA, group_id, m.member_id), rec.encode_member_metadata(value)

    @staticmethod
    def _share_assignment_record(group_id: str, m: ShareMember) -> Record:
        value = rec.CurrentAssignmentValue(
            m.member_epoch, m.previous_member_epoch, STABLE_MEMBER_STATE, m.assigned
        )
        key = rec.member_key(rec.CURRENT_MEMBER_ASSIGNMENT, group_id, m.member_id)
        return key, rec.encode_current_assignment(value)

    @staticmethod
    def _share_epoch_record(group: ShareGroup) -> Record:
        value = rec.encode_group_metadata(group.group_epoch, group.metadata_hash)
        return rec.group_key(rec.GROUP_METADATA, group.group_id), value

    @staticmethod
    def _share_state_metadata_record(group: ShareGroup) -> Record:
        initialized = tuple(
            rec.TopicInfo(topic_id, name, parts) for topic_id, (name, parts) in group.initialized.items()
        )
        value = rec.StatePartitionMetadataValue(initialized=initialized)
        key = rec.group_key(rec.STATE_PARTITION_METADATA, group.group_id)
        return key, rec.encode_state_partition_metadata(value)

    @staticmethod
    def _share_member_tombstones(group_id: str, member_id: str) -> list[Record]:
        """Kafka's order: current assignment, target assignment, then the subscription."""
        return [
            (rec.member_key(rec.CURRENT_MEMBER_ASSIGNMENT, group_id, member_id), None),
            (rec.member_key(rec.TARGET_ASSIGNMENT_MEMBER, group_id, member_id), None),
            (rec.member_key(rec.MEMBER_METADATA, group_id, member_id), None),
        ]

    @staticmethod
    def _share_group_tombstones(group: ShareGroup) -> list[Record]:
        gid = group.group_id
        return [
            (rec.group_key(rec.STATE_PARTITION_METADATA, gid), None),
            (rec.group_key(rec.TARGET_ASSIGNMENT_METADATA, gid), None),
            (rec.group_key(rec.GROUP_METADATA, gid), None),
        ]

    def _share_config_of(self, group_id: str) -> ShareGroupConfig:
        """The share group settings of one group: its group configs over the broker's."""
        return self.share_config.for_group(self.group_configs(group_id))

    # --- timers --------------------------------------------------------------------------------------

    def _schedule_share_session(self, group_id: str, member_id: str, now_ms: int) -> None:
        timeout = self._share_config_of(group_id).session_timeout_ms
        self.timers.schedule((SHARE_SESSION, group_id, member_id), now_ms + timeout)

    def _share_groups_of_partition(self, partition: int) -> list[str]:
        return [g for g in self.share_groups if self.partition_for(g) == partition]
