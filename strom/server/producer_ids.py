"""Producer id allocation for InitProducerId (KIP-98), unique across restarts and across a cluster's brokers.

Kafka hands out producer ids in blocks of 1000 and persists the claim of each block before handing out any
id from it, so an id is never reused (a reused id would collide with producer state kept in the logs and
their snapshots: the other producer's batches get OUT_OF_ORDER_SEQUENCE_NUMBER or are dropped as
duplicates). A single node records its next block in a small file in its data directory. In a cluster
every broker answers InitProducerId, so blocks are claimed from the cluster (`claim_block`, in ZooKeeper
mode a compare-and-set on /latest_producer_id_block) and the local file is not used.

`allocate()` is synchronous (the transaction coordinator's state machine calls it); callers with a
cluster source first `await ensure_available()`, which claims a new block when the current one is used up.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from pathlib import Path

BLOCK_SIZE = 1000
FILE_NAME = "producer-id-block"

__all__ = ["BLOCK_SIZE", "ProducerIdManager", "ProducerIdsUnavailableError"]

# (size) -> (first id, last id), both inclusive
BlockClaim = Callable[[int], Awaitable[tuple[int, int]]]


class ProducerIdsUnavailableError(RuntimeError):
    """No id is left in the current block and a new one has not been claimed from the cluster yet."""


class ProducerIdManager:
    def __init__(self, data_dir: Path, claim_block: BlockClaim | None = None) -> None:
        self._path = Path(data_dir) / FILE_NAME
        self._next = 0
        self._block_end = 0  # exclusive
        self.claim_block = claim_block
        self._claiming: asyncio.Lock | None = None

    # --- the single-node file ------------------------------------------------------------------------
    def _read_next_block(self) -> int:
        try:
            return int(self._path.read_text().strip() or 0)
        except (FileNotFoundError, ValueError):
            return 0

    def _reserve_local_block(self) -> None:
        start = self._read_next_block()
        self._path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self._path.with_suffix(".tmp")
        with open(tmp, "w") as fh:
            fh.write(str(start + BLOCK_SIZE))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self._path)
        self._next, self._block_end = start, start + BLOCK_SIZE

    # --- allocation ----------------------------------------------------------------------------------
    @property
    def available(self) -> int:
        """Ids left in the current block."""
        return self._block_end - self._next

    async def ensure_available(self) -> None:
        """Make sure `allocate()` has an id to give: claim the next block from the cluster if needed."""
        if self.available > 0 or self.claim_block is None:
            return
        if self._claiming is None:
            self._claiming = asyncio.Lock()
        async with self._claiming:
            if self.available > 0:
                return  # a concurrent caller claimed one meanwhile
            first, last = await self.claim_block(BLOCK_SIZE)
            self._next, self._block_end = first, last + 1

    def allocate(self) -> int:
        """A producer id never handed out before (by this data directory, or by any broker of the cluster)."""
        if self.available <= 0:
            if self.claim_block is not None:
                raise ProducerIdsUnavailableError("no producer id block claimed from the cluster yet")
            self._reserve_local_block()
        pid = self._next
        self._next += 1
        return pid

    async def allocate_async(self) -> int:
        await self.ensure_available()
        return self.allocate()
