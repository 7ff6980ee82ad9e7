"""Leader hints (KIP-951): a partition answered NOT_LEADER_OR_FOLLOWER or FENCED_LEADER_EPOCH carries the
current leader's id and epoch, and the response lists the endpoints of those leaders, so a client can
go straight to the new leader without a Metadata round trip (Produce v10+, Fetch v16+).

The leader is the one this broker knows best, as Kafka's `getCurrentLeader`: its own partition first
(which hears of leadership changes first), else the metadata image.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from strom.protocol.errors import ErrorCode
from strom.protocol.wire import EMPTY_TAGS, I32, array_len, nullable_string, string, uvarint
from strom.server.context import RequestContext

__all__ = [
    "HINTED_ERRORS",
    "NodeEndpoint",
    "current_leader",
    "encode_node_endpoints",
    "leader_endpoints",
    "tagged",
]

HINTED_ERRORS = frozenset({ErrorCode.not_leader_or_follower, ErrorCode.fenced_leader_epoch})


@dataclass(frozen=True, slots=True)
class NodeEndpoint:
    """A leader named in a response: where the client finds it."""

    node_id: int
    host: str
    port: int
    rack: str | None = None


def current_leader(ctx: RequestContext, topic: str, partition: int) -> tuple[int, int]:
    """(leader id, leader epoch) of a partition as this broker knows them; (-1, -1) when unknown."""
    part = ctx.broker.replica_manager.get_partition(topic, partition)
    if part is not None:
        return int(part.leader_id), int(part.leader_epoch)
    state = ctx.broker.metadata.image.partition(topic, partition)
    return (state.leader, state.leader_epoch) if state is not None else (-1, -1)


def leader_endpoints(ctx: RequestContext, leader_ids: Iterable[int]) -> list[NodeEndpoint]:
    """The endpoints of these brokers on the client's listener, by node id (unknown ids, and brokers
    without that listener, are left out)."""
    brokers = ctx.broker.metadata.image.brokers
    out = []
    for node_id in sorted(set(leader_ids)):
        node = brokers.get(node_id)
        ep = node.endpoint(ctx.listener_name) if node is not None else None
        if node is not None and ep is not None:
            out.append(NodeEndpoint(node.node_id, ep.host, ep.port, node.rack))
    return out


def tagged(tag: int, value: bytes) -> bytes:
    """One tagged field: tag, size, value (the caller writes the count before it)."""
    return uvarint(tag) + uvarint(len(value)) + value


def encode_node_endpoints(endpoints: list[NodeEndpoint]) -> bytes:
    """The compact NodeEndpoints array (a tagged field's value in Produce and Fetch responses)."""
    body = bytearray(array_len(len(endpoints), True))
    for node in endpoints:
        body += I32.pack(node.node_id)
        body += string(node.host, True)
        body += I32.pack(node.port)
        body += nullable_string(node.rack, True)
        body += EMPTY_TAGS
    return bytes(body)
