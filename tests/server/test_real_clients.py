"""Real clients against an embedded broker: confluent-kafka (librdkafka), kafka-python and aiokafka
produce, fetch (assign, no groups), list offsets and use idempotence."""

from __future__ import annotations

import time
import uuid

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from strom.testing.embedded import EmbeddedBroker

pytestmark = pytest.mark.compat


def _topic() -> str:
    return f"t-{uuid.uuid4().hex[:8]}"


@pytest.mark.parametrize("codec", ["none", "gzip", "snappy", "lz4", "zstd"])
def test_confluent_roundtrip_all_codecs(module_broker: EmbeddedBroker, codec: str) -> None:
    topic = _topic()
    producer = Producer(
        {"bootstrap.servers": module_broker.bootstrap_servers, "compression.type": codec, "linger.ms": 5}
    )
    sent = [(f"k{i}".encode() if i % 3 else None, f"v{i}".encode() if i % 4 else None) for i in range(50)]
    for key, value in sent:
        producer.produce(
            topic, key=key, value=value, headers=[("n", b"1"), ("empty", None)], timestamp=1_600_000_000_000
        )
    assert producer.flush(15) == 0

    consumer = Consumer(
        {
            "bootstrap.servers": module_broker.bootstrap_servers,
            "group.id": "unused",
            "enable.auto.commit": False,
        }
    )
    try:
        consumer.assign([TopicPartition(topic, 0, 0)])
        got = []
        deadline = time.time() + 15
        while len(got) < len(sent) and time.time() < deadline:
            msg = consumer.poll(0.5)
            if msg is None or msg.error():
                continue
            got.append(msg)
        assert [(m.key(), m.value()) for m in got] == sent
        assert [m.offset() for m in got] == list(range(len(sent)))
        assert got[0].timestamp()[1] == 1_600_000_000_000
        assert got[0].headers() == [("n", b"1"), ("empty", None)]
        low, high = consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=5)
        assert (low, high) == (0, len(sent))
        offsets = consumer.offsets_for_times([TopicPartition(topic, 0, 1_600_000_000_000)], timeout=5)
        assert offsets[0].offset == 0
    finally:
        consumer.close()


def test_confluent_idempotent_producer_keeps_order(module_broker: EmbeddedBroker) -> None:
    topic = _topic()
    producer = Producer(
        {
            "bootstrap.servers": module_broker.bootstrap_servers,
            "enable.idempotence": True,
            "acks": "all",
            "max.in.flight.requests.per.connection": 5,
            "batch.num.messages": 10,
        }
    )
    errors: list[object] = []
    for i in range(500):
        producer.produce(
            topic, value=str(i).encode(), on_delivery=lambda err, _m: errors.append(err) if err else None
        )
    assert producer.flush(20) == 0
    assert not errors
    consumer = Consumer({"bootstrap.servers": module_broker.bootstrap_servers, "group.id": "x"})
    try:
        consumer.assign([TopicPartition(topic, 0, 0)])
        values = []
        deadline = time.time() + 15
        while len(values) < 500 and time.time() < deadline:
            msg = consumer.poll(0.5)
            if msg is not None and not msg.error():
                values.append(int(msg.value()))
        assert values == list(range(500))
    finally:
        consumer.close()


def test_kafka_python_roundtrip(module_broker: EmbeddedBroker) -> None:
    from kafka import KafkaConsumer, KafkaProducer
    from kafka import TopicPartition as KTopicPartition

    topic = _topic()
    producer = KafkaProducer(bootstrap_servers=module_broker.bootstrap_servers, compression_type="gzip")
    futures = [producer.send(topic, key=b"k", value=f"m{i}".encode()) for i in range(20)]
    metas = [f.get(timeout=15) for f in futures]
    assert [m.offset for m in metas] == list(range(20))
    producer.close()

    consumer = KafkaConsumer(bootstrap_servers=module_broker.bootstrap_servers, enable_auto_commit=False)
    try:
        tp = KTopicPartition(topic, 0)
        consumer.assign([tp])
        consumer.seek_to_beginning(tp)
        got: list[bytes] = []
        deadline = time.time() + 15
        while len(got) < 20 and time.time() < deadline:
            for records in consumer.poll(timeout_ms=500).values():
                got.extend(r.value for r in records)
        assert got == [f"m{i}".encode() for i in range(20)]
        assert consumer.end_offsets([tp])[tp] == 20
        assert consumer.beginning_offsets([tp])[tp] == 0
    finally:
        consumer.close()


async def test_aiokafka_roundtrip(broker: EmbeddedBroker) -> None:
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
    from aiokafka import TopicPartition as ATopicPartition

    topic = _topic()
    producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap_servers, enable_idempotence=True)
    await producer.start()
    try:
        for i in range(10):
            await producer.send_and_wait(topic, f"a{i}".encode(), key=b"x")
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(bootstrap_servers=broker.bootstrap_servers, enable_auto_commit=False)
    await consumer.start()
    try:
        tp = ATopicPartition(topic, 0)
        consumer.assign([tp])
        await consumer.seek_to_beginning(tp)
        got = []
        while len(got) < 10:
            batch = await consumer.getmany(tp, timeout_ms=1000)
            got.extend(m.value for m in batch.get(tp, []))
        assert got == [f"a{i}".encode() for i in range(10)]
        assert (await consumer.end_offsets([tp]))[tp] == 10
    finally:
        await consumer.stop()
