"""Mixed KRaft clusters of Strom and Apache Kafka 4.4 nodes, every node started from server.properties:
Strom brokers under a quorum of three Kafka controllers, Kafka brokers under three Strom controllers, a
partition replicated between a Strom and a Kafka broker, and the yardstick run where every node is Kafka.
Each run creates a topic with Kafka's kafka-topics, produces with acks=all (librdkafka, idempotent),
consumes it back, kills a partition leader with -9, and loses no acknowledged record. A quorum of two Kafka
voters and one Strom voter keeps one metadata log, byte for byte, through kill -9 of its active
controller."""

from __future__ import annotations

import struct
from collections.abc import Iterator
from pathlib import Path

import pytest

from strom.metadata.snapshot import CLUSTER_METADATA_DIR
from strom.testing.raft_quorum import wait_for
from tests.cluster_kraft.test_kraft_cluster import SETTINGS, consume, leaders, produce, topics_tool
from tests.cluster_mixed.mixed import MixedCluster
from tests.metadata.kafka_jars import dump_cluster_metadata

pytest.importorskip("confluent_kafka")
pytestmark = [pytest.mark.slow, pytest.mark.cluster]

# nodes 1-3 are controllers, 4-5 brokers: (the nodes run as Apache Kafka, the broker killed with -9). With
# one Strom and one Kafka broker every partition has a replica of each kind and either kind leads some.
LAYOUTS = {
    "strom-broker-under-kafka-controllers": ({1, 2, 3, 5}, 4),
    "kafka-broker-under-strom-controllers": ({5}, 5),
    "all-kafka": ({1, 2, 3, 4, 5}, 4),
}


def batches_below(partition_dir: Path, high_watermark: int) -> list[bytes]:
    """The record batches of a partition's segment files, in order, whose last offset is below the high
    watermark: base offset (8 bytes), batch length (4), then the rest, last offset delta at byte 23."""
    found: list[bytes] = []
    for segment in sorted(partition_dir.glob("*.log")):
        data = segment.read_bytes()
        pos = 0
        while pos + 12 <= len(data):
            base, length = struct.unpack_from(">qi", data, pos)
            if length <= 0 or pos + 12 + length > len(data):
                break
            (last_delta,) = struct.unpack_from(">i", data, pos + 23)
            if base + last_delta < high_watermark:
                found.append(data[pos : pos + 12 + length])
            pos += 12 + length
    return found


def high_watermarks(cluster: MixedCluster, topic: str, partitions: int) -> dict[int, int]:
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer({"bootstrap.servers": cluster.bootstrap_servers, "group.id": "hw"})
    try:
        return {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
                for p in range(partitions)}
    finally:
        consumer.close()


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

    # below the high watermark both replicas hold the same batches, byte for byte, whichever kind led
    def replicas_agree() -> bool:
        marks = high_watermarks(cluster, "orders", 4)
        return all(
            batches_below(cluster.data_dir(4) / f"orders-{p}", hw)
            == batches_below(cluster.data_dir(5) / f"orders-{p}", hw)
            for p, hw in marks.items()
        )

    wait_for(replicas_agree, 20, "identical batches below the high watermark", interval=0.5)
    assert sum(len(batches_below(cluster.data_dir(4) / f"orders-{p}", hw))
               for p, hw in high_watermarks(cluster, "orders", 4).items()) > 0


def metadata_logs_agree(cluster: MixedCluster) -> bool:
    """Every running voter holds the same metadata log batches below the quorum's high watermark."""
    active = cluster.active_controller()
    if active is None:
        return False
    high_watermark = int(cluster.describe_quorum(active[0]).high_watermark)
    logs = [
        batches_below(cluster.data_dir(n) / CLUSTER_METADATA_DIR, high_watermark)
        for n in cluster.controller_ids
        if cluster.running(n)
    ]
    return bool(logs[0]) and all(log == logs[0] for log in logs)


def _election_timeout(cluster: MixedCluster, node_id: int, ms: int) -> None:
    """Give one node its own controller.quorum.election.timeout.ms (a per-node setting in Kafka too)."""
    path = cluster.config_path(node_id)
    key = "controller.quorum.election.timeout.ms"
    lines = [line for line in path.read_text().splitlines() if not line.startswith(key)]
    path.write_text("\n".join([*lines, f"{key}={ms}"]) + "\n")


def test_mixed_controller_quorum() -> None:
    """Two Kafka voters (1, 2) and one Strom voter (3), brokers one of each kind: a Strom leader first (its
    election timeout is the shortest, so it stands first), then, once it is killed with -9, a Kafka
    leader; under each the cluster creates topics and takes acks=all records, every controller registers,
    and the voters replicate one metadata log byte for byte."""
    with MixedCluster(controllers=3, brokers=2, kafka={1, 2, 5}, settings=SETTINGS) as cluster:
        _election_timeout(cluster, 3, 300)
        for kafka_voter in (1, 2):
            _election_timeout(cluster, kafka_voter, 3000)
        cluster.start_all()
        first, epoch = wait_for(cluster.active_controller, 30, "an active controller")
        assert first == 3, f"the Strom voter should lead first, not {first}"
        topics_tool(cluster, "--create", "--topic", "orders", "--partitions", "2",
                    "--replication-factor", "2")
        wait_for(lambda: all(isr == [4, 5] for _, isr in leaders(cluster, "orders").values()), 30,
                 "both brokers in every ISR")
        produce(cluster, "orders", 200)
        wait_for(lambda: metadata_logs_agree(cluster), 20, "identical metadata logs", interval=0.5)
        # every controller registered with the active one, whichever kind each is (KIP-919)
        segment = cluster.data_dir(1) / CLUSTER_METADATA_DIR / "00000000000000000000.log"
        registered = {data["controllerId"] for kind, data in dump_cluster_metadata(segment).values()
                      if kind == "REGISTER_CONTROLLER_RECORD"}
        assert registered == {1, 2, 3}

        # kill -9 the Strom leader: one of the Kafka voters takes over and the cluster goes on
        cluster.kill(3)
        wait_for(lambda: (cluster.active_controller() or (3, epoch))[1] > epoch, 60, "a Kafka leader")
        second, _ = wait_for(cluster.active_controller, 10, "the new active controller")
        assert second in (1, 2), second
        topics_tool(cluster, "--create", "--topic", "after", "--partitions", "1", "--replication-factor", "2")
        produce(cluster, "orders", 100, start=200)
        assert sorted(int(v) for v in consume(cluster, "orders", 300)) == list(range(300))
        # the Strom voter comes back as a follower of the Kafka leader and holds the same log
        cluster.start(3)
        wait_for(lambda: metadata_logs_agree(cluster), 30, "identical metadata logs", interval=0.5)
        assert (cluster.active_controller() or (0, 0))[0] in (1, 2)
