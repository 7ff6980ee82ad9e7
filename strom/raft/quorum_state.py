"""The `quorum-state` file of `__cluster_metadata-0`: what a voter must remember across restarts.

Kafka's FileQuorumStateStore writes QuorumStateData as JSON with a `data_version` field, atomically
(`quorum-state.tmp`, fsync, rename). Kafka 4.4 writes version 0 while kraft.version is 0 (static
`controller.quorum.voters`) and version 1 from kraft.version 1 (KIP-853):

    v0: {"clusterId":"","leaderId":1,"leaderEpoch":1,"votedId":-1,"appliedOffset":0,
         "currentVoters":[{"voterId":1}],"data_version":0}
    v1: {"leaderId":1,"leaderEpoch":1,"votedId":-1,"votedDirectoryId":"AAAAAAAAAAAAAAAAAAAAAA",
         "data_version":1}

(measured on a Kafka 4.4 controller). A vote must reach the disk before it is granted (Raft's safety:
one vote per epoch, even across a crash), so every write is durable before it returns.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from strom.storage.checkpoint import uuid_from_kafka, uuid_to_kafka, write_atomically

__all__ = ["QUORUM_STATE_FILE", "ElectionState", "QuorumStateError", "QuorumStateStore"]

QUORUM_STATE_FILE = "quorum-state"
NO_ID = -1
ZERO_UUID = uuid.UUID(int=0)


class QuorumStateError(Exception):
    """The file exists but cannot be read as Kafka's quorum state."""


@dataclass(frozen=True, slots=True)
class ElectionState:
    """Epoch, the leader of that epoch if known, and whom this replica voted for in it (if anyone)."""

    epoch: int
    leader_id: int = NO_ID
    voted_id: int = NO_ID
    voted_directory_id: uuid.UUID | None = None

    @property
    def has_leader(self) -> bool:
        return self.leader_id >= 0

    @property
    def has_voted(self) -> bool:
        return self.voted_id >= 0


class QuorumStateStore:
    """Reads and writes `<metadata log dir>/__cluster_metadata-0/quorum-state`."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def read(self) -> ElectionState | None:
        """The stored state, or None when there is no file yet (a new node starts unattached at 0)."""
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        try:
            data = json.loads(text)
            version = int(data.get("data_version", 0))
            directory = data.get("votedDirectoryId")
            voted_dir = uuid_from_kafka(directory) if version >= 1 and directory else None
            if voted_dir == ZERO_UUID:
                voted_dir = None
            return ElectionState(
                epoch=int(data["leaderEpoch"]),
                leader_id=int(data.get("leaderId", NO_ID)),
                voted_id=int(data.get("votedId", NO_ID)),
                voted_directory_id=voted_dir,
            )
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise QuorumStateError(f"{self.path}: not a quorum state file ({exc})") from None

    def write(self, state: ElectionState, *, kraft_version: int, voters: Sequence[int] = ()) -> None:
        """Write `state` durably in the layout Kafka 4.4 uses for `kraft_version`."""
        if kraft_version >= 1:
            data: dict[str, object] = {
                "leaderId": state.leader_id,
                "leaderEpoch": state.epoch,
                "votedId": state.voted_id,
                "votedDirectoryId": uuid_to_kafka(state.voted_directory_id or ZERO_UUID),
                "data_version": 1,
            }
        else:
            data = {
                "clusterId": "",
                "leaderId": state.leader_id,
                "leaderEpoch": state.epoch,
                "votedId": state.voted_id,
                "appliedOffset": 0,
                "currentVoters": [{"voterId": v} for v in sorted(voters)],
                "data_version": 0,
            }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(self.path, json.dumps(data, separators=(",", ":")))
