"""Metadata on a three-broker ZooKeeper cluster for a partition without a live leader: LEADER_NOT_AVAILABLE
and leader -1 per partition, as Kafka's metadata cache answers, while the topic's other partitions are
served as usual. Before, such a partition answered NONE with leader -1 (or the gone broker's id), so a
client took a just-created topic as ready before its leader was elected: franz-go's tests wait for every
broker to answer a new topic without errors, then failed on LEADER_NOT_AVAILABLE (TestIssue523,
scripts/peer-suites)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from confluent_kafka import KafkaError
from confluent_kafka.admin import AdminClient

from strom.testing.cluster import ProcessCluster, create_assigned, wait_until
from strom.testing.zookeeper import ZooKeeperServer

pytestmark = pytest.mark.cluster


@pytest.fixture(scope="module")
def cluster(zookeeper: ZooKeeperServer) -> Iterator[ProcessCluster]:
    with ProcessCluster(3, f"{zookeeper.connect}/metadata-leaderless") as running:
        yield running


def test_partition_whose_only_replica_is_gone_answers_leader_not_available(cluster: ProcessCluster) -> None:
    topic = "leaderless"
    create_assigned(cluster, topic, [[3], [1]])  # partition 0 only on broker 3
    cluster.stop(3)
    admin = AdminClient({"bootstrap.servers": cluster.address(1), "socket.timeout.ms": 5000})

    def partitions() -> dict[int, tuple[int, int | None]] | None:
        info = admin.list_topics(topic, timeout=5).topics[topic]
        if info.error is not None:
            return None
        return {
            p.id: (p.leader, None if p.error is None else p.error.code()) for p in info.partitions.values()
        }

    leaderless = {0: (-1, KafkaError.LEADER_NOT_AVAILABLE), 1: (1, None)}
    wait_until(lambda: partitions() == leaderless, timeout=20, what=f"{topic}-0 without a leader")
    cluster.start(3)
    wait_until(lambda: partitions() == {0: (3, None), 1: (1, None)}, timeout=30, what=f"{topic}-0 back")
