"""The leader epoch cache of one partition and its `leader-epoch-checkpoint` file (KIP-101, KIP-279).

Entries are (epoch, start offset): the first offset written in that leader epoch, both strictly
increasing. The file is Kafka's LeaderEpochCheckpointFile: "0", the count, then "epoch startOffset"
lines, rewritten atomically on every change. `end_offset_for` answers OffsetForLeaderEpoch the way
Kafka's LeaderEpochFileCache.endOffsetFor does.
"""

from __future__ import annotations

import bisect
from pathlib import Path

from strom.protocol.errors import KafkaStorageError
from strom.storage.checkpoint import format_entries, parse_entries, write_atomically

LEADER_EPOCH_CHECKPOINT = "leader-epoch-checkpoint"
UNDEFINED_EPOCH = -1
UNDEFINED_OFFSET = -1


class LeaderEpochFileCache:
    """Epoch -> start offset entries of one partition, persisted on change. Not thread-safe."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._epochs: list[int] = []
        self._starts: list[int] = []
        if path is not None and path.exists():
            try:
                for epoch, start in parse_entries(path, 2):
                    self._epochs.append(int(epoch))
                    self._starts.append(int(start))
            except (KafkaStorageError, ValueError):
                # Kafka treats an unreadable checkpoint as a storage error; we start over and let the
                # log's batches re-establish the epochs (Log.open rebuilds from the batch headers).
                self._epochs, self._starts = [], []

    # queries ------------------------------------------------------------------------------------
    def entries(self) -> list[tuple[int, int]]:
        return list(zip(self._epochs, self._starts, strict=True))

    @property
    def latest_epoch(self) -> int:
        return self._epochs[-1] if self._epochs else UNDEFINED_EPOCH

    def epoch_for_offset(self, offset: int) -> int:
        """The epoch whose range holds `offset`, or -1."""
        i = bisect.bisect_right(self._starts, offset) - 1
        return self._epochs[i] if i >= 0 else UNDEFINED_EPOCH

    def end_offset_for(self, requested_epoch: int, log_end_offset: int) -> tuple[int, int]:
        """(epoch, end offset) for OffsetForLeaderEpoch: the start offset of the first epoch above the
        requested one, with the greatest known epoch <= requested; (-1, -1) when unknown."""
        if requested_epoch == UNDEFINED_EPOCH or not self._epochs:
            return UNDEFINED_EPOCH, UNDEFINED_OFFSET
        if requested_epoch == self._epochs[-1]:
            return requested_epoch, log_end_offset
        higher = bisect.bisect_right(self._epochs, requested_epoch)
        if higher >= len(self._epochs):
            return UNDEFINED_EPOCH, UNDEFINED_OFFSET
        floor = higher - 1
        if floor < 0:
            return requested_epoch, self._starts[higher]
        return self._epochs[floor], self._starts[higher]

    # changes ------------------------------------------------------------------------------------
    def assign(self, epoch: int, start_offset: int) -> bool:
        """Record that `epoch` starts at `start_offset`; returns True if the cache changed.

        Like Kafka: an epoch not above the latest is ignored, and entries an assignment would make
        inconsistent (start offset at or past the new one) are removed first."""
        if epoch < 0:
            return False
        if self._epochs and epoch <= self._epochs[-1]:
            return False
        while self._starts and self._starts[-1] >= start_offset:
            self._epochs.pop()
            self._starts.pop()
        self._epochs.append(epoch)
        self._starts.append(start_offset)
        self._persist()
        return True

    def truncate_from_end(self, end_offset: int) -> None:
        """Drop entries starting at or after `end_offset` (log truncated to `end_offset`)."""
        changed = False
        while self._starts and self._starts[-1] >= end_offset:
            self._epochs.pop()
            self._starts.pop()
            changed = True
        if changed:
            self._persist()

    def truncate_from_start(self, start_offset: int) -> None:
        """Drop entries wholly below `start_offset`, moving the one that holds it to start there."""
        i = bisect.bisect_right(self._starts, start_offset) - 1
        if i < 0 or (i == 0 and self._starts[0] == start_offset):
            return
        del self._epochs[:i]
        del self._starts[:i]
        self._starts[0] = start_offset
        self._persist()

    def clear(self) -> None:
        self._epochs, self._starts = [], []
        self._persist()

    def _persist(self) -> None:
        if self.path is not None:
            write_atomically(self.path, format_entries(self.entries()))
