"""ProducerIdManager: ids from blocks persisted in the data directory (single node), or claimed from the
cluster through an async source (ZooKeeper mode), claimed once however many callers wait for a block."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from strom.server.producer_ids import BLOCK_SIZE, ProducerIdManager, ProducerIdsUnavailableError


def test_local_blocks_are_never_reused_after_a_restart(tmp_path: Path) -> None:
    first = ProducerIdManager(tmp_path)
    assert [first.allocate() for _ in range(3)] == [0, 1, 2]
    second = ProducerIdManager(tmp_path)  # a restart: the rest of the first block is skipped
    assert second.allocate() == BLOCK_SIZE


async def test_cluster_blocks_are_claimed_once_and_used_in_order(tmp_path: Path) -> None:
    claims: list[int] = []

    async def claim(size: int) -> tuple[int, int]:
        await asyncio.sleep(0.01)
        start = 5000 + len(claims) * size
        claims.append(start)
        return start, start + size - 1

    manager = ProducerIdManager(tmp_path, claim_block=claim)
    with pytest.raises(ProducerIdsUnavailableError):
        manager.allocate()  # nothing claimed yet, and the local file is not a fallback
    ids = await asyncio.gather(*(manager.allocate_async() for _ in range(5)))
    assert sorted(ids) == [5000, 5001, 5002, 5003, 5004]
    assert claims == [5000]
    manager._next = manager._block_end - 1  # the last id of the block
    assert await manager.allocate_async() == 5000 + BLOCK_SIZE - 1
    assert await manager.allocate_async() == 5000 + BLOCK_SIZE
    assert claims == [5000, 5000 + BLOCK_SIZE]
    assert not (tmp_path / "producer-id-block").exists()
