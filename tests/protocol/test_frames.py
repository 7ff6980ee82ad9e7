"""Request header decoding, response headers, tagged-field skipping, and the unknown-tag stripper."""

from __future__ import annotations

import io
import struct

import pytest
from kio.schema.metadata.v12.request import MetadataRequest, MetadataRequestTopic
from kio.serial import entity_writer

from strom.protocol.frames import FrameError, decode_request_header, encode_response_header
from strom.protocol.registry import decode_with_kio
from strom.protocol.tagged import strip_unknown_tags
from strom.protocol.wire import WireFormatError, read_uvarint, skip_tagged_fields, uvarint


def _header(api_key: int, version: int, corr: int, client_id: str | None) -> bytes:
    out = struct.pack(">hhi", api_key, version, corr)
    if client_id is None:
        return out + struct.pack(">h", -1)
    data = client_id.encode()
    return out + struct.pack(">h", len(data)) + data


def test_header_v1_and_v2() -> None:
    frame = _header(3, 1, 77, "cli") + b"BODY"
    header, pos = decode_request_header(frame, flexible=False)
    assert (header.api_key, header.api_version, header.correlation_id, header.client_id) == (3, 1, 77, "cli")
    assert frame[pos:] == b"BODY"
    # v2: a tagged-field section with one unknown tag (tag 5, 3 bytes) is skipped
    frame2 = _header(3, 12, 78, None) + b"\x01\x05\x03abc" + b"REST"
    header2, pos2 = decode_request_header(frame2, flexible=True)
    assert header2.client_id is None and header2.header_version == 2
    assert frame2[pos2:] == b"REST"


@pytest.mark.parametrize(
    "frame",
    [
        b"\x00\x03\x00",  # shorter than api key + version + correlation id
        struct.pack(">hhi", 3, 1, 1) + b"\x00",  # truncated client id length
        struct.pack(">hhih", 3, 1, 1, 50) + b"abc",  # client id longer than the frame
    ],
)
def test_truncated_headers_raise(frame: bytes) -> None:
    with pytest.raises(FrameError):
        decode_request_header(frame, flexible=False)


def test_tagged_field_past_end_raises() -> None:
    with pytest.raises(WireFormatError):
        skip_tagged_fields(b"\x01\x05\x7fab", 0)
    # in a request header the same fault is a frame error: the server closes the connection
    with pytest.raises(FrameError):
        decode_request_header(_header(3, 12, 1, None) + b"\x01\x05\x7fab", flexible=True)


def test_varint_roundtrip_and_limits() -> None:
    for value in (0, 1, 127, 128, 300, 2**21, 2**31 - 1):
        encoded = uvarint(value)
        assert read_uvarint(encoded, 0) == (value, len(encoded))
    with pytest.raises(WireFormatError):
        read_uvarint(b"\xff\xff\xff\xff\xff\xff", 0)
    with pytest.raises(WireFormatError):
        read_uvarint(b"\x80", 0)


def test_response_headers() -> None:
    assert encode_response_header(5, 0) == b"\x00\x00\x00\x05"
    assert encode_response_header(5, 1) == b"\x00\x00\x00\x05\x00"


def _metadata_body() -> bytes:
    req = MetadataRequest(
        topics=(MetadataRequestTopic(topic_id=__import__("uuid").UUID(int=0), name="t1"),),
        allow_auto_topic_creation=True,
        include_topic_authorized_operations=False,
    )
    buf = io.BytesIO()
    entity_writer(MetadataRequest)(buf, req)
    return buf.getvalue()


def test_unknown_tagged_fields_are_skipped() -> None:
    body = _metadata_body()
    assert body.endswith(b"\x00")
    # add an unknown tag (99) to the top-level struct and to the nested topic struct
    top = body[:-1] + b"\x01" + uvarint(99) + b"\x02hi"
    parsed = decode_with_kio(MetadataRequest, top)
    assert parsed.topics[0].name == "t1"
    stripped = strip_unknown_tags(MetadataRequest, top)
    assert stripped == body


def test_unknown_tag_in_nested_struct() -> None:
    body = _metadata_body()
    # layout: compact array len (1 byte) | uuid 16 | compact string "t1" (3 bytes) | topic tags | ...
    nested_tags_at = 1 + 16 + 3
    assert body[nested_tags_at] == 0
    hacked = body[:nested_tags_at] + b"\x01\x07\x01z" + body[nested_tags_at + 1 :]
    parsed = decode_with_kio(MetadataRequest, hacked)
    assert parsed.topics[0].name == "t1"
    assert parsed.allow_auto_topic_creation is True
