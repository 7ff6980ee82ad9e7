"""Wire helpers shared by the streams-group APIs (KIP-1071, api keys 88, 89 and 93).

Every version of these APIs is flexible (KIP-482). kio knows only version 0 of StreamsGroupHeartbeat and
StreamsGroupDescribe, so the handlers read requests with kio's v0 schema where the layout did not change
(StreamsGroupHeartbeat's request is the same in v0 and v1) or with `Reader`, and write every response with
`Writer` in the layout of the version asked for.
"""

from __future__ import annotations

from strom.protocol.errors import InvalidRequestError
from strom.protocol.wire import EMPTY_TAGS, I8, I16, I32, I64, array_len, nullable_string, string, uvarint

_U16 = I16.__class__(">H")


class Writer:
    def __init__(self) -> None:
        self.out = bytearray()

    def i8(self, v: int) -> Writer:
        self.out += I8.pack(v)
        return self

    def i16(self, v: int) -> Writer:
        self.out += I16.pack(v)
        return self

    def u16(self, v: int) -> Writer:
        self.out += _U16.pack(v)
        return self

    def i32(self, v: int) -> Writer:
        self.out += I32.pack(v)
        return self

    def i64(self, v: int) -> Writer:
        self.out += I64.pack(v)
        return self

    def bool(self, v: bool) -> Writer:
        self.out += b"\x01" if v else b"\x00"
        return self

    def str(self, v: str) -> Writer:
        self.out += string(v, True)
        return self

    def nstr(self, v: str | None) -> Writer:
        self.out += nullable_string(v, True)
        return self

    def count(self, n: int | None) -> Writer:
        """A compact array length; None is a null array."""
        self.out += array_len(n, True)
        return self

    def strs(self, values: list[str] | tuple[str, ...]) -> Writer:
        self.count(len(values))
        for v in values:
            self.str(v)
        return self

    def i32s(self, values: list[int] | tuple[int, ...]) -> Writer:
        self.count(len(values))
        for v in values:
            self.i32(v)
        return self

    def tags(self) -> Writer:
        self.out += EMPTY_TAGS
        return self

    def bytes(self) -> bytes:
        return bytes(self.out)


class Reader:
    def __init__(self, buf: memoryview | bytes) -> None:
        self.buf = bytes(buf)
        self.pos = 0

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.buf):
            raise InvalidRequestError("truncated request")
        out = self.buf[self.pos : self.pos + n]
        self.pos += n
        return out

    def uvarint(self) -> int:
        shift = result = 0
        while True:
            b = self.take(1)[0]
            result |= (b & 0x7F) << shift
            if not b & 0x80:
                return result
            shift += 7
            if shift > 28:
                raise InvalidRequestError("varint too long")

    def bool(self) -> bool:
        return self.take(1) != b"\x00"

    def i8(self) -> int:
        return int(I8.unpack(self.take(1))[0])

    def i32(self) -> int:
        return int(I32.unpack(self.take(4))[0])

    def str(self) -> str:
        n = self.uvarint() - 1
        if n < 0:
            raise InvalidRequestError("null string")
        return self.take(n).decode()

    def nstr(self) -> str | None:
        n = self.uvarint() - 1
        return None if n < 0 else self.take(n).decode()

    def count(self) -> int:
        return max(self.uvarint() - 1, 0)

    def skip_tags(self) -> None:
        for _ in range(self.uvarint()):
            self.uvarint()
            self.take(self.uvarint())


__all__ = ["Reader", "Writer", "uvarint"]
