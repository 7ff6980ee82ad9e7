"""Kafka's sparse offset index (`<base offset>.index`).

Each 8-byte big-endian entry is (offset relative to the segment's base offset: int32, file position of a
batch in the .log: int32). An entry is added for a batch when more than index.interval.bytes of log have
been written since the previous entry; it maps the batch's last offset to the batch's start position,
as Kafka's LogSegment does, so `lookup(o)` (the greatest entry with offset <= o) gives a position at or
before the batch holding `o`, and a reader scans at most about one interval from there.
"""

from __future__ import annotations

import bisect
import struct
import sys
from array import array
from pathlib import Path

from strom.storage.index import CorruptIndexError, IndexFile

_ENTRY = struct.Struct(">ii")


def _ints(raw: bytes) -> array:
    values = array("i")
    values.frombytes(raw)
    if sys.byteorder == "little":
        values.byteswap()
    return values


class OffsetIndex(IndexFile):
    """The offset index of one segment. `lookup` is a binary search over the in-memory entries."""

    entry_size = 8

    def __init__(self, path: Path, base_offset: int, max_index_size: int) -> None:
        super().__init__(path, base_offset, max_index_size)
        self._offsets = array("i")  # relative offsets
        self._positions = array("i")

    def load(self) -> bool:
        """Read the entries from the file and sanity-check them (CorruptIndexError if they fail).
        Returns whether the file exists; a missing one loads as empty."""
        raw = self.read_raw()
        if raw is None:
            self._offsets = array("i")
            self._positions = array("i")
            return False
        if len(raw) % self.entry_size:
            raise CorruptIndexError(f"{self.path}: length {len(raw)} is not a multiple of 8")
        values = _ints(raw)
        offsets = values[0::2]
        positions = values[1::2]
        for i in range(1, len(offsets)):
            if offsets[i] <= offsets[i - 1] or positions[i] < positions[i - 1]:
                raise CorruptIndexError(f"{self.path}: entry {i} is out of order")
        if offsets and (offsets[0] < 0 or positions[0] < 0):
            raise CorruptIndexError(f"{self.path}: negative first entry")
        self._offsets = offsets
        self._positions = positions
        return True

    @property
    def entries(self) -> int:
        return len(self._offsets)

    @property
    def is_full(self) -> bool:
        return len(self._offsets) >= self.max_entries

    @property
    def last_entry(self) -> tuple[int, int]:
        if not self._offsets:
            return self.base_offset, 0
        return self.base_offset + self._offsets[-1], self._positions[-1]

    def entry(self, i: int) -> tuple[int, int]:
        return self.base_offset + self._offsets[i], self._positions[i]

    def append(self, offset: int, position: int) -> None:
        """Add an entry; offsets must grow. The file must have room (callers roll on `is_full`)."""
        relative = offset - self.base_offset
        if self._offsets and relative <= self._offsets[-1]:
            return
        if self.is_full:
            return
        self.write_entry(len(self._offsets), _ENTRY.pack(relative, position))
        self._offsets.append(relative)
        self._positions.append(position)

    def lookup(self, offset: int) -> tuple[int, int]:
        """(offset, position) of the greatest entry with offset <= `offset`, or (base offset, 0)."""
        i = bisect.bisect_right(self._offsets, offset - self.base_offset) - 1
        if i < 0:
            return self.base_offset, 0
        return self.base_offset + self._offsets[i], self._positions[i]

    def lookup_span(self, offset: int) -> tuple[int, int]:
        """(position of `lookup(offset)`, position of the entry after it or -1 if none).

        The batch holding `offset` starts in [first, second] when second >= 0: the later entry's batch
        has a last offset > `offset`, so a reader needs the headers of at most that span."""
        i = bisect.bisect_right(self._offsets, offset - self.base_offset) - 1
        start = self._positions[i] if i >= 0 else 0
        following = self._positions[i + 1] if i + 1 < len(self._positions) else -1
        return start, following

    def lookup_position(self, position: int) -> tuple[int, int]:
        """(offset, position) of the greatest entry whose position is <= `position`, or (base, 0)."""
        i = bisect.bisect_right(self._positions, position) - 1
        if i < 0:
            return self.base_offset, 0
        return self.base_offset + self._offsets[i], self._positions[i]

    def truncate_to(self, offset: int) -> None:
        """Drop entries with offset >= `offset` (Kafka's OffsetIndex.truncateTo)."""
        keep = bisect.bisect_left(self._offsets, offset - self.base_offset)
        self._truncate_entries(keep)

    def _truncate_entries(self, keep: int) -> None:
        if keep >= len(self._offsets):
            return
        del self._offsets[keep:]
        del self._positions[keep:]
        if not self._preallocated:
            self.cut(keep)

    def clear(self) -> None:
        self._offsets = array("i")
        self._positions = array("i")
        self.reset()

    def trim_to_entries(self, *, create: bool = False) -> None:
        self.trim(len(self._offsets), create=create)
