"""Common machinery of Kafka's fixed-width index files (.index and .timeindex).

Like Kafka's AbstractIndex: an index file is preallocated (sparse ftruncate) to the configured maximum
size rounded down to a whole entry, entries are appended in place, and the file is trimmed to the
entries written when its segment rolls or the log closes. A file opened for a rolled segment is trusted
to its length; for the active segment trailing zero entries (preallocated space of an unclean stop) are
dropped. Entries are kept in memory as arrays so lookups are binary searches (O(log n)).

Not thread-safe: one segment owns its indexes.
"""

from __future__ import annotations

import os
from pathlib import Path


class CorruptIndexError(Exception):
    """An index file does not pass its sanity check; the segment rebuilds it from the log."""


class IndexFile:
    """An index file of `entry_size`-byte entries written with os.pwrite (no shared file position)."""

    entry_size: int = 8

    def __init__(self, path: Path, base_offset: int, max_index_size: int) -> None:
        self.path = path
        self.base_offset = base_offset
        self.max_entries = max(1, max_index_size // self.entry_size)
        self.existed = path.exists()
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        self._preallocated = False

    # file size management ------------------------------------------------------------------
    def read_raw(self) -> bytes:
        size = os.fstat(self._fd).st_size
        return os.pread(self._fd, size, 0) if size else b""

    def preallocate(self) -> None:
        """Grow the file (sparsely) to its maximum size so appends never extend it."""
        target = self.max_entries * self.entry_size
        if os.fstat(self._fd).st_size < target:
            os.ftruncate(self._fd, target)
        self._preallocated = True

    def trim(self, entries: int) -> None:
        """Cut the file to exactly the written entries (on roll and close)."""
        os.ftruncate(self._fd, entries * self.entry_size)
        self._preallocated = False

    def write_entry(self, index: int, data: bytes) -> None:
        os.pwrite(self._fd, data, index * self.entry_size)

    def reset(self) -> None:
        os.ftruncate(self._fd, 0)

    def flush(self) -> None:
        os.fsync(self._fd)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def rename(self, path: Path) -> None:
        os.replace(self.path, path)
        self.path = path

    @property
    def closed(self) -> bool:
        return self._fd < 0
