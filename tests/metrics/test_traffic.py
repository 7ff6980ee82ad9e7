"""Per-topic traffic counted at the source: only partitions whose append succeeded count (acks=0 too, an
idempotent retry too, as in Kafka), follower fetches are labelled `follower`, and the counters expose
`_total` and `_created` samples as a prometheus_client Counter does. Requests go over a raw connection to
an in-process broker; the values are read from its registry."""

from __future__ import annotations

import asyncio

from kio.schema.fetch.v4.request import FetchRequest
from prometheus_client import CollectorRegistry, generate_latest
from wire_helpers import connect, create_topic, fetch_request, produce_request

from strom.client.connection import BrokerConnection
from strom.metrics.traffic import TopicTraffic
from strom.protocol.errors import ErrorCode
from strom.protocol.records import Record, build_batch
from strom.testing import EmbeddedBroker


def _batch(n: int, **kwargs: int) -> bytes:
    return build_batch([Record(i, i, None, b"v" * 50) for i in range(n)], **kwargs)  # type: ignore[arg-type]


def _fetch(topic: str, replica_id: int, partition: int = 0) -> FetchRequest:
    return fetch_request(topic, {partition: 0}, min_bytes=0, replica_id=replica_id)


async def _open(broker: EmbeddedBroker, topic: str) -> BrokerConnection:
    conn = await connect(broker)
    await create_topic(conn, topic)
    return conn


def _value(broker: EmbeddedBroker, name: str, **labels: str) -> float | None:
    assert broker.broker is not None
    return broker.broker.metrics.registry.get_sample_value(name, labels)


async def _until(check: object, timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():  # type: ignore[operator]
        assert asyncio.get_running_loop().time() < deadline, "condition not reached"
        await asyncio.sleep(0.02)


async def test_only_appended_partitions_count() -> None:
    async with EmbeddedBroker({"metrics.port": 0, "num.partitions": 2}) as broker:
        conn = await _open(broker, "mixed")
        try:
            good = _batch(3)
            corrupt = bytearray(_batch(2))
            corrupt[-1] ^= 0xFF
            parts = {0: good, 1: bytes(corrupt), 7: _batch(4)}
            resp = await conn.request(produce_request("mixed", parts, acks=1))
            codes = {int(p.index): int(p.error_code) for p in resp.responses[0].partition_responses}
            assert codes == {
                0: ErrorCode.none,
                1: ErrorCode.corrupt_message,
                7: ErrorCode.unknown_topic_or_partition,
            }
        finally:
            await conn.close()
        assert _value(broker, "strom_messages_in_total", topic="mixed") == 3
        assert _value(broker, "strom_bytes_in_total", topic="mixed") == len(good)


async def test_acks0_produce_counts_what_was_appended() -> None:
    async with EmbeddedBroker({"metrics.port": 0}) as broker:
        conn = await _open(broker, "fire")
        try:
            first = _batch(4)
            await conn.request(produce_request("fire", {0: first}, acks=0), expect_response=False)
            await _until(lambda: _value(broker, "strom_messages_in_total", topic="fire") == 4)
            # partition 9 does not exist: the connection closes, but partition 0 was appended (as in Kafka)
            second = _batch(2)
            await conn.request(
                produce_request("fire", {0: second, 9: _batch(5)}, acks=0), expect_response=False
            )
            await _until(lambda: conn.closed)
        finally:
            await conn.close()
        assert _value(broker, "strom_messages_in_total", topic="fire") == 6
        assert _value(broker, "strom_bytes_in_total", topic="fire") == len(first) + len(second)


async def test_idempotent_retry_counts_as_in_kafka() -> None:
    """Kafka marks MessagesIn/BytesIn for every successful append, a duplicate answered from the producer
    state included."""
    async with EmbeddedBroker({"metrics.port": 0}) as broker:
        conn = await _open(broker, "retry")
        try:
            batch = _batch(3, producer_id=77, producer_epoch=0, base_sequence=0)
            for _ in range(2):
                resp = await conn.request(produce_request("retry", {0: batch}, acks=-1))
                assert resp.responses[0].partition_responses[0].error_code == ErrorCode.none
                assert resp.responses[0].partition_responses[0].base_offset == 0
        finally:
            await conn.close()
        assert _value(broker, "strom_messages_in_total", topic="retry") == 6
        assert _value(broker, "strom_bytes_in_total", topic="retry") == 2 * len(batch)


async def test_fetch_bytes_by_consumer_and_follower() -> None:
    async with EmbeddedBroker({"metrics.port": 0}) as broker:
        conn = await _open(broker, "out")
        try:
            batch = _batch(5)
            await conn.request(produce_request("out", {0: batch}, acks=1))
            # a replica id marks a follower's fetch; it reads up to the log end offset
            resp = await conn.request(_fetch("out", replica_id=2))
            # the batch as stored (its partition leader epoch stamped)
            assert len(resp.responses[0].partitions[0].records) == len(batch)
            assert _value(broker, "strom_bytes_out_total", topic="out", type="follower") == len(batch)
            assert _value(broker, "strom_bytes_out_total", topic="out", type="consumer") is None
            for _ in range(2):
                await conn.request(_fetch("out", replica_id=-1))
            # an error answer carries no records and adds nothing
            resp = await conn.request(_fetch("out", replica_id=-1, partition=5))
            assert resp.responses[0].partitions[0].error_code == ErrorCode.unknown_topic_or_partition
        finally:
            await conn.close()
        assert _value(broker, "strom_bytes_out_total", topic="out", type="consumer") == 2 * len(batch)
        assert _value(broker, "strom_bytes_out_total", topic="out", type="follower") == len(batch)


async def test_nothing_counted_without_metrics_port() -> None:
    async with EmbeddedBroker() as broker:
        assert broker.broker is not None and broker.broker.metrics.traffic is None
        conn = await _open(broker, "quiet")
        try:
            await conn.request(produce_request("quiet", {0: _batch(2)}, acks=1))
            await conn.request(_fetch("quiet", replica_id=-1))
        finally:
            await conn.close()
        assert _value(broker, "strom_messages_in_total", topic="quiet") is None
        assert _value(broker, "strom_bytes_out_total", topic="quiet", type="consumer") is None


def test_exposition_matches_a_counter() -> None:
    """The families read like prometheus_client Counters: `_total` and `_created` (the clock's time when the
    series first counted), per label set."""
    now = [1000.0]
    registry = CollectorRegistry()
    traffic = TopicTraffic(lambda: now[0])
    registry.register(traffic)
    traffic.record_produce("a", 3, 300)
    now[0] = 2000.0
    traffic.record_produce("a", 2, 100)
    traffic.record_produce("b", 1, 70)
    traffic.record_fetch("a", 400, follower=False)
    traffic.record_fetch("a", 50, follower=True)
    sample = registry.get_sample_value
    assert sample("strom_messages_in_total", {"topic": "a"}) == 5
    assert sample("strom_bytes_in_total", {"topic": "a"}) == 400
    assert sample("strom_messages_in_created", {"topic": "a"}) == 1000.0
    assert sample("strom_bytes_in_total", {"topic": "b"}) == 70
    assert sample("strom_bytes_in_created", {"topic": "b"}) == 2000.0
    assert sample("strom_bytes_out_total", {"topic": "a", "type": "consumer"}) == 400
    assert sample("strom_bytes_out_total", {"topic": "a", "type": "follower"}) == 50

    from prometheus_client import Counter

    reference = CollectorRegistry()
    Counter(
        "strom_bytes_out", "Record batch bytes sent in fetch responses", ["topic", "type"], registry=reference
    )
    ours = generate_latest(registry).decode()
    for line in generate_latest(reference).decode().splitlines():
        assert line in ours  # the same HELP and TYPE lines
