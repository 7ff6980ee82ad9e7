"""KRaft snapshot files (KIP-630): `__cluster_metadata-0/<end offset>-<epoch>.checkpoint`.

A snapshot is a file of record batches, laid out as Kafka's RecordsSnapshotWriter writes it:

1. a control batch: SnapshotHeaderRecord (version 0, last contained log timestamp), then, when the
   kraft.version is 1 or more (KIP-853), KRaftVersionRecord and, if the voter set is known, VotersRecord;
2. data batches of metadata records (none if there are none), at most `max_batch_bytes` each;
3. a control batch with SnapshotFooterRecord.

Offsets run from 0 through the whole file, every batch carries the snapshot's epoch as its partition
leader epoch, and the file is written under `.checkpoint.part` and renamed once complete (Kafka's
FileRawSnapshotWriter freeze), so a reader never sees half a snapshot. `kafka-storage format` writes the
bootstrap snapshot `00000000000000000000-0000000000.checkpoint` this way.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from strom.metadata.batches import build_control_batch, build_encoded_batch, read_metadata_batches
from strom.metadata.errors import MetadataParseError
from strom.metadata.records import (
    KRaftVersionRecord,
    SnapshotFooterRecord,
    SnapshotHeaderRecord,
    VotersRecord,
)
from strom.metadata.schema import Message
from strom.metadata.serde import ApiMessageAndVersion, encode_metadata_record
from strom.storage.checkpoint import fsync_dir

__all__ = [
    "BOOTSTRAP_SNAPSHOT",
    "CLUSTER_METADATA_DIR",
    "MAX_BATCH_BYTES",
    "Snapshot",
    "read_snapshot",
    "snapshot_file_name",
    "write_snapshot",
]

CLUSTER_METADATA_DIR = "__cluster_metadata-0"
MAX_BATCH_BYTES = 8 * 1024 * 1024  # KafkaRaftClient.MAX_BATCH_SIZE_BYTES


def snapshot_file_name(end_offset: int, epoch: int) -> str:
    return f"{end_offset:020d}-{epoch:010d}.checkpoint"


BOOTSTRAP_SNAPSHOT = snapshot_file_name(0, 0)


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What a snapshot file holds."""

    header: SnapshotHeaderRecord
    kraft_version: KRaftVersionRecord | None
    voters: VotersRecord | None
    records: list[ApiMessageAndVersion] = field(default_factory=list)


def write_snapshot(
    path: Path,
    records: Sequence[ApiMessageAndVersion],
    *,
    kraft_version: int,
    voters: VotersRecord | None,
    timestamp_ms: int,
    epoch: int = 0,
    max_batch_bytes: int = MAX_BATCH_BYTES,
) -> None:
    """Write a whole snapshot at `path` (atomically: `.part`, fsync, rename)."""
    header: list[Message] = [SnapshotHeaderRecord(version=0, last_contained_log_timestamp=timestamp_ms)]
    if kraft_version > 0:
        header.append(KRaftVersionRecord(version=0, kraft_version=kraft_version))
        if voters is not None:
            header.append(voters)
    stamp = {"timestamp_ms": timestamp_ms, "leader_epoch": epoch}
    data = bytearray(build_control_batch(header, base_offset=0, **stamp))
    offset = len(header)
    batch: list[bytes] = []
    size = 0
    for record in records:
        value = encode_metadata_record(record.message, record.version)
        # record framing adds at most a few dozen bytes to each value
        if batch and size + len(value) + 32 > max_batch_bytes:
            data += build_encoded_batch(batch, base_offset=offset, **stamp)
            offset += len(batch)
            batch, size = [], 0
        batch.append(value)
        size += len(value) + 32
    if batch:
        data += build_encoded_batch(batch, base_offset=offset, **stamp)
        offset += len(batch)
    data += build_control_batch([SnapshotFooterRecord(version=0)], base_offset=offset, **stamp)
    path.parent.mkdir(parents=True, exist_ok=True)
    part = path.with_name(path.name + ".part")
    fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        os.write(fd, bytes(data))
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(part, path)
    fsync_dir(path.parent)


def read_snapshot(path: Path) -> Snapshot:
    """Read a snapshot file; MetadataParseError unless it has a header first and a footer last."""
    header: SnapshotHeaderRecord | None = None
    kraft: KRaftVersionRecord | None = None
    voters: VotersRecord | None = None
    footer = False
    records: list[ApiMessageAndVersion] = []
    for batch in read_metadata_batches(path.read_bytes()):
        for _offset, record in batch.records:
            message = record.message
            if footer:
                raise MetadataParseError(f"{path}: records after the snapshot footer")
            if isinstance(message, SnapshotHeaderRecord) and header is None:
                header = message
            elif header is None:
                raise MetadataParseError(f"{path}: snapshot does not start with a SnapshotHeaderRecord")
            elif isinstance(message, KRaftVersionRecord):
                kraft = message
            elif isinstance(message, VotersRecord):
                voters = message
            elif isinstance(message, SnapshotFooterRecord):
                footer = True
            elif batch.is_control:
                raise MetadataParseError(f"{path}: unexpected {type(message).__name__} in a snapshot")
            else:
                records.append(record)
    if header is None or not footer:
        raise MetadataParseError(f"{path}: incomplete snapshot (no header or no footer)")
    return Snapshot(header, kraft, voters, records)
