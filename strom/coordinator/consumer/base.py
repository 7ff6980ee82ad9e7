"""State shared by the consumer-group (KIP-848) parts of the group coordinator core.

Consumer groups live beside the classic groups of `strom.coordinator.group.base.CoreBase` and share its
__consumer_offsets partitions, its append sink, its ownership sets and its timers; a group id names either
a classic or a consumer group, never both. `ConsumerBase` adds the consumer groups, their settings, the
view of the cluster's topics and the lookup of each group's configs (both set by the coordinator's shell;
the share and streams bases use them too) and the record helpers every part uses.
Timer keys: ("consumer-session", group, member) and ("consumer-rebalance", group, member, epoch).
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable
from typing import Any

from strom.coordinator.consumer import records as rec
from strom.coordinator.consumer.config import ConsumerGroupConfig
from strom.coordinator.consumer.group import ConsumerGroup, TopicsView
from strom.coordinator.consumer.member import ConsumerMember
from strom.coordinator.group.base import CoreBase, Record
from strom.coordinator.group_configs import GroupConfigLookup

SESSION = "consumer-session"
REBALANCE = "consumer-rebalance"


def can_compute_next_target(last_assignment_ms: int, interval_ms: int, now_ms: int) -> bool:
    """Whether a group whose target assignment was last computed at `last_assignment_ms` may get a new one
    now (Kafka's canComputeNextTargetAssignment): always for a group never assigned (timestamp 0) or with
    no interval, else once the assignment interval has passed. A throttled group keeps its target and
    assignment epoch; a later heartbeat (or the streams initial-delay timer) computes the new one."""
    return last_assignment_ms == 0 or interval_ms == 0 or now_ms >= last_assignment_ms + interval_ms


class ConsumerBase(CoreBase):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.consumer_groups: dict[str, ConsumerGroup] = {}
        self.consumer_config = ConsumerGroupConfig()
        # the cluster's topics now; the shell replaces this with a view of its metadata image
        self.topics_view: Callable[[], TopicsView] = lambda: TopicsView([])
        # each group's configs (GROUP resources); the shell replaces this with a GroupConfigView
        self.group_configs: GroupConfigLookup = lambda _group_id: {}
        self._consumer_loads: dict[int, dict[str, ConsumerGroup]] = {}

    # --- records -------------------------------------------------------------------------------------

    @staticmethod
    def _member_metadata_record(group_id: str, m: ConsumerMember) -> Record:
        value = rec.MemberMetadataValue(
            m.instance_id,
            m.rack_id,
            m.client_id,
            m.client_host,
            m.subscribed_topic_names,
            m.subscribed_topic_regex,
            m.rebalance_timeout_ms,
            m.server_assignor,
            m.classic,
        )
        return rec.member_key(rec.MEMBER_METADATA, group_id, m.member_id), rec.encode_member_metadata(value)

    @staticmethod
    def _current_assignment_record(group_id: str, m: ConsumerMember) -> Record:
        value = rec.CurrentAssignmentValue(
            m.member_epoch, m.previous_member_epoch, int(m.state), m.assigned, m.pending_revocation
        )
        key = rec.member_key(rec.CURRENT_MEMBER_ASSIGNMENT, group_id, m.member_id)
        return key, rec.encode_current_assignment(value)

    @staticmethod
    def _epoch_record(group: ConsumerGroup) -> Record:
        value = rec.GroupMetadataValue(group.group_epoch, group.metadata_hash)
        return rec.group_key(rec.GROUP_METADATA, group.group_id), rec.encode_group_metadata(value)

    @staticmethod
    def _member_tombstones(group_id: str, member_id: str) -> list[Record]:
        """Kafka's order: current assignment, target assignment, then the subscription."""
        return [
            (rec.member_key(rec.CURRENT_MEMBER_ASSIGNMENT, group_id, member_id), None),
            (rec.member_key(rec.TARGET_ASSIGNMENT_MEMBER, group_id, member_id), None),
            (rec.member_key(rec.MEMBER_METADATA, group_id, member_id), None),
        ]

    def _group_tombstones(self, group: ConsumerGroup) -> list[Record]:
        """Kafka's order: the regexes, the target assignment epoch, the subscription metadata, the epoch."""
        gid = group.group_id
        out: list[Record] = [
            (rec.member_key(rec.REGULAR_EXPRESSION, gid, r), None) for r in sorted(group.regexes)
        ]
        out += [
            (rec.group_key(rec.TARGET_ASSIGNMENT_METADATA, gid), None),
            (rec.group_key(rec.PARTITION_METADATA, gid), None),
            (rec.group_key(rec.GROUP_METADATA, gid), None),
        ]
        return out

    # --- topics --------------------------------------------------------------------------------------

    def _topic_ids(self, names: set[str], topics: TopicsView) -> set[uuid.UUID]:
        return {topics.by_name[n].topic_id for n in names if n in topics.by_name}

    @staticmethod
    def _metadata_hash(names: set[str], topics: TopicsView) -> int:
        """A 64-bit digest of the subscribed topics' ids, names and partition counts (KIP-1101's role:
        it changes when a subscribed topic appears, disappears or grows); 0 when none exists."""
        present = [topics.by_name[n] for n in names if n in topics.by_name]
        if not present:
            return 0
        digest = hashlib.blake2b(digest_size=8)
        for meta in sorted(present, key=lambda t: t.name):
            digest.update(f"{meta.topic_id}|{meta.name}|{meta.partitions};".encode())
        return int.from_bytes(digest.digest(), "big", signed=True)

    def _consumer_config_of(self, group_id: str) -> ConsumerGroupConfig:
        """The consumer group settings of one group: its group configs over the broker's."""
        return self.consumer_config.for_group(self.group_configs(group_id))

    # --- timers --------------------------------------------------------------------------------------

    def _schedule_session(
        self, group_id: str, member_id: str, now_ms: int, timeout_ms: int | None = None
    ) -> None:
        # a classic member keeps the session timeout it joined with
        if timeout_ms is None:
            timeout = self._consumer_config_of(group_id).session_timeout_ms
        else:
            timeout = timeout_ms
        self.timers.schedule((SESSION, group_id, member_id), now_ms + timeout)

    def _cancel_member_timers(self, group_id: str, member: ConsumerMember) -> None:
        self.timers.cancel((SESSION, group_id, member.member_id))
        self.timers.cancel((REBALANCE, group_id, member.member_id, str(member.member_epoch)))

    def _consumer_group_of_partition(self, partition: int) -> list[str]:
        return [g for g in self.consumer_groups if self.partition_for(g) == partition]
