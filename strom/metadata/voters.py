"""The initial KRaft voters given to `storage format --initial-controllers` (KIP-853, Kafka's DynamicVoters).

The flag takes a comma-separated list of `ID@HOST:PORT:DIRECTORY_ID` (an IPv6 host in brackets), for
example `0@ctl0:9093:JEXY6aqzQY-32P5TStzaFg,1@ctl1:9093:MvDxzVmcRsaTz33bUuRU6A`. Each voter is a node id,
its controller endpoint and the directory id of its metadata log directory (KIP-858); the formatter turns
the set into the VotersRecord of the bootstrap snapshot, with the controller listener's name.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from strom.metadata.records import VotersRecord
from strom.storage.checkpoint import uuid_from_kafka

__all__ = ["DynamicVoter", "VoterParseError", "parse_dynamic_voters", "voters_record"]


class VoterParseError(ValueError):
    """An --initial-controllers value Kafka refuses; the message is Kafka's."""


@dataclass(frozen=True, slots=True)
class DynamicVoter:
    node_id: int
    host: str
    port: int
    directory_id: uuid.UUID


def _parse_one(text: str) -> DynamicVoter:
    text = text.strip()
    node, at, rest = text.partition("@")
    if not at:
        raise VoterParseError("No @ found in dynamic voter string.")
    if not node:
        raise VoterParseError("Invalid @ at beginning of dynamic voter string.")
    try:
        node_id = int(node)
    except ValueError:
        raise VoterParseError(f"Failed to parse node id in dynamic voter string: {node}") from None
    if node_id < 0:
        raise VoterParseError(f"Invalid negative node id {node_id} in dynamic voter string.")
    if rest.startswith("["):
        host, bracket, rest = rest[1:].partition("]")
        if not bracket:
            raise VoterParseError("Hostname began with left bracket, but no right bracket was found.")
        if not rest.startswith(":"):
            raise VoterParseError("No colon following hostname could be found.")
        rest = rest[1:]
    else:
        host, colon, rest = rest.partition(":")
        if not colon:
            raise VoterParseError("No colon following hostname could be found.")
    port_text, colon, directory = rest.partition(":")
    if not colon:
        raise VoterParseError("No colon following port could be found.")
    try:
        port = int(port_text)
    except ValueError:
        raise VoterParseError(f"Failed to parse port in dynamic voter string: {port_text}") from None
    if not 0 <= port <= 65535:
        raise VoterParseError(f"Invalid port {port} in dynamic voter string.")
    try:
        directory_id = uuid_from_kafka(directory)
    except (ValueError, TypeError):
        raise VoterParseError(f"Failed to parse directory ID in dynamic voter string: {directory}") from None
    if len(directory_id.bytes) != 16 or directory_id.int < 100:  # Kafka reserves the lowest ids
        raise VoterParseError(f"Invalid directory ID {directory} in dynamic voter string.")
    return DynamicVoter(node_id, host, port, directory_id)


def parse_dynamic_voters(text: str) -> dict[int, DynamicVoter]:
    """Voters by node id, in the order given; duplicate ids or directory ids are refused."""
    voters: dict[int, DynamicVoter] = {}
    directories: set[uuid.UUID] = set()
    for part in text.split(","):
        voter = _parse_one(part)
        if voter.node_id in voters:
            raise VoterParseError(f"Node id {voter.node_id} was specified more than once.")
        if voter.directory_id in directories:
            raise VoterParseError(f"Directory id {voter.directory_id} was specified more than once.")
        voters[voter.node_id] = voter
        directories.add(voter.directory_id)
    if not voters:
        raise VoterParseError("No voters given.")
    return voters


def voters_record(
    voters: dict[int, DynamicVoter], listener: str, kraft_versions: tuple[int, int]
) -> VotersRecord:
    """The VotersRecord of a voter set: one controller endpoint each, and the kraft.version
    range every voter supports (this software's), in the order given (as Kafka keeps it)."""
    feature = VotersRecord.Voter.KRaftVersionFeature(
        min_supported_version=kraft_versions[0], max_supported_version=kraft_versions[1]
    )
    return VotersRecord(version=0, voters=tuple(
        VotersRecord.Voter(
            voter_id=v.node_id,
            voter_directory_id=v.directory_id,
            endpoints=(VotersRecord.Voter.Endpoint(name=listener, host=v.host, port=v.port),),
            kraft_version_feature=feature,
        )
        for v in voters.values()
    ))
