"""Kafka's record schemas for the __consumer_offsets topic, and the group -> partition rule.

Keys and values are written exactly as Apache Kafka writes them (``OffsetCommitKey`` v1,
``OffsetCommitValue`` v3, ``GroupMetadataKey`` v2, ``GroupMetadataValue`` v3), so the topic reads like
Kafka's with its own tools; reading accepts OffsetCommitValue v0-v3 and GroupMetadataValue v0-v4
(v4 is the flexible encoding). A record with a null value is a tombstone (offset or group deleted).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from strom.protocol.errors import CorruptRecordError

OFFSET_KEY_VERSION = 1
GROUP_KEY_VERSION = 2
OFFSET_VALUE_VERSION = 3
GROUP_VALUE_VERSION = 3

_I16 = struct.Struct(">h")
_I32 = struct.Struct(">i")
_I64 = struct.Struct(">q")


def java_string_hash(value: str) -> int:
    """Java's ``String.hashCode`` (over UTF-16 code units), as a signed 32-bit int."""
    h = 0
    data = value.encode("utf-16-be")
    for i in range(0, len(data), 2):
        h = (31 * h + ((data[i] << 8) | data[i + 1])) & 0xFFFFFFFF
    return h - (1 << 32) if h & 0x80000000 else h


def partition_for(group_id: str, num_partitions: int) -> int:
    """Kafka's ``Utils.abs(groupId.hashCode) % groupMetadataTopicPartitionCount``; Utils.abs maps
    Integer.MIN_VALUE to 0."""
    h = java_string_hash(group_id)
    return (0 if h == -(2**31) else abs(h)) % num_partitions


@dataclass(frozen=True, slots=True)
class OffsetKey:
    group: str
    topic: str
    partition: int


@dataclass(frozen=True, slots=True)
class GroupKey:
    group: str


@dataclass(frozen=True, slots=True)
class OffsetValue:
    offset: int
    leader_epoch: int
    metadata: str
    commit_timestamp: int
    expire_timestamp: int = -1


@dataclass(frozen=True, slots=True)
class MemberValue:
    member_id: str
    group_instance_id: str | None
    client_id: str
    client_host: str
    rebalance_timeout: int
    session_timeout: int
    subscription: bytes
    assignment: bytes


@dataclass(frozen=True, slots=True)
class GroupValue:
    protocol_type: str
    generation: int
    protocol: str | None
    leader: str | None
    current_state_timestamp: int
    members: list[MemberValue] = field(default_factory=list)


# --- writing -------------------------------------------------------------------------------------------


def _str(value: str) -> bytes:
    raw = value.encode()
    return _I16.pack(len(raw)) + raw


def _nstr(value: str | None) -> bytes:
    return _I16.pack(-1) if value is None else _str(value)


def _bytes(value: bytes) -> bytes:
    return _I32.pack(len(value)) + value


def encode_offset_key(group: str, topic: str, partition: int) -> bytes:
    return _I16.pack(OFFSET_KEY_VERSION) + _str(group) + _str(topic) + _I32.pack(partition)


def encode_group_key(group: str) -> bytes:
    return _I16.pack(GROUP_KEY_VERSION) + _str(group)


def encode_offset_value(value: OffsetValue) -> bytes:
    return b"".join(
        (
            _I16.pack(OFFSET_VALUE_VERSION),
            _I64.pack(value.offset),
            _I32.pack(value.leader_epoch),
            _str(value.metadata),
            _I64.pack(value.commit_timestamp),
        )
    )


def encode_group_value(value: GroupValue) -> bytes:
    parts = [
        _I16.pack(GROUP_VALUE_VERSION),
        _str(value.protocol_type),
        _I32.pack(value.generation),
        _nstr(value.protocol),
        _nstr(value.leader),
        _I64.pack(value.current_state_timestamp),
        _I32.pack(len(value.members)),
    ]
    for m in value.members:
        parts += [
            _str(m.member_id),
            _nstr(m.group_instance_id),
            _str(m.client_id),
            _str(m.client_host),
            _I32.pack(m.rebalance_timeout),
            _I32.pack(m.session_timeout),
            _bytes(m.subscription),
            _bytes(m.assignment),
        ]
    return b"".join(parts)


# --- reading -------------------------------------------------------------------------------------------


class _Reader:
    """Cursor over one key or value; `flexible` switches to compact lengths (KIP-482)."""

    __slots__ = ("buf", "flexible", "pos")

    def __init__(self, buf: bytes | memoryview, flexible: bool = False) -> None:
        self.buf = bytes(buf)
        self.pos = 0
        self.flexible = flexible

    def _take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.buf):
            raise CorruptRecordError("truncated __consumer_offsets record")
        out = self.buf[self.pos : self.pos + n]
        self.pos += n
        return out

    def i16(self) -> int:
        return int(_I16.unpack(self._take(2))[0])

    def i32(self) -> int:
        return int(_I32.unpack(self._take(4))[0])

    def i64(self) -> int:
        return int(_I64.unpack(self._take(8))[0])

    def uvarint(self) -> int:
        shift = result = 0
        while True:
            b = self._take(1)[0]
            result |= (b & 0x7F) << shift
            if not b & 0x80:
                return result
            shift += 7

    def nstr(self) -> str | None:
        n = self.uvarint() - 1 if self.flexible else self.i16()
        return None if n < 0 else self._take(n).decode()

    def str(self) -> str:
        return self.nstr() or ""

    def bytes(self) -> bytes:
        n = self.uvarint() - 1 if self.flexible else self.i32()
        return b"" if n < 0 else self._take(n)

    def array_len(self) -> int:
        return self.uvarint() - 1 if self.flexible else self.i32()

    def skip_tags(self) -> None:
        if self.flexible:
            for _ in range(self.uvarint()):
                self.uvarint()
                self._take(self.uvarint())


def decode_key(key: bytes | memoryview) -> OffsetKey | GroupKey | None:
    """Decode a record key; None for key versions this coordinator does not own (e.g. share groups)."""
    r = _Reader(key)
    version = r.i16()
    if version in (0, 1):
        return OffsetKey(r.str(), r.str(), r.i32())
    if version == 2:
        return GroupKey(r.str())
    return None


def decode_offset_value(value: bytes | memoryview) -> OffsetValue:
    r = _Reader(value)
    version = r.i16()
    if version > 4:
        raise CorruptRecordError(f"unknown OffsetCommitValue version {version}")
    r.flexible = version >= 4
    offset = r.i64()
    leader_epoch = r.i32() if version >= 3 else -1
    metadata = r.str()
    commit_ts = r.i64()
    expire_ts = r.i64() if version == 1 else -1
    return OffsetValue(offset, leader_epoch, metadata, commit_ts, expire_ts)


def decode_group_value(value: bytes | memoryview) -> GroupValue:
    r = _Reader(value)
    version = r.i16()
    if version > 4:
        raise CorruptRecordError(f"unknown GroupMetadataValue version {version}")
    r.flexible = version >= 4
    protocol_type = r.str()
    generation = r.i32()
    protocol = r.nstr()
    leader = r.nstr()
    state_ts = r.i64() if version >= 2 else -1
    members = []
    for _ in range(max(r.array_len(), 0)):
        member_id = r.str()
        instance_id = r.nstr() if version >= 3 else None
        client_id = r.str()
        client_host = r.str()
        rebalance_timeout = r.i32() if version >= 1 else -1
        session_timeout = r.i32()
        subscription = r.bytes()
        assignment = r.bytes()
        r.skip_tags()
        if rebalance_timeout < 0:
            rebalance_timeout = session_timeout
        members.append(
            MemberValue(
                member_id,
                instance_id,
                client_id,
                client_host,
                rebalance_timeout,
                session_timeout,
                subscription,
                assignment,
            )
        )
    r.skip_tags()
    return GroupValue(protocol_type, generation, protocol, leader, state_ts, members)


def subscribed_topics(subscription: bytes) -> set[str] | None:
    """Topics of a ConsumerProtocolSubscription (any version); None if it does not parse."""
    try:
        r = _Reader(subscription)
        r.i16()
        n = r.i32()
        if n < 0 or n > len(subscription):
            return None
        return {r.str() for _ in range(n)}
    except (CorruptRecordError, UnicodeDecodeError):
        return None
