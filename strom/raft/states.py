"""The epoch states of a KRaft replica (Kafka's EpochState classes, KIP-595 with KIP-996's pre-vote).

    Unattached  -> Prospective (a voter's election timeout), Follower (a leader is found), Unattached (a
                   higher epoch, or a vote granted in this one)
    Prospective -> Candidate (a majority granted the pre-vote), Follower/Unattached (the pre-vote lost)
    Candidate   -> Leader (a majority voted for it), Prospective (election timeout or lost, after backoff)
    Leader      -> Resigned (shutdown, or no majority fetched within 1.5 x fetch timeout: check quorum)
    Follower    -> Prospective (a voter's fetch timeout), Unattached (an observer's), Follower (higher epoch)
    Resigned    -> Unattached (election timeout)
    any         -> Unattached/Follower on a higher epoch.

Prospective and Resigned are held in memory only; the others are written to `quorum-state` before they
take effect. Plain data: the transitions live in `strom.raft.core`.
"""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from strom.raft.metadata_log import OffsetAndEpoch

__all__ = [
    "Candidate",
    "EpochState",
    "Follower",
    "Leader",
    "Prospective",
    "ReplicaProgress",
    "Resigned",
    "Role",
    "SnapshotFetch",
    "Unattached",
]


class Role(enum.Enum):
    UNATTACHED = "Unattached"
    PROSPECTIVE = "Prospective"
    CANDIDATE = "Candidate"
    LEADER = "Leader"
    FOLLOWER = "Follower"
    RESIGNED = "Resigned"


@dataclass(slots=True)
class Unattached:
    epoch: int
    election_deadline_ms: int
    voted_id: int = -1
    voted_directory_id: uuid.UUID | None = None
    role: Role = Role.UNATTACHED

    @property
    def leader_id(self) -> int:
        return -1


@dataclass(slots=True)
class Prospective:
    """Asking for pre-votes at the current epoch; remembers the leader and vote it had (KIP-996)."""

    epoch: int
    election_deadline_ms: int
    leader_id: int = -1
    voted_id: int = -1
    voted_directory_id: uuid.UUID | None = None
    granted: set[int] = field(default_factory=set)
    rejected: set[int] = field(default_factory=set)
    role: Role = Role.PROSPECTIVE


@dataclass(slots=True)
class Candidate:
    epoch: int
    election_deadline_ms: int
    granted: set[int] = field(default_factory=set)
    rejected: set[int] = field(default_factory=set)
    backoff_until_ms: int | None = None
    role: Role = Role.CANDIDATE

    @property
    def leader_id(self) -> int:
        return -1


@dataclass(slots=True)
class ReplicaProgress:
    """What the leader knows of one replica (Kafka's LeaderState.ReplicaState)."""

    node_id: int
    directory_id: uuid.UUID | None = None
    end_offset: int = -1
    last_fetch_ms: int = -1
    last_caught_up_ms: int = -1
    last_fetch_leader_end: int = -1
    acknowledged: bool = False

    def update(self, fetch_offset: int, now_ms: int, leader_end: int) -> None:
        # Kafka: caught up when this fetch reaches the leader's end offset, or reaches the end the leader
        # had at the previous fetch (then it was caught up as of that fetch)
        if fetch_offset >= leader_end:
            self.last_caught_up_ms = max(self.last_caught_up_ms, now_ms)
        elif self.last_fetch_leader_end > 0 and fetch_offset >= self.last_fetch_leader_end:
            self.last_caught_up_ms = max(self.last_caught_up_ms, self.last_fetch_ms)
        self.last_fetch_leader_end = leader_end
        self.last_fetch_ms = max(self.last_fetch_ms, now_ms)
        self.end_offset = fetch_offset
        self.acknowledged = True


@dataclass(slots=True)
class Leader:
    epoch: int
    epoch_start_offset: int
    voters: dict[int, ReplicaProgress]
    granting: tuple[int, ...]
    check_quorum_deadline_ms: int
    begin_epoch_due_ms: int
    observers: dict[int, ReplicaProgress] = field(default_factory=dict)
    fetched_since_check: set[int] = field(default_factory=set)
    high_watermark: int = -1
    leader_id: int = -1
    # KIP-853: an AddRaftVoter between its checks and its VotersRecord (the new voter's ApiVersions)
    voter_change_pending: bool = False
    role: Role = Role.LEADER


@dataclass(slots=True)
class SnapshotFetch:
    """A snapshot being copied from the leader into a `.checkpoint.part` file."""

    snapshot: OffsetAndEpoch
    part: Path
    position: int = 0


@dataclass(slots=True)
class Follower:
    epoch: int
    leader_id: int
    fetch_deadline_ms: int
    high_watermark: int = -1
    last_fetch_ok_ms: int = -1
    leader_resigned: bool = False
    snapshot_fetch: SnapshotFetch | None = None
    # KIP-853: when a voter next checks that the voter set holds its endpoints (-1: from the first poll)
    update_voter_due_ms: int = -1
    # KIP-853 at kraft.version 0: this voter told this leader its directory id and endpoints
    updated_leader: bool = False
    role: Role = Role.FOLLOWER


@dataclass(slots=True)
class Resigned:
    """A leader stepping down: it tells the voters (EndQuorumEpoch) and votes for nobody in its epoch."""

    epoch: int
    leader_id: int
    election_deadline_ms: int
    successors: tuple[int, ...]
    unacked: set[int] = field(default_factory=set)
    role: Role = Role.RESIGNED


EpochState = Unattached | Prospective | Candidate | Leader | Follower | Resigned
