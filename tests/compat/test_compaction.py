"""Log compaction seen by a real client (confluent-kafka / librdkafka) against an embedded Strom broker
with a fast cleaner (log.cleaner.backoff.ms=100) and tiny segments:

- overwrite keys, wait for the cleaner, consume from the beginning: the latest value of every key,
  a tombstone for a deleted key, increasing offsets with gaps, far fewer records than produced;
- a record without a key on a compacted topic fails with INVALID_RECORD, as on Kafka;
- switching a topic from delete to compact at runtime starts cleaning it;
- __consumer_offsets is compacted while the committed offset stays readable.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator

import pytest

confluent_kafka = pytest.importorskip("confluent_kafka")
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition  # noqa: E402
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic  # noqa: E402

from strom.testing import EmbeddedBroker  # noqa: E402

TOPIC_CONFIG = {
    "cleanup.policy": "compact",
    "internal.segment.bytes": "8192",  # segments under segment.bytes' 1 MiB minimum
    "min.cleanable.dirty.ratio": "0.01",
}


@pytest.fixture(scope="module")
def broker() -> Iterator[EmbeddedBroker]:
    with EmbeddedBroker(
        {
            "log.cleaner.backoff.ms": "100",
            "offsets.topic.segment.bytes": "4096",
            "offsets.topic.num.partitions": "1",
            "log.retention.check.interval.ms": "200",
        }
    ) as b:
        yield b


def _create(broker: EmbeddedBroker, configs: dict[str, str]) -> str:
    name = f"compacted-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": broker.bootstrap_servers})
    admin.create_topics([NewTopic(name, 1, 1, config=configs)])[name].result(timeout=15)
    return name


def _produce(broker: EmbeddedBroker, topic: str, pairs: list[tuple[bytes, bytes | None]]) -> None:
    producer = Producer({"bootstrap.servers": broker.bootstrap_servers, "linger.ms": 0, "batch.size": 4096})
    errors: list[KafkaError] = []
    for key, value in pairs:
        producer.produce(topic, key=key, value=value, on_delivery=lambda err, _m: err and errors.append(err))
        producer.poll(0)
    assert producer.flush(15) == 0
    assert errors == []


def _consume_all(broker: EmbeddedBroker, topic: str) -> list[tuple[int, bytes | None, bytes | None]]:
    consumer = Consumer(
        {
            "bootstrap.servers": broker.bootstrap_servers,
            "group.id": f"g-{uuid.uuid4().hex[:8]}",
            "auto.offset.reset": "earliest",
            "enable.partition.eof": True,
            "enable.auto.commit": False,
        }
    )
    consumer.assign([TopicPartition(topic, 0, 0)])
    out: list[tuple[int, bytes | None, bytes | None]] = []
    deadline = time.monotonic() + 20
    try:
        while time.monotonic() < deadline:
            msg = consumer.poll(1.0)
            if msg is None:
                continue
            if msg.error():
                if msg.error().code() == KafkaError._PARTITION_EOF:
                    return out
                raise AssertionError(msg.error())
            out.append((msg.offset(), msg.key(), msg.value()))
        raise AssertionError("no end of partition within 20 s")
    finally:
        consumer.close()


def _wait_for(predicate: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError("condition not reached in time")


def _log(broker: EmbeddedBroker, topic: str):  # the broker's Log object, read only
    assert broker.broker is not None
    return broker.broker.log_manager.get_log(topic, 0)


def _cleaned_up_to(broker: EmbeddedBroker, topic: str) -> int:
    assert broker.broker is not None
    cleaner = broker.broker.log_manager.cleaner
    assert cleaner is not None
    return cleaner.checkpoints.get((topic, 0), -1)


def test_overwritten_keys_are_compacted_for_consumers(broker: EmbeddedBroker) -> None:
    topic = _create(broker, TOPIC_CONFIG)
    pairs = [(f"key-{k}".encode(), f"value-{r}-{k}".encode() * 8) for r in range(40) for k in range(10)]
    pairs.append((b"key-0", None))  # delete key-0
    _produce(broker, topic, pairs)
    log = _log(broker, topic)
    _wait_for(lambda: _cleaned_up_to(broker, topic) >= log.active_segment.base_offset > 0)
    records = _consume_all(broker, topic)
    offsets = [o for o, _k, _v in records]
    assert offsets == sorted(set(offsets))
    assert len(records) < len(pairs) // 2
    latest: dict[bytes | None, bytes | None] = {}
    for _o, key, value in records:
        latest[key] = value
    expected = {f"key-{k}".encode(): f"value-39-{k}".encode() * 8 for k in range(1, 10)}
    expected[b"key-0"] = None  # the tombstone is kept for delete.retention.ms (1 day by default)
    assert latest == expected


def test_keyless_record_is_refused_with_invalid_record(broker: EmbeddedBroker) -> None:
    topic = _create(broker, TOPIC_CONFIG)
    producer = Producer({"bootstrap.servers": broker.bootstrap_servers, "retries": 0})
    results: list[KafkaError | None] = []
    producer.produce(topic, value=b"no key", on_delivery=lambda err, _m: results.append(err))
    producer.flush(15)
    assert len(results) == 1 and results[0] is not None
    assert results[0].code() == KafkaError.INVALID_RECORD
    assert _consume_all(broker, topic) == []


def test_switching_to_compact_at_runtime_starts_cleaning(broker: EmbeddedBroker) -> None:
    topic = _create(broker, {**TOPIC_CONFIG, "cleanup.policy": "delete"})
    _produce(broker, topic, [(b"same", f"v{i}".encode() * 20) for i in range(200)])
    time.sleep(0.5)
    assert _cleaned_up_to(broker, topic) == -1  # delete policy: never cleaned
    admin = AdminClient({"bootstrap.servers": broker.bootstrap_servers})
    resource = ConfigResource(ConfigResource.Type.TOPIC, topic, set_config={**TOPIC_CONFIG})
    admin.alter_configs([resource])[resource].result(timeout=15)
    log = _log(broker, topic)
    _wait_for(lambda: _cleaned_up_to(broker, topic) >= log.active_segment.base_offset > 0)
    records = _consume_all(broker, topic)
    assert records[-1][2] == b"v199" * 20
    assert len(records) < 50


def test_consumer_offsets_is_compacted(broker: EmbeddedBroker) -> None:
    topic = _create(broker, {"cleanup.policy": "delete"})
    _produce(broker, topic, [(b"k", b"v")])
    group = f"g-{uuid.uuid4().hex[:8]}"
    consumer = Consumer(
        {"bootstrap.servers": broker.bootstrap_servers, "group.id": group, "enable.auto.commit": False}
    )
    try:
        for i in range(150):
            consumer.commit(offsets=[TopicPartition(topic, 0, i + 1)], asynchronous=False)
        offsets_log = _log(broker, "__consumer_offsets")
        assert offsets_log.log_end_offset >= 150  # (the cleaner may already be merging its segments)
        # The cleaner works in rounds, one dirty range at a time, so wait for the round that
        # reaches the active segment rather than for the first one.
        _wait_for(
            lambda: _cleaned_up_to(broker, "__consumer_offsets") >= offsets_log.active_segment.base_offset > 0
        )
        _wait_for(lambda: sum(1 for _ in offsets_log.iter_batches(0)) < 100)
        committed = consumer.committed([TopicPartition(topic, 0)], timeout=10)
        assert committed[0].offset == 150
    finally:
        consumer.close()


def test_cleaning_is_bounded_by_the_partition_high_watermark(broker: EmbeddedBroker) -> None:
    topic = _create(broker, TOPIC_CONFIG)
    _produce(broker, topic, [(b"k%d" % (i % 5), b"v%d" % i + b"x" * 200) for i in range(300)])
    assert broker.broker is not None
    manager = broker.broker.log_manager
    bound = manager.cleanable_upper_bound
    assert bound is not None
    part = broker.broker.replica_manager.get_partition(topic, 0)
    assert part is not None
    _wait_for(
        lambda: (
            bound(topic, 0)
            == part.last_stable_offset
            == part.high_watermark
            == _log(broker, topic).log_end_offset
        )
    )
    assert bound("no-such-topic", 0) == 0  # no partition: nothing may be cleaned yet
    _wait_for(lambda: _cleaned_up_to(broker, topic) > 0)
    assert _cleaned_up_to(broker, topic) <= part.high_watermark
