"""Consumer groups across brokers: the coordinator of a group is the leader of its __consumer_offsets
partition; when that broker is killed (-9) the coordinator moves with the leadership, the new one loads
the replicated offsets, the consumer carries on, and a later member resumes from the committed offsets."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest
from confluent_kafka import Consumer, KafkaException

from strom.client.cluster import ClusterClient
from strom.protocol.errors import KafkaError
from strom.testing.cluster import ProcessCluster, create_topic, layout, produce, wait_until
from strom.testing.zookeeper import ZooKeeperServer

pytestmark = [pytest.mark.cluster]
TOPIC = "grouped"


@pytest.fixture
def cluster(zookeeper: ZooKeeperServer) -> Iterator[ProcessCluster]:
    with ProcessCluster(3, f"{zookeeper.connect}/groups-{time.monotonic_ns()}") as running:
        yield running


def _consumer(cluster: ProcessCluster) -> Consumer:
    consumer = Consumer(
        {
            "bootstrap.servers": cluster.bootstrap_servers,
            "group.id": "movers",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "session.timeout.ms": 10000,
        }
    )
    consumer.subscribe([TOPIC])
    return consumer


def _drain(consumer: Consumer, want: int, timeout: float) -> list[bytes]:
    """Poll until `want` records arrived, committing each synchronously (retrying while it moves)."""
    got: list[bytes] = []
    deadline = time.monotonic() + timeout
    while len(got) < want and time.monotonic() < deadline:
        msg = consumer.poll(0.5)
        if msg is None or msg.error():
            continue
        got.append(msg.value())
        while time.monotonic() < deadline:
            try:
                consumer.commit(message=msg, asynchronous=False)
                break
            except KafkaException:
                time.sleep(0.2)
    return got


def _coordinator(cluster: ProcessCluster) -> int:
    """The group's coordinator by FindCoordinator from a running broker, -1 while none is available.
    Not librdkafka's DescribeConsumerGroups: polled while the coordinator dies, it aborted the test
    process (rdkafka_queue.h: rd_kafka_enq_once_del_source_return: Assertion `eonce->refcnt > 0')."""
    live = ",".join(cluster.address(n) for n in cluster.node_ids if cluster.running(n))

    async def find() -> int:
        async with ClusterClient(live, timeout=5) as client:
            return await client.find_coordinator("movers")

    try:
        return asyncio.run(find())
    except (KafkaError, OSError):
        return -1


def test_group_survives_coordinator_move(cluster: ProcessCluster) -> None:
    create_topic(cluster, TOPIC, partitions=3, rf=3)
    wait_until(lambda: all(len(i) == 3 for _l, _r, i in layout(cluster, TOPIC).values()), what="full ISRs")
    for p in range(3):
        produce(cluster, TOPIC, [b"first-%d-%d" % (p, i) for i in range(10)], partition=p)
    first = _consumer(cluster)
    try:
        got = _drain(first, 30, 60)
        assert sorted(got) == sorted(b"first-%d-%d" % (p, i) for p in range(3) for i in range(10))
        coordinator = wait_until(lambda: max(_coordinator(cluster), 0), what="the coordinator")
        cluster.kill(coordinator)
        wait_until(lambda: _coordinator(cluster) not in (-1, coordinator), 40, "a new coordinator")
        for p in range(3):
            produce(cluster, TOPIC, [b"second-%d-%d" % (p, i) for i in range(5)], partition=p)
        more = _drain(first, 15, 60)
        assert sorted(more) == sorted(b"second-%d-%d" % (p, i) for p in range(3) for i in range(5))
    finally:
        first.close()
    cluster.start(coordinator)
    for p in range(3):
        produce(cluster, TOPIC, [b"third-%d" % p], partition=p)
    second = _consumer(cluster)
    try:
        # a new member resumes after the committed offsets: only the three new records arrive
        got = _drain(second, 3, 60)
        extra = _drain(second, 1, 3)
        assert sorted(got + extra) == [b"third-0", b"third-1", b"third-2"]
    finally:
        second.close()
