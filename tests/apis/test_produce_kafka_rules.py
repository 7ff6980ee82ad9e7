"""Produce rules a client sees on the wire, checked over a raw connection: a failed acks=0 produce closes
the connection (after the responses to earlier requests), a successful one does not."""

from __future__ import annotations

import asyncio

import pytest
from kio.schema.create_topics.v7.request import CreatableTopic, CreatableTopicConfig, CreateTopicsRequest
from kio.schema.fetch.v4.request import FetchRequest
from kio.schema.metadata.v1.request import MetadataRequest, MetadataRequestTopic
from kio.schema.produce.v7.request import PartitionProduceData as PartitionProduceDataV7
from kio.schema.produce.v7.request import ProduceRequest as ProduceRequestV7
from kio.schema.produce.v7.request import TopicProduceData as TopicProduceDataV7
from kio.static.primitive import i16, i32
from wire_helpers import connect, create_topic, fetch_request, ms, produce_request, records, wait_closed

from strom.client.connection import BrokerConnection, ConnectionClosedError
from strom.protocol.errors import ErrorCode
from strom.protocol.records import Record, build_batch
from strom.testing.embedded import EmbeddedBroker


def _slow_fetch(topic: str, offset: int, wait_ms: int) -> FetchRequest:
    return fetch_request(topic, {0: offset}, max_wait_ms=wait_ms, min_bytes=1 << 20)


async def _create_with_configs(conn: BrokerConnection, topic: str, configs: dict[str, str]) -> None:
    request = CreateTopicsRequest(
        topics=(
            CreatableTopic(
                name=topic,
                num_partitions=i32(1),
                replication_factor=i16(1),
                assignments=(),
                configs=tuple(CreatableTopicConfig(name=k, value=v) for k, v in configs.items()),
            ),
        ),
        timeout=ms(5000),
        validate_only=False,
    )
    answer = (await conn.request(request)).topics[0]
    assert answer.error_code == ErrorCode.none, answer.error_message


KEYLESS = "Compacted topic cannot accept message without key in topic partition keyless-0"


async def test_record_errors_name_the_keyless_records_of_a_refused_batch(broker: EmbeddedBroker) -> None:
    """KIP-467: Produce v8+ names each bad record (index in the batch, Kafka's message) and gives Kafka's
    partition-level message; v7 has only the error code. Nothing of the batch is appended."""
    conn = await connect(broker)
    try:
        await _create_with_configs(conn, "keyless", {"cleanup.policy": "compact"})
        keys = [b"a", None, b"b", None]
        batch = build_batch([Record(i, 0, key, b"v") for i, key in enumerate(keys)])
        part = (
            (await conn.request(produce_request("keyless", {0: batch}))).responses[0].partition_responses[0]
        )
        assert part.error_code == ErrorCode.invalid_record
        assert [(e.batch_index, e.batch_index_error_message) for e in part.record_errors] == [
            (1, KEYLESS),
            (3, KEYLESS),
        ]
        assert part.error_message == (
            "One or more records have been rejected due to 2 record errors in total, and only showing the "
            f"first three errors at most: [RecordError(batchIndex=1, message='{KEYLESS}'), "
            f"RecordError(batchIndex=3, message='{KEYLESS}')]"
        )
        assert part.base_offset == -1 and part.log_start_offset == 0

        v9 = produce_request("keyless", {0: batch})
        v7 = ProduceRequestV7(
            transactional_id=None,
            acks=v9.acks,
            timeout=v9.timeout,
            topic_data=(
                TopicProduceDataV7(
                    name="keyless", partition_data=(PartitionProduceDataV7(index=i32(0), records=batch),)
                ),
            ),
        )
        old = (await conn.request(v7)).responses[0].partition_responses[0]
        assert old.error_code == ErrorCode.invalid_record

        keyed = build_batch([Record(0, 0, b"a", b"v")])
        part = (
            (await conn.request(produce_request("keyless", {0: keyed}))).responses[0].partition_responses[0]
        )
        assert (part.error_code, part.base_offset, part.record_errors) == (ErrorCode.none, 0, ())
    finally:
        await conn.close()


async def test_failed_acks0_produce_closes_after_earlier_responses(broker: EmbeddedBroker) -> None:
    conn = await connect(broker)
    try:
        await create_topic(conn, "a0")
        # a fetch that waits, then a failing acks=0 produce (unknown partition) on the same connection
        fetch = asyncio.create_task(conn.request(_slow_fetch("a0", 0, 300)))
        await asyncio.sleep(0.05)
        await conn.request(produce_request("a0", {9: build_batch(records(1))}, acks=0), expect_response=False)
        fetched = await fetch
        assert fetched.responses[0].partitions[0].error_code == ErrorCode.none
        assert await wait_closed(conn), "a failed acks=0 produce must close the connection"
        with pytest.raises(ConnectionClosedError):
            await conn.request(MetadataRequest(topics=(MetadataRequestTopic(name="a0"),)))
    finally:
        await conn.close()


async def test_corrupt_acks0_produce_closes(broker: EmbeddedBroker) -> None:
    conn = await connect(broker)
    try:
        await create_topic(conn, "a0c")
        bad = bytearray(build_batch(records(2)))
        bad[-1] ^= 0xFF
        await conn.request(produce_request("a0c", {0: bytes(bad)}, acks=0), expect_response=False)
        assert await wait_closed(conn)
    finally:
        await conn.close()


async def test_successful_acks0_produce_keeps_connection(broker: EmbeddedBroker) -> None:
    conn = await connect(broker)
    try:
        await create_topic(conn, "a0ok")
        await conn.request(
            produce_request("a0ok", {0: build_batch(records(2))}, acks=0), expect_response=False
        )
        resp = await conn.request(MetadataRequest(topics=(MetadataRequestTopic(name="a0ok"),)))
        assert resp.topics[0].error_code == ErrorCode.none
        assert not conn.closed
        fetched = await conn.request(_slow_fetch("a0ok", 0, 0))
        assert fetched.responses[0].partitions[0].high_watermark == 2
    finally:
        await conn.close()


async def _high_watermark(conn: BrokerConnection, topic: str) -> int:
    fetched = await conn.request(_slow_fetch(topic, 0, 0))
    return int(fetched.responses[0].partitions[0].high_watermark)


async def test_multi_batch_idempotent_produce_and_its_retry(broker: EmbeddedBroker) -> None:
    """Kafka validates a request's batches in order (each follows the one before it, in the request or
    the log); a request holding a batch already in the log answers success for the whole partition with
    the offsets of the first such batch, and appends nothing (UnifiedLog.analyzeAndValidateProducerState)."""
    conn = await connect(broker)
    try:
        await create_topic(conn, "multi")
        pid, epoch = 4242, 0

        def batch(seq: int, n: int = 2) -> bytes:
            return build_batch(records(n, seq), producer_id=pid, producer_epoch=epoch, base_sequence=seq)

        async def send(*batches: bytes) -> tuple[int, int, bool]:
            resp = await conn.request(produce_request("multi", {0: b"".join(batches)}))
            part = resp.responses[0].partition_responses[0]
            # kio reads a log_append_time of -1 as None
            return int(part.error_code), int(part.base_offset), part.log_append_time is not None

        assert (await send(batch(0)))[:2] == (ErrorCode.none, 0)
        # two new batches in one request: the second follows the first, not the log's last batch
        assert (await send(batch(2), batch(4)))[:2] == (ErrorCode.none, 2)
        assert await _high_watermark(conn, "multi") == 6
        # the same request again: a retry, answered with the first batch's offsets
        code, base, has_time = await send(batch(2), batch(4))
        assert (code, base) == (ErrorCode.none, 2)
        assert has_time, "Kafka answers a duplicate with the cached batch's timestamp"
        # a duplicate followed by a new batch: Kafka answers the duplicate and appends nothing
        assert (await send(batch(4), batch(6)))[:2] == (ErrorCode.none, 4)
        assert await _high_watermark(conn, "multi") == 6
        # so the new batch is still the next expected one
        assert (await send(batch(6)))[:2] == (ErrorCode.none, 6)
        # a gap inside the request is out of order, and nothing of it is appended
        assert (await send(batch(8), batch(12)))[0] == ErrorCode.out_of_order_sequence_number
        assert await _high_watermark(conn, "multi") == 8
    finally:
        await conn.close()


async def test_producer_snapshots_follow_rolls_and_serve_a_crash_restart(tmp_path: object) -> None:
    """Snapshots appear at segment rolls while the broker runs; a broker started from a copy of the
    running broker's files (a crash image: no shutdown snapshot) still recognises a retried batch."""
    import shutil
    from pathlib import Path

    from strom.storage.producer_state import list_snapshots

    first_dir = Path(str(tmp_path)) / "first"
    crash_dir = Path(str(tmp_path)) / "crash"
    pid = 6060

    def batch(seq: int) -> bytes:
        return build_batch(records(3, seq), producer_id=pid, producer_epoch=0, base_sequence=seq)

    async def send(conn: BrokerConnection, data: bytes) -> tuple[int, int]:
        part = (await conn.request(produce_request("rolls", {0: data}))).responses[0].partition_responses[0]
        return int(part.error_code), int(part.base_offset)

    async with EmbeddedBroker(data_dir=first_dir) as first:
        conn = await connect(first)
        try:
            await _create_with_configs(conn, "rolls", {"internal.segment.bytes": "600"})
            for i in range(12):
                assert await send(conn, batch(i * 3)) == (ErrorCode.none, i * 3)
            snapshots = [offset for offset, _ in list_snapshots(first_dir / "rolls-0")]
            assert snapshots and snapshots[-1] > 0, "a segment roll writes a producer snapshot"
            shutil.copytree(first_dir, crash_dir)
        finally:
            await conn.close()
    (crash_dir / ".kafka_cleanshutdown").unlink(missing_ok=True)
    async with EmbeddedBroker(data_dir=crash_dir) as second:
        conn = await connect(second)
        try:
            assert await send(conn, batch(11 * 3)) == (ErrorCode.none, 33)  # the retry: its first offset
            assert (await send(conn, batch(99)))[0] == ErrorCode.out_of_order_sequence_number
            assert await send(conn, batch(36)) == (ErrorCode.none, 36)
        finally:
            await conn.close()
