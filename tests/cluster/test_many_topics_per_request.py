"""CreateTopics, CreatePartitions and DeleteTopics naming many topics in one request, on a three-broker
ZooKeeper cluster, through librdkafka.

librdkafka's own tests create 100 topics in one request (0045 subscribe_many_updates, 0081 admin), grow
nine in one CreatePartitions (0081, 6.5 s operation timeout) and delete 100 in one request, with a 30 s
request timeout. Strom handled a request's topics one after the other, each waiting for its leaders (or
for its removal from the metadata), so the answer took the sum of the waits and on a loaded two-core
machine the client timed out. A request's topics are now handled concurrently, as Kafka's controller
handles them together; on that machine 100 creations took 15.5 s one after the other and 6.5 s
concurrently, 40 partition increases 21 s and 7 s, 100 deletions 20 s and 6 s (so the bounds below catch
the old code only under such load). Colliding names (equal once '.' reads as '_') still go in request
order, so the second is refused as Kafka refuses it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from concurrent.futures import Future

import pytest
from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, NewPartitions, NewTopic

from strom.testing.cluster import ProcessCluster, wait_until
from strom.testing.zookeeper import ZooKeeperServer

pytestmark = pytest.mark.cluster

LIBRDKAFKA_TIMEOUT_S = 30.0  # librdkafka's request timeout in its tests


@pytest.fixture(scope="module")
def cluster(zookeeper: ZooKeeperServer) -> Iterator[ProcessCluster]:
    with ProcessCluster(3, f"{zookeeper.connect}/many-topics") as running:
        yield running


@pytest.fixture
def admin(cluster: ProcessCluster) -> AdminClient:
    return AdminClient({"bootstrap.servers": cluster.bootstrap_servers})


def _answered(futures: Mapping[str, Future[None]]) -> None:
    for name, future in futures.items():
        assert future.result(timeout=90) is None, name


def _timed(start: float, what: str, within: float) -> None:
    took = time.monotonic() - start
    assert took < within, f"{what} took {took:.1f} s"


def _topics(admin: AdminClient) -> dict[str, object]:
    return admin.list_topics(timeout=10).topics  # type: ignore[no-any-return]


def test_creating_100_topics(admin: AdminClient) -> None:
    names = [f"many-{i:03d}" for i in range(100)]
    started = time.monotonic()
    new = [NewTopic(n, 2, 3) for n in names]
    _answered(admin.create_topics(new, request_timeout=60, operation_timeout=55))
    _timed(started, "creating 100 topics", LIBRDKAFKA_TIMEOUT_S)

    def all_led() -> bool:  # the answering broker saw every leader; the one asked here may lag a little
        md = admin.list_topics(timeout=10)
        return all(
            len(md.topics[name].partitions) == 2
            and all(p.leader >= 1 and len(p.replicas) == 3 for p in md.topics[name].partitions.values())
            for name in names
        )

    wait_until(all_led, timeout=30, what="leaders for all 100 topics")


def test_colliding_names_in_one_request_are_created_in_request_order(admin: AdminClient) -> None:
    futures = admin.create_topics(
        [NewTopic("clash.one", 1, 3), NewTopic("clash_one", 1, 3), NewTopic("other", 1, 3)]
    )
    assert futures["clash.one"].result(timeout=60) is None
    assert futures["other"].result(timeout=60) is None
    with pytest.raises(KafkaException) as refused:
        futures["clash_one"].result(timeout=60)
    assert refused.value.args[0].code() == KafkaError.TOPIC_EXCEPTION
    assert "collides" in refused.value.args[0].str()


def test_growing_40_topics(admin: AdminClient) -> None:
    names = [f"grow-{i:02d}" for i in range(40)]
    _answered(admin.create_topics([NewTopic(n, 1, 3) for n in names], request_timeout=60))
    started = time.monotonic()
    _answered(admin.create_partitions([NewPartitions(n, 3) for n in names], request_timeout=60,
                                      operation_timeout=55))
    _timed(started, "growing 40 topics", 14.0)
    wait_until(lambda: all(len(_topics(admin)[n].partitions) == 3 for n in names),  # type: ignore[attr-defined]
               timeout=30, what="three partitions in all 40 topics")


def test_deleting_100_topics(admin: AdminClient) -> None:
    names = [f"gone-{i:03d}" for i in range(100)]
    _answered(admin.create_topics([NewTopic(n, 1, 3) for n in names], request_timeout=60))
    started = time.monotonic()
    _answered(admin.delete_topics(names, request_timeout=60, operation_timeout=55))
    _timed(started, "deleting 100 topics", 15.0)
    wait_until(lambda: not any(n in _topics(admin) for n in names), timeout=30,
               what="all 100 topics gone from the metadata")
