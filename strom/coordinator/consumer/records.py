"""Kafka's __consumer_offsets records for consumer groups (KIP-848), written as Kafka 4.4 writes them.

A record key starts with an int16 that is the record type (Kafka's CoordinatorRecordType), followed by the
key fields in the non-flexible encoding; a value starts with an int16 version (0 for every type here)
followed by the flexible encoding (compact strings and arrays, tagged fields; KIP-482). Types:

    3  ConsumerGroupMetadata              (group)            epoch; tag 0 metadata_hash (KIP-1101)
    4  ConsumerGroupPartitionMetadata     (group)            read only: Kafka 4.1+ replaced it by the
                                                             metadata hash and only writes its tombstone
    5  ConsumerGroupMemberMetadata        (group, member)    the member's subscription; tag 0 a classic
                                                             member's session timeout and JoinGroup protocols
    6  ConsumerGroupTargetAssignmentMetadata (group)         assignment epoch; tag 0 assignment_timestamp
    7  ConsumerGroupTargetAssignmentMember   (group, member) the member's target partitions
    8  ConsumerGroupCurrentMemberAssignment  (group, member) member epoch, state, assigned and pending
                                                             revocation partitions; tag 0 of each topic
                                                             the assignment epochs (KIP-1251)
    16 ConsumerGroupRegularExpression     (group, regex)     the topics a regex resolved to

A null value is a tombstone. Decoding skips unknown tagged fields, so records of newer Kafka versions
with extra tags still load.
"""

from __future__ import annotations

import struct
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field

from strom.protocol.errors import CorruptRecordError
from strom.protocol.wire import EMPTY_TAGS, array_len, nullable_string, string, uvarint

GROUP_METADATA = 3
PARTITION_METADATA = 4
MEMBER_METADATA = 5
TARGET_ASSIGNMENT_METADATA = 6
TARGET_ASSIGNMENT_MEMBER = 7
CURRENT_MEMBER_ASSIGNMENT = 8
REGULAR_EXPRESSION = 16
CONSUMER_RECORD_TYPES = frozenset(
    {
        GROUP_METADATA,
        PARTITION_METADATA,
        MEMBER_METADATA,
        TARGET_ASSIGNMENT_METADATA,
        TARGET_ASSIGNMENT_MEMBER,
        CURRENT_MEMBER_ASSIGNMENT,
        REGULAR_EXPRESSION,
    }
)
_GROUP_KEYS = frozenset({GROUP_METADATA, PARTITION_METADATA, TARGET_ASSIGNMENT_METADATA})
_MEMBER_KEYS = frozenset({MEMBER_METADATA, TARGET_ASSIGNMENT_MEMBER, CURRENT_MEMBER_ASSIGNMENT})

_I8 = struct.Struct(">b")
_I16 = struct.Struct(">h")
_I32 = struct.Struct(">i")
_I64 = struct.Struct(">q")

# topic id -> partition -> the epoch at which the partition was assigned
EpochAssignment = dict[uuid.UUID, dict[int, int]]
# topic id -> partitions
Partitions = dict[uuid.UUID, frozenset[int]]


@dataclass(frozen=True, slots=True)
class ConsumerKey:
    """A consumer-group record key: `sub` is the member id, the regex, or "" for group-level types."""

    type: int
    group: str
    sub: str = ""


@dataclass(frozen=True, slots=True)
class GroupMetadataValue:
    epoch: int
    metadata_hash: int = 0


@dataclass(frozen=True, slots=True)
class MemberMetadataValue:
    instance_id: str | None
    rack_id: str | None
    client_id: str
    client_host: str
    subscribed_topic_names: tuple[str, ...]
    subscribed_topic_regex: str | None
    rebalance_timeout_ms: int
    server_assignor: str | None
    # tag 0: a member that joined with JoinGroup (KIP-848's online migration)
    classic: ClassicMemberMetadata | None = None


@dataclass(frozen=True, slots=True)
class ClassicMemberMetadata:
    """The session timeout and the JoinGroup protocols (name, metadata) of a classic member."""

    session_timeout_ms: int
    protocols: tuple[tuple[str, bytes], ...]


@dataclass(frozen=True, slots=True)
class TargetMetadataValue:
    assignment_epoch: int
    assignment_timestamp: int = 0


@dataclass(frozen=True, slots=True)
class CurrentAssignmentValue:
    member_epoch: int
    previous_member_epoch: int
    state: int
    assigned: EpochAssignment = field(default_factory=dict)
    pending_revocation: EpochAssignment = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RegexValue:
    topics: tuple[str, ...]
    version: int
    timestamp: int


# --- keys ----------------------------------------------------------------------------------------------


def _key_str(value: str) -> bytes:
    raw = value.encode()
    return _I16.pack(len(raw)) + raw


def encode_key(key: ConsumerKey) -> bytes:
    out = _I16.pack(key.type) + _key_str(key.group)
    if key.type not in _GROUP_KEYS:
        out += _key_str(key.sub)
    return out


def group_key(record_type: int, group: str) -> bytes:
    return encode_key(ConsumerKey(record_type, group))


def member_key(record_type: int, group: str, member_or_regex: str) -> bytes:
    return encode_key(ConsumerKey(record_type, group, member_or_regex))


def decode_key(key: bytes | memoryview) -> ConsumerKey | None:
    """The consumer-group key, or None for a record of another type (classic groups, share groups)."""
    r = _Reader(key)
    record_type = r.i16()
    if record_type not in CONSUMER_RECORD_TYPES:
        return None
    group = r.str16()
    sub = "" if record_type in _GROUP_KEYS else r.str16()
    return ConsumerKey(record_type, group, sub)


# --- values --------------------------------------------------------------------------------------------


def _tags(tags: dict[int, bytes]) -> bytes:
    if not tags:
        return EMPTY_TAGS
    out = bytearray(uvarint(len(tags)))
    for tag in sorted(tags):
        out += uvarint(tag) + uvarint(len(tags[tag])) + tags[tag]
    return bytes(out)


def _strings(values: Iterable[str]) -> bytes:
    items = list(values)
    return array_len(len(items), True) + b"".join(string(v, True) for v in items)


def _topic_partitions(assignment: EpochAssignment | Partitions, with_epochs: bool) -> bytes:
    out = bytearray(array_len(len(assignment), True))
    for topic_id in sorted(assignment, key=str):
        parts = assignment[topic_id]
        ordered = sorted(parts)
        out += topic_id.bytes + array_len(len(ordered), True) + b"".join(_I32.pack(p) for p in ordered)
        if with_epochs and isinstance(parts, dict):
            epochs = array_len(len(ordered), True) + b"".join(_I32.pack(parts[p]) for p in ordered)
            out += _tags({0: epochs})
        else:
            out += EMPTY_TAGS
    return bytes(out)


def encode_group_metadata(value: GroupMetadataValue) -> bytes:
    tags = {0: _I64.pack(value.metadata_hash)} if value.metadata_hash != 0 else {}
    return _I16.pack(0) + _I32.pack(value.epoch) + _tags(tags)


def encode_member_metadata(value: MemberMetadataValue) -> bytes:
    return b"".join(
        (
            _I16.pack(0),
            nullable_string(value.instance_id, True),
            nullable_string(value.rack_id, True),
            string(value.client_id, True),
            string(value.client_host, True),
            _strings(value.subscribed_topic_names),
            nullable_string(value.subscribed_topic_regex, True),
            _I32.pack(value.rebalance_timeout_ms),
            nullable_string(value.server_assignor, True),
            EMPTY_TAGS if value.classic is None else _tags({0: _encode_classic(value.classic)}),
        )
    )


def _encode_classic(classic: ClassicMemberMetadata) -> bytes:
    """The nullable struct of tag 0: int8 1 (present), the session timeout, the protocols, no tags."""
    out = bytearray(_I8.pack(1) + _I32.pack(classic.session_timeout_ms))
    out += array_len(len(classic.protocols), True)
    for name, metadata in classic.protocols:
        out += string(name, True) + uvarint(len(metadata) + 1) + metadata + EMPTY_TAGS
    return bytes(out + EMPTY_TAGS)


def _decode_classic(data: bytes) -> ClassicMemberMetadata | None:
    r = _Reader(data)
    if r.i8() < 0:
        return None
    session_timeout = r.i32()
    protocols = []
    for _ in range(r.count()):
        name = r.str()
        metadata = r.take(max(r.uvarint() - 1, 0))
        r.tags()
        protocols.append((name, bytes(metadata)))
    return ClassicMemberMetadata(session_timeout, tuple(protocols))


def encode_target_metadata(value: TargetMetadataValue) -> bytes:
    tags = {0: _I64.pack(value.assignment_timestamp)} if value.assignment_timestamp != 0 else {}
    return _I16.pack(0) + _I32.pack(value.assignment_epoch) + _tags(tags)


def encode_target_member(partitions: Partitions) -> bytes:
    return _I16.pack(0) + _topic_partitions(partitions, False) + EMPTY_TAGS


def encode_current_assignment(value: CurrentAssignmentValue) -> bytes:
    return b"".join(
        (
            _I16.pack(0),
            _I32.pack(value.member_epoch),
            _I32.pack(value.previous_member_epoch),
            _I8.pack(value.state),
            _topic_partitions(value.assigned, True),
            _topic_partitions(value.pending_revocation, True),
            EMPTY_TAGS,
        )
    )


def encode_regex(value: RegexValue) -> bytes:
    return (
        _I16.pack(0)
        + _strings(value.topics)
        + _I64.pack(value.version)
        + _I64.pack(value.timestamp)
        + EMPTY_TAGS
    )


# --- reading -------------------------------------------------------------------------------------------


class _Reader:
    __slots__ = ("buf", "pos")

    def __init__(self, buf: bytes | memoryview) -> None:
        self.buf = bytes(buf)
        self.pos = 0

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.buf):
            raise CorruptRecordError("truncated consumer group record")
        out = self.buf[self.pos : self.pos + n]
        self.pos += n
        return out

    def i8(self) -> int:
        return int(_I8.unpack(self.take(1))[0])

    def i16(self) -> int:
        return int(_I16.unpack(self.take(2))[0])

    def i32(self) -> int:
        return int(_I32.unpack(self.take(4))[0])

    def i64(self) -> int:
        return int(_I64.unpack(self.take(8))[0])

    def uvarint(self) -> int:
        shift = result = 0
        while True:
            b = self.take(1)[0]
            result |= (b & 0x7F) << shift
            if not b & 0x80:
                return result
            shift += 7

    def str16(self) -> str:
        n = self.i16()
        return "" if n < 0 else self.take(n).decode()

    def nstr(self) -> str | None:
        n = self.uvarint() - 1
        return None if n < 0 else self.take(n).decode()

    def str(self) -> str:
        return self.nstr() or ""

    def uuid(self) -> uuid.UUID:
        return uuid.UUID(bytes=self.take(16))

    def count(self) -> int:
        return max(self.uvarint() - 1, 0)

    def tags(self) -> dict[int, bytes]:
        out = {}
        for _ in range(self.uvarint()):
            tag = self.uvarint()
            out[tag] = self.take(self.uvarint())
        return out

    def version0(self, what: str) -> None:
        version = self.i16()
        if version != 0:
            raise CorruptRecordError(f"unknown {what} version {version}")


def decode_group_metadata(value: bytes | memoryview) -> GroupMetadataValue:
    r = _Reader(value)
    r.version0("ConsumerGroupMetadataValue")
    epoch = r.i32()
    tags = r.tags()
    metadata_hash = _I64.unpack(tags[0])[0] if 0 in tags else 0
    return GroupMetadataValue(epoch, metadata_hash)


def decode_member_metadata(value: bytes | memoryview) -> MemberMetadataValue:
    r = _Reader(value)
    r.version0("ConsumerGroupMemberMetadataValue")
    instance_id = r.nstr()
    rack_id = r.nstr()
    client_id = r.str()
    client_host = r.str()
    topics = tuple(r.str() for _ in range(r.count()))
    regex = r.nstr()
    rebalance_timeout = r.i32()
    assignor = r.nstr()
    tags = r.tags()  # tag 0: the classic protocol metadata of a member that joined with JoinGroup
    classic = _decode_classic(bytes(tags[0])) if 0 in tags else None
    return MemberMetadataValue(
        instance_id, rack_id, client_id, client_host, topics, regex, rebalance_timeout, assignor, classic
    )


def decode_target_metadata(value: bytes | memoryview) -> TargetMetadataValue:
    r = _Reader(value)
    r.version0("ConsumerGroupTargetAssignmentMetadataValue")
    epoch = r.i32()
    tags = r.tags()
    timestamp = _I64.unpack(tags[0])[0] if 0 in tags else 0
    return TargetMetadataValue(epoch, timestamp)


def _read_topic_partitions(r: _Reader, default_epoch: int) -> EpochAssignment:
    out: EpochAssignment = {}
    for _ in range(r.count()):
        topic_id = r.uuid()
        partitions = [r.i32() for _ in range(r.count())]
        tags = r.tags()
        epochs = [default_epoch] * len(partitions)
        if 0 in tags and tags[0] != b"\x00":
            t = _Reader(tags[0])
            read = [t.i32() for _ in range(t.count())]
            if len(read) == len(partitions):
                epochs = read
        out[topic_id] = dict(zip(partitions, epochs, strict=True))
    return out


def decode_target_member(value: bytes | memoryview) -> Partitions:
    r = _Reader(value)
    r.version0("ConsumerGroupTargetAssignmentMemberValue")
    return {t: frozenset(parts) for t, parts in _read_topic_partitions(r, 0).items()}


def decode_current_assignment(value: bytes | memoryview) -> CurrentAssignmentValue:
    r = _Reader(value)
    r.version0("ConsumerGroupCurrentMemberAssignmentValue")
    member_epoch = r.i32()
    previous = r.i32()
    state = r.i8()
    # records written before KIP-1251 carry no assignment epochs: the member epoch stands in for them
    assigned = _read_topic_partitions(r, member_epoch)
    pending = _read_topic_partitions(r, member_epoch)
    return CurrentAssignmentValue(member_epoch, previous, state, assigned, pending)


def decode_regex(value: bytes | memoryview) -> RegexValue:
    r = _Reader(value)
    r.version0("ConsumerGroupRegularExpressionValue")
    topics = tuple(r.str() for _ in range(r.count()))
    return RegexValue(topics, r.i64(), r.i64())
