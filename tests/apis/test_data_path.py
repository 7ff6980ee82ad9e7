"""Produce, Fetch, ListOffsets, Metadata, InitProducerId and idempotence over the wire (raw requests)."""

from __future__ import annotations

import asyncio

from kio.schema.init_producer_id.v4.request import InitProducerIdRequest
from kio.schema.list_offsets.v7.request import ListOffsetsPartition, ListOffsetsRequest, ListOffsetsTopic
from kio.schema.metadata.v1.request import MetadataRequest as MetadataRequestV1
from kio.schema.metadata.v1.request import MetadataRequestTopic as MetadataTopicV1
from kio.static.primitive import i8, i32, i64
from wire_helpers import connect, create_topic, fetch_request, ms, produce_request, records

from strom.client.connection import BrokerConnection
from strom.protocol.errors import ErrorCode
from strom.protocol.records import Record, build_batch, decode_records
from strom.testing.embedded import EmbeddedBroker


async def _fetch(
    conn: BrokerConnection, topic: str, offset: int, *, wait_ms: int = 0, min_bytes: int = 1
) -> object:
    req = fetch_request(topic, {0: offset}, max_wait_ms=wait_ms, min_bytes=min_bytes)
    return (await conn.request(req)).responses[0].partitions[0]


async def test_metadata_auto_creates_topic(broker: EmbeddedBroker) -> None:
    conn = await connect(broker)
    try:
        await create_topic(conn, "auto")
        resp = await conn.request(MetadataRequestV1(topics=(MetadataTopicV1(name="auto"),)))
        topic = resp.topics[0]
        assert topic.error_code == ErrorCode.none
        assert [p.leader_id for p in topic.partitions] == [1]
        assert resp.brokers[0].port == int(broker.bootstrap_servers.split(":")[1])
    finally:
        await conn.close()


async def test_produce_fetch_roundtrip_and_errors(broker: EmbeddedBroker) -> None:
    conn = await connect(broker)
    try:
        await create_topic(conn, "t")
        for start in (0, 3):
            resp = await conn.request(produce_request("t", {0: build_batch(records(3, start), codec=1)}))
            part = resp.responses[0].partition_responses[0]
            assert part.error_code == ErrorCode.none
            assert part.base_offset == start
        fetched = await _fetch(conn, "t", 0)
        assert fetched.high_watermark == 6
        values = [r.value for r in decode_records(fetched.records)]
        assert values[:3] == [b"v0", b"v1", b"v2"]
        # unknown partition, corrupt batch, offset out of range
        resp = await conn.request(produce_request("t", {7: build_batch(records(1))}))
        assert resp.responses[0].partition_responses[0].error_code == ErrorCode.unknown_topic_or_partition
        bad = bytearray(build_batch(records(2)))
        bad[-1] ^= 0xFF
        resp = await conn.request(produce_request("t", {0: bytes(bad)}))
        assert resp.responses[0].partition_responses[0].error_code == ErrorCode.corrupt_message
        assert (await _fetch(conn, "t", 99)).error_code == ErrorCode.offset_out_of_range
    finally:
        await conn.close()


async def test_message_too_large(tmp_path: object) -> None:
    async with EmbeddedBroker({"message.max.bytes": "200"}) as embedded:
        conn = await connect(embedded)
        try:
            await create_topic(conn, "big")
            batch = build_batch([Record(0, 0, None, b"x" * 500)])
            resp = await conn.request(produce_request("big", {0: batch}))
            assert resp.responses[0].partition_responses[0].error_code == ErrorCode.message_too_large
        finally:
            await conn.close()


async def test_fetch_waits_for_min_bytes_and_wakes_on_append(broker: EmbeddedBroker) -> None:
    conn = await connect(broker)
    other = await connect(broker)
    try:
        await create_topic(conn, "w")
        loop = asyncio.get_running_loop()
        started = loop.time()
        pending = asyncio.create_task(_fetch(conn, "w", 0, wait_ms=5000))
        await asyncio.sleep(0.2)
        assert not pending.done()
        await other.request(produce_request("w", {0: build_batch(records(1))}))
        fetched = await asyncio.wait_for(pending, 3)
        assert loop.time() - started < 3
        assert len(fetched.records) > 0
        # nothing arrives: answers empty after max_wait
        started = loop.time()
        empty = await _fetch(conn, "w", 1, wait_ms=300)
        assert 0.25 <= loop.time() - started < 2
        assert empty.records == b""
    finally:
        await conn.close()
        await other.close()


async def test_list_offsets(broker: EmbeddedBroker) -> None:
    conn = await connect(broker)
    try:
        await create_topic(conn, "lo")
        base_ts = 1_700_000_000_000
        await conn.request(produce_request("lo", {0: build_batch(records(3), base_timestamp=base_ts)}))
        later = build_batch(records(2, 3), base_timestamp=base_ts + 100)
        await conn.request(produce_request("lo", {0: later}))

        async def lookup(ts: int) -> tuple[int, int]:
            req = ListOffsetsRequest(
                replica_id=i32(-1),
                isolation_level=i8(0),
                topics=(
                    ListOffsetsTopic(
                        name="lo",
                        partitions=(ListOffsetsPartition(partition_index=i32(0), timestamp=i64(ts)),),
                    ),
                ),
            )
            part = (await conn.request(req)).topics[0].partitions[0]
            assert part.error_code == ErrorCode.none
            return int(part.offset), int(part.timestamp)

        assert (await lookup(-2))[0] == 0
        assert (await lookup(-1))[0] == 5
        assert await lookup(base_ts + 1) == (1, base_ts + 1)
        assert await lookup(base_ts + 100) == (3, base_ts + 100)
        assert (await lookup(base_ts + 10_000))[0] == -1
        assert await lookup(-3) == (4, base_ts + 101)
    finally:
        await conn.close()


async def test_idempotent_produce(broker: EmbeddedBroker) -> None:
    conn = await connect(broker)
    try:
        await create_topic(conn, "idem")
        init = await conn.request(
            InitProducerIdRequest(transactional_id=None, transaction_timeout=ms(60000))
        )
        assert init.error_code == ErrorCode.none
        pid, epoch = int(init.producer_id), int(init.producer_epoch)
        second = await conn.request(
            InitProducerIdRequest(transactional_id=None, transaction_timeout=ms(60000))
        )
        assert second.producer_id != pid

        def batch(seq: int, n: int = 2) -> bytes:
            return build_batch(records(n, seq), producer_id=pid, producer_epoch=epoch, base_sequence=seq)

        async def send(data: bytes) -> tuple[int, int]:
            resp = await conn.request(produce_request("idem", {0: data}))
            part = resp.responses[0].partition_responses[0]
            return int(part.error_code), int(part.base_offset)

        assert await send(batch(0)) == (0, 0)
        assert await send(batch(2)) == (0, 2)
        # a retried batch answers success with the first copy's offset and is not appended again
        assert await send(batch(0)) == (0, 0)
        assert await send(batch(2)) == (0, 2)
        # a gap in sequences
        assert (await send(batch(7)))[0] == ErrorCode.out_of_order_sequence_number
        fetched = await _fetch(conn, "idem", 0)
        assert fetched.high_watermark == 4
        # an older epoch is fenced
        stale = build_batch(
            records(1), producer_id=pid, producer_epoch=epoch - 1 if epoch else -5, base_sequence=4
        )
        if epoch:
            assert (await send(stale))[0] == ErrorCode.invalid_producer_epoch
    finally:
        await conn.close()


async def test_producer_state_survives_restart(tmp_path: object) -> None:
    from pathlib import Path

    data_dir = Path(str(tmp_path)) / "data"
    batch = build_batch(records(2), producer_id=5000, producer_epoch=0, base_sequence=0)
    async with EmbeddedBroker(data_dir=data_dir) as first:
        conn = await connect(first)
        await create_topic(conn, "restart")
        resp = await conn.request(produce_request("restart", {0: batch}))
        part = resp.responses[0].partition_responses[0]
        assert part.base_offset == 0
        await conn.close()
    snapshots = list(data_dir.glob("restart-0/*.snapshot"))
    assert snapshots, "clean shutdown writes a producer snapshot"
    async with EmbeddedBroker(data_dir=data_dir) as second:
        conn = await connect(second)
        resp = await conn.request(produce_request("restart", {0: batch}))
        part = resp.responses[0].partition_responses[0]
        assert (part.error_code, part.base_offset) == (ErrorCode.none, 0)
        nxt = build_batch(records(1), producer_id=5000, producer_epoch=0, base_sequence=5)
        resp = await conn.request(produce_request("restart", {0: nxt}))
        part = resp.responses[0].partition_responses[0]
        assert part.error_code == ErrorCode.out_of_order_sequence_number
        assert (await _fetch(conn, "restart", 0)).high_watermark == 2
        await conn.close()


async def test_metadata_without_auto_create_answers_unknown_topic() -> None:
    async with EmbeddedBroker({"auto.create.topics.enable": "false"}) as embedded:
        conn = await connect(embedded)
        try:
            resp = await conn.request(MetadataRequestV1(topics=(MetadataTopicV1(name="absent"),)))
            assert resp.topics[0].error_code == ErrorCode.unknown_topic_or_partition
            assert "absent" not in embedded.broker.metadata.image.topics
        finally:
            await conn.close()
