"""ApiVersions v4 (KAFKA-17011; same body as v3) is served directly and v5 is advertised (its cluster
and node identity checks are in tests/compat/test_newest_versions.py): Kafka 4 clients need no fallback."""

from __future__ import annotations

from kio.schema.api_versions.v4.request import ApiVersionsRequest as ApiVersionsRequestV4

from strom.client.connection import BrokerConnection
from strom.protocol.errors import ErrorCode
from strom.testing.embedded import EmbeddedBroker


async def test_api_versions_v4_is_answered_in_kind(broker: EmbeddedBroker) -> None:
    host, port = broker.bootstrap_servers.split(":")
    conn = await BrokerConnection.open(host, int(port), negotiate=False)
    try:
        resp = await conn.request(
            ApiVersionsRequestV4(client_software_name="apache-kafka-java", client_software_version="4.0.0")
        )
        assert resp.error_code == ErrorCode.none
        table = {int(k.api_key): (int(k.min_version), int(k.max_version)) for k in resp.api_keys}
        assert table[18] == (0, 5)
        assert table[0][1] >= 9
        bad = await conn.request(
            ApiVersionsRequestV4(client_software_name="-bad", client_software_version="1")
        )
        assert bad.error_code == ErrorCode.invalid_request
    finally:
        await conn.close()
