"""A share group (KIP-932) in the group coordinator: its members, epochs and assignment.

- Share groups have no revocation: a member owns what the target assignment gives it from the heartbeat
  that hands it over, so its member epoch jumps straight to the assignment epoch. The states are Empty
  (no members) and Stable (Kafka's ShareGroupState; Dead once deleted).
- The assignment is computed over the partitions whose share state the share coordinator initialized
  (`initialized`, kept in ShareGroupStatePartitionMetadata): every member gets every initialized
  partition of the topics it subscribes to, since a share-partition serves any number of consumers.
- The group epoch moves when a member joins, leaves or changes its subscription, and when partitions
  become initialized; the assignment epoch follows it at once.
"""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass, field

from strom.coordinator.share.records import Partitions

STABLE_MEMBER_STATE = 0  # Kafka's MemberState.STABLE: the only state a share member has


class ShareGroupState(enum.Enum):
    EMPTY = "Empty"
    STABLE = "Stable"
    DEAD = "Dead"


@dataclass(slots=True)
class ShareMember:
    member_id: str
    member_epoch: int = 0
    previous_member_epoch: int = 0
    rack_id: str | None = None
    client_id: str = ""
    client_host: str = ""
    subscribed_topic_names: tuple[str, ...] = ()
    assigned: Partitions = field(default_factory=dict)


class ShareGroup:
    def __init__(self, group_id: str, now_ms: int) -> None:
        self.group_id = group_id
        self.created_ms = now_ms
        self.group_epoch = 0
        self.metadata_hash = 0
        self.assignment_epoch = 0
        self.members: dict[str, ShareMember] = {}
        self.target: dict[str, Partitions] = {}
        # topic id -> (name, partitions) whose share state is initialized
        self.initialized: dict[uuid.UUID, tuple[str, frozenset[int]]] = {}
        self.dead = False

    @property
    def state(self) -> ShareGroupState:
        if self.dead:
            return ShareGroupState.DEAD
        return ShareGroupState.STABLE if self.members else ShareGroupState.EMPTY

    def subscribed_topics(self) -> set[str]:
        return {t for m in self.members.values() for t in m.subscribed_topic_names}
