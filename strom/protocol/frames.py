"""Kafka wire framing: request headers v0-v2, response headers v0-v1, and the body pieces a response is
made of.

Every Kafka message is a 4-byte big-endian size followed by that many bytes. A request starts with a
header: v0 (api_key int16, api_version int16, correlation_id int32), v1 adds client_id (a nullable
*legacy* string even in flexible versions), v2 adds a tagged-field section (KIP-482) that we skip.
A response starts with correlation_id (header v0); flexible versions add an empty tagged-field section
(header v1), except ApiVersions, whose response header is always v0 so old clients can read it.

Sans-io: no sockets, no files opened. `FileSlice` only names a region of an already open file so the
server can send it with sendfile.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import BinaryIO

from strom.protocol.errors import InvalidRequestError
from strom.protocol.wire import EMPTY_TAGS, I16, I32, WireFormatError, skip_tagged_fields

__all__ = [
    "FRAME_SIZE",
    "CloseConnection",
    "FileSlice",
    "FrameError",
    "RawResponse",
    "RequestHeader",
    "decode_request_header",
    "encode_response_header",
    "peek_api",
]

FRAME_SIZE = I32
_HEADER_V0 = struct.Struct(">hhi")


class FrameError(InvalidRequestError):
    """A request frame that cannot be decoded (truncated, impossible lengths); the connection closes."""


@dataclass(frozen=True, slots=True)
class RequestHeader:
    api_key: int
    api_version: int
    correlation_id: int
    client_id: str | None
    header_version: int


@dataclass(frozen=True, slots=True)
class FileSlice:
    """`length` bytes of an open file starting at `position`, sent with sendfile (or pread)."""

    file: BinaryIO
    position: int
    length: int


@dataclass(slots=True)
class RawResponse:
    """A response body (everything after the response header) as pre-encoded pieces."""

    chunks: list[bytes | bytearray | memoryview | FileSlice]
    leading_throttle: bool = False
    """The body starts with throttle_time_ms (an i32, in the first chunk): the connection writes a
    request_percentage throttle there when it is longer (KIP-124, strom.server.connection)."""

    @property
    def size(self) -> int:
        return sum(c.length if isinstance(c, FileSlice) else len(c) for c in self.chunks)


@dataclass(frozen=True, slots=True)
class CloseConnection:
    """A handler's answer that sends no response and closes the connection once the responses to the
    requests before it are written (Kafka closes on a failed acks=0 produce)."""

    reason: str


def decode_request_header(
    frame: memoryview | bytes, flexible: bool | None = None
) -> tuple[RequestHeader, int]:
    """Decode the request header at the start of `frame` (the bytes after the size prefix).

    `flexible` says whether (api_key, api_version) uses flexible versions (header v2); callers that do not
    know yet can call `peek_api(frame)` first. Returns the header and the offset where the body starts.
    """
    if len(frame) < _HEADER_V0.size:
        raise FrameError("frame shorter than a request header")
    api_key, api_version, correlation_id = _HEADER_V0.unpack_from(frame, 0)
    pos = _HEADER_V0.size
    # ControlledShutdown v0 is the only request with header v0; Strom does not serve it, so every
    # request we decode carries client_id.
    if len(frame) < pos + 2:
        raise FrameError("truncated client_id")
    (length,) = I16.unpack_from(frame, pos)
    pos += 2
    client_id: str | None
    if length < 0:
        client_id = None
    else:
        if length > len(frame) - pos:
            raise FrameError("client_id runs past the frame")
        client_id = bytes(frame[pos : pos + length]).decode("utf-8", errors="replace")
        pos += length
    header_version = 1
    if flexible:
        try:
            pos = skip_tagged_fields(frame, pos)
        except WireFormatError as exc:
            raise FrameError(f"request header: {exc}") from None
        header_version = 2
    return RequestHeader(api_key, api_version, correlation_id, client_id, header_version), pos


def peek_api(frame: memoryview | bytes) -> tuple[int, int, int]:
    """(api_key, api_version, correlation_id) of a request frame, without decoding the rest."""
    if len(frame) < _HEADER_V0.size:
        raise FrameError("frame shorter than a request header")
    return _HEADER_V0.unpack_from(frame, 0)


def encode_response_header(correlation_id: int, header_version: int) -> bytes:
    """Response header v0 (correlation id) or v1 (plus an empty tagged-field section)."""
    if header_version == 0:
        return I32.pack(correlation_id)
    return I32.pack(correlation_id) + EMPTY_TAGS
