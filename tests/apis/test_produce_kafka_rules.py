"""Produce rules a client sees on the wire, checked over a raw connection: a failed acks=0 produce closes
the connection (after the responses to earlier requests), a successful one does not."""

from __future__ import annotations

import asyncio
import datetime

import pytest
from kio.schema.fetch.v4.request import FetchPartition, FetchRequest, FetchTopic
from kio.schema.metadata.v1.request import MetadataRequest, MetadataRequestTopic
from kio.schema.produce.v9.request import PartitionProduceData, ProduceRequest, TopicProduceData
from kio.static.primitive import i8, i16, i32, i32Timedelta, i64

from strom.client.connection import BrokerConnection, ConnectionClosedError
from strom.protocol.errors import ErrorCode
from strom.protocol.records import Record, build_batch
from strom.testing.embedded import EmbeddedBroker


def _ms(value: int) -> i32Timedelta:
    return i32Timedelta.parse(datetime.timedelta(milliseconds=value))


async def _connect(broker: EmbeddedBroker) -> BrokerConnection:
    host, port = broker.bootstrap_servers.split(":")
    return await BrokerConnection.open(host, int(port))


async def _create(conn: BrokerConnection, topic: str) -> None:
    resp = await conn.request(MetadataRequest(topics=(MetadataRequestTopic(name=topic),)))
    assert resp.topics[0].error_code in (ErrorCode.none, ErrorCode.leader_not_available)


def _produce(topic: str, batches: list[bytes], acks: int = -1, partition: int = 0) -> ProduceRequest:
    return ProduceRequest(
        transactional_id=None,
        acks=i16(acks),
        timeout=_ms(5000),
        topic_data=(
            TopicProduceData(
                name=topic,
                partition_data=(PartitionProduceData(index=i32(partition), records=b"".join(batches)),),
            ),
        ),
    )


def _records(n: int, start: int = 0) -> list[Record]:
    return [Record(i, i, f"k{start + i}".encode(), f"v{start + i}".encode()) for i in range(n)]


def _slow_fetch(topic: str, offset: int, wait_ms: int) -> FetchRequest:
    return FetchRequest(
        replica_id=i32(-1),
        max_wait=_ms(wait_ms),
        min_bytes=i32(1 << 20),
        max_bytes=i32(1 << 20),
        isolation_level=i8(0),
        topics=(
            FetchTopic(
                topic=topic,
                partitions=(
                    FetchPartition(
                        partition=i32(0), fetch_offset=i64(offset), partition_max_bytes=i32(1 << 20)
                    ),
                ),
            ),
        ),
    )


async def _wait_closed(conn: BrokerConnection, timeout: float = 5.0) -> bool:
    deadline = asyncio.get_running_loop().time() + timeout
    while not conn.closed and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.02)
    return conn.closed


async def test_failed_acks0_produce_closes_after_earlier_responses(broker: EmbeddedBroker) -> None:
    conn = await _connect(broker)
    try:
        await _create(conn, "a0")
        # a fetch that waits, then a failing acks=0 produce (unknown partition) on the same connection
        fetch = asyncio.create_task(conn.request(_slow_fetch("a0", 0, 300)))
        await asyncio.sleep(0.05)
        await conn.request(
            _produce("a0", [build_batch(_records(1))], acks=0, partition=9), expect_response=False
        )
        fetched = await fetch
        assert fetched.responses[0].partitions[0].error_code == ErrorCode.none
        assert await _wait_closed(conn), "a failed acks=0 produce must close the connection"
        with pytest.raises(ConnectionClosedError):
            await conn.request(MetadataRequest(topics=(MetadataRequestTopic(name="a0"),)))
    finally:
        await conn.close()


async def test_corrupt_acks0_produce_closes(broker: EmbeddedBroker) -> None:
    conn = await _connect(broker)
    try:
        await _create(conn, "a0c")
        bad = bytearray(build_batch(_records(2)))
        bad[-1] ^= 0xFF
        await conn.request(_produce("a0c", [bytes(bad)], acks=0), expect_response=False)
        assert await _wait_closed(conn)
    finally:
        await conn.close()


async def test_successful_acks0_produce_keeps_connection(broker: EmbeddedBroker) -> None:
    conn = await _connect(broker)
    try:
        await _create(conn, "a0ok")
        await conn.request(_produce("a0ok", [build_batch(_records(2))], acks=0), expect_response=False)
        resp = await conn.request(MetadataRequest(topics=(MetadataRequestTopic(name="a0ok"),)))
        assert resp.topics[0].error_code == ErrorCode.none
        assert not conn.closed
        fetched = await conn.request(_slow_fetch("a0ok", 0, 0))
        assert fetched.responses[0].partitions[0].high_watermark == 2
    finally:
        await conn.close()
