"""Kafka primitive types on the wire: hand-written encoders for the hot responses (Produce, Fetch,
Metadata), and the unsigned-varint and tagged-field readers every decoder shares.

kio serializes in pure Python, several times slower than building the bytes with `struct` directly; the
encoders that use these helpers are checked byte for byte against kio's writer in the tests. Flexible
versions (KIP-482) use compact strings/arrays (unsigned varint length + 1) and end each struct with a
tagged-field section, empty unless the caller writes tags. A receiver skips tagged fields it does not know.

Sans-io. The readers check every length against the buffer and raise `WireFormatError`; callers map it to
what their edge needs (the server closes the connection on a bad frame header, a bad request body is
answered as INVALID_REQUEST, the client fails the one request).
"""

from __future__ import annotations

import struct

from strom.protocol.errors import InvalidRequestError

__all__ = [
    "EMPTY_TAGS",
    "I16",
    "I32",
    "I64",
    "WireFormatError",
    "array_len",
    "bytes_len",
    "int32_array",
    "nullable_string",
    "read_uvarint",
    "skip_tagged_fields",
    "string",
    "uvarint",
]

I8 = struct.Struct(">b")
I16 = struct.Struct(">h")
I32 = struct.Struct(">i")
I64 = struct.Struct(">q")

EMPTY_TAGS = b"\x00"


class WireFormatError(InvalidRequestError):
    """Bytes that do not decode as the Kafka primitive they should hold (truncated, impossible length)."""


def uvarint(value: int) -> bytes:
    if value < 0x80:
        return bytes((value,))
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def read_uvarint(buf: memoryview | bytes, pos: int) -> tuple[int, int]:
    """Unsigned varint at `pos`; returns (value, new position). At most 5 bytes (a 32-bit value)."""
    result = 0
    shift = 0
    end = len(buf)
    while True:
        if pos >= end:
            raise WireFormatError("truncated varint")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift > 28:
            raise WireFormatError("varint too long")


def read_compact_string(buf: memoryview | bytes, pos: int) -> tuple[str | None, int]:
    """A flexible-version (nullable) string at `pos`: uvarint length + 1 (0 is null), then UTF-8."""
    size, pos = read_uvarint(buf, pos)
    if size == 0:
        return None, pos
    end = pos + size - 1
    if end > len(buf):
        raise WireFormatError("string runs past the end of the buffer")
    try:
        return bytes(buf[pos:end]).decode(), end
    except UnicodeDecodeError:
        raise WireFormatError("string is not UTF-8") from None


def skip_tagged_fields(buf: memoryview | bytes, pos: int) -> int:
    """Skip a tagged-field section (count, then tag/size/bytes each); returns the position after it."""
    count, pos = read_uvarint(buf, pos)
    end = len(buf)
    for _ in range(count):
        _tag, pos = read_uvarint(buf, pos)
        size, pos = read_uvarint(buf, pos)
        if size > end - pos:
            raise WireFormatError("tagged field runs past the end of the buffer")
        pos += size
    return pos


def string(value: str, flexible: bool) -> bytes:
    data = value.encode("utf-8")
    if flexible:
        return uvarint(len(data) + 1) + data
    return I16.pack(len(data)) + data


def nullable_string(value: str | None, flexible: bool) -> bytes:
    if value is None:
        return b"\x00" if flexible else b"\xff\xff"
    return string(value, flexible)


def array_len(count: int | None, flexible: bool) -> bytes:
    """Length prefix of an array; None is the null array."""
    if count is None:
        return b"\x00" if flexible else b"\xff\xff\xff\xff"
    return uvarint(count + 1) if flexible else I32.pack(count)


def int32_array(values: tuple[int, ...] | list[int], flexible: bool) -> bytes:
    """A non-null array of int32 (replica ids and the like), length prefix included."""
    n = len(values)
    if flexible:
        return uvarint(n + 1) + struct.pack(f">{n}i", *values)
    return struct.pack(f">i{n}i", n, *values)


def bytes_len(length: int | None, flexible: bool) -> bytes:
    """Length prefix of a bytes/records field; None is null."""
    if length is None:
        return b"\x00" if flexible else b"\xff\xff\xff\xff"
    return uvarint(length + 1) if flexible else I32.pack(length)
