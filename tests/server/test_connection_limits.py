"""Connection limits (strom.server.connection_limits) with raw sockets: with max.connections.per.ip=3 a
fourth connection from the same address is closed at once while the first three are still served, and a
slot freed by a closed connection is taken by the next one."""

from __future__ import annotations

import asyncio

from kio.schema.api_versions.v3.request import ApiVersionsRequest
from wire_helpers import connect

from strom.testing.embedded import EmbeddedBroker


async def _closed_at_once(host: str, port: int) -> bool:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        data = await asyncio.wait_for(reader.read(1), timeout=5)
        return data == b""
    finally:
        writer.close()


async def test_fourth_connection_from_one_ip_is_closed_others_served() -> None:
    async with EmbeddedBroker({"max.connections.per.ip": "3"}) as broker:
        host, port = broker.broker.advertised_address
        conns = [await connect(broker) for _ in range(3)]
        request = ApiVersionsRequest(client_software_name="t", client_software_version="1")
        for conn in conns:
            assert (await conn.request(request)).error_code == 0
        assert await _closed_at_once(host, port)
        for conn in conns:  # the first three are still served
            assert (await conn.request(request)).error_code == 0
        await conns[0].close()
        deadline = asyncio.get_running_loop().time() + 5
        while broker.broker.connection_limits.count("127.0.0.1") > 2:
            assert asyncio.get_running_loop().time() < deadline
            await asyncio.sleep(0.02)
        again = await connect(broker)
        assert (await again.request(request)).error_code == 0
        for conn in (*conns[1:], again):
            await conn.close()
