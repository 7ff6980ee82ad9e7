"""Records with a non-default value in every field of a given version, built from the generated layouts,
so that a round trip (ours, or through Kafka's own decoder) exercises every field of every record."""

from __future__ import annotations

import dataclasses
import uuid
from typing import Any

from strom.metadata.records import CONTROL_RECORDS, METADATA_RECORDS
from strom.metadata.schema import ArrayType, FieldType, Message, StructType

_INTS = {
    "INT8": 7,
    "INT16": 300,
    "UINT16": 65000,
    "INT32": 100_000,
    "UNSIGNED_INT32": 3_000_000_000,
    "INT64": 2**40 + 5,
    "VARINT": -12345,
    "VARLONG": -(2**40),
}


def sample_value(kind: FieldType, version: int, name: str, default: Any) -> Any:
    if isinstance(kind, StructType):
        return sample(kind.cls, version)
    if isinstance(kind, ArrayType):
        first = sample_value(kind.element, version, name, None)
        second = sample_value(kind.element, version, name + "2", None)
        return (first, second)
    if kind in _INTS:
        value = _INTS[kind]
        return value + 1 if value == default else value
    if kind == "FLOAT64":
        return 1.5
    if kind == "BOOLEAN":
        return not default if isinstance(default, bool) else True
    if kind == "UUID":
        return uuid.uuid5(uuid.NAMESPACE_DNS, name)
    if kind.endswith("STRING"):
        return f"s-{name}"
    return b"\x01\x02" + name.encode()


def sample(cls: type[Message], version: int) -> Message:
    """`cls` with every field of `version` set to something other than its default."""
    layout = cls.LAYOUTS[version]
    defaults = {f.name: f.default for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    values = {name: sample_value(kind, version, name, defaults[name]) for name, kind in layout.fields}
    for _tag, name, kind in layout.tagged:
        values[name] = sample_value(kind, version, name, defaults[name])
    return cls(**values)


def every_record_version() -> list[tuple[type[Message], int]]:
    """(class, version) for every version of every metadata and control record."""
    return [
        (cls, version)
        for cls in [*METADATA_RECORDS.values(), *CONTROL_RECORDS.values()]
        for version in range(cls.LOWEST_VERSION, cls.HIGHEST_VERSION + 1)
    ]
