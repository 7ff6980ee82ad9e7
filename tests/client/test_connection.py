"""BrokerConnection framing: request header encoding and a malformed response header failing one request."""

from __future__ import annotations

import asyncio
import struct

import pytest
from kio.schema.metadata.v12.request import MetadataRequest

from strom.client.connection import BrokerConnection, encode_request_header
from strom.protocol.frames import decode_request_header
from strom.protocol.wire import WireFormatError


def test_request_header_round_trips_through_the_server_decoder() -> None:
    for client_id, flexible in (("cli", False), (None, True), ("ünï", True)):
        raw = encode_request_header(3, 12, 42, client_id, flexible)
        header, pos = decode_request_header(raw + b"BODY", flexible=flexible)
        assert (header.api_key, header.api_version, header.correlation_id) == (3, 12, 42)
        assert header.client_id == client_id
        assert pos == len(raw)


async def test_bad_response_tagged_fields_fail_only_that_request() -> None:
    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        (size,) = struct.unpack(">i", await reader.readexactly(4))
        frame = await reader.readexactly(size)
        (correlation_id,) = struct.unpack_from(">i", frame, 4)
        # header v1 whose tagged section claims 127 bytes that are not there
        body = struct.pack(">i", correlation_id) + b"\x01\x05\x7f"
        writer.write(struct.pack(">i", len(body)) + body)
        await writer.drain()
        await reader.read()  # hold the connection until the client leaves
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        conn = await BrokerConnection.open("127.0.0.1", port, negotiate=False)
        try:
            request = MetadataRequest(
                topics=(), allow_auto_topic_creation=False, include_topic_authorized_operations=False
            )
            with pytest.raises(WireFormatError):
                await conn.request(request, timeout=5)
            assert not conn.closed
        finally:
            await conn.close()
    finally:
        server.close()
        await server.wait_closed()
