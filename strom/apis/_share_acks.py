"""Shared by ShareFetch and ShareAcknowledge (KIP-932): the share session step and the acknowledgements
a request carries, per partition."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from strom.coordinator.share.sessions import FINAL_EPOCH, ShareSession, ShareSessionError
from strom.coordinator.share.state_records import StateKey
from strom.protocol.errors import ErrorCode

PartitionKey = tuple[uuid.UUID, int]


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
