"""Common machinery of Kafka's fixed-width index files (.index and .timeindex).

Like Kafka's AbstractIndex: the active segment's index file is preallocated (sparse ftruncate) to the
configured maximum size rounded down to a whole entry, entries are appended in place, and the file is
trimmed to the entries written when its segment rolls or the log closes. A file opened for a rolled
segment is trusted to its length; for the active segment trailing zero entries (preallocated space of an
unclean stop) fail the sanity check and the segment is rebuilt. Entries are kept in memory as arrays so
lookups are binary searches (O(log n)) that never touch the file.

Lazy, like Kafka's LazyIndex: constructing an index opens nothing. The file is created (and, for the
active segment, preallocated) on the first write that needs it: the first entry, or `trim(create=True)`
when its segment becomes inactive. Loading reads the file with a short-lived descriptor, so the indexes of
old segments hold no descriptor until they are truncated or trimmed. A missing file reads as an empty
index; renaming, trimming, flushing and closing one that was never created do nothing. Creating thousands
of partitions therefore creates no index files at all (file creation was about 40% of it).

Not thread-safe: one segment owns its indexes.
"""

from __future__ import annotations

import os
from pathlib import Path

# `IndexFile._length` when the file is known not to exist; None means not looked at yet
_MISSING = -1


class CorruptIndexError(Exception):
    """An index file does not pass its sanity check; the segment rebuilds it from the log."""


class IndexFile:
    """An index file of `entry_size`-byte entries written with os.pwrite (no shared file position)."""

    entry_size: int = 8

    def __init__(self, path: Path, base_offset: int, max_index_size: int) -> None:
        self.path = path
        self.base_offset = base_offset
        self.max_entries = max(1, max_index_size // self.entry_size)
        self._fd = -1  # opened on the first write (Kafka's LazyIndex.get)
        self._closed = False
        # the file's length as last seen or set by us: saves a syscall on every trim of an exact file
        self._length: int | None = None
        self._want_preallocated = False  # active segment: grow the file to its maximum once it is open
        self._preallocated = False
        self._write_ready = False  # open and, if wanted, preallocated: write_entry can pwrite at once

    # file size management ------------------------------------------------------------------
    def read_raw(self) -> bytes | None:
        """The file's bytes, or None when it does not exist (a lazily created index never written)."""
        if self._fd >= 0:
            size = self._length = os.fstat(self._fd).st_size
            return os.pread(self._fd, size, 0) if size else b""
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except FileNotFoundError:
            self._length = _MISSING
            return None
        try:
            size = os.fstat(fd).st_size
            raw = os.pread(fd, size, 0) if size else b""
        finally:
            os.close(fd)
        self._length = size
        return raw

    def _open(self, *, create: bool = True) -> int:
        """Open (creating if `create`) the file for writing; -1 when it is missing and not created."""
        if self._closed:
            raise ValueError(f"index {self.path} is closed")
        try:
            fd = os.open(self.path, os.O_RDWR | (os.O_CREAT if create else 0), 0o644)
        except FileNotFoundError:
            if create:
                raise
            self._length = _MISSING
            return -1
        self._fd = fd
        if self._length is None or self._length == _MISSING:
            self._length = os.fstat(fd).st_size
        return fd

    def _ready_for_write(self) -> int:
        """Open (creating) the file and apply a deferred preallocation; the slow path of write_entry."""
        fd = self._fd if self._fd >= 0 else self._open()
        if self._want_preallocated and not self._preallocated:
            self._grow(fd)
        self._write_ready = True
        return fd

    def _grow(self, fd: int) -> None:
        target = self.max_entries * self.entry_size
        if self._length is None or self._length < target:
            os.ftruncate(fd, target)
            self._length = target
        self._preallocated = True

    def preallocate(self) -> None:
        """Grow the file (sparsely) to its maximum size so appends never extend it: now if it is open,
        else when the first entry creates or opens it."""
        self._want_preallocated = True
        if self._fd >= 0:
            self._grow(self._fd)
        else:
            self._write_ready = False

    def trim(self, entries: int, *, create: bool = False) -> None:
        """Cut the file to exactly the written entries (on roll and close); `create` makes the file even
        when no entry was ever written (Kafka's onBecomeInactiveSegment loads, so creates, the index)."""
        self._want_preallocated = False
        self._preallocated = False
        self.cut(entries, create=create)
        self._write_ready = self._fd >= 0

    def cut(self, entries: int, *, create: bool = False) -> None:
        """Set the file's length to `entries` entries (no syscall when it has that length already)."""
        size = entries * self.entry_size
        if self._length == size or (self._length == _MISSING and not create):
            return
        fd = self._fd if self._fd >= 0 else self._open(create=create or entries > 0)
        if fd >= 0 and self._length != size:
            os.ftruncate(fd, size)
            self._length = size

    def create(self) -> None:
        """Create the file now if it is not open (preallocated if this is the active segment's)."""
        if not self._write_ready:
            self._ready_for_write()

    def write_entry(self, index: int, data: bytes) -> None:
        # one flag test per entry: false only before the first write or after a trim/cut
        fd = self._fd if self._write_ready else self._ready_for_write()
        os.pwrite(fd, data, index * self.entry_size)
        end = (index + 1) * self.entry_size
        if self._length is None or end > self._length:
            self._length = end

    def reset(self) -> None:
        """Empty the file if it exists (a missing one stays missing: it already reads as empty)."""
        if self._length == _MISSING:
            return
        fd = self._fd if self._fd >= 0 else self._open(create=False)
        if fd >= 0 and self._length != 0:
            os.ftruncate(fd, 0)
            self._length = 0
        self._preallocated = False
        self._write_ready = False  # the next entry preallocates again if this is the active segment

    def flush(self) -> None:
        if self._fd >= 0:  # a file never opened for writing has nothing of ours to sync
            os.fsync(self._fd)

    def close(self) -> None:
        self._closed = True
        self._write_ready = False
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def rename(self, path: Path) -> bool:
        """Rename the file if it exists (Kafka's LazyIndex.renameTo); later writes use `path` either
        way. Returns whether a file was renamed."""
        moved = False
        if self._length != _MISSING:
            try:
                os.replace(self.path, path)
                moved = True
            except FileNotFoundError:
                self._length = _MISSING
        self.path = path
        return moved

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def created(self) -> bool:
        """Whether the file is known to exist (it was read, opened or written)."""
        return self._fd >= 0 or (self._length is not None and self._length != _MISSING)
