"""A share group's configs reach its share-partitions through a real client (confluent-kafka's
ShareConsumer): with share.record.lock.duration.ms=2000 a record a member acquired and never acknowledged
goes to another member after about 2 s, where the broker-wide lock (30 s) would hold it far longer. The
broker allows short locks here (group.share.min.record.lock.duration.ms=1000)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from confluent_kafka import Producer, ShareConsumer
from confluent_kafka.admin import AdminClient, NewTopic

from strom.testing import EmbeddedBroker


@pytest.fixture
def embedded() -> Iterator[EmbeddedBroker]:
    with EmbeddedBroker({"group.share.min.record.lock.duration.ms": "1000", "num.partitions": "1"}) as broker:
        yield broker


def _poll_until(consumer: ShareConsumer, wanted: int, timeout: float) -> list[str]:
    got: list[str] = []
    deadline = time.monotonic() + timeout
    while len(got) < wanted and time.monotonic() < deadline:
        for message in consumer.poll(0.5):
            assert message.error() is None, message.error()
            got.append(message.value().decode())
    return got


def test_the_group_lock_duration_releases_unacknowledged_records(embedded: EmbeddedBroker) -> None:
    bootstrap = embedded.bootstrap_servers
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.create_topics([NewTopic("locked", 1, 1)]).values():
        future.result(15)
    assert embedded.broker is not None
    group_configs = {"share.auto.offset.reset": "earliest", "share.record.lock.duration.ms": "2000"}
    embedded.call(embedded.broker.metadata.alter_group_configs("locking", group_configs))
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 50})
    values = [f"v{i}" for i in range(3)]
    for value in values:
        producer.produce("locked", value=value.encode(), partition=0)
    assert producer.flush(15) == 0

    explicit = {
        "bootstrap.servers": bootstrap,
        "group.id": "locking",
        "share.acknowledgement.mode": "explicit",
    }
    holder = ShareConsumer(explicit)
    holder.subscribe(["locked"])
    try:
        held = _poll_until(holder, 1, 30)
        assert held, "the first member acquired nothing"
        # the holder neither acknowledges nor polls again: its records stay acquired until the lock expires
        taker = ShareConsumer({"bootstrap.servers": bootstrap, "group.id": "locking"})
        taker.subscribe(["locked"])
        try:
            started = time.monotonic()
            taken = _poll_until(taker, len(values), 20)
            waited = time.monotonic() - started
        finally:
            taker.close()
    finally:
        holder.close()
    assert sorted(taken) == values, taken
    assert waited < 20  # far below the broker-wide 30 s lock
