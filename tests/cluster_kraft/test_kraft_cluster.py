"""KRaft clusters of Strom processes from server.properties files like Kafka's: three controllers and two
brokers, and three combined nodes. Kafka 4.4's tools and librdkafka drive them; replication, acks=all and
failover of a killed partition leader behave as in ZooKeeper mode; the metadata log decodes with Kafka's
kafka-dump-log."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from strom.metadata.snapshot import CLUSTER_METADATA_DIR
from strom.testing.kraft_cluster import KRaftCluster
from strom.testing.raft_quorum import wait_for

confluent_kafka = pytest.importorskip("confluent_kafka")
pytestmark = pytest.mark.slow

SETTINGS = {
    "broker.session.timeout.ms": "3000",
    "broker.heartbeat.interval.ms": "500",
    "controller.quorum.election.timeout.ms": "1000",
    "controller.quorum.fetch.timeout.ms": "2000",
    "offsets.topic.replication.factor": "2",
    "offsets.topic.num.partitions": "4",
    "transaction.state.log.num.partitions": "4",
    "transaction.state.log.replication.factor": "2",
    "transaction.state.log.min.isr": "1",
}


def topics_tool(cluster: KRaftCluster, *args: str) -> str:
    from tests.metadata.kafka_jars import kafka_run

    proc = kafka_run(
        "org.apache.kafka.tools.TopicCommand", "--bootstrap-server", cluster.bootstrap_servers, *args
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


def leaders(cluster: KRaftCluster, topic: str) -> dict[int, tuple[int, list[int]]]:
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": cluster.bootstrap_servers})
    meta = admin.list_topics(topic, timeout=10).topics[topic]
    return {p: (m.leader, sorted(m.isrs)) for p, m in meta.partitions.items()}


def produce(cluster: KRaftCluster, topic: str, n: int, start: int = 0) -> None:
    producer = confluent_kafka.Producer(
        {"bootstrap.servers": cluster.bootstrap_servers, "acks": "all", "enable.idempotence": True}
    )
    errors: list[object] = []
    for i in range(start, start + n):
        producer.produce(topic, value=b"%d" % i, on_delivery=lambda err, _m: err and errors.append(err))
    assert producer.flush(60) == 0 and not errors


def consume(cluster: KRaftCluster, topic: str, n: int) -> list[bytes]:
    consumer = confluent_kafka.Consumer(
        {
            "bootstrap.servers": cluster.bootstrap_servers,
            "group.id": f"g-{time.time()}",
            "auto.offset.reset": "earliest",
        }
    )
    consumer.subscribe([topic])
    got: list[bytes] = []
    deadline = time.monotonic() + 60
    while len(got) < n and time.monotonic() < deadline:
        msg = consumer.poll(0.5)
        if msg is not None and not msg.error():
            got.append(msg.value())
    consumer.close()
    return got


@pytest.fixture
def split() -> Iterator[KRaftCluster]:
    with KRaftCluster(controllers=3, brokers=2, settings=SETTINGS) as cluster:
        cluster.start_all()
        yield cluster


def test_controllers_and_brokers_serve_kafka_tools_and_clients(split: KRaftCluster) -> None:
    from tests.metadata.kafka_jars import dump_cluster_metadata, kafka_run

    assert "Created topic orders." in topics_tool(
        split,
        "--create",
        "--topic",
        "orders",
        "--partitions",
        "4",
        "--replication-factor",
        "2",
        "--config",
        "min.insync.replicas=2",
    )
    described = topics_tool(split, "--describe", "--topic", "orders")
    assert "PartitionCount: 4" in described and "ReplicationFactor: 2" in described
    assert all(isr == [4, 5] for _, isr in leaders(split, "orders").values())
    produce(split, "orders", 500)
    assert sorted(int(v) for v in consume(split, "orders", 500)) == list(range(500))

    features = kafka_run(
        "org.apache.kafka.tools.FeatureCommand", "--bootstrap-server", split.bootstrap_servers, "describe"
    )
    assert features.returncode == 0 and "transaction.version" in features.stdout
    cluster_id = kafka_run(
        "org.apache.kafka.tools.ClusterTool", "cluster-id", "--bootstrap-server", split.bootstrap_servers
    )
    assert cluster_id.stdout.strip() == f"Cluster ID: {split.cluster_id}"
    status = kafka_run(
        "org.apache.kafka.tools.MetadataQuorumCommand",
        "--bootstrap-controller",
        split.bootstrap_controllers,
        "describe",
        "--status",
    )
    assert status.returncode == 0, status.stderr
    lines = dict(line.split(":", 1) for line in status.stdout.strip().splitlines())
    assert lines["ClusterId"].strip() == split.cluster_id
    assert '"id": 4' in lines["CurrentObservers"] and '"id": 5' in lines["CurrentObservers"]

    # the metadata log is Kafka's: its decoder reads the controller's records
    segment = split.data_dir(1) / CLUSTER_METADATA_DIR / "00000000000000000000.log"
    kinds = {kind for kind, _ in dump_cluster_metadata(segment).values()}
    assert {
        "FEATURE_LEVEL_RECORD",
        "REGISTER_BROKER_RECORD",
        "BROKER_REGISTRATION_CHANGE_RECORD",
        "TOPIC_RECORD",
        "PARTITION_RECORD",
        "CONFIG_RECORD",
        "BEGIN_TRANSACTION_RECORD",
    } <= kinds

    # acks=all with min.insync.replicas=2: kill -9 one broker, its partitions fail over to the other,
    # and writes are refused until the ISR is back
    victim = 4
    led = [p for p, (leader, _) in leaders(split, "orders").items() if leader == victim]
    split.kill(victim)
    wait_for(
        lambda: all(leader == 5 and isr == [5] for leader, isr in leaders(split, "orders").values()),
        20,
        "partitions led by broker 5 alone",
    )
    assert led
    split.start(victim)
    wait_for(
        lambda: all(isr == [4, 5] for _, isr in leaders(split, "orders").values()), 30, "the ISR to heal"
    )
    produce(split, "orders", 100, start=500)
    assert sorted(int(v) for v in consume(split, "orders", 600)) == list(range(600))


def test_three_combined_nodes() -> None:
    with KRaftCluster(combined=3, settings=SETTINGS) as cluster:
        cluster.start_all()
        topics_tool(cluster, "--create", "--topic", "t", "--partitions", "3", "--replication-factor", "3")
        produce(cluster, "t", 300)
        assert len(consume(cluster, "t", 300)) == 300
        assert all(isr == [1, 2, 3] for _, isr in leaders(cluster, "t").values())
