"""Records inside a v2 record batch: decode them, and build whole batches.

Record layout (Kafka protocol guide, "Record"): length varint | attributes int8 | timestampDelta varlong |
offsetDelta varint | keyLength varint | key | valueLength varint | value | headers count varint, then per
header: keyLength varint | key | valueLength varint | value. Varints are zigzag encoded; length -1 is null.

The broker only decodes records where a rule needs them (compacted topics need keys, ListOffsets by
timestamp needs the exact record); `build_batch` serves tests, the client and the coordinators' writes.
"""

from __future__ import annotations

import struct
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from strom.protocol.compression import compress, decompress
from strom.protocol.errors import CorruptRecordError
from strom.protocol.record_batch import (
    BATCH_HEADER_SIZE,
    LOG_OVERHEAD,
    MAGIC_V2,
    Buffer,
    parse_header,
    update_crc,
)

__all__ = ["Record", "build_batch", "decode_records", "encode_varint", "read_varint"]

_HEADER_PACK = struct.Struct(">qiibIhiqqqhii")
_TRANSACTIONAL_BIT = 0x10
_CONTROL_BIT = 0x20


@dataclass(slots=True)
class Record:
    """One record of a batch; offsets and timestamps are deltas from the batch's base values."""

    offset_delta: int
    timestamp_delta: int
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes | None]] = field(default_factory=list)


def encode_varint(value: int, out: bytearray) -> None:
    """Append the zigzag varint (or varlong) encoding of `value`."""
    zigzag = (value << 1) ^ (value >> 63)
    zigzag &= 0xFFFFFFFFFFFFFFFF
    while zigzag >= 0x80:
        out.append((zigzag & 0x7F) | 0x80)
        zigzag >>= 7
    out.append(zigzag)


def read_varint(buf: Buffer, pos: int) -> tuple[int, int]:
    """Decode a zigzag varint at `pos`; returns (value, next position)."""
    result = 0
    shift = 0
    while True:
        if pos >= len(buf):
            raise CorruptRecordError("truncated varint in record")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            break
        shift += 7
        if shift > 63:
            raise CorruptRecordError("varint too long in record")
    return (result >> 1) ^ -(result & 1), pos


def _read_bytes(buf: Buffer, pos: int) -> tuple[bytes | None, int]:
    length, pos = read_varint(buf, pos)
    if length < 0:
        return None, pos
    end = pos + length
    if end > len(buf):
        raise CorruptRecordError("record field runs past the end of its batch")
    return bytes(buf[pos:end]), end


def _decode_record(buf: Buffer, pos: int) -> tuple[Record, int]:
    length, pos = read_varint(buf, pos)
    end = pos + length
    if length < 0 or end > len(buf):
        raise CorruptRecordError("record length runs past the end of its batch")
    pos += 1  # attributes, unused
    timestamp_delta, pos = read_varint(buf, pos)
    offset_delta, pos = read_varint(buf, pos)
    key, pos = _read_bytes(buf, pos)
    value, pos = _read_bytes(buf, pos)
    count, pos = read_varint(buf, pos)
    headers: list[tuple[str, bytes | None]] = []
    for _ in range(count):
        hkey, pos = _read_bytes(buf, pos)
        hvalue, pos = _read_bytes(buf, pos)
        if hkey is None:
            raise CorruptRecordError("null record header key")
        headers.append((hkey.decode("utf-8", "replace"), hvalue))
    if pos != end:
        raise CorruptRecordError("record length does not match its fields")
    return Record(offset_delta, timestamp_delta, key, value, headers), end


def decode_records(batch: Buffer) -> list[Record]:
    """Decode (decompressing as needed) the records of the one batch in `batch`."""
    header = parse_header(batch)
    body = memoryview(batch)[BATCH_HEADER_SIZE : header.size]
    if header.compression:
        body = memoryview(decompress(header.compression, body))
    records: list[Record] = []
    pos = 0
    for _ in range(header.records_count):
        record, pos = _decode_record(body, pos)
        records.append(record)
    if pos != len(body):
        raise CorruptRecordError("record batch has bytes after its last record")
    return records


def _encode_record(record: Record, out: bytearray) -> None:
    body = bytearray(b"\x00")
    encode_varint(record.timestamp_delta, body)
    encode_varint(record.offset_delta, body)
    for item in (record.key, record.value):
        if item is None:
            encode_varint(-1, body)
        else:
            encode_varint(len(item), body)
            body += item
    encode_varint(len(record.headers), body)
    for hkey, hvalue in record.headers:
        raw_key = hkey.encode("utf-8")
        encode_varint(len(raw_key), body)
        body += raw_key
        if hvalue is None:
            encode_varint(-1, body)
        else:
            encode_varint(len(hvalue), body)
            body += hvalue
    encode_varint(len(body), out)
    out += body


def build_batch(
    records: Sequence[Record] | Iterable[Record],
    *,
    base_offset: int = 0,
    codec: int = 0,
    base_timestamp: int | None = None,
    producer_id: int = -1,
    producer_epoch: int = -1,
    base_sequence: int = -1,
    transactional: bool = False,
    control: bool = False,
    partition_leader_epoch: int = -1,
) -> bytes:
    """Encode one v2 batch holding `records` (with their own offset and timestamp deltas).

    `base_timestamp` defaults to the current wall-clock time in ms. An empty `records` gives a batch with
    no records and last offset delta 0, as compaction leaves behind.
    """
    items = list(records)
    if base_timestamp is None:
        base_timestamp = int(time.time() * 1000)
    body = bytearray()
    for record in items:
        _encode_record(record, body)
    payload = compress(codec, body) if codec else bytes(body)
    last_offset_delta = max((r.offset_delta for r in items), default=0)
    max_timestamp = base_timestamp + max((r.timestamp_delta for r in items), default=0)
    attributes = codec & 0x07
    if transactional:
        attributes |= _TRANSACTIONAL_BIT
    if control:
        attributes |= _CONTROL_BIT
    batch_length = BATCH_HEADER_SIZE - LOG_OVERHEAD + len(payload)
    out = bytearray(BATCH_HEADER_SIZE)
    _HEADER_PACK.pack_into(
        out,
        0,
        base_offset,
        batch_length,
        partition_leader_epoch,
        MAGIC_V2,
        0,
        attributes,
        last_offset_delta,
        base_timestamp,
        max_timestamp,
        producer_id,
        producer_epoch,
        base_sequence,
        len(items),
    )
    out += payload
    update_crc(out, 0)
    return bytes(out)


def simple_records(values: Iterable[bytes | None], *, key: bytes | None = None) -> list[Record]:
    """Records with consecutive offset deltas and zero timestamp deltas, for tests and tools."""
    return [Record(i, 0, key, value) for i, value in enumerate(values)]
