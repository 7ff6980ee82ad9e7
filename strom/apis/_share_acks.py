"""Shared by ShareFetch and ShareAcknowledge (KIP-932): the share session step, the acknowledgements a
request carries, per partition, the topics its principal may not read, and the leader hints of
partitions this broker does not lead."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterable
from typing import Any

from kio.static.primitive import i32

from strom.apis._authz import allowed, enforcing
from strom.apis._leader_hints import HINTED_ERRORS, current_leader, leader_endpoints
from strom.coordinator.share.sessions import FINAL_EPOCH, ShareSession, ShareSessionError
from strom.coordinator.share.state_records import StateKey
from strom.protocol.errors import ErrorCode
from strom.security.authorizer import AclOperation, ResourceType

PartitionKey = tuple[uuid.UUID, int]


def unreadable(ctx: Any, keys: Iterable[PartitionKey]) -> set[PartitionKey]:
    """The partitions among `keys` of known topics the principal may not READ (TOPIC_AUTHORIZATION_FAILED
    for them, as Kafka's ShareFetch and ShareAcknowledge answer); unknown topic ids are left to the
    handler."""
    keys = list(keys)
    if not keys or not enforcing(ctx):
        return set()
    image = ctx.broker.metadata.image
    names = {tid: info.name for tid in {k[0] for k in keys} if (info := image.topic_by_id(tid)) is not None}
    readable = allowed(ctx, AclOperation.READ, ResourceType.TOPIC, names.values())
    return {key for key in keys if key[0] in names and names[key[0]] not in readable}


def leader_hint(ctx: Any, key: PartitionKey, *codes: ErrorCode | None) -> tuple[int, int]:
    """(leader id, leader epoch) for a partition answered NOT_LEADER_OR_FOLLOWER or FENCED_LEADER_EPOCH
    (its error or acknowledge error), so the consumer goes to the leader at once (KIP-951, as Kafka's
    ShareFetch and ShareAcknowledge answer); (-1, -1) otherwise."""
    if not any(code in HINTED_ERRORS for code in codes):
        return -1, -1
    info = ctx.broker.metadata.image.topic_by_id(key[0])
    return current_leader(ctx, info.name, key[1]) if info is not None else (-1, -1)


def hinted_endpoints(ctx: Any, endpoint_cls: type, leader_ids: Iterable[int]) -> tuple[Any, ...]:
    """The response's node_endpoints: the hinted leaders on the client's listener."""
    return tuple(
        endpoint_cls(node_id=i32(e.node_id), host=e.host, port=i32(e.port), rack=e.rack)
        for e in leader_endpoints(ctx, [i for i in leader_ids if i >= 0])
    )


def ack_batches(partition: Any) -> list[tuple[int, int, list[int]]]:
    return [
        (int(b.first_offset), int(b.last_offset), [int(t) for t in b.acknowledge_types])
        for b in partition.acknowledgement_batches
    ]


async def acknowledge_all(
    ctx: Any, group_id: str, member_id: str, acks: dict[PartitionKey, list[tuple[int, int, list[int]]]]
) -> dict[PartitionKey, ErrorCode]:
    manager = ctx.broker.share_partitions
    keys = list(acks)
    errors = await asyncio.gather(
        *(manager.acknowledge(StateKey(group_id, tid, p), member_id, acks[(tid, p)]) for tid, p in keys)
    )
    return dict(zip(keys, errors, strict=True))


def open_session(
    ctx: Any,
    group_id: str,
    member_id: str,
    epoch: int,
    added: list[PartitionKey],
    forgotten: list[PartitionKey],
) -> tuple[ShareSession | None, ErrorCode, str | None]:
    """The session of a request (None with the error the whole request answers). A session replaced by
    a new one releases what the member held."""
    manager = ctx.broker.share_partitions
    try:
        session, replaced = manager.sessions.open_or_update(
            group_id, member_id, epoch, ctx.connection_id, added, forgotten
        )
    except ShareSessionError as exc:
        return None, exc.code, exc.message
    if replaced is not None:
        asyncio.get_running_loop().create_task(manager.release(replaced))
    return session, ErrorCode.none, None


async def close_if_final(ctx: Any, session: ShareSession, epoch: int) -> None:
    """Epoch -1: the member is done; its session closes and what it still holds goes back."""
    if epoch != FINAL_EPOCH:
        return
    manager = ctx.broker.share_partitions
    manager.sessions.close(session.group_id, session.member_id)
    await manager.release(session)
