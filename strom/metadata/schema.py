"""The shape of a Kafka message version, as data: what the generated record classes declare and what
`strom.metadata.codec` reads and writes.

Kafka generates one Java class per message with one `Schema` per version (`SCHEMAS`): the fields present
in that version in wire order, their wire types, and, in flexible versions (KIP-482), the tagged fields by
tag. A `Layout` is that per-version schema; the field names are Kafka's snake_case schema names, which are
also the Python attribute names. Type names are Kafka's own (`Type.INT32`, `COMPACT_NULLABLE_STRING`, ...);
arrays and structs carry their element type or class.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

__all__ = ["ArrayType", "FieldType", "Layout", "Message", "StructType"]


@dataclass(frozen=True, slots=True)
class ArrayType:
    """ARRAY (int32 length) or COMPACT_ARRAY (unsigned varint length + 1) of `element`; null is length
    -1 (or 0 compact) and allowed only when `nullable`."""

    element: FieldType
    compact: bool = True
    nullable: bool = False


@dataclass(frozen=True, slots=True)
class StructType:
    """A nested struct. A nullable struct is prefixed by an int8 (-1 null, 1 present), as KIP-893 says."""

    cls: type[Message]
    nullable: bool = False


FieldType = str | ArrayType | StructType


@dataclass(frozen=True, slots=True)
class Layout:
    """One version of a message: its regular fields in wire order, and its tagged fields by tag."""

    flexible: bool
    fields: tuple[tuple[str, FieldType], ...]
    tagged: tuple[tuple[int, str, FieldType], ...] = ()


class Message:
    """Base of the generated record classes (frozen dataclasses, one per Kafka message, all versions).

    `LAYOUTS` maps each supported version to its `Layout`; `JSON_NAMES` gives the camelCase name that
    Kafka's JSON converters (and so `kafka-dump-log`) print for each field.
    """

    __slots__ = ()
    LAYOUTS: ClassVar[dict[int, Layout]]
    JSON_NAMES: ClassVar[dict[str, str]]
    LOWEST_VERSION: ClassVar[int]
    HIGHEST_VERSION: ClassVar[int]

    def to_json(self, version: int) -> dict[str, Any]:
        """The fields of `version` the way Kafka's generated JSON converter prints them (Uuids in base64url,
        bytes in base64), for comparing with kafka-dump-log and for `strom dump-log`."""
        from strom.metadata.codec import to_json

        return to_json(self, version)
