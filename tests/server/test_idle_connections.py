"""connections.max.idle.ms: the broker closes connections on which nothing moved for that long (one
periodic sweep), keeps busy ones, and never closes with the limit negative."""

from __future__ import annotations

import asyncio
import time

from kio.schema.api_versions.v3.request import ApiVersionsRequest
from kio.schema.metadata.v1.request import MetadataRequest, MetadataRequestTopic
from wire_helpers import connect, fetch_request, wait_closed

from strom.server.idle_connections import IdleConnectionSweeper, sweep_period
from strom.testing.embedded import EmbeddedBroker


class _FakeConn:
    def __init__(self, since: float | None) -> None:
        self.since = since
        self.closed = False

    def idle_since(self) -> float | None:
        return self.since

    def close_idle(self) -> None:
        self.closed = True


def test_sweep_closes_only_connections_idle_past_the_limit() -> None:
    now = [100.0]
    conns = [_FakeConn(90.0), _FakeConn(99.5), _FakeConn(None), _FakeConn(98.9)]
    sweeper = IdleConnectionSweeper(lambda: conns, 1000, lambda: now[0])
    assert sweeper.sweep() == 2
    assert [c.closed for c in conns] == [True, False, False, True]
    now[0] = 101.0
    assert sweeper.sweep() == 3  # the 99.5 one is now past the limit too (closed ones stay listed here)
    assert not IdleConnectionSweeper(lambda: conns, -1, lambda: now[0]).enabled
    assert sweep_period(600_000) == 10.0 and sweep_period(300) == 0.05


async def test_idle_connection_is_closed_and_busy_ones_stay() -> None:
    async with EmbeddedBroker({"connections.max.idle.ms": "300"}) as broker:
        idle = await connect(broker)
        active = await connect(broker)
        polling = await connect(broker)
        try:
            md = await active.request(MetadataRequest(topics=(MetadataRequestTopic(name="idle"),)))
            assert md.topics[0].name == "idle"
            # a fetch that waits longer than the idle limit for data that never comes
            fetch = asyncio.create_task(
                polling.request(
                    fetch_request(
                        "idle", {0: 0}, max_wait_ms=900, min_bytes=1 << 20, partition_max_bytes=1024
                    )
                )
            )
            start = asyncio.get_running_loop().time()
            while asyncio.get_running_loop().time() - start < 1.0:
                await active.request(
                    ApiVersionsRequest(client_software_name="t", client_software_version="1")
                )
                await asyncio.sleep(0.1)
            assert idle.closed, "a connection idle for 1 s past a 300 ms limit must be closed"
            assert not active.closed
            resp = await fetch
            assert resp.responses[0].partitions[0].error_code == 0
            assert not polling.closed
            # once quiet, the others go too
            assert await wait_closed(active, 3.0)
            assert await wait_closed(polling, 3.0)
        finally:
            for conn in (idle, active, polling):
                await conn.close()


async def test_negative_limit_keeps_idle_connections() -> None:
    async with EmbeddedBroker({"connections.max.idle.ms": "-1"}) as broker:
        conn = await connect(broker)
        try:
            await asyncio.sleep(0.4)
            assert not conn.closed
            await conn.request(ApiVersionsRequest(client_software_name="t", client_software_version="1"))
        finally:
            await conn.close()


def test_confluent_producer_reconnects_after_idle_close() -> None:
    from confluent_kafka import Consumer, Producer

    # librdkafka's own timers (e.g. the idempotent producer's PID retry) run about every 500 ms: a limit
    # that short closes its connections before it uses them, with Kafka as here
    with EmbeddedBroker({"connections.max.idle.ms": "1000"}) as broker:
        disconnects: list[str] = []
        producer = Producer(
            {
                "bootstrap.servers": broker.bootstrap_servers,
                "log_level": 7,
                "debug": "broker",
                "logger": _ListLogger(disconnects),
            }
        )
        producer.produce("idle-c", b"first")
        assert producer.flush(10) == 0
        # stay idle until the broker has closed one of librdkafka's connections (the sweep runs every
        # tenth of the limit; on a loaded machine the client's own timers may delay the quiet period)
        deadline = time.monotonic() + 20
        while not any("Disconnected" in line or "Connection closed" in line for line in disconnects):
            assert time.monotonic() < deadline, "the broker never closed an idle connection"
            producer.poll(0.5)
        producer.produce("idle-c", b"second")
        assert producer.flush(10) == 0
        consumer = Consumer(
            {
                "bootstrap.servers": broker.bootstrap_servers,
                "group.id": "idle-c",
                "auto.offset.reset": "earliest",
            }
        )
        try:
            consumer.subscribe(["idle-c"])
            values: list[bytes] = []
            for _ in range(40):
                msg = consumer.poll(0.5)
                if msg is not None and msg.error() is None:
                    values.append(msg.value())
                if len(values) == 2:
                    break
            assert values == [b"first", b"second"]
        finally:
            consumer.close()


class _ListLogger:
    """A logging.Logger stand-in collecting librdkafka's log lines."""

    def __init__(self, lines: list[str]) -> None:
        self.lines = lines

    def log(self, level: int, fmt: str, *args: object) -> None:
        self.lines.append(fmt % args if args else fmt)
