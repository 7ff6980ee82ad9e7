"""Transactions on a 3-broker ZooKeeper cluster (`strom serve` processes): markers reach partition leaders
on other brokers (WriteTxnMarkers), and when the coordinator's broker dies a new leader of its
__transaction_state partition replays it and aborts the open transaction for the next producer."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterator

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from strom.coordinator.group.schemas import partition_for
from strom.testing.cluster import ProcessCluster, create_assigned, layout, wait_until
from strom.testing.zookeeper import ZooKeeperServer

pytestmark = [pytest.mark.cluster, pytest.mark.slow]
_chroots = itertools.count()


@pytest.fixture(scope="module")
def cluster(zookeeper: ZooKeeperServer) -> Iterator[ProcessCluster]:
    overrides = {"transaction.abort.timed.out.transaction.cleanup.interval.ms": "500"}
    with ProcessCluster(3, f"{zookeeper.connect}/txn-{next(_chroots)}", overrides) as running:
        yield running


def _producer(cluster: ProcessCluster, tid: str) -> Producer:
    producer = Producer(
        {"bootstrap.servers": cluster.bootstrap_servers, "transactional.id": tid, "linger.ms": 5}
    )
    producer.init_transactions(60)
    return producer


def _read(cluster: ProcessCluster, topic: str, partitions: int, isolation: str) -> list[bytes]:
    consumer = Consumer(
        {
            "bootstrap.servers": cluster.bootstrap_servers,
            "group.id": f"g-{uuid.uuid4().hex[:6]}",
            "isolation.level": isolation,
            "enable.auto.commit": False,
        }
    )
    consumer.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
    got: list[bytes] = []
    idle = 0
    try:
        while idle < 8:
            msg = consumer.poll(0.25)
            if msg is None or msg.error():
                idle += 1
                continue
            idle = 0
            got.append(msg.value())
    finally:
        consumer.close()
    return sorted(got)


def test_markers_reach_leaders_on_every_broker(cluster: ProcessCluster) -> None:
    create_assigned(cluster, "txn-spread", [[1, 2], [2, 3], [3, 1]])
    wait_until(lambda: {lt[0] for lt in layout(cluster, "txn-spread").values()} == {1, 2, 3}, what="leaders")
    producer = _producer(cluster, f"spread-{uuid.uuid4().hex[:6]}")
    producer.begin_transaction()
    for p in range(3):
        producer.produce("txn-spread", f"aborted-{p}".encode(), partition=p)
    producer.flush(20)
    producer.abort_transaction(60)
    producer.begin_transaction()
    for p in range(3):
        producer.produce("txn-spread", f"committed-{p}".encode(), partition=p)
    producer.commit_transaction(60)
    assert _read(cluster, "txn-spread", 3, "read_committed") == [f"committed-{p}".encode() for p in range(3)]
    assert len(_read(cluster, "txn-spread", 3, "read_uncommitted")) == 6


def test_coordinator_failover_aborts_the_open_transaction(cluster: ProcessCluster) -> None:
    create_assigned(cluster, "txn-failover", [[1, 2, 3]])
    tid = f"failover-{uuid.uuid4().hex[:6]}"
    zombie = _producer(cluster, tid)
    zombie.begin_transaction()
    zombie.produce("txn-failover", b"open", partition=0)
    zombie.flush(20)
    state_partition = partition_for(tid, 3)
    coordinator = layout(cluster, "__transaction_state")[state_partition][0]
    cluster.kill(coordinator)
    try:
        wait_until(
            lambda: (
                layout(cluster, "__transaction_state").get(state_partition, (coordinator,))[0]
                not in (coordinator, -1)
            ),
            30,
            "a new transaction coordinator",
        )
        successor = _producer(cluster, tid)
        successor.begin_transaction()
        successor.produce("txn-failover", b"after", partition=0)
        successor.commit_transaction(60)
        assert _read(cluster, "txn-failover", 1, "read_committed") == [b"after"]
    finally:
        zombie.purge()
        cluster.start(coordinator)
