"""confluent-kafka (librdkafka) Producer and Consumer against the broker under test.

Produce v3+ and Fetch v4+ with record batches v2: keys, headers, null keys and values, every codec,
CreateTime and LogAppendTime (KIP-32), ListOffsets by timestamp (KIP-79), MESSAGE_TOO_LARGE, unknown
partitions, and the idempotent producer (KIP-98: InitProducerId, sequence numbers, no duplicates).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from compat_support import (
    BrokerUnderTest,
    TopicMaker,
    consume_partition,
)
from confluent_kafka import (
    TIMESTAMP_CREATE_TIME,
    TIMESTAMP_LOG_APPEND_TIME,
    Consumer,
    ConsumerGroupTopicPartitions,
    KafkaError,
    Message,
    Producer,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient, OffsetSpec

pytestmark = pytest.mark.compat


def _produce(broker: str, topic: str, records: list[dict], **conf: object) -> list[Message]:
    """Produce and flush; returns the delivery reports in order, failing on any delivery error."""
    reports: list[Message] = []
    producer = Producer({"bootstrap.servers": broker, "linger.ms": 5, **conf})
    for rec in records:
        producer.produce(topic, on_delivery=lambda err, msg: reports.append(msg), **rec)
    assert producer.flush(30) == 0
    for msg in reports:
        assert msg.error() is None, msg.error()
    return reports


def test_keys_headers_null_key_null_value(broker: str, topic: str) -> None:
    ts = int(time.time() * 1000) - 60_000
    records = [
        {"key": b"k1", "value": b"v1", "headers": [("h1", b"a"), ("h2", b"")], "timestamp": ts},
        {"key": None, "value": b"no key", "timestamp": ts + 1},
        {"key": b"tombstone", "value": None, "timestamp": ts + 2},
        {"key": b"", "value": b"", "headers": [("dup", b"1"), ("dup", b"2")], "timestamp": ts + 3},
        {"key": b"bin\x00\xff", "value": bytes(range(256)) * 4, "timestamp": ts + 4},
    ]
    reports = _produce(broker, topic, [{**r, "partition": 0} for r in records])
    assert [m.offset() for m in reports] == [0, 1, 2, 3, 4]

    got = consume_partition(broker, topic, count=len(records))
    assert [m.offset() for m in got] == [0, 1, 2, 3, 4]
    for rec, msg in zip(records, got, strict=True):
        assert msg.key() == rec["key"]
        assert msg.value() == rec["value"]
        assert (msg.headers() or []) == rec.get("headers", [])
        assert msg.timestamp() == (TIMESTAMP_CREATE_TIME, rec["timestamp"])


@pytest.mark.parametrize("codec", ["gzip", "snappy", "lz4", "zstd"])
def test_each_codec_round_trips(broker: str, topic: str, codec: str) -> None:
    values = [f"{codec}-{i}-".encode() * (i % 7 + 1) for i in range(200)]
    _produce(broker, topic, [{"value": v, "key": str(i).encode(), "partition": 0}
                             for i, v in enumerate(values)],
             **{"compression.codec": codec, "linger.ms": 50})
    got = consume_partition(broker, topic, count=len(values))
    assert [m.value() for m in got] == values
    assert [m.key() for m in got] == [str(i).encode() for i in range(len(values))]
    assert [m.offset() for m in got] == list(range(len(values)))


def test_log_append_time_topic(broker: str, make_topic: TopicMaker) -> None:
    topic = make_topic(configs={"message.timestamp.type": "LogAppendTime"})
    create_ts = 1_000_000_000_000  # 2001: the broker must replace it
    before = int(time.time() * 1000)
    reports = _produce(broker, topic, [{"value": b"x", "timestamp": create_ts, "partition": 0},
                                       {"value": b"y", "timestamp": create_ts, "partition": 0}])
    after = int(time.time() * 1000)
    # The produce response carries the broker's append time, which librdkafka reports on delivery.
    for msg in reports:
        kind, ts = msg.timestamp()
        assert kind == TIMESTAMP_LOG_APPEND_TIME
        assert before - 1000 <= ts <= after + 1000

    got = consume_partition(broker, topic, count=2)
    for msg in got:
        kind, ts = msg.timestamp()
        assert kind == TIMESTAMP_LOG_APPEND_TIME
        assert before - 1000 <= ts <= after + 1000


def test_create_time_topic_keeps_client_timestamps(broker: str, topic: str) -> None:
    reports = _produce(broker, topic, [{"value": b"x", "timestamp": 1_000_000_000_000, "partition": 0}])
    assert reports[0].timestamp() == (TIMESTAMP_CREATE_TIME, 1_000_000_000_000)


def test_offsets_for_times(broker: str, topic: str) -> None:
    base = int(time.time() * 1000) - 3_600_000
    # One batch per record so every timestamp is indexed on its own.
    producer = Producer({"bootstrap.servers": broker, "linger.ms": 0})
    for i in range(5):
        producer.produce(topic, value=f"v{i}".encode(), partition=0, timestamp=base + i * 1000)
        assert producer.flush(10) == 0

    consumer = Consumer({"bootstrap.servers": broker, "group.id": "compat-unused"})
    try:
        def lookup(ts: int) -> int:
            res = consumer.offsets_for_times([TopicPartition(topic, 0, ts)], timeout=10)
            assert res[0].error is None
            return res[0].offset

        assert lookup(base) == 0
        assert lookup(base + 1500) == 2  # first record with timestamp >= the one asked
        assert lookup(base + 4000) == 4
        assert lookup(base + 4001) == -1  # none that late: the end, reported as -1
        assert lookup(0) == 0
        assert consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=10) == (0, 5)
    finally:
        consumer.close()


def test_message_too_large(broker: str, make_topic: TopicMaker) -> None:
    topic = make_topic(configs={"max.message.bytes": "2000"})
    errors: list[KafkaError] = []
    producer = Producer({"bootstrap.servers": broker, "linger.ms": 0, "message.send.max.retries": 0})
    producer.produce(topic, value=b"x" * 10_000, partition=0, on_delivery=lambda err, msg: errors.append(err))
    producer.flush(15)
    assert len(errors) == 1 and errors[0] is not None
    assert errors[0].code() == KafkaError.MSG_SIZE_TOO_LARGE

    # A record that fits still goes in, at offset 0: the refused one left nothing in the log.
    reports = _produce(broker, topic, [{"value": b"small", "partition": 0}])
    assert reports[0].offset() == 0


def test_unknown_partition(broker: str, topic: str) -> None:
    errors: list[KafkaError] = []
    producer = Producer({"bootstrap.servers": broker, "message.timeout.ms": 5000})
    producer.produce(topic, value=b"x", partition=7, on_delivery=lambda err, msg: errors.append(err))
    producer.flush(15)
    assert len(errors) == 1 and errors[0] is not None
    assert errors[0].code() == KafkaError._UNKNOWN_PARTITION


def test_unknown_topic_metadata(broker: str, topic_name: str) -> None:
    consumer = Consumer({"bootstrap.servers": broker, "group.id": "compat-unused",
                         "allow.auto.create.topics": False})
    try:
        md = consumer.list_topics(topic_name, timeout=10)
        assert md.topics[topic_name].error.code() == KafkaError.UNKNOWN_TOPIC_OR_PART
    finally:
        consumer.close()


def test_idempotent_producer_exactly_once(broker: str, make_topic: TopicMaker) -> None:
    topic = make_topic(partitions=2)
    n = 2000
    # Small batches and 5 in flight: many sequence-numbered requests pipelined per partition.
    reports = _produce(broker, topic, [{"value": f"{i}".encode(), "partition": i % 2} for i in range(n)],
                       **{"enable.idempotence": True, "acks": "all", "batch.size": 2048,
                          "max.in.flight.requests.per.connection": 5, "linger.ms": 1,
                          "message.send.max.retries": 10, "retry.backoff.ms": 10})
    assert len(reports) == n
    for part in (0, 1):
        got = consume_partition(broker, topic, part, count=n // 2)
        assert [m.value() for m in got] == [f"{i}".encode() for i in range(part, n, 2)]
        assert [m.offset() for m in got] == list(range(n // 2))

    consumer = Consumer({"bootstrap.servers": broker, "group.id": "compat-unused"})
    try:
        for part in (0, 1):
            assert consumer.get_watermark_offsets(TopicPartition(topic, part), timeout=10) == (0, n // 2)
    finally:
        consumer.close()


def test_consume_from_offset_and_end(broker: str, topic: str) -> None:
    _produce(broker, topic, [{"value": f"{i}".encode(), "partition": 0} for i in range(20)])
    got = consume_partition(broker, topic, count=5, offset=15)
    assert [m.offset() for m in got] == [15, 16, 17, 18, 19]

    consumer = Consumer({"bootstrap.servers": broker, "group.id": "compat-unused",
                         "enable.partition.eof": True})
    try:
        consumer.assign([TopicPartition(topic, 0, 20)])
        deadline = time.monotonic() + 10
        msg = None
        while msg is None and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
        assert msg is not None and msg.error() is not None
        assert msg.error().code() == KafkaError._PARTITION_EOF
    finally:
        consumer.close()


def test_fetch_out_of_range_offset(broker: str, topic: str) -> None:
    _produce(broker, topic, [{"value": b"x", "partition": 0} for _ in range(5)])
    consumer = Consumer({"bootstrap.servers": broker, "group.id": "compat-unused",
                         "auto.offset.reset": "error"})
    try:
        consumer.assign([TopicPartition(topic, 0, 100)])
        deadline = time.monotonic() + 10
        msg = None
        while msg is None and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
        assert msg is not None and msg.error() is not None
        # The broker answers OFFSET_OUT_OF_RANGE; librdkafka reports it as an auto-reset failure.
        assert msg.error().code() == KafkaError._AUTO_OFFSET_RESET
        assert "out of range" in msg.error().str().lower()
    finally:
        consumer.close()


def test_consumer_group_subscribe_and_commit(request: pytest.FixtureRequest,
                                             broker_under_test: BrokerUnderTest, make_topic: TopicMaker,
                                             unique: Callable[[str], str]) -> None:
    broker = broker_under_test.bootstrap
    topic = make_topic(partitions=2)
    _produce(broker, topic, [{"value": f"{i}".encode(), "partition": i % 2} for i in range(10)])
    group = unique("compat-group")
    conf = {"bootstrap.servers": broker, "group.id": group, "auto.offset.reset": "earliest",
            "enable.auto.commit": False, "session.timeout.ms": 10_000}

    consumer = Consumer(conf)
    try:
        consumer.subscribe([topic])
        got: list[Message] = []
        deadline = time.monotonic() + 30
        while len(got) < 10 and time.monotonic() < deadline:
            for msg in consumer.consume(num_messages=10, timeout=0.5):
                assert msg.error() is None, msg.error()
                got.append(msg)
        assert sorted(int(m.value()) for m in got) == list(range(10))
        assert {m.partition() for m in got} == {0, 1}
        consumer.commit(asynchronous=False)
        committed = consumer.committed([TopicPartition(topic, 0), TopicPartition(topic, 1)], timeout=10)
        assert sorted((tp.partition, tp.offset) for tp in committed) == [(0, 5), (1, 5)]
    finally:
        consumer.close()

    # A new member of the same group resumes from the committed offsets: only the new record arrives.
    _produce(broker, topic, [{"value": b"10", "partition": 0}])
    consumer = Consumer(conf)
    try:
        consumer.subscribe([topic])
        got = []
        deadline = time.monotonic() + 30
        while not got and time.monotonic() < deadline:
            got = [m for m in consumer.consume(num_messages=10, timeout=0.5) if m.error() is None]
        assert [(m.partition(), m.offset(), m.value()) for m in got] == [(0, 5, b"10")]
    finally:
        consumer.close()

    # ListGroups, DescribeGroups and OffsetFetch through the admin client.
    admin = AdminClient({"bootstrap.servers": broker})
    listed = admin.list_consumer_groups().result(timeout=15)
    assert group in {g.group_id for g in listed.valid}
    desc = admin.describe_consumer_groups([group])[group].result(timeout=15)
    assert desc.group_id == group
    assert desc.members == []  # both consumers closed: the group is empty
    offsets = admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group)])[group]
    offsets = offsets.result(timeout=15)
    assert sorted((tp.partition, tp.offset) for tp in offsets.topic_partitions) == [(0, 5), (1, 5)]


def test_list_offsets_max_timestamp(broker: str, topic: str) -> None:
    """KIP-734: ListOffsets with timestamp -3 finds the record with the largest timestamp."""
    base = int(time.time() * 1000) - 600_000
    producer = Producer({"bootstrap.servers": broker, "linger.ms": 0})
    for i, delta in enumerate([0, 5000, 2000, 1000]):
        producer.produce(topic, value=f"v{i}".encode(), partition=0, timestamp=base + delta)
        assert producer.flush(10) == 0
    admin = AdminClient({"bootstrap.servers": broker})
    tp = TopicPartition(topic, 0)
    info = admin.list_offsets({tp: OffsetSpec.max_timestamp()})[tp].result(timeout=15)
    assert (info.offset, info.timestamp) == (1, base + 5000)


def test_transactional_producer_read_committed(broker_under_test: BrokerUnderTest, make_topic: TopicMaker,
                                               unique: Callable[[str], str]) -> None:
    broker = broker_under_test.bootstrap
    topic = make_topic()
    producer = Producer({"bootstrap.servers": broker, "transactional.id": unique("compat-txn"),
                         "transaction.timeout.ms": 30_000})
    producer.init_transactions(30)
    producer.begin_transaction()
    producer.produce(topic, value=b"aborted", partition=0)
    assert producer.flush(15) == 0  # abort_transaction purges what is not sent yet
    producer.abort_transaction(30)
    producer.begin_transaction()
    producer.produce(topic, value=b"committed", partition=0)
    producer.commit_transaction(30)

    # Offsets: aborted record 0, its abort marker 1, committed record 2, commit marker 3.
    got = consume_partition(broker, topic, count=1, extra={"isolation.level": "read_committed"})
    assert [(m.offset(), m.value()) for m in got] == [(2, b"committed")]


def test_produce_auto_creates_topic(broker: str, topic_name: str) -> None:
    """auto.create.topics.enable (default true): Metadata for an unknown topic from a producer creates it."""
    reports = _produce(broker, topic_name, [{"value": b"first"}], **{"message.timeout.ms": 20_000})
    assert reports[0].offset() == 0
    got = consume_partition(broker, topic_name, reports[0].partition(), count=1)
    assert got[0].value() == b"first"


def test_fetch_waits_for_new_records(broker: str, topic: str) -> None:
    """A fetch at the log end parks (fetch.wait.max.ms) and returns as soon as a record is appended."""
    consumer = Consumer({"bootstrap.servers": broker, "group.id": "compat-unused",
                         "fetch.wait.max.ms": 5000, "fetch.min.bytes": 1})
    try:
        consumer.assign([TopicPartition(topic, 0, 0)])
        assert consumer.poll(1.0) is None  # nothing yet; the fetch is now parked
        _produce(broker, topic, [{"value": b"late", "partition": 0}])
        produced_at = time.monotonic()
        msg = None
        while msg is None and time.monotonic() - produced_at < 10:
            msg = consumer.poll(0.1)
        waited = time.monotonic() - produced_at
        assert msg is not None and msg.error() is None and msg.value() == b"late"
        assert waited < 3.0, f"record arrived {waited:.2f}s after it was produced"
    finally:
        consumer.close()


def test_fetch_returns_a_batch_larger_than_max_bytes(broker: str, topic: str) -> None:
    """KIP-74: the first batch is returned even when it exceeds the fetch size limits."""
    big = bytes(range(256)) * 400  # ~100 KB
    _produce(broker, topic, [{"value": big, "partition": 0}, {"value": b"small", "partition": 0}])
    got = consume_partition(broker, topic, count=2, extra={"max.partition.fetch.bytes": 1024,
                                                          "fetch.max.bytes": 1024,
                                                          "message.max.bytes": 1024,
                                                          "receive.message.max.bytes": 2_000_000})
    assert [m.value() for m in got] == [big, b"small"]
