"""A consumer group (KIP-848): group epoch, target assignment, members and who owns which partition.

- The group epoch moves when the group's subscriptions or the metadata of its subscribed topics change;
  the target assignment is computed for a group epoch and carries it as its assignment epoch. A new group
  starts at group epoch 1 (as Kafka 4.4: the first member brings it to 2) and assignment epoch 0.
- `partition_epochs` says, for every partition a member owns (assigned or pending revocation), the
  member epoch of its owner: a partition is free for its next owner only once it is absent here
  (Kafka's currentPartitionEpoch).
- The state is derived, as Kafka's ConsumerGroup.state: Empty without members, Assigning while the
  target assignment is behind the group epoch, Reconciling until every member is Stable at the
  assignment epoch, then Stable.
"""

from __future__ import annotations

import enum
import uuid
from collections import Counter
from dataclasses import dataclass

from strom.coordinator.consumer.member import ConsumerMember, MemberState
from strom.coordinator.consumer.records import EpochAssignment, Partitions
from strom.coordinator.group.group import CommittedOffset


class ConsumerGroupState(enum.Enum):
    EMPTY = "Empty"
    ASSIGNING = "Assigning"
    RECONCILING = "Reconciling"
    STABLE = "Stable"
    DEAD = "Dead"


@dataclass(frozen=True, slots=True)
class ResolvedRegex:
    topics: frozenset[str]
    version: int
    timestamp: int


@dataclass(frozen=True, slots=True)
class TopicMeta:
    topic_id: uuid.UUID
    name: str
    partitions: int
    internal: bool = False


class TopicsView:
    """The topics of the cluster as the coordinator sees them: by name and by id, with a version that
    changes whenever the metadata does (regexes are resolved again then)."""

    def __init__(self, topics: list[TopicMeta], version: int = 0) -> None:
        self.by_name = {t.name: t for t in topics}
        self.by_id = {t.topic_id: t for t in topics}
        self.version = version

    def name(self, topic_id: uuid.UUID) -> str | None:
        meta = self.by_id.get(topic_id)
        return None if meta is None else meta.name


class ConsumerGroup:
    def __init__(self, group_id: str, now_ms: int) -> None:
        self.group_id = group_id
        self.created_ms = now_ms
        self.group_epoch = 1
        self.metadata_hash = 0
        self.assignment_epoch = 0
        self.assignment_timestamp = 0
        self.members: dict[str, ConsumerMember] = {}
        self.static_members: dict[str, str] = {}
        self.target: dict[str, Partitions] = {}
        self.partition_epochs: dict[tuple[uuid.UUID, int], int] = {}
        self.regexes: dict[str, ResolvedRegex] = {}
        self.offsets: dict[tuple[str, int], CommittedOffset] = {}
        self.dead = False
        # when the group last had no members, for offset expiry
        self.empty_since_ms = now_ms

    # --- state ---------------------------------------------------------------------------------------

    @property
    def state(self) -> ConsumerGroupState:
        if self.dead:
            return ConsumerGroupState.DEAD
        if not self.members:
            return ConsumerGroupState.EMPTY
        if self.group_epoch > self.assignment_epoch:
            return ConsumerGroupState.ASSIGNING
        for m in self.members.values():
            if m.state is not MemberState.STABLE or m.member_epoch != self.assignment_epoch:
                return ConsumerGroupState.RECONCILING
        return ConsumerGroupState.STABLE

    def current_partition_epoch(self, topic_id: uuid.UUID, partition: int) -> int:
        return self.partition_epochs.get((topic_id, partition), -1)

    # --- members -------------------------------------------------------------------------------------

    def static_member(self, instance_id: str | None) -> ConsumerMember | None:
        if instance_id is None:
            return None
        member_id = self.static_members.get(instance_id)
        return None if member_id is None else self.members.get(member_id)

    def update_member(self, member: ConsumerMember, now_ms: int = 0) -> None:
        old = self.members.get(member.member_id)
        if old is not None:
            self._drop_epochs(old)
            if old.instance_id is not None and self.static_members.get(old.instance_id) == old.member_id:
                del self.static_members[old.instance_id]
        self.members[member.member_id] = member
        if member.instance_id is not None:
            self.static_members[member.instance_id] = member.member_id
        self._add_epochs(member)

    def remove_member(self, member_id: str, now_ms: int) -> ConsumerMember | None:
        member = self.members.pop(member_id, None)
        if member is None:
            return None
        self._drop_epochs(member)
        if member.instance_id is not None and self.static_members.get(member.instance_id) == member_id:
            del self.static_members[member.instance_id]
        self.target.pop(member_id, None)
        if not self.members:
            self.empty_since_ms = now_ms
        return member

    def _add_epochs(self, member: ConsumerMember) -> None:
        for assignment in (member.assigned, member.pending_revocation):
            for topic_id, parts in assignment.items():
                for p in parts:
                    self.partition_epochs[(topic_id, p)] = member.member_epoch

    def _drop_epochs(self, member: ConsumerMember) -> None:
        for assignment in (member.assigned, member.pending_revocation):
            for topic_id, parts in assignment.items():
                for p in parts:
                    self.partition_epochs.pop((topic_id, p), None)

    # --- subscriptions -------------------------------------------------------------------------------

    def member_topics(self, member: ConsumerMember) -> set[str]:
        """The topic names a member subscribes to: its names, plus its regex's resolved topics (an
        unresolved regex matches nothing)."""
        names = set(member.subscribed_topic_names)
        if member.subscribed_topic_regex:
            resolved = self.regexes.get(member.subscribed_topic_regex)
            if resolved is not None:
                names |= resolved.topics
        return names

    def subscribed_topics(self, members: dict[str, ConsumerMember] | None = None) -> set[str]:
        topics: set[str] = set()
        for m in (members if members is not None else self.members).values():
            topics |= self.member_topics(m)
        return topics

    def is_subscribed_to(self, topic: str) -> bool:
        return any(topic in self.member_topics(m) for m in self.members.values())

    def preferred_assignor(self, members: dict[str, ConsumerMember], default: str) -> str:
        """The server assignor most members ask for, else the broker's default (Kafka's
        computePreferredServerAssignor)."""
        votes = Counter(m.server_assignor for m in members.values() if m.server_assignor)
        if not votes:
            return default
        best = max(votes.values())
        return sorted(name for name, count in votes.items() if count == best)[0]

    def target_of(self, member_id: str) -> Partitions:
        return self.target.get(member_id, {})


def names_of(assignment: EpochAssignment | Partitions, topics: TopicsView) -> list[tuple[str, list[int]]]:
    """(topic name, partitions) of an assignment, sorted; topics no longer in the metadata are left out."""
    out = []
    for topic_id, parts in assignment.items():
        name = topics.name(topic_id)
        if name is not None and parts:
            out.append((name, sorted(parts)))
    return sorted(out)
