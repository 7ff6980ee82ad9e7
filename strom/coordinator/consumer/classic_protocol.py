"""The classic consumer's embedded protocol (Kafka's ConsumerProtocol), as far as a consumer group that
holds classic members reads and writes it (KIP-848's online migration).

- ConsumerProtocolSubscription, the metadata a classic member sends with each JoinGroup protocol:
  v0 topics and user data, v1+ owned partitions, v2+ generation id, v3+ rack id.
- ConsumerProtocolAssignment, what SyncGroup hands back: topics and partitions, user data. It is written at
  the version of the member's subscription (at most 3), as Kafka's prepareAssignment does.

Both use the non-flexible encoding: int16 version, int32 array lengths, int16 string lengths.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from strom.protocol.errors import CorruptRecordError

_I16 = struct.Struct(">h")
_I32 = struct.Struct(">i")
MAX_ASSIGNMENT_VERSION = 3


@dataclass(frozen=True, slots=True)
class Subscription:
    version: int
    topics: tuple[str, ...]
    owned: dict[str, frozenset[int]] = field(default_factory=dict)
    generation_id: int = -1
    rack_id: str | None = None


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise CorruptRecordError("truncated ConsumerProtocol data")
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def i16(self) -> int:
        return int(_I16.unpack(self.take(2))[0])

    def i32(self) -> int:
        return int(_I32.unpack(self.take(4))[0])

    def nstr(self) -> str | None:
        n = self.i16()
        return None if n < 0 else self.take(n).decode()

    def str(self) -> str:
        return self.nstr() or ""

    def count(self) -> int:
        return max(self.i32(), 0)

    def done(self) -> bool:
        return self.pos >= len(self.data)


def decode_subscription(data: bytes) -> Subscription:
    """Raises CorruptRecordError when the metadata is not a ConsumerProtocolSubscription."""
    r = _Reader(bytes(data))
    try:
        version = r.i16()
        topics = tuple(r.str() for _ in range(r.count()))
        n = r.i32()
        if n > 0:
            r.take(n)  # user data
        owned: dict[str, frozenset[int]] = {}
        generation, rack = -1, None
        # later versions add fields at the end; a reader may stop wherever the data does
        if version >= 1 and not r.done():
            for _ in range(r.count()):
                topic = r.str()
                owned[topic] = frozenset(r.i32() for _ in range(r.count()))
        if version >= 2 and not r.done():
            generation = r.i32()
        if version >= 3 and not r.done():
            rack = r.nstr()
    except UnicodeDecodeError as exc:
        raise CorruptRecordError(f"bad ConsumerProtocolSubscription: {exc}") from None
    return Subscription(version, topics, owned, generation, rack)


def subscription_version(data: bytes) -> int:
    return int(_I16.unpack(bytes(data[:2]))[0]) if len(data) >= 2 else 0


def _string(value: str) -> bytes:
    raw = value.encode()
    return _I16.pack(len(raw)) + raw


def encode_assignment(assignment: list[tuple[str, list[int]]], version: int) -> bytes:
    """A ConsumerProtocolAssignment of (topic, partitions), no user data."""
    out = bytearray(_I16.pack(min(max(version, 0), MAX_ASSIGNMENT_VERSION)))
    out += _I32.pack(len(assignment))
    for topic, parts in assignment:
        out += _string(topic) + _I32.pack(len(parts)) + b"".join(_I32.pack(p) for p in parts)
    out += _I32.pack(-1)
    return bytes(out)


def decode_assignment(data: bytes) -> dict[str, frozenset[int]]:
    """Topic -> partitions of a ConsumerProtocolAssignment; empty for empty data."""
    if not data:
        return {}
    r = _Reader(bytes(data))
    try:
        r.i16()
        out: dict[str, frozenset[int]] = {}
        for _ in range(r.count()):
            topic = r.str()
            out[topic] = out.get(topic, frozenset()) | frozenset(r.i32() for _ in range(r.count()))
    except UnicodeDecodeError as exc:
        raise CorruptRecordError(f"bad ConsumerProtocolAssignment: {exc}") from None
    return out
