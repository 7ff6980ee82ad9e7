"""Read and write any generated message (`strom.metadata.schema.Message`) at any of its versions.

The wire rules are the Kafka protocol's: big-endian fixed-width integers, UUIDs as 16 bytes, strings and
bytes with an int16/int32 length (-1 null) or, in flexible versions, an unsigned varint of length + 1
(0 null); arrays likewise; nullable structs behind an int8 marker (KIP-893). A flexible version ends each
struct with its tagged fields (KIP-482): a count, then tag, size and value for each, in tag order; a tag
is written only when its value differs from the field's default, and unknown tags are skipped on read,
as Kafka's generated code does.

For each (class, version) the readers and writers are compiled once into closures, so decoding is a loop
over prepared field functions. Any malformed input (truncated, an impossible length, a null where the
version allows none, a tagged field that does not fill its size) raises `MetadataParseError`; no partial
message is ever returned.
"""

from __future__ import annotations

import base64
import dataclasses
import struct
import uuid
from collections.abc import Callable
from functools import cache
from typing import Any, TypeVar

from strom.metadata.errors import MetadataParseError
from strom.metadata.schema import ArrayType, FieldType, Layout, Message, StructType

__all__ = ["decode", "encode", "read_uvarint", "to_json", "uvarint"]

M = TypeVar("M", bound=Message)
Reader = Callable[[memoryview, int], tuple[Any, int]]
Writer = Callable[[bytearray, Any], None]

ZERO_UUID = uuid.UUID(int=0)

_FIXED = {
    "INT8": struct.Struct(">b"),
    "INT16": struct.Struct(">h"),
    "UINT16": struct.Struct(">H"),
    "INT32": struct.Struct(">i"),
    "UNSIGNED_INT32": struct.Struct(">I"),
    "INT64": struct.Struct(">q"),
    "FLOAT64": struct.Struct(">d"),
}
_INT16 = _FIXED["INT16"]
_INT32 = _FIXED["INT32"]


def uvarint(value: int) -> bytes:
    out = bytearray()
    _write_uvarint(out, value)
    return bytes(out)


def _write_uvarint(out: bytearray, value: int) -> None:
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)


def read_uvarint(buf: memoryview, pos: int) -> tuple[int, int]:
    """Unsigned varint (at most 5 bytes, Kafka's readUnsignedVarint); returns (value, next position)."""
    result = 0
    shift = 0
    while True:
        if pos >= len(buf):
            raise MetadataParseError("truncated varint")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift > 28:
            raise MetadataParseError("varint is longer than 5 bytes")


def _read_varlong(buf: memoryview, pos: int, limit: int) -> tuple[int, int]:
    result = 0
    shift = 0
    while True:
        if pos >= len(buf):
            raise MetadataParseError("truncated varint")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return (result >> 1) ^ -(result & 1), pos
        shift += 7
        if shift > limit:
            raise MetadataParseError("varint is too long")


def _write_varlong(out: bytearray, value: int) -> None:
    _write_uvarint(out, ((value << 1) ^ (value >> 63)) & 0xFFFFFFFFFFFFFFFF)


def _need(buf: memoryview, pos: int, size: int) -> int:
    end = pos + size
    if size < 0 or end > len(buf):
        raise MetadataParseError(f"needs {size} bytes at {pos}, only {len(buf) - pos} left")
    return end


# primitives --------------------------------------------------------------------------------------
def _length_reader(compact: bool, wide: bool) -> Callable[[memoryview, int], tuple[int, int]]:
    """Length prefix: -1 means null. Compact lengths are unsigned varints of length + 1."""
    if compact:
        def read_compact(buf: memoryview, pos: int) -> tuple[int, int]:
            n, pos = read_uvarint(buf, pos)
            return n - 1, pos

        return read_compact
    fixed = _INT32 if wide else _INT16

    def read_fixed(buf: memoryview, pos: int) -> tuple[int, int]:
        end = _need(buf, pos, fixed.size)
        return fixed.unpack_from(buf, pos)[0], end

    return read_fixed


def _length_writer(compact: bool, wide: bool) -> Callable[[bytearray, int], None]:
    if compact:
        return lambda out, n: _write_uvarint(out, n + 1)
    fixed = _INT32 if wide else _INT16
    return lambda out, n: out.extend(fixed.pack(n))


def _primitive(name: str) -> tuple[Reader, Writer]:
    if name in _FIXED:
        fixed = _FIXED[name]

        def read_fixed(buf: memoryview, pos: int) -> tuple[Any, int]:
            end = _need(buf, pos, fixed.size)
            return fixed.unpack_from(buf, pos)[0], end

        return read_fixed, lambda out, value: out.extend(fixed.pack(value))
    if name == "BOOLEAN":
        def read_bool(buf: memoryview, pos: int) -> tuple[Any, int]:
            _need(buf, pos, 1)
            return buf[pos] != 0, pos + 1

        return read_bool, lambda out, value: out.append(1 if value else 0)
    if name == "UUID":
        def read_uuid(buf: memoryview, pos: int) -> tuple[Any, int]:
            end = _need(buf, pos, 16)
            return uuid.UUID(bytes=bytes(buf[pos:end])), end

        return read_uuid, lambda out, value: out.extend(value.bytes)
    if name in ("VARINT", "VARLONG"):
        limit = 28 if name == "VARINT" else 63

        def read_var(buf: memoryview, pos: int) -> tuple[Any, int]:
            return _read_varlong(buf, pos, limit)

        return read_var, _write_varlong
    compact = name.startswith("COMPACT_")
    nullable = "NULLABLE_" in name
    base = name.removeprefix("COMPACT_").removeprefix("NULLABLE_")
    if base not in ("STRING", "BYTES", "RECORDS"):
        raise ValueError(f"unknown Kafka type {name}")
    text = base == "STRING"
    read_len = _length_reader(compact, wide=not text)
    write_len = _length_writer(compact, wide=not text)

    def read_blob(buf: memoryview, pos: int) -> tuple[Any, int]:
        n, pos = read_len(buf, pos)
        if n < 0:
            if not nullable:
                raise MetadataParseError(f"null {name}")
            return None, pos
        end = _need(buf, pos, n)
        raw = bytes(buf[pos:end])
        if text:
            try:
                return raw.decode("utf-8"), end
            except UnicodeDecodeError as exc:
                raise MetadataParseError(f"invalid UTF-8 in a string: {exc}") from None
        return raw, end

    def write_blob(out: bytearray, value: Any) -> None:
        if value is None:
            if not nullable:
                raise ValueError(f"{name} cannot be null")
            write_len(out, -1)
            return
        raw = value.encode("utf-8") if text else bytes(value)
        write_len(out, len(raw))
        out.extend(raw)

    return read_blob, write_blob


# compound types ----------------------------------------------------------------------------------
def _type_codec(kind: FieldType, version: int) -> tuple[Reader, Writer]:
    if isinstance(kind, str):
        return _primitive(kind)
    if isinstance(kind, StructType):
        return _struct_codec(kind, version)
    return _array_codec(kind, version)


def _struct_codec(kind: StructType, version: int) -> tuple[Reader, Writer]:
    cls = kind.cls

    def read_struct(buf: memoryview, pos: int) -> tuple[Any, int]:
        return _reader(cls, version)(buf, pos)

    def write_struct(out: bytearray, value: Any) -> None:
        _writer(cls, version)(out, value)

    if not kind.nullable:
        return read_struct, write_struct

    def read_nullable(buf: memoryview, pos: int) -> tuple[Any, int]:
        end = _need(buf, pos, 1)
        if buf[pos] == 0xFF:  # int8 -1
            return None, end
        return read_struct(buf, end)

    def write_nullable(out: bytearray, value: Any) -> None:
        if value is None:
            out.append(0xFF)
        else:
            out.append(1)
            write_struct(out, value)

    return read_nullable, write_nullable


def _array_codec(kind: ArrayType, version: int) -> tuple[Reader, Writer]:
    read_item, write_item = _type_codec(kind.element, version)
    read_len = _length_reader(kind.compact, wide=True)
    write_len = _length_writer(kind.compact, wide=True)
    nullable = kind.nullable

    def read_array(buf: memoryview, pos: int) -> tuple[Any, int]:
        n, pos = read_len(buf, pos)
        if n < 0:
            if not nullable:
                raise MetadataParseError("null array in a non-nullable field")
            return None, pos
        if n > len(buf) - pos:  # every element takes at least one byte
            raise MetadataParseError(f"array of {n} elements in {len(buf) - pos} bytes")
        items = []
        for _ in range(n):
            item, pos = read_item(buf, pos)
            items.append(item)
        return tuple(items), pos

    def write_array(out: bytearray, value: Any) -> None:
        if value is None:
            if not nullable:
                raise ValueError("array field cannot be null")
            write_len(out, -1)
            return
        write_len(out, len(value))
        for item in value:
            write_item(out, item)

    return read_array, write_array


def _layout(cls: type[Message], version: int) -> Layout:
    try:
        return cls.LAYOUTS[version]
    except KeyError:
        raise ValueError(f"{cls.__name__} has no version {version}") from None


def _defaults(cls: type[Message]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        if f.default is not dataclasses.MISSING:
            values[f.name] = f.default
        elif f.default_factory is not dataclasses.MISSING:
            values[f.name] = f.default_factory()
    return values


@cache
def _reader(cls: type[M], version: int) -> Callable[[memoryview, int], tuple[M, int]]:
    layout = _layout(cls, version)
    fields = [(name, _type_codec(kind, version)[0]) for name, kind in layout.fields]
    tagged = {tag: (name, _type_codec(kind, version)[0]) for tag, name, kind in layout.tagged}
    flexible = layout.flexible

    def read(buf: memoryview, pos: int) -> tuple[M, int]:
        values: dict[str, Any] = {}
        for name, read_field in fields:
            values[name], pos = read_field(buf, pos)
        if flexible:
            count, pos = read_uvarint(buf, pos)
            for _ in range(count):
                tag, pos = read_uvarint(buf, pos)
                size, pos = read_uvarint(buf, pos)
                end = _need(buf, pos, size)
                known = tagged.get(tag)
                if known is not None:
                    name, read_field = known
                    values[name], stop = read_field(buf[:end], pos)
                    if stop != end:
                        raise MetadataParseError(f"tagged field {tag} of {cls.__name__} overruns its size")
                pos = end
        return cls(**values), pos

    return read


@cache
def _writer(cls: type[M], version: int) -> Callable[[bytearray, M], None]:
    layout = _layout(cls, version)
    fields = [(name, _type_codec(kind, version)[1]) for name, kind in layout.fields]
    defaults = _defaults(cls)
    tagged = [(tag, name, _type_codec(kind, version)[1], defaults.get(name)) for tag, name, kind in
              sorted(layout.tagged, key=lambda t: t[0])]
    flexible = layout.flexible

    def write(out: bytearray, message: M) -> None:
        for name, write_field in fields:
            write_field(out, getattr(message, name))
        if not flexible:
            return
        present = [(tag, name, w) for tag, name, w, default in tagged if getattr(message, name) != default]
        _write_uvarint(out, len(present))
        for tag, name, write_field in present:
            body = bytearray()
            write_field(body, getattr(message, name))
            _write_uvarint(out, tag)
            _write_uvarint(out, len(body))
            out.extend(body)

    return write


def encode(message: Message, version: int, out: bytearray | None = None) -> bytearray:
    """Append `message` at `version` to `out` (a new buffer if None) and return the buffer."""
    buf = bytearray() if out is None else out
    _writer(type(message), version)(buf, message)
    return buf


def decode(cls: type[M], version: int, buf: bytes | bytearray | memoryview, pos: int = 0) -> tuple[M, int]:
    """Read one `cls` at `version` from `buf` at `pos`; returns (message, position after it)."""
    view = buf if isinstance(buf, memoryview) else memoryview(buf)
    try:
        return _reader(cls, version)(view, pos)
    except (struct.error, IndexError) as exc:
        raise MetadataParseError(f"{cls.__name__} v{version}: {exc}") from None


# Kafka's JSON converters -------------------------------------------------------------------------
def _json_value(value: Any, version: int) -> Any:
    if isinstance(value, Message):
        return _json_struct(value, version)
    if isinstance(value, uuid.UUID):
        return base64.urlsafe_b64encode(value.bytes).decode("ascii").rstrip("=")
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, tuple):
        return [_json_value(item, version) for item in value]
    return value


def _json_struct(message: Message, version: int) -> dict[str, Any]:
    # nested structs follow their parent's version, as in Kafka's generated classes
    layout = _layout(type(message), version)
    present = {name for name, _ in layout.fields} | {name for _, name, _ in layout.tagged}
    names = [f.name for f in dataclasses.fields(message) if f.name in present]  # type: ignore[arg-type]
    return {message.JSON_NAMES[name]: _json_value(getattr(message, name), version) for name in names}


def to_json(message: Message, version: int) -> dict[str, Any]:
    """The fields of `message` present in `version`, under Kafka's JSON names (camelCase)."""
    return _json_struct(message, version)
