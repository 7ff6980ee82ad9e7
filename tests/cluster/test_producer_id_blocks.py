"""Producer ids on a three-broker ZooKeeper cluster (`strom serve` processes) are unique across brokers.

Every broker answers InitProducerId, so ids must come from blocks claimed in ZooKeeper
(/latest_producer_id_block, as Kafka's ZkProducerIdManager does), not from a counter per data directory.
With a counter per broker, two idempotent producers that initialised on different brokers both got id 0,
so the second one's batches looked like the first one's to the partition leader: franz-go's own ETL
tests (scripts/peer-suites) saw OUT_OF_ORDER_SEQUENCE_NUMBER on first batches and records dropped as
duplicates. Checked with librdkafka producers, two bootstrapped on each broker (their InitProducerId goes
to the one broker they know at first), writing to one partition: the ids they report in their statistics
differ, and every record arrives exactly once.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from confluent_kafka import KafkaError, Producer
from kazoo.client import KazooClient

from strom.testing.cluster import ProcessCluster, consume_all, create_topic, wait_until
from strom.testing.zookeeper import ZooKeeperServer

pytestmark = pytest.mark.cluster

CHROOT = "producer-ids"
PER_PRODUCER = 300


@pytest.fixture(scope="module")
def cluster(zookeeper: ZooKeeperServer) -> Iterator[ProcessCluster]:
    with ProcessCluster(3, f"{zookeeper.connect}/{CHROOT}") as running:
        yield running


class _IdempotentProducer:
    """A librdkafka idempotent producer that reports its producer id through its statistics."""

    def __init__(self, bootstrap: str) -> None:
        self.producer_id = -1
        self.errors: list[KafkaError] = []
        self.producer = Producer(
            {
                "bootstrap.servers": bootstrap,
                "enable.idempotence": True,
                "linger.ms": 5,
                "statistics.interval.ms": 100,
                "stats_cb": self._stats,
            }
        )

    def _stats(self, raw: str) -> None:
        eos = json.loads(raw).get("eos") or {}
        self.producer_id = int(eos.get("producer_id", -1))

    def delivered(self, error: KafkaError | None, _message: object) -> None:
        if error is not None:
            self.errors.append(error)


def test_producers_initialised_on_different_brokers_get_different_ids(
    cluster: ProcessCluster, zookeeper: ZooKeeperServer
) -> None:
    topic = "shared-by-producers"
    create_topic(cluster, topic, partitions=1, rf=3)
    producers = [_IdempotentProducer(cluster.address(node_id)) for node_id in cluster.node_ids * 2]
    rounds = 5
    for round_ in range(rounds):
        for index, client in enumerate(producers):
            for i in range(PER_PRODUCER // rounds):
                value = f"p{index}-{round_}-{i}".encode()
                client.producer.produce(topic, value=value, partition=0, on_delivery=client.delivered)
            assert client.producer.flush(30) == 0
    for client in producers:
        assert not client.errors, client.errors[:3]

    def all_reported() -> bool:
        for client in producers:
            client.producer.poll(0.05)
        return all(client.producer_id >= 0 for client in producers)

    wait_until(all_reported, timeout=10, what="producer ids in the statistics")
    ids = [client.producer_id for client in producers]
    assert len(set(ids)) == len(ids), ids

    # the records of producers sharing an id were refused or dropped as duplicates
    expected = len(producers) * PER_PRODUCER
    values = consume_all(cluster, topic, 0, expected)
    assert len(values) == expected
    assert len(set(values)) == expected

    # the brokers claimed their blocks of 1000 in ZooKeeper, in Kafka's JSON layout
    zk = KazooClient(hosts=f"{zookeeper.connect}/{CHROOT}", timeout=5)
    zk.start(5)
    try:
        data, _ = zk.get("/latest_producer_id_block")
    finally:
        zk.stop()
        zk.close()
    block = json.loads(data)
    assert block["version"] == 1 and block["broker"] in cluster.node_ids
    assert int(block["block_end"]) - int(block["block_start"]) == 999
    assert int(block["block_end"]) >= max(ids)
