"""Hand-written encoding of Kafka primitive types, for the hot responses (Produce, Fetch, Metadata).

kio serializes in pure Python, several times slower than building the bytes with `struct` directly; the
encoders that use these helpers are checked byte for byte against kio's writer in the tests. Flexible
versions (KIP-482) use compact strings/arrays (unsigned varint length + 1) and end each struct with a
tagged-field section, empty unless the caller writes tags.
"""

from __future__ import annotations

import struct

__all__ = [
    "I16",
    "I32",
    "I64",
    "array_len",
    "nullable_string",
    "string",
    "uvarint",
]

I8 = struct.Struct(">b")
I16 = struct.Struct(">h")
I32 = struct.Struct(">i")
I64 = struct.Struct(">q")

EMPTY_TAGS = b"\x00"


def uvarint(value: int) -> bytes:
    if value < 0x80:
        return bytes((value,))
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


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


def bytes_len(length: int | None, flexible: bool) -> bytes:
    """Length prefix of a bytes/records field; None is null."""
    if length is None:
        return b"\x00" if flexible else b"\xff\xff\xff\xff"
    return uvarint(length + 1) if flexible else I32.pack(length)
