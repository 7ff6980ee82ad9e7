"""Record batches of `__cluster_metadata`: build them from records, and read them back.

The metadata log and its snapshots (`<offset>-<epoch>.checkpoint`, KIP-630) are ordinary record batch v2
files. A data batch holds metadata records (key null, value framed by `strom.metadata.serde`); a control
batch (attributes bit 5) holds KRaft control records. Kafka's KRaft leader stamps each batch with its epoch
as the partition leader epoch, and appends a batch's records at one timestamp (deltas 0).

`read_metadata_batches` walks a file's bytes, the way `kafka-dump-log --cluster-metadata-decoder` does, and
decodes every record; a record it cannot decode raises (see `strom.metadata.errors`), so no caller ever
applies part of a batch.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from strom.metadata.errors import MetadataParseError
from strom.metadata.schema import Message
from strom.metadata.serde import (
    ApiMessageAndVersion,
    decode_control_record,
    decode_metadata_record,
    encode_control_record,
    encode_metadata_record,
)
from strom.protocol.record_batch import BatchHeader, Buffer, iter_batches, validate_batches
from strom.protocol.records import Record, build_batch, decode_records

__all__ = [
    "MetadataBatch",
    "build_control_batch",
    "build_encoded_batch",
    "build_metadata_batch",
    "read_metadata_batches",
]


@dataclass(frozen=True, slots=True)
class MetadataBatch:
    """One decoded batch: its header, and its records with their offsets."""

    header: BatchHeader
    records: tuple[tuple[int, ApiMessageAndVersion], ...]

    @property
    def is_control(self) -> bool:
        return self.header.is_control


def build_metadata_batch(
    records: Sequence[ApiMessageAndVersion],
    *,
    base_offset: int,
    timestamp_ms: int,
    leader_epoch: int,
) -> bytes:
    """A data batch of metadata records at consecutive offsets from `base_offset`."""
    values = [encode_metadata_record(r.message, r.version) for r in records]
    return build_encoded_batch(values, base_offset=base_offset, timestamp_ms=timestamp_ms,
                               leader_epoch=leader_epoch)


def build_encoded_batch(
    values: Sequence[bytes], *, base_offset: int, timestamp_ms: int, leader_epoch: int
) -> bytes:
    """A data batch of records already framed by `encode_metadata_record`."""
    if not values:
        raise ValueError("a metadata batch holds at least one record")
    return build_batch(
        [Record(i, 0, None, value) for i, value in enumerate(values)],
        base_offset=base_offset,
        base_timestamp=timestamp_ms,
        partition_leader_epoch=leader_epoch,
    )


def build_control_batch(
    records: Sequence[Message],
    *,
    base_offset: int,
    timestamp_ms: int,
    leader_epoch: int,
) -> bytes:
    """A control batch of KRaft control records (each at Kafka's current version of it)."""
    if not records:
        raise ValueError("a control batch holds at least one record")
    items = []
    for i, message in enumerate(records):
        key, value = encode_control_record(message)
        items.append(Record(i, 0, key, value))
    return build_batch(
        items,
        base_offset=base_offset,
        base_timestamp=timestamp_ms,
        partition_leader_epoch=leader_epoch,
        control=True,
    )


def read_metadata_batches(data: Buffer) -> Iterator[MetadataBatch]:
    """Every whole batch of a metadata log segment or snapshot, decoded; a partial tail is ignored (as
    log recovery would truncate it). CorruptRecordError for a bad CRC, metadata errors for bad records."""
    for position, header in iter_batches(data):
        raw = memoryview(data)[position : position + header.size]
        validate_batches(raw)
        decoded = []
        for record in decode_records(raw):
            offset = header.base_offset + record.offset_delta
            if header.is_control:
                decoded.append((offset, decode_control_record(record.key, record.value)))
            else:
                if record.value is None:
                    raise MetadataParseError(f"metadata record at offset {offset} has no value")
                decoded.append((offset, decode_metadata_record(record.value)))
        yield MetadataBatch(header, tuple(decoded))
