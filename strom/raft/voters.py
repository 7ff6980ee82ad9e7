"""The voter set of the quorum (KIP-595 static voters, KIP-853 dynamic voters).

A static quorum names its voters in `controller.quorum.voters` (`id@host:port,...`): their directory ids
are unknown and their endpoints are on the first `controller.listener.names` listener. A dynamic quorum
(kraft.version 1) keeps its voters in VotersRecord control records: the bootstrap snapshot's, then any
the log holds. `VoterHistory` remembers the VotersRecords at their log offsets, so that truncating the
log (a follower diverging from its leader) also forgets the voter sets written after the cut.
"""

from __future__ import annotations

import bisect
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from strom.metadata.records import VotersRecord

__all__ = ["Voter", "VoterHistory", "VoterSet", "VotersError", "parse_static_voters"]

ZERO_UUID = uuid.UUID(int=0)


class VotersError(ValueError):
    """A voter list that cannot be parsed."""


@dataclass(frozen=True, slots=True)
class Voter:
    """One voter: node id, the directory id of its metadata log dir (None: unknown, static quorums), its
    endpoints by listener name, and the kraft.version range it supports."""

    node_id: int
    directory_id: uuid.UUID | None
    endpoints: Mapping[str, tuple[str, int]] = field(default_factory=dict)
    kraft_versions: tuple[int, int] = (0, 1)

    def endpoint(self, listener: str | None = None) -> tuple[str, int] | None:
        if listener is not None and listener in self.endpoints:
            return self.endpoints[listener]
        return next(iter(self.endpoints.values()), None)


@dataclass(frozen=True, slots=True)
class VoterSet:
    voters: Mapping[int, Voter]

    @property
    def ids(self) -> list[int]:
        return sorted(self.voters)

    def __contains__(self, node_id: object) -> bool:
        return node_id in self.voters

    def __len__(self) -> int:
        return len(self.voters)

    @property
    def majority(self) -> int:
        return len(self.voters) // 2 + 1

    def is_voter(self, node_id: int, directory_id: uuid.UUID | None = None) -> bool:
        """KIP-853: a voter has this id and, when both sides know it, this directory id."""
        voter = self.voters.get(node_id)
        if voter is None:
            return False
        if voter.directory_id is None or directory_id is None or directory_id == ZERO_UUID:
            return True
        return voter.directory_id == directory_id

    def with_voter(self, voter: Voter) -> VoterSet:
        """This set with `voter` added, or put in place of the voter of its id (UpdateRaftVoter)."""
        return VoterSet({**self.voters, voter.node_id: voter})

    def without(self, node_id: int) -> VoterSet:
        return VoterSet({i: v for i, v in self.voters.items() if i != node_id})

    def to_record(self) -> VotersRecord:
        """The VotersRecord (version 0) of this set, voters by id."""
        return VotersRecord(
            version=0,
            voters=tuple(
                VotersRecord.Voter(
                    voter_id=v.node_id,
                    voter_directory_id=v.directory_id or ZERO_UUID,
                    endpoints=tuple(
                        VotersRecord.Voter.Endpoint(name=name, host=host, port=port)
                        for name, (host, port) in v.endpoints.items()
                    ),
                    kraft_version_feature=VotersRecord.Voter.KRaftVersionFeature(
                        min_supported_version=v.kraft_versions[0], max_supported_version=v.kraft_versions[1]
                    ),
                )
                for v in (self.voters[i] for i in self.ids)
            ),
        )

    @classmethod
    def from_record(cls, record: VotersRecord) -> VoterSet:
        return cls(
            {
                v.voter_id: Voter(
                    v.voter_id,
                    None if v.voter_directory_id == ZERO_UUID else v.voter_directory_id,
                    {e.name: (e.host, e.port) for e in v.endpoints},
                    (
                        v.kraft_version_feature.min_supported_version,
                        v.kraft_version_feature.max_supported_version,
                    ),
                )
                for v in record.voters
            }
        )


def parse_static_voters(entries: Iterable[str], listener: str) -> VoterSet:
    """`controller.quorum.voters` entries (`id@host:port`, IPv6 hosts in brackets)."""
    voters: dict[int, Voter] = {}
    for raw in entries:
        entry = raw.strip()
        if not entry:
            continue
        node, at, address = entry.partition("@")
        host, colon, port = address.rpartition(":")
        try:
            node_id, port_number = int(node), int(port)
        except ValueError:
            raise VotersError(f"Invalid entry in controller.quorum.voters: {entry}") from None
        if not at or not colon or not host:
            raise VotersError(f"Invalid entry in controller.quorum.voters: {entry}")
        # a static voter supports only kraft.version 0 until it tells the leader otherwise through
        # UpdateRaftVoter (Kafka's VoterSet.fromInetSocketAddresses)
        voters[node_id] = Voter(node_id, None, {listener: (host.strip("[]"), port_number)}, (0, 0))
    return VoterSet(voters)


class VoterHistory:
    """Voter sets by the log offset of the VotersRecord that set them (-1: the bootstrap set)."""

    def __init__(self, bootstrap: VoterSet) -> None:
        self._offsets: list[int] = [-1]
        self._sets: list[VoterSet] = [bootstrap]

    @property
    def latest(self) -> VoterSet:
        return self._sets[-1]

    @property
    def latest_offset(self) -> int:
        """The log offset of the newest VotersRecord (-1: the bootstrap set)."""
        return self._offsets[-1]

    @property
    def only_bootstrap(self) -> bool:
        """No VotersRecord in the log yet: a new leader writes the bootstrap set into it (KIP-853)."""
        return len(self._offsets) == 1

    def add(self, offset: int, voters: VoterSet) -> None:
        if offset <= self._offsets[-1]:
            return
        self._offsets.append(offset)
        self._sets.append(voters)

    def truncate_from(self, end_offset: int) -> None:
        """Forget the sets written at or after `end_offset` (the log was truncated there)."""
        keep = max(1, bisect.bisect_left(self._offsets, end_offset))
        del self._offsets[keep:]
        del self._sets[keep:]
