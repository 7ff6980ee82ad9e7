"""Transactions (KIP-98) driven by real clients against an embedded broker: confluent-kafka (librdkafka)
commit/abort with read_committed and read_uncommitted consumers, zombie fencing, consume-transform-produce
with send_offsets_to_transaction, kafka-python's transactional producer and read_committed end offsets,
and the transaction coordinator's admin view (DescribeTransactions, ListTransactions)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from strom.testing.embedded import EmbeddedBroker

pytestmark = pytest.mark.compat


@pytest.fixture(scope="module")
def broker() -> Iterator[EmbeddedBroker]:
    with EmbeddedBroker({"group.min.session.timeout.ms": "1000"}) as b:
        yield b


def new_topic(broker: EmbeddedBroker, partitions: int = 1) -> str:
    name = f"txn-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": broker.bootstrap_servers})
    admin.create_topics([NewTopic(name, partitions, 1)])[name].result(10)
    return name


def txn_producer(broker: EmbeddedBroker, tid: str, **conf: Any) -> Producer:
    producer = Producer(
        {"bootstrap.servers": broker.bootstrap_servers, "transactional.id": tid, "linger.ms": 5, **conf}
    )
    producer.init_transactions(20)
    return producer


def read_all(
    broker: EmbeddedBroker, topic: str, isolation: str, *, partitions: int = 1, idle_s: float = 1.5
) -> list[tuple[int, int, bytes]]:
    """Every record a consumer of `isolation` gets, as (partition, offset, value), until idle."""
    consumer = Consumer(
        {
            "bootstrap.servers": broker.bootstrap_servers,
            "group.id": f"g-{uuid.uuid4().hex[:6]}",
            "isolation.level": isolation,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
        }
    )
    consumer.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
    got: list[tuple[int, int, bytes]] = []
    idle = 0.0
    try:
        while idle < idle_s:
            msg = consumer.poll(0.25)
            if msg is None or msg.error():
                idle += 0.25
                continue
            idle = 0.0
            got.append((msg.partition(), msg.offset(), msg.value()))
    finally:
        consumer.close()
    return got


def test_commit_and_abort_seen_by_isolation_level(broker: EmbeddedBroker) -> None:
    topic = new_topic(broker, partitions=2)
    producer = txn_producer(broker, f"tid-{uuid.uuid4().hex[:6]}")
    producer.begin_transaction()
    for i in range(3):
        producer.produce(topic, f"aborted-{i}".encode(), partition=i % 2)
    producer.flush(10)
    producer.abort_transaction(20)
    producer.begin_transaction()
    for i in range(4):
        producer.produce(topic, f"committed-{i}".encode(), partition=i % 2)
    producer.commit_transaction(20)

    committed = read_all(broker, topic, "read_committed", partitions=2)
    assert sorted(v for _, _, v in committed) == [f"committed-{i}".encode() for i in range(4)]
    uncommitted = read_all(broker, topic, "read_uncommitted", partitions=2)
    values = sorted(v for _, _, v in uncommitted)
    assert values == sorted(
        [f"aborted-{i}".encode() for i in range(3)] + [f"committed-{i}".encode() for i in range(4)]
    )
    # markers take offsets: partition 0 holds aborted 0, 2, abort marker, committed 0, 2, commit marker
    assert [o for p, o, _ in committed if p == 0] == [3, 4]


def test_open_transaction_holds_back_read_committed(broker: EmbeddedBroker) -> None:
    topic = new_topic(broker)
    plain = Producer({"bootstrap.servers": broker.bootstrap_servers})
    producer = txn_producer(broker, f"tid-{uuid.uuid4().hex[:6]}")
    producer.begin_transaction()
    producer.produce(topic, b"open", partition=0)
    producer.flush(10)
    plain.produce(topic, b"after", partition=0)
    plain.flush(10)
    # the open transaction's first offset is the last stable offset: nothing from it on is visible
    assert read_all(broker, topic, "read_committed", idle_s=1.0) == []
    assert [v for _, _, v in read_all(broker, topic, "read_uncommitted", idle_s=1.0)] == [b"open", b"after"]
    producer.commit_transaction(20)
    assert [v for _, _, v in read_all(broker, topic, "read_committed")] == [b"open", b"after"]


def test_zombie_producer_is_fenced(broker: EmbeddedBroker) -> None:
    topic = new_topic(broker)
    tid = f"tid-{uuid.uuid4().hex[:6]}"
    zombie = txn_producer(broker, tid)
    zombie.begin_transaction()
    zombie.produce(topic, b"zombie", partition=0)
    zombie.flush(10)
    successor = txn_producer(broker, tid)  # bumps the epoch and aborts the zombie's transaction
    successor.begin_transaction()
    successor.produce(topic, b"successor", partition=0)
    successor.commit_transaction(20)
    with pytest.raises(KafkaException) as caught:
        zombie.produce(topic, b"late", partition=0)
        zombie.commit_transaction(10)
    assert caught.value.args[0].fatal() or "fenced" in str(caught.value).lower()
    assert [v for _, _, v in read_all(broker, topic, "read_committed")] == [b"successor"]


def test_consume_transform_produce_commits_offsets_atomically(broker: EmbeddedBroker) -> None:
    source = new_topic(broker)
    sink = new_topic(broker)
    plain = Producer({"bootstrap.servers": broker.bootstrap_servers})
    for i in range(6):
        plain.produce(source, f"in-{i}".encode(), partition=0)
    plain.flush(10)
    group = f"ctp-{uuid.uuid4().hex[:6]}"
    consumer = Consumer(
        {
            "bootstrap.servers": broker.bootstrap_servers,
            "group.id": group,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "isolation.level": "read_committed",
        }
    )
    consumer.subscribe([source])
    producer = txn_producer(broker, f"ctp-{uuid.uuid4().hex[:6]}")
    try:
        seen: list[Any] = []
        while len(seen) < 6:
            msg = consumer.poll(1.0)
            if msg is not None and not msg.error():
                seen.append(msg)
        # first batch of three: aborted, so neither output nor offsets count
        producer.begin_transaction()
        for msg in seen[:3]:
            producer.produce(sink, msg.value().upper(), partition=0)
        producer.send_offsets_to_transaction(
            [TopicPartition(source, 0, seen[2].offset() + 1)], consumer.consumer_group_metadata(), 20
        )
        producer.abort_transaction(20)
        committed = consumer.committed([TopicPartition(source, 0)], 10)
        assert committed[0].offset < 0
        producer.begin_transaction()
        for msg in seen:
            producer.produce(sink, msg.value().upper(), partition=0)
        producer.send_offsets_to_transaction(
            [TopicPartition(source, 0, seen[-1].offset() + 1)], consumer.consumer_group_metadata(), 20
        )
        producer.commit_transaction(20)
        committed = consumer.committed([TopicPartition(source, 0)], 10)
        assert committed[0].offset == 6
    finally:
        consumer.close()
    assert [v for _, _, v in read_all(broker, sink, "read_committed")] == [
        f"IN-{i}".encode() for i in range(6)
    ]


def test_kafka_python_transactional_producer(broker: EmbeddedBroker) -> None:
    from kafka import KafkaConsumer, KafkaProducer
    from kafka import TopicPartition as KTopicPartition

    topic = new_topic(broker)
    producer = KafkaProducer(
        bootstrap_servers=broker.bootstrap_servers, transactional_id=f"kp-{uuid.uuid4().hex[:6]}"
    )
    try:
        producer.init_transactions()
        producer.begin_transaction()
        producer.send(topic, b"kp-aborted", partition=0)
        producer.flush()
        producer.abort_transaction()
        producer.begin_transaction()
        producer.send(topic, b"kp-committed", partition=0)
        producer.commit_transaction()
    finally:
        producer.close()
    consumer = KafkaConsumer(
        bootstrap_servers=broker.bootstrap_servers, isolation_level="read_committed", consumer_timeout_ms=2000
    )
    try:
        tp = KTopicPartition(topic, 0)
        consumer.assign([tp])
        consumer.seek_to_beginning(tp)
        assert [m.value for m in consumer] == [b"kp-committed"]
        assert consumer.end_offsets([tp])[tp] == 4  # aborted record, abort marker, record, commit marker
    finally:
        consumer.close()


def test_describe_and_list_transactions(broker: EmbeddedBroker) -> None:
    from kio.schema.describe_transactions.v0.request import DescribeTransactionsRequest
    from kio.schema.list_transactions.v1.request import ListTransactionsRequest
    from kio.static.primitive import i64

    from strom.client.connection import BrokerConnection
    from strom.protocol.errors import ErrorCode

    topic = new_topic(broker)
    tid = f"desc-{uuid.uuid4().hex[:6]}"
    producer = txn_producer(broker, tid, **{"transaction.timeout.ms": 45000})
    producer.begin_transaction()
    producer.produce(topic, b"x", partition=0)
    producer.flush(10)
    host, port = broker.bootstrap_servers.split(":")

    async def ask() -> tuple[Any, Any, Any]:
        conn = await BrokerConnection.open(host, int(port))
        try:
            described = await conn.request(DescribeTransactionsRequest(transactional_ids=(tid,)))
            listed = await conn.request(
                ListTransactionsRequest(
                    state_filters=("Ongoing", "Bogus"), producer_id_filters=(), duration_filter=i64(-1)
                )
            )
            by_pid = await conn.request(
                ListTransactionsRequest(
                    state_filters=(), producer_id_filters=(i64(123456789),), duration_filter=i64(-1)
                )
            )
            return described, listed, by_pid
        finally:
            await conn.close()

    described, listed, by_pid = asyncio.run(ask())
    (mine,) = described.transaction_states
    assert mine.error_code == ErrorCode.none and mine.transaction_state == "Ongoing"
    assert mine.transaction_timeout.total_seconds() == 45
    assert [(t.topic, tuple(t.partitions)) for t in mine.topics] == [(topic, (0,))]
    # an unknown id answers start time -1, which kio's reader refuses: ask the coordinator directly
    assert broker.broker is not None
    assert broker.broker.txn_coordinator.core.describe("nope")[0] == ErrorCode.transactional_id_not_found
    assert tid in {s.transactional_id for s in listed.transaction_states}
    assert all(s.transaction_state == "Ongoing" for s in listed.transaction_states)
    assert tuple(listed.unknown_state_filters) == ("Bogus",)
    assert by_pid.transaction_states == ()
    producer.commit_transaction(20)
