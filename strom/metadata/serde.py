"""How one record of `__cluster_metadata` is framed: Kafka's `MetadataRecordSerde` and control records.

A metadata record (KIP-500, KIP-631) is the value of an ordinary record (no key) in a record batch v2:

    frame_version   unsigned varint, 1 (0 was KRaft's 2.8 preview and is refused, as Kafka refuses it)
    api_key         unsigned varint, the record type (MetadataRecordType: TopicRecord is 2, ...)
    version         unsigned varint, the record's version
    body            the record at that version (`strom.metadata.codec`)

(Kafka's `AbstractApiMessageSerde`). Reading checks every step and the whole value is consumed: an unknown
frame version, api key or record version, a truncated body or garbage after it raise a named error of
`strom.metadata.errors`, so a node replaying the log stops instead of applying part of a record.

KRaft control records (LeaderChange, SnapshotHeader, SnapshotFooter, KRaftVersion, KRaftVoters; KIP-595,
KIP-630, KIP-853) live in control batches. Their key is `version int16 (0), type int16` (Kafka's
ControlRecordType) and their value is the message body at the version Kafka writes today; Kafka reads them
back at that same version (ControlRecordUtils), and so do we.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from strom.metadata.codec import decode, encode, read_uvarint, uvarint
from strom.metadata.errors import (
    MetadataParseError,
    UnknownRecordTypeError,
    UnknownRecordVersionError,
)
from strom.metadata.records import CONTROL_RECORDS, METADATA_RECORDS
from strom.metadata.schema import Message

__all__ = [
    "FRAME_VERSION",
    "ApiMessageAndVersion",
    "control_record_type",
    "decode_control_record",
    "decode_metadata_record",
    "encode_control_record",
    "encode_metadata_record",
]

FRAME_VERSION = 1
_CONTROL_KEY = struct.Struct(">hh")


@dataclass(frozen=True, slots=True)
class ApiMessageAndVersion:
    """A record and the version it is (or is to be) written at, as Kafka's class of that name."""

    message: Message
    version: int


def _check_version(cls: type[Message], version: int) -> None:
    if not cls.LOWEST_VERSION <= version <= cls.HIGHEST_VERSION:
        raise UnknownRecordVersionError(
            f"{cls.__name__} version {version} is not supported (this Strom reads versions "
            f"{cls.LOWEST_VERSION}-{cls.HIGHEST_VERSION}); it was written by a newer Kafka or Strom",
            cls.__name__,
            version,
            cls.LOWEST_VERSION,
            cls.HIGHEST_VERSION,
        )


def encode_metadata_record(message: Message, version: int) -> bytes:
    """The value bytes of one metadata record."""
    cls = type(message)
    api_key = getattr(cls, "API_KEY", None)
    if api_key is None:
        raise TypeError(f"{cls.__name__} is not a metadata record")
    _check_version(cls, version)
    out = bytearray(uvarint(FRAME_VERSION))
    out += uvarint(api_key)
    out += uvarint(version)
    return bytes(encode(message, version, out))


def decode_metadata_record(value: bytes | bytearray | memoryview) -> ApiMessageAndVersion:
    """One whole metadata record from a record's value; raises rather than return part of one."""
    buf = value if isinstance(value, memoryview) else memoryview(value)
    frame, pos = read_uvarint(buf, 0)
    if frame == 0:
        raise MetadataParseError(
            "metadata record with frame version 0 (KRaft's 2.8 preview), which cannot be read"
        )
    if frame != FRAME_VERSION:
        raise MetadataParseError(
            f"unknown metadata record frame version {frame} (only {FRAME_VERSION} is supported)"
        )
    api_key, pos = read_uvarint(buf, pos)
    version, pos = read_uvarint(buf, pos)
    cls = METADATA_RECORDS.get(api_key)
    if cls is None:
        raise UnknownRecordTypeError(f"unknown metadata record type (api key) {api_key}", api_key)
    _check_version(cls, version)
    message, end = decode(cls, version, buf, pos)
    if end != len(buf):
        raise MetadataParseError(f"{len(buf) - end} byte(s) of garbage after {cls.__name__}")
    return ApiMessageAndVersion(message, version)


def encode_control_record(message: Message, version: int | None = None) -> tuple[bytes, bytes]:
    """(key, value) of a KRaft control record, at Kafka's current version unless `version` is given."""
    cls = type(message)
    control_type = getattr(cls, "CONTROL_TYPE", None)
    if control_type is None:
        raise TypeError(f"{cls.__name__} is not a control record")
    version = cls.CURRENT_VERSION if version is None else version  # type: ignore[attr-defined]
    _check_version(cls, version)
    return _CONTROL_KEY.pack(0, control_type), bytes(encode(message, version))


def control_record_type(key: bytes | bytearray | memoryview | None) -> int:
    """The type of a control record's key (0 ABORT, 1 COMMIT, 2 LEADER_CHANGE, ... 6 KRAFT_VOTERS)."""
    if key is None or len(key) < _CONTROL_KEY.size:
        raise MetadataParseError("control record without a version and type key")
    version, kind = _CONTROL_KEY.unpack_from(key, 0)
    if version < 0:
        raise MetadataParseError(f"invalid control record key version {version}")
    return int(kind)


def decode_control_record(
    key: bytes | bytearray | memoryview | None, value: bytes | bytearray | memoryview | None
) -> ApiMessageAndVersion:
    """A KRaft control record; UnknownRecordTypeError for any other control type (markers included)."""
    kind = control_record_type(key)
    cls = CONTROL_RECORDS.get(kind)
    if cls is None:
        raise UnknownRecordTypeError(f"control record type {kind} is not a KRaft control record", kind)
    if value is None:
        raise MetadataParseError(f"{cls.__name__} control record without a value")
    version = cls.CURRENT_VERSION  # type: ignore[attr-defined]
    message, end = decode(cls, version, value)
    if end != len(value):
        raise MetadataParseError(f"{len(value) - end} byte(s) of garbage after {cls.__name__}")
    return ApiMessageAndVersion(message, version)
