"""CreatePartitions for many topics in one request on a three-broker ZooKeeper cluster, through librdkafka.

librdkafka's test 0081 admin grows nine topics in one CreatePartitions request with a 6.5 s operation
timeout (the request times out a little later). Strom grew a request's topics one after the other, each
waiting until the new partitions had leaders, so the answer took the sum of the waits and on a loaded
two-core machine the client timed out ("CreatePartitions failed: Local: Timed out"). Topics now grow
concurrently, as Kafka's controller handles a request's topics together.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from confluent_kafka.admin import AdminClient, NewPartitions, NewTopic

from strom.testing.cluster import ProcessCluster, wait_until
from strom.testing.zookeeper import ZooKeeperServer

pytestmark = pytest.mark.cluster

TOPICS = 40
# On a two-core machine running other work (load average 19), growing 40 RF-3 topics one after the other
# took 21 s, concurrently 7 s.
ANSWER_WITHIN_S = 14.0


@pytest.fixture(scope="module")
def cluster(zookeeper: ZooKeeperServer) -> Iterator[ProcessCluster]:
    with ProcessCluster(3, f"{zookeeper.connect}/create-partitions-many") as running:
        yield running


def test_one_request_growing_many_topics_is_answered_within_librdkafkas_timeout(
    cluster: ProcessCluster,
) -> None:
    admin = AdminClient({"bootstrap.servers": cluster.bootstrap_servers})
    names = [f"grow-{i:02d}" for i in range(TOPICS)]
    for name, future in admin.create_topics([NewTopic(n, 1, 3) for n in names], request_timeout=60).items():
        assert future.result(timeout=90) is None, name
    started = time.monotonic()
    futures = admin.create_partitions(
        [NewPartitions(name, 3) for name in names], request_timeout=60, operation_timeout=55
    )
    for name, future in futures.items():
        assert future.result(timeout=90) is None, name
    took = time.monotonic() - started
    assert took < ANSWER_WITHIN_S, f"growing {TOPICS} topics took {took:.1f} s"

    def all_grown() -> bool:
        listed = admin.list_topics(timeout=10).topics
        return all(len(listed[name].partitions) == 3 for name in names)

    wait_until(all_grown, timeout=30, what=f"three partitions in all {TOPICS} topics")
