"""Mixed KRaft clusters of Strom and Apache Kafka 4.4 nodes, every node started from server.properties:
Strom brokers under a quorum of three Kafka controllers, Kafka brokers under three Strom controllers, a
partition replicated between a Strom and a Kafka broker, and the yardstick run where every node is Kafka.
Each run creates a topic with Kafka's kafka-topics, produces with acks=all (librdkafka, idempotent),
consumes it back, kills a partition leader with -9, and loses no acknowledged record."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from strom.testing.raft_quorum import wait_for
from tests.cluster_kraft.test_kraft_cluster import SETTINGS, consume, leaders, produce, topics_tool
from tests.cluster_mixed.mixed import MixedCluster

pytest.importorskip("confluent_kafka")
pytestmark = [pytest.mark.slow, pytest.mark.cluster]

# nodes 1-3 are controllers, 4-5 brokers: (the nodes run as Apache Kafka, the broker killed with -9). With
# one Strom and one Kafka broker every partition has a replica of each kind and either kind leads some.
LAYOUTS = {
    "strom-broker-under-kafka-controllers": ({1, 2, 3, 5}, 4),
    "kafka-broker-under-strom-controllers": ({5}, 5),
    "all-kafka": ({1, 2, 3, 4, 5}, 4),
}


@pytest.fixture(params=list(LAYOUTS))
def layout(request: pytest.FixtureRequest) -> Iterator[tuple[MixedCluster, int]]:
    kafka, victim = LAYOUTS[request.param]
    with MixedCluster(controllers=3, brokers=2, kafka=kafka, settings=SETTINGS) as mixed:
        mixed.start_all()
        yield mixed, victim


def test_produce_consume_and_leader_kill(layout: tuple[MixedCluster, int]) -> None:
    cluster, victim = layout
    out = topics_tool(cluster, "--create", "--topic", "orders", "--partitions", "4", "--replication-factor",
                      "2", "--config", "min.insync.replicas=2")
    assert "Created topic orders." in out
    wait_for(lambda: all(isr == [4, 5] for _, isr in leaders(cluster, "orders").values()), 30,
             "both brokers in every ISR")
    produce(cluster, "orders", 500)
    assert sorted(int(v) for v in consume(cluster, "orders", 500)) == list(range(500))

    # kill -9 a partition leader: its partitions fail over to the broker of the other kind, nothing
    # acknowledged is lost, and once the victim is back the ISR heals and acks=all writes go through again
    assert victim in {leader for leader, _ in leaders(cluster, "orders").values()}
    survivor = ({4, 5} - {victim}).pop()
    cluster.kill(victim)
    wait_for(lambda: all(leader == survivor and isr == [survivor]
                         for leader, isr in leaders(cluster, "orders").values()), 30,
             f"partitions led by broker {survivor} alone")
    assert sorted(int(v) for v in consume(cluster, "orders", 500)) == list(range(500))
    cluster.start(victim)
    wait_for(lambda: all(isr == [4, 5] for _, isr in leaders(cluster, "orders").values()), 60,
             "the ISR to heal")
    produce(cluster, "orders", 100, start=500)
    assert sorted(int(v) for v in consume(cluster, "orders", 600)) == list(range(600))
