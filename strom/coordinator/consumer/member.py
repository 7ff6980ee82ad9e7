"""A member of a consumer group (KIP-848): its subscription, its member epoch and its current assignment.

The member epoch is the group epoch the member last reconciled to; 0 while (re)joining, -1 once it left,
-2 while a static member (group.instance.id) is away temporarily. `assigned` holds the partitions the
member owns or may own now, each with the epoch at which it was assigned (KIP-1251);
`pending_revocation` those it must give up before the group moves on. A member that joined with JoinGroup
(a classic consumer in a consumer group, KIP-848's online migration) carries its session timeout and
protocols in `classic`. States are Kafka's MemberState,
with its byte values as ConsumerGroupCurrentMemberAssignmentValue stores them.
"""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass, field, replace

from strom.coordinator.consumer.records import ClassicMemberMetadata, EpochAssignment

LEAVE_GROUP_MEMBER_EPOCH = -1
LEAVE_GROUP_STATIC_MEMBER_EPOCH = -2


class MemberState(enum.IntEnum):
    STABLE = 0
    UNREVOKED_PARTITIONS = 1
    UNRELEASED_PARTITIONS = 2
    UNKNOWN = 127

    @classmethod
    def of(cls, value: int) -> MemberState:
        try:
            return cls(value)
        except ValueError:
            return cls.UNKNOWN


@dataclass(frozen=True, slots=True)
class ConsumerMember:
    member_id: str
    instance_id: str | None = None
    rack_id: str | None = None
    client_id: str = ""
    client_host: str = ""
    subscribed_topic_names: tuple[str, ...] = ()
    # Kafka keeps "" (not null) for a member without a regex, and writes it so
    subscribed_topic_regex: str = ""
    rebalance_timeout_ms: int = -1
    server_assignor: str | None = None
    member_epoch: int = 0
    previous_member_epoch: int = 0
    state: MemberState = MemberState.STABLE
    assigned: EpochAssignment = field(default_factory=dict)
    pending_revocation: EpochAssignment = field(default_factory=dict)
    # set for a member that speaks the classic protocol (JoinGroup/SyncGroup/Heartbeat) in a consumer group
    classic: ClassicMemberMetadata | None = None

    @property
    def uses_classic_protocol(self) -> bool:
        return self.classic is not None

    def with_epoch(self, epoch: int, **changes: object) -> ConsumerMember:
        """A copy at member epoch `epoch`; the old epoch becomes the previous one when it changes (the
        member may retry with it if our answer was lost)."""
        previous = self.member_epoch if epoch != self.member_epoch else self.previous_member_epoch
        return replace(self, member_epoch=epoch, previous_member_epoch=previous, **changes)  # type: ignore[arg-type]

    def subscription_equals(self, other: ConsumerMember) -> bool:
        return (
            set(self.subscribed_topic_names) == set(other.subscribed_topic_names)
            and self.subscribed_topic_regex == other.subscribed_topic_regex
        )

    def metadata_equals(self, other: ConsumerMember) -> bool:
        """Whether the fields of ConsumerGroupMemberMetadataValue are the same."""
        return (
            self.instance_id == other.instance_id
            and self.rack_id == other.rack_id
            and self.client_id == other.client_id
            and self.client_host == other.client_host
            and self.subscription_equals(other)
            and self.rebalance_timeout_ms == other.rebalance_timeout_ms
            and self.server_assignor == other.server_assignor
            and self.classic == other.classic
        )

    def assignment_equals(self, other: ConsumerMember) -> bool:
        """Whether the fields of ConsumerGroupCurrentMemberAssignmentValue are the same."""
        return (
            self.member_epoch == other.member_epoch
            and self.previous_member_epoch == other.previous_member_epoch
            and self.state == other.state
            and self.assigned == other.assigned
            and self.pending_revocation == other.pending_revocation
        )


def partitions_of(assignment: EpochAssignment) -> dict[uuid.UUID, frozenset[int]]:
    return {t: frozenset(parts) for t, parts in assignment.items() if parts}
