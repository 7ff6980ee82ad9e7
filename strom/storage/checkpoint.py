"""Kafka's small text files, written atomically (temp file, fsync, rename, fsync of the directory).

- Offset checkpoints (`recovery-point-offset-checkpoint`, `log-start-offset-checkpoint`,
  `cleaner-offset-checkpoint`): line "0" (version), a count line, then "topic partition offset" lines
  (Kafka's OffsetCheckpointFile / CheckpointFile).
- `partition.metadata`: "version: 0" and "topic_id: <base64 Uuid>" (KIP-516, PartitionMetadataFile).
- `meta.properties`: Java properties with version, node.id, cluster.id, directory.id (KIP-858).
"""

from __future__ import annotations

import base64
import os
import uuid
from collections.abc import Iterable, Mapping
from pathlib import Path

from strom.protocol.errors import KafkaStorageError

CHECKPOINT_VERSION = 0


def write_atomically(path: Path, text: str) -> None:
    """Replace `path` with `text` so a crash leaves either the old or the new file, never a mix."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        os.write(fd, text.encode("utf-8"))
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    fsync_dir(path.parent)


def fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def format_entries(entries: Iterable[tuple[object, ...]]) -> str:
    rows = [" ".join(str(field) for field in entry) for entry in entries]
    return "\n".join([str(CHECKPOINT_VERSION), str(len(rows)), *rows]) + "\n"


def parse_entries(path: Path, fields: int) -> list[list[str]]:
    """Rows of a version-0 checkpoint file; KafkaStorageError if malformed."""
    lines = path.read_text(encoding="utf-8").splitlines()
    if len(lines) < 2 or lines[0].strip() != str(CHECKPOINT_VERSION):
        raise KafkaStorageError(f"{path}: unrecognised checkpoint version")
    try:
        count = int(lines[1])
    except ValueError:
        raise KafkaStorageError(f"{path}: malformed entry count") from None
    rows = [line.split() for line in lines[2:] if line.strip()]
    if len(rows) != count or any(len(row) != fields for row in rows):
        raise KafkaStorageError(f"{path}: expected {count} entries of {fields} fields")
    return rows


def write_offset_checkpoint(path: Path, offsets: Mapping[tuple[str, int], int]) -> None:
    write_atomically(path, format_entries((t, p, o) for (t, p), o in sorted(offsets.items())))


def read_offset_checkpoint(path: Path) -> dict[tuple[str, int], int]:
    """Entries of an offset checkpoint; an absent file is empty."""
    if not path.exists():
        return {}
    try:
        return {(row[0], int(row[1])): int(row[2]) for row in parse_entries(path, 3)}
    except ValueError:
        raise KafkaStorageError(f"{path}: malformed offsets") from None


# topic ids ---------------------------------------------------------------------------------------
def uuid_to_kafka(value: uuid.UUID) -> str:
    """Kafka's Uuid.toString: URL-safe base64 of the 16 bytes without padding."""
    return base64.urlsafe_b64encode(value.bytes).decode("ascii").rstrip("=")


def uuid_from_kafka(text: str) -> uuid.UUID:
    return uuid.UUID(bytes=base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))


def write_partition_metadata(path: Path, topic_id: uuid.UUID) -> None:
    write_atomically(path, f"version: 0\ntopic_id: {uuid_to_kafka(topic_id)}\n")


def read_partition_metadata(path: Path) -> uuid.UUID | None:
    if not path.exists():
        return None
    fields = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if ":" in line:
            key, _, value = line.partition(":")
            fields[key.strip()] = value.strip()
    if fields.get("version") != "0" or "topic_id" not in fields:
        raise KafkaStorageError(f"{path}: malformed partition metadata")
    return uuid_from_kafka(fields["topic_id"])


# meta.properties ---------------------------------------------------------------------------------
def write_meta_properties(path: Path, props: Mapping[str, str]) -> None:
    lines = ["#", "#Written by Strom"] + [f"{k}={v}" for k, v in sorted(props.items())]
    write_atomically(path, "\n".join(lines) + "\n")


def read_meta_properties(path: Path) -> dict[str, str]:
    if not path.exists():
        return {}
    props: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        stripped = line.strip()
        if not stripped or stripped[0] in "#!":
            continue
        key, _, value = stripped.partition("=")
        props[key.strip()] = value.strip()
    return props
