"""The records of __share_group_state, written as Kafka 4.4's share coordinator writes them (KIP-932).

A key is an int16 record type then, in the non-flexible encoding, group_id (int16-length string),
topic_id (16 bytes) and partition (int32); both types share that layout. A value is an int16 version (0)
then the flexible encoding (compact arrays, tagged fields; KIP-482):

    0  ShareSnapshot  snapshot_epoch, state_epoch, leader_epoch, start_offset, create_timestamp,
                      write_timestamp, state_batches[first_offset, last_offset, delivery_state (int8),
                      delivery_count (int16)]; tag 0 delivery_complete_count (int32)
    1  ShareUpdate    snapshot_epoch, leader_epoch, start_offset, state_batches; tag 0
                      delivery_complete_count

A snapshot holds a share-partition's whole state; an update holds the batches one write changed, to be
merged over the snapshot before it. A null value is a tombstone (DeleteShareGroupState).
"""

from __future__ import annotations

import struct
import uuid
from dataclasses import dataclass

from strom.coordinator.consumer.records import _Reader, _tags
from strom.coordinator.share.partition import StateBatch
from strom.protocol.wire import array_len

SHARE_SNAPSHOT = 0
SHARE_UPDATE = 1

_I8 = struct.Struct(">b")
_I16 = struct.Struct(">h")
_I32 = struct.Struct(">i")
_I64 = struct.Struct(">q")


@dataclass(frozen=True, slots=True)
class StateKey:
    group_id: str
    topic_id: uuid.UUID
    partition: int


@dataclass(frozen=True, slots=True)
class ShareSnapshot:
    snapshot_epoch: int
    state_epoch: int
    leader_epoch: int
    start_offset: int
    create_timestamp: int
    write_timestamp: int
    state_batches: tuple[StateBatch, ...]
    delivery_complete_count: int = -1


@dataclass(frozen=True, slots=True)
class ShareUpdate:
    snapshot_epoch: int
    leader_epoch: int
    start_offset: int
    state_batches: tuple[StateBatch, ...]
    delivery_complete_count: int = -1


def encode_key(record_type: int, key: StateKey) -> bytes:
    group = key.group_id.encode()
    return (
        _I16.pack(record_type) + _I16.pack(len(group)) + group + key.topic_id.bytes + _I32.pack(key.partition)
    )


def decode_key(raw: bytes | memoryview) -> tuple[int, StateKey] | None:
    """(record type, key), or None for a type this module does not know."""
    r = _Reader(raw)
    record_type = r.i16()
    if record_type not in (SHARE_SNAPSHOT, SHARE_UPDATE):
        return None
    return record_type, StateKey(r.str16(), r.uuid(), r.i32())


def _batches(batches: tuple[StateBatch, ...]) -> bytes:
    out = bytearray(array_len(len(batches), True))
    for b in batches:
        out += _I64.pack(b.first_offset) + _I64.pack(b.last_offset)
        out += _I8.pack(b.delivery_state) + _I16.pack(b.delivery_count) + b"\x00"
    return bytes(out)


def _dcc_tags(count: int) -> bytes:
    return _tags({0: _I32.pack(count)} if count != -1 else {})


def encode_snapshot(value: ShareSnapshot) -> bytes:
    return b"".join(
        (
            _I16.pack(0),
            _I32.pack(value.snapshot_epoch),
            _I32.pack(value.state_epoch),
            _I32.pack(value.leader_epoch),
            _I64.pack(value.start_offset),
            _I64.pack(value.create_timestamp),
            _I64.pack(value.write_timestamp),
            _batches(value.state_batches),
            _dcc_tags(value.delivery_complete_count),
        )
    )


def encode_update(value: ShareUpdate) -> bytes:
    return b"".join(
        (
            _I16.pack(0),
            _I32.pack(value.snapshot_epoch),
            _I32.pack(value.leader_epoch),
            _I64.pack(value.start_offset),
            _batches(value.state_batches),
            _dcc_tags(value.delivery_complete_count),
        )
    )


def _read_batches(r: _Reader) -> tuple[StateBatch, ...]:
    out = []
    for _ in range(r.count()):
        out.append(StateBatch(r.i64(), r.i64(), r.i8(), r.i16()))
        r.tags()
    return tuple(out)


def _read_dcc(r: _Reader) -> int:
    tags = r.tags()
    return int(_I32.unpack(tags[0])[0]) if 0 in tags else -1


def decode_snapshot(raw: bytes | memoryview) -> ShareSnapshot:
    r = _Reader(raw)
    r.version0("ShareSnapshotValue")
    head = (r.i32(), r.i32(), r.i32(), r.i64(), r.i64(), r.i64())
    batches = _read_batches(r)
    return ShareSnapshot(*head, batches, _read_dcc(r))


def decode_update(raw: bytes | memoryview) -> ShareUpdate:
    r = _Reader(raw)
    r.version0("ShareUpdateValue")
    head = (r.i32(), r.i32(), r.i64())
    batches = _read_batches(r)
    return ShareUpdate(*head, batches, _read_dcc(r))
