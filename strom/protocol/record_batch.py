"""Record batch v2 (magic 2) header: parse, validate, and the few in-place rewrites the broker does.

Layout (61 bytes, big-endian), per Kafka's protocol guide "Record Batch":
  baseOffset int64 | batchLength int32 | partitionLeaderEpoch int32 | magic int8 | crc uint32 |
  attributes int16 | lastOffsetDelta int32 | baseTimestamp int64 | maxTimestamp int64 |
  producerId int64 | producerEpoch int16 | baseSequence int32 | recordsCount int32
The CRC-32C covers attributes to the end of the batch, so rewriting baseOffset or partitionLeaderEpoch
keeps it valid; stamping LogAppendTime (maxTimestamp, attribute bit 3) needs a new CRC.

Attributes: bits 0-2 compression codec, bit 3 timestamp type, bit 4 transactional, bit 5 control,
bit 6 delete horizon set (KIP-534).

Nothing here looks inside the records: the broker's hot path works on whole batches.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass

from crc32c import crc32c

from strom.protocol.errors import CorruptRecordError

__all__ = [
    "BATCH_HEADER_SIZE",
    "LOG_OVERHEAD",
    "MAGIC_V2",
    "BatchHeader",
    "iter_batches",
    "parse_header",
    "set_base_offset",
    "set_partition_leader_epoch",
    "stamp_log_append_time",
    "validate_batches",
]

BATCH_HEADER_SIZE = 61
LOG_OVERHEAD = 12  # baseOffset + batchLength: the bytes before batchLength starts counting
MAGIC_V2 = 2
NO_TIMESTAMP = -1

# Offsets of the fields inside the header.
_LENGTH_AT = 8
_EPOCH_AT = 12
_MAGIC_AT = 16
_CRC_AT = 17
_ATTRIBUTES_AT = 21  # the CRC covers from here to the end of the batch
_MAX_TIMESTAMP_AT = 35

_HEADER = struct.Struct(">qiibIhiqqqhii")
_INT64 = struct.Struct(">q")
_INT32 = struct.Struct(">i")
_UINT32 = struct.Struct(">I")
_INT16 = struct.Struct(">h")
_PREFIX = struct.Struct(">qi")

_COMPRESSION_MASK = 0x07
_TIMESTAMP_TYPE_BIT = 0x08
_TRANSACTIONAL_BIT = 0x10
_CONTROL_BIT = 0x20

_MIN_BATCH_LENGTH = BATCH_HEADER_SIZE - LOG_OVERHEAD

Buffer = bytes | bytearray | memoryview


@dataclass(slots=True)
class BatchHeader:
    """The 61-byte header of one v2 record batch, fields in wire order."""

    base_offset: int
    batch_length: int
    partition_leader_epoch: int
    magic: int
    crc: int
    attributes: int
    last_offset_delta: int
    base_timestamp: int
    max_timestamp: int
    producer_id: int
    producer_epoch: int
    base_sequence: int
    records_count: int

    @property
    def last_offset(self) -> int:
        return self.base_offset + self.last_offset_delta

    @property
    def next_offset(self) -> int:
        return self.base_offset + self.last_offset_delta + 1

    @property
    def size(self) -> int:
        """Bytes the batch takes on the wire and in the log."""
        return self.batch_length + LOG_OVERHEAD

    @property
    def compression(self) -> int:
        return self.attributes & _COMPRESSION_MASK

    @property
    def timestamp_type(self) -> int:
        return 1 if self.attributes & _TIMESTAMP_TYPE_BIT else 0

    @property
    def is_transactional(self) -> bool:
        return bool(self.attributes & _TRANSACTIONAL_BIT)

    @property
    def is_control(self) -> bool:
        return bool(self.attributes & _CONTROL_BIT)

    @property
    def has_producer_id(self) -> bool:
        return self.producer_id >= 0

    @property
    def last_sequence(self) -> int:
        if self.base_sequence < 0:
            return -1
        return (self.base_sequence + self.last_offset_delta) & 0x7FFFFFFF


def parse_header(buf: Buffer, pos: int = 0) -> BatchHeader:
    """Parse the header at `pos`; raises CorruptRecordError if fewer than 61 bytes remain."""
    if len(buf) - pos < BATCH_HEADER_SIZE:
        raise CorruptRecordError(f"record batch header truncated at position {pos}")
    return BatchHeader(*_HEADER.unpack_from(buf, pos))


def batch_crc(buf: Buffer, pos: int, size: int) -> int:
    """CRC-32C over attributes..end of the batch at `pos` of `size` bytes."""
    view = memoryview(buf)[pos + _ATTRIBUTES_AT : pos + size]
    return crc32c(view)


def check_batch(buf: Buffer, pos: int, header: BatchHeader, *, check_counts: bool = True) -> None:
    """Check one batch whose header is already parsed: lengths, magic, CRC and (optionally) counts."""
    if header.batch_length < _MIN_BATCH_LENGTH:
        raise CorruptRecordError(f"record batch length {header.batch_length} is below the minimum")
    if pos + header.size > len(buf):
        raise CorruptRecordError(
            f"record batch at position {pos} claims {header.size} bytes but only {len(buf) - pos} remain"
        )
    if header.magic != MAGIC_V2:
        raise CorruptRecordError(f"unsupported record batch magic {header.magic}")
    if batch_crc(buf, pos, header.size) != header.crc:
        raise CorruptRecordError(f"record batch at offset {header.base_offset} fails its CRC-32C check")
    if header.last_offset_delta < 0:
        raise CorruptRecordError(f"negative last offset delta {header.last_offset_delta}")
    if check_counts and header.records_count != header.last_offset_delta + 1:
        # Kafka's LogValidator: the inner record count must match lastOffsetDelta + 1 for client batches.
        raise CorruptRecordError(
            f"record count {header.records_count} does not match last offset delta {header.last_offset_delta}"
        )
    if header.records_count < 0:
        raise CorruptRecordError(f"negative record count {header.records_count}")


def validate_batches(buf: Buffer, *, check_counts: bool = True) -> list[BatchHeader]:
    """Validate every batch of a record set and return their headers.

    Checks magic 2, CRC-32C, batch lengths, that the batches exactly fill the buffer and, unless
    `check_counts` is False (batches a follower copies may have been compacted), that records_count ==
    last_offset_delta + 1. Raises CorruptRecordError on the first problem; an empty buffer is an error.
    """
    total = len(buf)
    if total == 0:
        raise CorruptRecordError("empty record set")
    headers: list[BatchHeader] = []
    pos = 0
    while pos < total:
        header = parse_header(buf, pos)
        check_batch(buf, pos, header, check_counts=check_counts)
        headers.append(header)
        pos += header.size
    return headers


def iter_batches(buf: Buffer, pos: int = 0) -> Iterator[tuple[int, BatchHeader]]:
    """Yield (position, header) for each whole batch from `pos`; stop quietly at a partial tail.

    No CRC check: for buffers already validated (our own log) or where the caller checks.
    """
    total = len(buf)
    while total - pos >= BATCH_HEADER_SIZE:
        header = BatchHeader(*_HEADER.unpack_from(buf, pos))
        size = header.batch_length + LOG_OVERHEAD
        if header.batch_length < _MIN_BATCH_LENGTH or pos + size > total:
            return
        yield pos, header
        pos += size


def peek_size(buf: Buffer, pos: int = 0) -> tuple[int, int]:
    """(base offset, whole batch size) from the first 12 bytes at `pos`."""
    base_offset, length = _PREFIX.unpack_from(buf, pos)
    return base_offset, length + LOG_OVERHEAD


def set_base_offset(buf: bytearray | memoryview, pos: int, offset: int) -> None:
    """Write the base offset of the batch at `pos` (outside the CRC, so the CRC stays valid)."""
    _INT64.pack_into(buf, pos, offset)


def set_partition_leader_epoch(buf: bytearray | memoryview, pos: int, epoch: int) -> None:
    """Write the partition leader epoch of the batch at `pos` (outside the CRC)."""
    _INT32.pack_into(buf, pos + _EPOCH_AT, epoch)


def stamp_log_append_time(buf: bytearray | memoryview, pos: int, timestamp_ms: int) -> None:
    """Mark the batch at `pos` as LogAppendTime with max timestamp `timestamp_ms`, and recompute its CRC.

    Like Kafka, only the attribute bit and maxTimestamp change; record timestamp deltas stay as sent
    and consumers read every record's timestamp as the batch's max timestamp.
    """
    (attributes,) = _INT16.unpack_from(buf, pos + _ATTRIBUTES_AT)
    _INT16.pack_into(buf, pos + _ATTRIBUTES_AT, attributes | _TIMESTAMP_TYPE_BIT)
    _INT64.pack_into(buf, pos + _MAX_TIMESTAMP_AT, timestamp_ms)
    (length,) = _INT32.unpack_from(buf, pos + _LENGTH_AT)
    _UINT32.pack_into(buf, pos + _CRC_AT, batch_crc(buf, pos, length + LOG_OVERHEAD))


def update_crc(buf: bytearray | memoryview, pos: int) -> None:
    """Recompute and write the CRC of the batch at `pos` after an in-place change of covered bytes."""
    (length,) = _INT32.unpack_from(buf, pos + _LENGTH_AT)
    _UINT32.pack_into(buf, pos + _CRC_AT, batch_crc(buf, pos, length + LOG_OVERHEAD))
