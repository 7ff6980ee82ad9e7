"""Throttled responses of the handlers that encode by hand, on an embedded broker (Kafka's
KafkaApis.handleFetchRequest, handleProduceRequest, sendResponseMaybeThrottle; KIP-124, KIP-219, KIP-227):

- a consumer's fetch over consumer_byte_rate is answered empty (error NONE, no topics, the session's id),
  its bytes are taken back from the quota, and its incremental session keeps what it last told the
  client, so the held-back records come with the next fetch the quota allows;
- under request_percentage, Produce, Fetch and Metadata answer the request-time throttle in
  throttle_time_ms (and a throttled fetch is empty too), as do the other responses encoded by hand
  (DeleteGroups v3 here)."""

from __future__ import annotations

import asyncio
import datetime
import struct
import uuid

from kio.schema.fetch.v4.request import FetchPartition as FetchPartitionV4
from kio.schema.fetch.v4.request import FetchRequest as FetchRequestV4
from kio.schema.fetch.v4.request import FetchTopic as FetchTopicV4
from kio.schema.metadata.v4.request import MetadataRequest, MetadataRequestTopic
from kio.static.primitive import i8, i32, i32Timedelta, i64
from wire_helpers import create_topic, produce_request, session_fetch

from strom.client.connection import BrokerConnection
from strom.protocol.errors import ErrorCode
from strom.protocol.records import Record, build_batch
from strom.security.quotas.entities import CONSUMER_BYTE_RATE, REQUEST_PERCENTAGE, QuotaEntity
from strom.testing.embedded import EmbeddedBroker

VALUE = b"v" * 3000


async def _open(embedded: EmbeddedBroker, client_id: str) -> BrokerConnection:
    host, port = embedded.bootstrap_servers.split(":")
    return await BrokerConnection.open(host, int(port), client_id=client_id)


def _ms(response: object) -> int:
    return round(response.throttle_time.total_seconds() * 1000)  # type: ignore[attr-defined]


async def _produce(conn: BrokerConnection, topic: str, start: int, count: int) -> None:
    for i in range(start, start + count):
        batch = build_batch([Record(0, 0, None, VALUE)], base_offset=i)
        resp = await conn.request(produce_request(topic, {0: batch}))
        assert resp.responses[0].partition_responses[0].error_code == ErrorCode.none


async def test_throttled_fetch_is_empty_gives_its_bytes_back_and_keeps_the_session() -> None:
    client, topic = f"c-{uuid.uuid4().hex[:6]}", "throttled"
    async with EmbeddedBroker() as embedded:
        broker = embedded.broker
        assert broker is not None
        admin = await _open(embedded, "admin")
        first = await _open(embedded, client)
        second = await _open(embedded, client)
        try:
            await create_topic(admin, topic)
            await _produce(admin, topic, 0, 3)
            # 1000 B/s over a fresh 10 s window: the first fetch (some 9.3 KB) passes, a second would not
            broker.quotas.load({QuotaEntity.of(client_id=client): {CONSUMER_BYTE_RATE: 1000.0}})
            full = await first.request(session_fetch(topic, 0, 0, 0))
            assert (full.error_code, _ms(full)) == (ErrorCode.none, 0)
            session_id = int(full.session_id)
            charged = len(full.responses[0].partitions[0].records)
            assert 3 * len(VALUE) < charged < 10_000
            await _produce(admin, topic, 3, 3)
            throttled = await first.request(session_fetch(topic, 3, session_id, 1))
            assert throttled.error_code == ErrorCode.none
            assert int(throttled.session_id) == session_id
            assert throttled.responses == ()
            assert 5000 < _ms(throttled) <= 11_000
            # the bytes went back: the budget holds only the first response's
            rate = broker.quotas._rates[(CONSUMER_BYTE_RATE, "", client)][0]
            assert charged < rate.measure(broker.quotas._now_ms()) * 10 < charged + 200
            # the session moved to the next epoch but still holds what it last told the client
            session = broker.fetch_sessions.get(session_id)
            assert session is not None and session.epoch == 2
            cached = next(iter(session.partitions.values()))
            assert (cached.fetch_offset, cached.high_watermark) == (3, 3)
            # a larger quota (the first connection stays muted): the held-back records come
            broker.quotas.load({QuotaEntity.of(client_id=client): {CONSUMER_BYTE_RATE: 1e6}})
            after = await second.request(session_fetch(topic, 3, session_id, 2))
            assert (after.error_code, _ms(after), int(after.session_id)) == (ErrorCode.none, 0, session_id)
            part = after.responses[0].partitions[0]
            assert int(part.high_watermark) == 6
            assert bytes(part.records)[:8] == (3).to_bytes(8, "big")
        finally:
            for conn in (admin, first, second):
                await conn.close()


async def test_request_percentage_throttles_produce_fetch_and_metadata() -> None:
    client, topic = f"r-{uuid.uuid4().hex[:6]}", "busy"
    async with EmbeddedBroker() as embedded:
        broker = embedded.broker
        assert broker is not None
        admin = await _open(embedded, "admin")
        try:
            await create_topic(admin, topic)
            await _produce(admin, topic, 0, 1)
        finally:
            await admin.close()
        # any handler time is far over this: each request throttles for the cap, one window (1 s)
        broker.quotas.load({QuotaEntity.of(client_id=client): {REQUEST_PERCENTAGE: 1e-6}})
        requests: list[object] = [
            MetadataRequest(topics=(MetadataRequestTopic(name=topic),), allow_auto_topic_creation=False),
            produce_request(topic, {0: build_batch([Record(0, 0, None, b"x")])}, acks=1),
            FetchRequestV4(
                replica_id=i32(-1),  # type: ignore[arg-type]
                max_wait=i32Timedelta.parse(datetime.timedelta(0)),
                min_bytes=i32(1),
                max_bytes=i32(1 << 20),
                isolation_level=i8(0),
                topics=(
                    FetchTopicV4(
                        topic=topic,
                        partitions=(
                            FetchPartitionV4(
                                partition=i32(0), fetch_offset=i64(0), partition_max_bytes=i32(1 << 20)
                            ),
                        ),
                    ),
                ),
            ),
        ]
        for request in requests:
            conn = await _open(embedded, client)  # a fresh connection each: a throttled one is muted
            try:
                response = await conn.request(request)
            finally:
                await conn.close()
            assert _ms(response) == 1000, (type(request).__name__, response)
            if isinstance(request, FetchRequestV4):
                assert response.responses == ()  # type: ignore[attr-defined]


async def test_request_percentage_reaches_a_response_encoded_by_hand() -> None:
    client = f"d-{uuid.uuid4().hex[:6]}"
    async with EmbeddedBroker() as embedded:
        broker = embedded.broker
        assert broker is not None
        broker.quotas.load({QuotaEntity.of(client_id=client): {REQUEST_PERCENTAGE: 1e-6}})
        host, port = embedded.bootstrap_servers.split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        try:
            # DeleteGroups v3 (kio has no v3): header v2, then a compact array of one compact string
            name = client.encode()
            header = struct.pack(">hhih", 42, 3, 7, len(name)) + name + b"\x00"
            body = b"\x02" + bytes([len(b"nobody") + 1]) + b"nobody" + b"\x00"
            writer.write(struct.pack(">i", len(header) + len(body)) + header + body)
            await writer.drain()
            size = struct.unpack(">i", await reader.readexactly(4))[0]
            frame = await reader.readexactly(size)
        finally:
            writer.close()
        correlation, _tags, throttle = struct.unpack_from(">iBi", frame)
        assert (correlation, throttle) == (7, 1000)
