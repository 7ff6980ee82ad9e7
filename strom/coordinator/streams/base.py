"""State shared by the streams-group (KIP-1071) parts of the group coordinator core.

Streams groups live beside the classic, consumer and share groups and share their __consumer_offsets
partitions, append sink, ownership sets, timers and view of the cluster's topics (through
`ConsumerBase`); a group id names one group of one type. `StreamsBase` adds the streams groups, their
settings and the record helpers. Timer keys: ("streams-session", group, member),
("streams-rebalance", group, member, epoch) and ("streams-initial-rebalance", group) (Kafka's
"initial-rebalance-timeout-<group>": group.streams.initial.rebalance.delay.ms after a member joined the
group while it was empty; like all of Kafka's coordinator timers it is not persisted).
"""

from __future__ import annotations

from typing import Any

from strom.coordinator.consumer.base import ConsumerBase
from strom.coordinator.group.base import Record
from strom.coordinator.streams import records as rec
from strom.coordinator.streams.config import StreamsGroupConfig
from strom.coordinator.streams.group import StreamsGroup, StreamsMember

STREAMS_SESSION = "streams-session"
STREAMS_REBALANCE = "streams-rebalance"
STREAMS_INITIAL_REBALANCE = "streams-initial-rebalance"


def initial_rebalance_key(group_id: str) -> tuple[str, str]:
    return (STREAMS_INITIAL_REBALANCE, group_id)


class StreamsBase(ConsumerBase):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.streams_groups: dict[str, StreamsGroup] = {}
        self.streams_config = StreamsGroupConfig()
        self._streams_loads: dict[int, dict[str, StreamsGroup]] = {}

    def _is_other_type(self, group_id: str) -> bool:
        """Whether a group id names a group that is not a share group (the share modules ask)."""
        if group_id in self.streams_groups:
            return True
        return super()._is_other_type(group_id)  # type: ignore[misc, no-any-return]

    # --- records -------------------------------------------------------------------------------------

    @staticmethod
    def _streams_member_record(group_id: str, m: StreamsMember) -> Record:
        value = rec.MemberMetadataValue(
            m.instance_id,
            m.rack_id,
            m.client_id,
            m.client_host,
            m.rebalance_timeout_ms,
            m.topology_epoch,
            m.process_id,
            m.user_endpoint,
            m.client_tags,
        )
        return rec.member_key(rec.MEMBER_METADATA, group_id, m.member_id), rec.encode_member_metadata(value)

    @staticmethod
    def _streams_assignment_record(group_id: str, m: StreamsMember) -> Record:
        value = rec.CurrentAssignmentValue(
            m.member_epoch, m.previous_member_epoch, int(m.state), m.assigned, m.pending_revocation
        )
        key = rec.member_key(rec.CURRENT_MEMBER_ASSIGNMENT, group_id, m.member_id)
        return key, rec.encode_current_assignment(value)

    def _streams_epoch_record(self, group: StreamsGroup) -> Record:
        value = rec.GroupMetadataValue(
            group.group_epoch, group.metadata_hash, group.validated_topology_epoch, group.assignment_configs
        )
        return rec.group_key(rec.GROUP_METADATA, group.group_id), rec.encode_group_metadata(value)

    @staticmethod
    def _streams_member_tombstones(group_id: str, member_id: str) -> list[Record]:
        """Kafka's order: current assignment, target assignment, then the member's metadata."""
        return [
            (rec.member_key(rec.CURRENT_MEMBER_ASSIGNMENT, group_id, member_id), None),
            (rec.member_key(rec.TARGET_ASSIGNMENT_MEMBER, group_id, member_id), None),
            (rec.member_key(rec.MEMBER_METADATA, group_id, member_id), None),
        ]

    @staticmethod
    def _streams_group_tombstones(group: StreamsGroup) -> list[Record]:
        gid = group.group_id
        return [
            (rec.group_key(rec.TARGET_ASSIGNMENT_METADATA, gid), None),
            (rec.group_key(rec.GROUP_METADATA, gid), None),
            (rec.group_key(rec.TOPOLOGY, gid), None),
        ]

    def _streams_config_of(self, group_id: str) -> StreamsGroupConfig:
        """The streams group settings of one group: its group configs over the broker's."""
        return self.streams_config.for_group(self.group_configs(group_id))

    # --- timers --------------------------------------------------------------------------------------

    def _schedule_streams_session(self, group_id: str, member_id: str, now_ms: int) -> None:
        timeout = self._streams_config_of(group_id).session_timeout_ms
        self.timers.schedule((STREAMS_SESSION, group_id, member_id), now_ms + timeout)

    def _cancel_streams_timers(self, group_id: str, member: StreamsMember) -> None:
        self.timers.cancel((STREAMS_SESSION, group_id, member.member_id))
        self.timers.cancel((STREAMS_REBALANCE, group_id, member.member_id, str(member.member_epoch)))

    def _streams_groups_of_partition(self, partition: int) -> list[str]:
        return [g for g in self.streams_groups if self.partition_for(g) == partition]
