"""Drop unknown tagged fields from a flexible message so kio can parse it (KIP-482).

KIP-482 says a receiver skips tagged fields it does not know. kio 0.6.5's native reader raises KeyError
instead. This module walks a message body with the same schema kio uses (the kio dataclass fields and
their `kafka_type` metadata) and copies it, leaving out every tag the schema does not declare. It is only
used on the slow path, after kio has refused a body. Every length read is checked against the buffer, so a
hostile body cannot make it allocate more than the body itself.
"""

from __future__ import annotations

from dataclasses import fields, is_dataclass
from functools import lru_cache
from types import NoneType, UnionType
from typing import Any, get_args, get_origin

from strom.protocol.errors import InvalidRequestError
from strom.protocol.wire import I16, I32, read_uvarint, uvarint

__all__ = ["strip_unknown_tags"]

_FIXED = {
    "int8": 1,
    "uint8": 1,
    "bool": 1,
    "int16": 2,
    "uint16": 2,
    "error_code": 2,
    "int32": 4,
    "uint32": 4,
    "timedelta_i32": 4,
    "int64": 8,
    "uint64": 8,
    "float64": 8,
    "timedelta_i64": 8,
    "datetime_i64": 8,
    "uuid": 16,
}


def _need(buf: memoryview, pos: int, size: int) -> int:
    if size < 0 or pos + size > len(buf):
        raise InvalidRequestError("field runs past the end of the request")
    return pos + size


def _unwrap(tp: Any) -> tuple[Any, bool, bool]:
    """(inner type, is_array, is_optional) of a dataclass field type."""
    optional = False
    if get_origin(tp) is UnionType:
        args = [a for a in get_args(tp) if a is not NoneType]
        optional = True
        tp = args[0]
    if get_origin(tp) is tuple:
        inner = get_args(tp)[0]
        if get_origin(inner) is UnionType:
            inner = next(a for a in get_args(inner) if a is not NoneType)
        return inner, True, optional
    return tp, False, optional


@lru_cache(maxsize=512)
def _layout(cls: type) -> tuple[list[tuple[str, Any, bool, bool]], frozenset[int]]:
    plain: list[tuple[str, Any, bool, bool]] = []
    tags: set[int] = set()
    for f in fields(cls):
        if "tag" in f.metadata:
            tags.add(int(f.metadata["tag"]))
            continue
        inner, is_array, optional = _unwrap(f.type)
        kind = inner if is_dataclass(inner) else f.metadata.get("kafka_type", "")
        plain.append((f.name, kind, is_array, optional))
    return plain, frozenset(tags)


def _skip_primitive(kind: str, flexible: bool, buf: memoryview, pos: int) -> int:
    size = _FIXED.get(kind)
    if size is not None:
        return _need(buf, pos, size)
    if kind in ("string", "bytes", "records"):
        if flexible:
            length, pos = read_uvarint(buf, pos)
            return pos if length == 0 else _need(buf, pos, length - 1)
        if kind == "string":
            _need(buf, pos, 2)
            (length,) = I16.unpack_from(buf, pos)
            pos += 2
        else:
            _need(buf, pos, 4)
            (length,) = I32.unpack_from(buf, pos)
            pos += 4
        return pos if length < 0 else _need(buf, pos, length)
    raise InvalidRequestError(f"unsupported field type {kind!r}")


def _copy_entity(cls: type, buf: memoryview, pos: int, out: bytearray) -> int:
    flexible = bool(cls.__flexible__)
    plain, known_tags = _layout(cls)
    for _name, kind, is_array, _optional in plain:
        if is_array:
            if flexible:
                start = pos
                count, pos = read_uvarint(buf, pos)
                out += buf[start:pos]
                count -= 1
            else:
                _need(buf, pos, 4)
                (count,) = I32.unpack_from(buf, pos)
                out += buf[pos : pos + 4]
                pos += 4
            if count > len(buf) - pos:
                raise InvalidRequestError("array longer than the request")
            for _ in range(max(count, 0)):
                pos = _copy_value(kind, flexible, buf, pos, out)
        else:
            pos = _copy_value(kind, flexible, buf, pos, out)
    if not flexible:
        return pos
    count, pos = read_uvarint(buf, pos)
    kept: list[bytes] = []
    for _ in range(count):
        start = pos
        tag, pos = read_uvarint(buf, pos)
        size, pos = read_uvarint(buf, pos)
        pos = _need(buf, pos, size)
        if tag in known_tags:
            kept.append(bytes(buf[start:pos]))
    out += uvarint(len(kept))
    for item in kept:
        out += item
    return pos


def _copy_value(kind: Any, flexible: bool, buf: memoryview, pos: int, out: bytearray) -> int:
    if isinstance(kind, type):
        return _copy_entity(kind, buf, pos, out)
    end = _skip_primitive(kind, flexible, buf, pos)
    out += buf[pos:end]
    return end


def strip_unknown_tags(cls: type, body: memoryview | bytes) -> bytes:
    """A copy of `body` (a `cls` message) without the tagged fields `cls` does not declare."""
    view = memoryview(body)
    out = bytearray()
    end = _copy_entity(cls, view, 0, out)
    out += view[end:]
    return bytes(out)
