"""Producer id allocation for InitProducerId (KIP-98) on a single node.

Kafka's controller hands out producer ids in blocks of 1000 and persists the next block, so ids are never
reused across restarts (a reused id would collide with producer state kept in the logs' snapshots). We do
the same with a small file in the data directory, written before any id of a new block is handed out.
"""

from __future__ import annotations

import os
from pathlib import Path

BLOCK_SIZE = 1000
FILE_NAME = "producer-id-block"

__all__ = ["BLOCK_SIZE", "ProducerIdManager"]


class ProducerIdManager:
    def __init__(self, data_dir: Path) -> None:
        self._path = Path(data_dir) / FILE_NAME
        self._next = 0
        self._block_end = 0

    def _read_next_block(self) -> int:
        try:
            return int(self._path.read_text().strip() or 0)
        except (FileNotFoundError, ValueError):
            return 0

    def _reserve_block(self) -> None:
        start = self._read_next_block()
        self._path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self._path.with_suffix(".tmp")
        with open(tmp, "w") as fh:
            fh.write(str(start + BLOCK_SIZE))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self._path)
        self._next, self._block_end = start, start + BLOCK_SIZE

    def allocate(self) -> int:
        """A producer id never handed out before by this data directory."""
        if self._next >= self._block_end:
            self._reserve_block()
        pid = self._next
        self._next += 1
        return pid
