"""CreateTopics with many topics in one request on a three-broker ZooKeeper cluster, through librdkafka.

librdkafka's own tests (0045 subscribe_many_updates, 0081 admin) create 100 topics in one request with a
30 s request timeout. Strom created a request's topics one after the other, each waiting for its leaders,
so the answer took the sum of the waits (over 30 s on a loaded two-core machine) and the client timed out;
100 topics took 15.5 s one after the other and 6.5 s concurrently on the same loaded machine (the bound
below is librdkafka's, so this fails on the old code only under such load). Topics are now created
concurrently; names that collide (equal once '.' reads as '_') still go in request
order, so the second is refused as Kafka refuses it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

from strom.testing.cluster import ProcessCluster, wait_until
from strom.testing.zookeeper import ZooKeeperServer

pytestmark = pytest.mark.cluster

TOPICS = 100
ANSWER_WITHIN_S = 30.0  # librdkafka's request timeout in its tests


@pytest.fixture(scope="module")
def cluster(zookeeper: ZooKeeperServer) -> Iterator[ProcessCluster]:
    with ProcessCluster(3, f"{zookeeper.connect}/create-topics-many") as running:
        yield running


def test_one_request_of_100_topics_is_answered_well_within_librdkafkas_timeout(
    cluster: ProcessCluster,
) -> None:
    admin = AdminClient({"bootstrap.servers": cluster.bootstrap_servers})
    names = [f"many-{i:03d}" for i in range(TOPICS)]
    started = time.monotonic()
    futures = admin.create_topics(
        [NewTopic(name, 2, 3) for name in names], request_timeout=60, operation_timeout=55
    )
    for name, future in futures.items():
        assert future.result(timeout=90) is None, name
    took = time.monotonic() - started
    assert took < ANSWER_WITHIN_S, f"{TOPICS} topics took {took:.1f} s"

    def all_led() -> bool:  # the answering broker saw every leader; the one asked here may lag a little
        md = admin.list_topics(timeout=10)
        return all(
            len(md.topics[name].partitions) == 2
            and all(p.leader >= 1 and len(p.replicas) == 3 for p in md.topics[name].partitions.values())
            for name in names
        )

    wait_until(all_led, timeout=30, what=f"leaders for all {TOPICS} topics")


def test_colliding_names_in_one_request_are_created_in_request_order(cluster: ProcessCluster) -> None:
    admin = AdminClient({"bootstrap.servers": cluster.bootstrap_servers})
    futures = admin.create_topics(
        [NewTopic("clash.one", 1, 3), NewTopic("clash_one", 1, 3), NewTopic("other", 1, 3)]
    )
    assert futures["clash.one"].result(timeout=60) is None
    assert futures["other"].result(timeout=60) is None
    with pytest.raises(KafkaException) as refused:
        futures["clash_one"].result(timeout=60)
    assert refused.value.args[0].code() == KafkaError.TOPIC_EXCEPTION
    assert "collides" in refused.value.args[0].str()
