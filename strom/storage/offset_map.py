"""The log cleaner's key -> latest offset map (Kafka's SkimpyOffsetMap), bounded like Kafka's.

Kafka sizes the map from log.cleaner.dedupe.buffer.size (shared by log.cleaner.threads) at 24 bytes an
entry (a 16-byte MD5 of the key and an 8-byte offset) filled to a 0.9 load factor; when the map is full
the cleaner stops its dirty scan there and cleans the rest in a later pass. We keep the same entry budget
so the same settings clean the same number of keys per pass, but store the keys themselves (a dict), so
there are no hash collisions to reason about.
"""

from __future__ import annotations

ENTRY_BYTES = 24
LOAD_FACTOR = 0.9


class OffsetMap:
    """The latest offset of every key seen so far in the dirty part of one log."""

    def __init__(self, memory_bytes: int, load_factor: float = LOAD_FACTOR) -> None:
        self.capacity = max(1, int(memory_bytes // ENTRY_BYTES * load_factor))
        self._offsets: dict[bytes, int] = {}
        self.latest_offset = -1

    def put(self, key: bytes, offset: int) -> None:
        self._offsets[key] = offset
        if offset > self.latest_offset:
            self.latest_offset = offset

    def get(self, key: bytes) -> int:
        """The latest offset of `key`, or -1 if the map has not seen it."""
        return self._offsets.get(key, -1)

    def room_for(self, count: int) -> bool:
        """Whether `count` more distinct keys still fit."""
        return len(self._offsets) + count <= self.capacity

    def clear(self) -> None:
        self._offsets.clear()
        self.latest_offset = -1

    def __len__(self) -> int:
        return len(self._offsets)
