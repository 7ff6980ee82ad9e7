"""A streams group (KIP-1071) and its members.

- The group holds the topology its first member sent (Kafka's StreamsGroupTopology record), the group
  epoch (moved by a new topology, a member joining or leaving, or a change in the metadata of the
  topology's topics), the target assignment with its assignment epoch, and the members.
- A member carries its process id (several members, one per stream thread, share a process), its user
  endpoint for interactive queries, its member epoch and state (Kafka's streams MemberState with its byte
  values: STABLE 1, UNREVOKED_TASKS 2, UNRELEASED_TASKS 3, UNKNOWN 127), its assigned tasks and those it
  must revoke, and the task offsets it last reported.
- `active_owner` maps each active task to its current owner; `standby_owners`/`warmup_owners` each task to
  the processes holding it: a task is given to a member only once no other member holds it as active,
  and never twice to one process (Kafka's currentActiveTaskProcessId and friends).
- The state, as Kafka's StreamsGroup.state: Empty without members, NotReady while the topology is not
  configured (missing or wrongly partitioned topics), Assigning while the target is behind the group
  epoch (also while group.streams.initial.rebalance.delay.ms or group.streams.assignment.interval.ms
  holds a new target back), Reconciling until every member is Stable at the assignment epoch, then
  Stable.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field, replace

from strom.coordinator.group.group import CommittedOffset
from strom.coordinator.streams.records import EMPTY_TASKS, TaskSet, TopologyValue

LEAVE_GROUP_MEMBER_EPOCH = -1
LEAVE_GROUP_STATIC_MEMBER_EPOCH = -2


class MemberState(enum.IntEnum):
    STABLE = 1
    UNREVOKED_TASKS = 2
    UNRELEASED_TASKS = 3
    UNKNOWN = 127

    @classmethod
    def of(cls, value: int) -> MemberState:
        try:
            return cls(value)
        except ValueError:
            return cls.UNKNOWN


class StreamsGroupState(enum.Enum):
    EMPTY = "Empty"
    NOT_READY = "NotReady"
    ASSIGNING = "Assigning"
    RECONCILING = "Reconciling"
    STABLE = "Stable"
    DEAD = "Dead"


@dataclass(frozen=True, slots=True)
class StreamsMember:
    member_id: str
    instance_id: str | None = None
    rack_id: str | None = None
    client_id: str = ""
    client_host: str = ""
    rebalance_timeout_ms: int = -1
    topology_epoch: int = 0
    process_id: str = ""
    user_endpoint: tuple[str, int] | None = None
    client_tags: tuple[tuple[str, str], ...] = ()
    member_epoch: int = 0
    previous_member_epoch: int = 0
    state: MemberState = MemberState.STABLE
    assigned: TaskSet = EMPTY_TASKS
    pending_revocation: TaskSet = EMPTY_TASKS
    # (subtopology, partition) -> offset, as last reported (not persisted, as Kafka)
    task_offsets: tuple[tuple[str, int, int], ...] = ()
    task_end_offsets: tuple[tuple[str, int, int], ...] = ()

    def with_epoch(self, epoch: int, **changes: object) -> StreamsMember:
        previous = self.member_epoch if epoch != self.member_epoch else self.previous_member_epoch
        return replace(self, member_epoch=epoch, previous_member_epoch=previous, **changes)  # type: ignore[arg-type]

    def metadata_equals(self, other: StreamsMember) -> bool:
        """Whether the fields of StreamsGroupMemberMetadataValue are the same."""
        return (
            self.instance_id == other.instance_id
            and self.rack_id == other.rack_id
            and self.client_id == other.client_id
            and self.client_host == other.client_host
            and self.rebalance_timeout_ms == other.rebalance_timeout_ms
            and self.topology_epoch == other.topology_epoch
            and self.process_id == other.process_id
            and self.user_endpoint == other.user_endpoint
            and self.client_tags == other.client_tags
        )

    def assignment_equals(self, other: StreamsMember) -> bool:
        return (
            self.member_epoch == other.member_epoch
            and self.previous_member_epoch == other.previous_member_epoch
            and self.state == other.state
            and self.assigned == other.assigned
            and self.pending_revocation == other.pending_revocation
        )


@dataclass(slots=True)
class ConfiguredTopology:
    """The topology checked against the cluster's topics: tasks per subtopology when ready, else the
    statuses to tell members and the internal topics to create."""

    epoch: int
    partitions: dict[str, int] = field(default_factory=dict)
    stateful: frozenset[str] = frozenset()
    # (status code, detail) the members are told; empty when the topology is ready
    statuses: list[tuple[int, str]] = field(default_factory=list)
    # (name, partitions, replication factor, configs) of internal topics to create
    to_create: list[tuple[str, int, int, tuple[tuple[str, str], ...]]] = field(default_factory=list)

    @property
    def ready(self) -> bool:
        return not self.statuses


class StreamsGroup:
    def __init__(self, group_id: str, now_ms: int) -> None:
        self.group_id = group_id
        self.created_ms = now_ms
        self.group_epoch = 0
        self.metadata_hash = 0
        self.validated_topology_epoch = -1
        # the settings the group epoch's assignment was computed with (num.standby.replicas, ...)
        self.assignment_configs: tuple[tuple[str, str], ...] = ()
        # Kafka 4.4's TargetAssignmentMetadata.INITIAL: epoch 1 at time 0, so that a member joining while
        # the initial rebalance delay holds the first target back reconciles to epoch 1 with no tasks
        self.assignment_epoch = 1
        self.assignment_timestamp = 0
        self.topology: TopologyValue | None = None
        self.configured: ConfiguredTopology | None = None
        self.members: dict[str, StreamsMember] = {}
        self.static_members: dict[str, str] = {}
        self.target: dict[str, TaskSet] = {}
        self.active_owner: dict[tuple[str, int], str] = {}
        self.standby_owners: dict[tuple[str, int], dict[str, int]] = {}
        self.warmup_owners: dict[tuple[str, int], dict[str, int]] = {}
        self.offsets: dict[tuple[str, int], CommittedOffset] = {}
        self.endpoint_information_epoch = 0
        # set once a member asked to shut the whole application down
        self.shutdown_detail: str | None = None
        self.dead = False
        self.empty_since_ms = now_ms

    @property
    def state(self) -> StreamsGroupState:
        if self.dead:
            return StreamsGroupState.DEAD
        if not self.members:
            return StreamsGroupState.EMPTY
        if self.configured is None or not self.configured.ready:
            return StreamsGroupState.NOT_READY
        if self.group_epoch > self.assignment_epoch:
            return StreamsGroupState.ASSIGNING
        for m in self.members.values():
            if m.state is not MemberState.STABLE or m.member_epoch != self.assignment_epoch:
                return StreamsGroupState.RECONCILING
        return StreamsGroupState.STABLE

    # --- members -------------------------------------------------------------------------------------

    def static_member(self, instance_id: str | None) -> StreamsMember | None:
        if instance_id is None:
            return None
        member_id = self.static_members.get(instance_id)
        return None if member_id is None else self.members.get(member_id)

    def update_member(self, member: StreamsMember) -> None:
        old = self.members.get(member.member_id)
        if old is not None:
            self._drop_owners(old)
            if old.instance_id is not None and self.static_members.get(old.instance_id) == old.member_id:
                del self.static_members[old.instance_id]
        self.members[member.member_id] = member
        if member.instance_id is not None:
            self.static_members[member.instance_id] = member.member_id
        self._add_owners(member)

    def remove_member(self, member_id: str, now_ms: int) -> StreamsMember | None:
        member = self.members.pop(member_id, None)
        if member is None:
            return None
        self._drop_owners(member)
        if member.instance_id is not None and self.static_members.get(member.instance_id) == member_id:
            del self.static_members[member.instance_id]
        self.target.pop(member_id, None)
        if not self.members:
            self.empty_since_ms = now_ms
        return member

    def _add_owners(self, m: StreamsMember) -> None:
        for tasks in (m.assigned, m.pending_revocation):
            for s, parts in tasks.active.items():
                for p in parts:
                    self.active_owner[(s, p)] = m.member_id
            for owners, kind in ((self.standby_owners, tasks.standby), (self.warmup_owners, tasks.warmup)):
                for s, parts in kind.items():
                    for p in parts:
                        counts = owners.setdefault((s, p), {})
                        counts[m.process_id] = counts.get(m.process_id, 0) + 1

    def _drop_owners(self, m: StreamsMember) -> None:
        for tasks in (m.assigned, m.pending_revocation):
            for s, parts in tasks.active.items():
                for p in parts:
                    if self.active_owner.get((s, p)) == m.member_id:
                        del self.active_owner[(s, p)]
            for owners, kind in ((self.standby_owners, tasks.standby), (self.warmup_owners, tasks.warmup)):
                for s, parts in kind.items():
                    for p in parts:
                        counts = owners.get((s, p), {})
                        left = counts.get(m.process_id, 0) - 1
                        if left > 0:
                            counts[m.process_id] = left
                        else:
                            counts.pop(m.process_id, None)
                        if not counts:
                            owners.pop((s, p), None)

    def active_process(self, subtopology: str, partition: int) -> str | None:
        owner = self.active_owner.get((subtopology, partition))
        member = None if owner is None else self.members.get(owner)
        return None if member is None else member.process_id

    def standby_processes(self, subtopology: str, partition: int) -> set[str]:
        return set(self.standby_owners.get((subtopology, partition), {}))

    def warmup_processes(self, subtopology: str, partition: int) -> set[str]:
        return set(self.warmup_owners.get((subtopology, partition), {}))

    def target_of(self, member_id: str) -> TaskSet:
        return self.target.get(member_id, EMPTY_TASKS)

    def topics(self) -> set[str]:
        """Every topic the topology reads or writes: sources, repartition and changelog topics."""
        out: set[str] = set()
        if self.topology is None:
            return out
        for s in self.topology.subtopologies:
            out.update(s.source_topics)
            out.update(t.name for t in s.repartition_source_topics)
            out.update(t.name for t in s.state_changelog_topics)
        return out
