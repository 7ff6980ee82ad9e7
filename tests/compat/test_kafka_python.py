"""kafka-python (pure-Python client; 2.x+ turns idempotence on by default, so InitProducerId is needed)
and aiokafka against the broker under test: produce with keys and headers, consume with assign/seek,
and ListOffsets (earliest, latest, by timestamp)."""

from __future__ import annotations

import time

import pytest
from compat_support import TopicMaker, admin_client, consume_partition, wait_for_topic
from kafka import KafkaConsumer, KafkaProducer
from kafka import TopicPartition as KTopicPartition
from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient, NewPartitions

pytestmark = [pytest.mark.compat,
              pytest.mark.filterwarnings("ignore:(read|open)_text is deprecated:DeprecationWarning")]


def test_kafka_python_produce_consume(broker: str, topic: str) -> None:
    base = int(time.time() * 1000) - 600_000
    producer = KafkaProducer(bootstrap_servers=broker, linger_ms=0, acks="all")
    try:
        offsets = []
        for i in range(6):
            fut = producer.send(topic, value=f"v{i}".encode(), key=f"k{i}".encode() if i % 2 else None,
                                headers=[("n", str(i).encode())], partition=0, timestamp_ms=base + i)
            offsets.append(fut.get(timeout=15).offset)
        assert offsets == list(range(6))
    finally:
        producer.close(timeout=10)

    tp = KTopicPartition(topic, 0)
    consumer = KafkaConsumer(bootstrap_servers=broker, group_id=None, enable_auto_commit=False,
                             consumer_timeout_ms=10_000)
    try:
        consumer.assign([tp])
        assert consumer.beginning_offsets([tp]) == {tp: 0}
        assert consumer.end_offsets([tp]) == {tp: 6}
        found = consumer.offsets_for_times({tp: base + 3})[tp]
        assert (found.offset, found.timestamp) == (3, base + 3)

        consumer.seek(tp, 2)
        got = []
        deadline = time.monotonic() + 15
        while len(got) < 4 and time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=500).values():
                got.extend(records)
        assert [r.offset for r in got] == [2, 3, 4, 5]
        assert [r.value for r in got] == [b"v2", b"v3", b"v4", b"v5"]
        assert [r.key for r in got] == [None, b"k3", None, b"k5"]
        assert [r.headers for r in got] == [[("n", str(i).encode())] for i in range(2, 6)]
        assert [r.timestamp for r in got] == [base + i for i in range(2, 6)]
    finally:
        consumer.close()


def test_kafka_python_idempotent_is_default(broker: str, topic: str) -> None:
    producer = KafkaProducer(bootstrap_servers=broker, linger_ms=2)
    try:
        assert producer.config["enable_idempotence"] is True
        futures = [producer.send(topic, value=f"{i}".encode(), partition=0) for i in range(300)]
        producer.flush(timeout=20)
        assert [f.get(timeout=1).offset for f in futures] == list(range(300))
    finally:
        producer.close(timeout=10)
    got = consume_partition(broker, topic, count=300)
    assert [m.value() for m in got] == [f"{i}".encode() for i in range(300)]


def test_kafka_python_admin(broker: str, make_topic: TopicMaker) -> None:
    topic = make_topic(partitions=1, configs={"retention.ms": "1000000"})
    producer = KafkaProducer(bootstrap_servers=broker)
    for _ in range(10):
        producer.send(topic, b"x" * 100, partition=0)
    producer.flush(timeout=15)
    producer.close(timeout=10)

    admin = KafkaAdminClient(bootstrap_servers=broker)
    try:
        assert topic in admin.list_topics()
        admin.create_partitions({topic: NewPartitions(total_count=2)})
        wait_for_topic(admin_client(broker), topic, 2)  # Kafka propagates new partitions asynchronously
        [desc] = admin.describe_topics([topic])
        assert len(desc["partitions"]) == 2

        configs = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic,
                                                         configs=["retention.ms"])])
        entry = configs["topic"][topic]["retention.ms"]
        assert (entry["value"], entry["config_source"]) == ("1000000", "DYNAMIC_TOPIC_CONFIG")

        # DescribeLogDirs: one log dir holding both partitions; only partition 0 has data.
        [node] = admin.describe_log_dirs()
        [log_dir] = node["log_dirs"]
        assert log_dir["error_code"] == 0
        [entry] = [t for t in log_dir["topics"] if t["name"] == topic]
        sizes = {p["partition_index"]: p["partition_size"] for p in entry["partitions"]}
        assert sizes[0] > 10 * 100 and sizes[1] == 0
        assert log_dir["total_bytes"] >= log_dir["usable_bytes"] > 0
    finally:
        admin.close()


async def test_aiokafka_produce_consume(broker: str, topic: str) -> None:
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
    from aiokafka.structs import TopicPartition as ATopicPartition

    producer = AIOKafkaProducer(bootstrap_servers=broker, enable_idempotence=True, compression_type="gzip")
    await producer.start()
    try:
        metas = [await producer.send_and_wait(topic, value=f"a{i}".encode(), key=b"k", partition=0,
                                              headers=[("src", b"aiokafka")]) for i in range(5)]
        assert [m.offset for m in metas] == list(range(5))
        batch = producer.create_batch()
        for i in range(5, 10):
            batch.append(key=None, value=f"a{i}".encode(), timestamp=None)
        await (await producer.send_batch(batch, topic, partition=0))
    finally:
        await producer.stop()

    tp = ATopicPartition(topic, 0)
    consumer = AIOKafkaConsumer(bootstrap_servers=broker, group_id=None, enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign([tp])
        assert await consumer.beginning_offsets([tp]) == {tp: 0}
        assert await consumer.end_offsets([tp]) == {tp: 10}
        consumer.seek(tp, 3)
        got = []
        deadline = time.monotonic() + 15
        while len(got) < 7 and time.monotonic() < deadline:
            for records in (await consumer.getmany(tp, timeout_ms=500)).values():
                got.extend(records)
        assert [r.offset for r in got] == list(range(3, 10))
        assert [r.value for r in got] == [f"a{i}".encode() for i in range(3, 10)]
        assert [r.key for r in got] == [b"k", b"k"] + [None] * 5
        assert [tuple(r.headers) for r in got[:2]] == [(("src", b"aiokafka"),)] * 2
    finally:
        await consumer.stop()
