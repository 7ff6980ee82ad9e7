"""Kafka's __consumer_offsets records for share groups (KIP-932), written as Kafka 4.4 writes them.

Keys: an int16 record type, then group_id (and member_id for member records) as int16-length strings.
Values: an int16 version (0) then the flexible encoding (compact strings and arrays, tagged fields).

    10 ShareGroupMemberMetadata          (group, member) rack_id, client_id, client_host,
                                                         subscribed_topic_names
    11 ShareGroupMetadata                (group)         epoch, metadata_hash (int64, not tagged)
    12 ShareGroupTargetAssignmentMetadata (group)        assignment_epoch; tag 0 assignment_timestamp
    13 ShareGroupTargetAssignmentMember  (group, member) topic_partitions[topic_id, partitions]
    14 ShareGroupCurrentMemberAssignment (group, member) member_epoch, previous_member_epoch, state,
                                                         assigned_partitions[topic_id, partitions]
    15 ShareGroupStatePartitionMetadata  (group)         initializing_topics, initialized_topics
                                                         [topic_id, topic_name, partitions],
                                                         deleting_topics[topic_id, topic_name]

A null value is a tombstone. Unknown tagged fields are skipped when reading.
"""

from __future__ import annotations

import struct
import uuid
from dataclasses import dataclass, field

from strom.coordinator.consumer.records import _Reader, _strings, _tags
from strom.protocol.wire import EMPTY_TAGS, array_len, nullable_string, string

MEMBER_METADATA = 10
GROUP_METADATA = 11
TARGET_ASSIGNMENT_METADATA = 12
TARGET_ASSIGNMENT_MEMBER = 13
CURRENT_MEMBER_ASSIGNMENT = 14
STATE_PARTITION_METADATA = 15
SHARE_RECORD_TYPES = frozenset(range(10, 16))
_GROUP_KEYS = frozenset({GROUP_METADATA, TARGET_ASSIGNMENT_METADATA, STATE_PARTITION_METADATA})

_I8 = struct.Struct(">b")
_I16 = struct.Struct(">h")
_I32 = struct.Struct(">i")
_I64 = struct.Struct(">q")

# topic id -> partitions
Partitions = dict[uuid.UUID, frozenset[int]]


@dataclass(frozen=True, slots=True)
class ShareKey:
    type: int
    group: str
    member: str = ""


@dataclass(frozen=True, slots=True)
class MemberMetadataValue:
    rack_id: str | None
    client_id: str
    client_host: str
    subscribed_topic_names: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class CurrentAssignmentValue:
    member_epoch: int
    previous_member_epoch: int
    state: int
    assigned: Partitions = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class TopicInfo:
    topic_id: uuid.UUID
    topic_name: str
    partitions: frozenset[int] = frozenset()


@dataclass(frozen=True, slots=True)
class StatePartitionMetadataValue:
    initializing: tuple[TopicInfo, ...] = ()
    initialized: tuple[TopicInfo, ...] = ()
    deleting: tuple[TopicInfo, ...] = ()


def _key_str(value: str) -> bytes:
    raw = value.encode()
    return _I16.pack(len(raw)) + raw


def encode_key(key: ShareKey) -> bytes:
    out = _I16.pack(key.type) + _key_str(key.group)
    if key.type not in _GROUP_KEYS:
        out += _key_str(key.member)
    return out


def group_key(record_type: int, group: str) -> bytes:
    return encode_key(ShareKey(record_type, group))


def member_key(record_type: int, group: str, member: str) -> bytes:
    return encode_key(ShareKey(record_type, group, member))


def decode_key(raw: bytes | memoryview) -> ShareKey | None:
    """The share-group key, or None for a record of another group type."""
    r = _Reader(raw)
    record_type = r.i16()
    if record_type not in SHARE_RECORD_TYPES:
        return None
    group = r.str16()
    return ShareKey(record_type, group, "" if record_type in _GROUP_KEYS else r.str16())


def _partitions(assignment: Partitions) -> bytes:
    out = bytearray(array_len(len(assignment), True))
    for topic_id in sorted(assignment, key=str):
        parts = sorted(assignment[topic_id])
        out += (
            topic_id.bytes + array_len(len(parts), True) + b"".join(_I32.pack(p) for p in parts) + EMPTY_TAGS
        )
    return bytes(out)


def _read_partitions(r: _Reader) -> Partitions:
    out: Partitions = {}
    for _ in range(r.count()):
        topic_id = r.uuid()
        out[topic_id] = frozenset(r.i32() for _ in range(r.count()))
        r.tags()
    return out


def encode_member_metadata(v: MemberMetadataValue) -> bytes:
    return b"".join(
        (
            _I16.pack(0),
            nullable_string(v.rack_id, True),
            string(v.client_id, True),
            string(v.client_host, True),
            _strings(v.subscribed_topic_names),
            EMPTY_TAGS,
        )
    )


def decode_member_metadata(raw: bytes | memoryview) -> MemberMetadataValue:
    r = _Reader(raw)
    r.version0("ShareGroupMemberMetadataValue")
    rack, client_id, host = r.nstr(), r.str(), r.str()
    topics = tuple(r.str() for _ in range(r.count()))
    return MemberMetadataValue(rack, client_id, host, topics)


def encode_group_metadata(epoch: int, metadata_hash: int) -> bytes:
    return _I16.pack(0) + _I32.pack(epoch) + _I64.pack(metadata_hash) + EMPTY_TAGS


def decode_group_metadata(raw: bytes | memoryview) -> tuple[int, int]:
    r = _Reader(raw)
    r.version0("ShareGroupMetadataValue")
    return r.i32(), r.i64()


def encode_target_metadata(epoch: int, timestamp: int) -> bytes:
    tags = {0: _I64.pack(timestamp)} if timestamp != 0 else {}
    return _I16.pack(0) + _I32.pack(epoch) + _tags(tags)


def decode_target_metadata(raw: bytes | memoryview) -> int:
    r = _Reader(raw)
    r.version0("ShareGroupTargetAssignmentMetadataValue")
    return r.i32()


def encode_target_member(partitions: Partitions) -> bytes:
    return _I16.pack(0) + _partitions(partitions) + EMPTY_TAGS


def decode_target_member(raw: bytes | memoryview) -> Partitions:
    r = _Reader(raw)
    r.version0("ShareGroupTargetAssignmentMemberValue")
    return _read_partitions(r)


def encode_current_assignment(v: CurrentAssignmentValue) -> bytes:
    return b"".join(
        (
            _I16.pack(0),
            _I32.pack(v.member_epoch),
            _I32.pack(v.previous_member_epoch),
            _I8.pack(v.state),
            _partitions(v.assigned),
            EMPTY_TAGS,
        )
    )


def decode_current_assignment(raw: bytes | memoryview) -> CurrentAssignmentValue:
    r = _Reader(raw)
    r.version0("ShareGroupCurrentMemberAssignmentValue")
    return CurrentAssignmentValue(r.i32(), r.i32(), r.i8(), _read_partitions(r))


def _topic_infos(infos: tuple[TopicInfo, ...], with_partitions: bool) -> bytes:
    out = bytearray(array_len(len(infos), True))
    for t in sorted(infos, key=lambda t: t.topic_name):
        out += t.topic_id.bytes + string(t.topic_name, True)
        if with_partitions:
            parts = sorted(t.partitions)
            out += array_len(len(parts), True) + b"".join(_I32.pack(p) for p in parts)
        out += EMPTY_TAGS
    return bytes(out)


def encode_state_partition_metadata(v: StatePartitionMetadataValue) -> bytes:
    return b"".join(
        (
            _I16.pack(0),
            _topic_infos(v.initializing, True),
            _topic_infos(v.initialized, True),
            _topic_infos(v.deleting, False),
            EMPTY_TAGS,
        )
    )


def decode_state_partition_metadata(raw: bytes | memoryview) -> StatePartitionMetadataValue:
    r = _Reader(raw)
    r.version0("ShareGroupStatePartitionMetadataValue")

    def infos(with_partitions: bool) -> tuple[TopicInfo, ...]:
        out = []
        for _ in range(r.count()):
            topic_id, name = r.uuid(), r.str()
            parts = frozenset(r.i32() for _ in range(r.count())) if with_partitions else frozenset()
            r.tags()
            out.append(TopicInfo(topic_id, name, parts))
        return tuple(out)

    initializing = infos(True)
    initialized = infos(True)
    deleting = infos(False)
    return StatePartitionMetadataValue(initializing, initialized, deleting)
