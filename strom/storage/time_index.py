"""Kafka's time index (`<base offset>.timeindex`).

Each 12-byte big-endian entry is (timestamp: int64, offset relative to the segment base: int32). An entry
is added only when the segment's max timestamp grows, at the same points as offset index entries, plus a
final one when the segment rolls or closes, so the last entry always holds the segment's largest
timestamp (Kafka's TimeIndex.maybeAppend). Like Kafka, the index counts as full one entry early so that
final entry always fits.
"""

from __future__ import annotations

import bisect
import struct
from array import array
from pathlib import Path

from strom.storage.index import CorruptIndexError, IndexFile

_ENTRY = struct.Struct(">qi")


class TimeIndex(IndexFile):
    """The time index of one segment; lookups are binary searches over in-memory arrays."""

    entry_size = 12

    def __init__(self, path: Path, base_offset: int, max_index_size: int) -> None:
        super().__init__(path, base_offset, max_index_size)
        self._timestamps: list[int] = []
        self._offsets = array("i")

    def load(self) -> bool:
        """Read and sanity-check the entries; returns whether the file exists (missing: empty)."""
        raw = self.read_raw()
        if raw is None:
            self._timestamps = []
            self._offsets = array("i")
            return False
        if len(raw) % self.entry_size:
            raise CorruptIndexError(f"{self.path}: length {len(raw)} is not a multiple of 12")
        timestamps: list[int] = []
        offsets = array("i")
        for ts, rel in _ENTRY.iter_unpack(raw):
            if timestamps and (ts <= timestamps[-1] or rel < offsets[-1]):
                raise CorruptIndexError(f"{self.path}: entry {len(timestamps)} is out of order")
            if rel < 0:
                raise CorruptIndexError(f"{self.path}: negative relative offset")
            timestamps.append(ts)
            offsets.append(rel)
        self._timestamps = timestamps
        self._offsets = offsets
        return True

    @property
    def entries(self) -> int:
        return len(self._timestamps)

    @property
    def is_full(self) -> bool:
        return len(self._timestamps) >= self.max_entries - 1

    @property
    def last_entry(self) -> tuple[int, int]:
        """(timestamp, offset) of the last entry, or (-1, base offset) when empty."""
        if not self._timestamps:
            return -1, self.base_offset
        return self._timestamps[-1], self.base_offset + self._offsets[-1]

    def entry(self, i: int) -> tuple[int, int]:
        return self._timestamps[i], self.base_offset + self._offsets[i]

    def maybe_append(self, timestamp: int, offset: int, *, final: bool = False) -> None:
        """Add (timestamp, offset) if the timestamp is above the last entry's; `final` may use the
        reserved last slot."""
        if self._timestamps and timestamp <= self._timestamps[-1]:
            return
        if timestamp < 0:
            return
        if len(self._timestamps) >= self.max_entries or (self.is_full and not final):
            return
        relative = offset - self.base_offset
        self.write_entry(len(self._timestamps), _ENTRY.pack(timestamp, relative))
        self._timestamps.append(timestamp)
        self._offsets.append(relative)

    def lookup(self, timestamp: int) -> tuple[int, int]:
        """(timestamp, offset) of the greatest entry with timestamp <= `timestamp`, or (-1, base)."""
        i = bisect.bisect_right(self._timestamps, timestamp) - 1
        if i < 0:
            return -1, self.base_offset
        return self._timestamps[i], self.base_offset + self._offsets[i]

    def truncate_to(self, offset: int) -> None:
        """Drop entries with offset >= `offset`."""
        keep = bisect.bisect_left(self._offsets, offset - self.base_offset)
        if keep >= len(self._timestamps):
            return
        del self._timestamps[keep:]
        del self._offsets[keep:]
        if not self._preallocated:
            self.cut(keep)

    def clear(self) -> None:
        self._timestamps = []
        self._offsets = array("i")
        self.reset()

    def trim_to_entries(self, *, create: bool = False) -> None:
        self.trim(len(self._timestamps), create=create)
