"""Moving a ZooKeeper-mode Strom cluster to KRaft offline (`strom storage migrate-from-zookeeper`).

Three ZooKeeper-mode brokers (ids 2-4) get topics with configs, records produced with acks=all by an
idempotent producer, a consumer group's committed offsets, ACLs, a SCRAM credential, client quotas and a
dynamic broker config. Once they are stopped, the command formats a KRaft controller (node 1) and the
three brokers' own data directories; the KRaft cluster then serves every topic under its ZooKeeper topic
id, every record, config, ACL, credential, quota and committed offset (the group resumes where it
committed), and new idempotent producers get producer ids above every id the ZooKeeper cluster handed out.
The command refuses while a broker is registered and when the controller is already formatted.
"""

from __future__ import annotations

import base64
import shutil
import struct
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from kazoo.client import KazooClient

from strom.cluster import zk_layout as L
from strom.metadata.snapshot import BOOTSTRAP_SNAPSHOT, CLUSTER_METADATA_DIR, read_snapshot
from strom.storage.checkpoint import read_meta_properties
from strom.testing.cluster import REPO, ProcessCluster
from strom.testing.kraft_cluster import KRaftCluster
from strom.testing.zookeeper import ZooKeeperServer, java_available

confluent_kafka = pytest.importorskip("confluent_kafka")
from confluent_kafka import (  # noqa: E402
    Consumer,
    ConsumerGroupTopicPartitions,
    Producer,
    TopicCollection,
    TopicPartition,
)
from confluent_kafka.admin import (  # noqa: E402
    AclBinding,
    AclBindingFilter,
    AclOperation,
    AclPermissionType,
    AdminClient,
    ConfigResource,
    NewTopic,
    ResourcePatternType,
    ResourceType,
    ScramCredentialInfo,
    ScramMechanism,
    UserScramCredentialUpsertion,
)

pytestmark = pytest.mark.slow

SHARED = {
    "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
    "allow.everyone.if.no.acl.found": "true",
    "offsets.topic.replication.factor": "3",
    "offsets.topic.num.partitions": "3",
    "transaction.state.log.replication.factor": "3",
    "transaction.state.log.num.partitions": "3",
    "group.initial.rebalance.delay.ms": "0",
}
KRAFT = {
    **SHARED,
    "broker.session.timeout.ms": "3000",
    "broker.heartbeat.interval.ms": "500",
    "controller.quorum.election.timeout.ms": "1000",
    "controller.quorum.fetch.timeout.ms": "2000",
}
BROKERS = (2, 3, 4)
GROUP = "readers"
ORDERS = {p: [f"order-{p}-{i}".encode() for i in range(40 + 10 * p)] for p in range(3)}
EVENTS = [f"event-{i}".encode() for i in range(25)]
COMMITTED = {0: 17, 1: 0, 2: 49}
ACLS = [
    AclBinding(ResourceType.TOPIC, "audit-log", ResourcePatternType.LITERAL, "User:alice", "*",
               AclOperation.READ, AclPermissionType.ALLOW),
    AclBinding(ResourceType.GROUP, "billing-", ResourcePatternType.PREFIXED, "User:bob", "10.0.0.7",
               AclOperation.DESCRIBE, AclPermissionType.DENY),
]


def strom(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([sys.executable, "-m", "strom.cli.main", *args], cwd=REPO, capture_output=True,
                          text=True, timeout=120)
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


def produce(bootstrap: str, topic: str, partition: int, values: list[bytes]) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True,
                         "linger.ms": 5})
    errors: list[object] = []
    for value in values:
        producer.produce(topic, value=value, partition=partition,
                         on_delivery=lambda err, _m: err and errors.append(err))
    assert producer.flush(60) == 0
    assert not errors, errors[:3]


def read(bootstrap: str, topic: str, partition: int, start: int, count: int, group: str) -> list[bytes]:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False,
                         "auto.offset.reset": "earliest"})
    try:
        consumer.assign([TopicPartition(topic, partition, start)])
        out: list[bytes] = []
        deadline = time.monotonic() + 60
        while len(out) < count and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is not None and not msg.error():
                out.append(msg.value())
        return out
    finally:
        consumer.close()


def watermarks(bootstrap: str, topic: str, partition: int) -> tuple[int, int]:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "watermarks"})
    try:
        low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=30)
        return int(low), int(high)
    finally:
        consumer.close()


def producer_ids(data_dir: Path, topic: str, partition: int) -> set[int]:
    """The producer id of every batch in the partition's segments (the batch header's field at byte 43)."""
    ids = set()
    for segment in sorted((data_dir / f"{topic}-{partition}").glob("*.log")):
        buf = segment.read_bytes()
        pos = 0
        while pos + 61 <= len(buf):
            (length,) = struct.unpack_from(">i", buf, pos + 8)
            (pid,) = struct.unpack_from(">q", buf, pos + 43)
            ids.add(pid)
            pos += 12 + length
    return ids


def topic_ids(admin: AdminClient, *names: str) -> dict[str, uuid.UUID]:
    """The topic ids DescribeTopics answers (librdkafka prints them in standard base64)."""
    futures = admin.describe_topics(TopicCollection(list(names)))
    return {name: uuid.UUID(bytes=base64.b64decode(str(f.result(30).topic_id) + "=="))
            for name, f in futures.items()}


@pytest.fixture
def zookeeper() -> Iterator[ZooKeeperServer]:
    if not java_available():
        pytest.skip("java and Debian's zookeeper package are needed")
    with ZooKeeperServer() as server:
        yield server


def test_a_zookeeper_cluster_moves_to_kraft_with_its_data(zookeeper: ZooKeeperServer, tmp_path: Path) -> None:
    connect = zookeeper.connect + "/migrating"
    zk_cluster = ProcessCluster(len(BROKERS), connect, SHARED, first_node_id=BROKERS[0])
    kraft = KRaftCluster(controllers=1, brokers=len(BROKERS), settings=KRAFT, format=False)
    assert kraft.broker_ids == list(BROKERS)
    zk = KazooClient(hosts=connect, timeout=5)
    try:
        # --- the ZooKeeper-mode cluster, with data ----------------------------------------------------
        zk_cluster.start_all()
        bootstrap = zk_cluster.bootstrap_servers
        admin = AdminClient({"bootstrap.servers": bootstrap})
        futures = admin.create_topics([
            NewTopic("orders", 3, 3, config={"retention.ms": "86400000", "min.insync.replicas": "2"}),
            NewTopic("events", 1, 2, config={"max.message.bytes": "200000"}),
        ])
        for future in futures.values():
            future.result(30)
        for p, values in ORDERS.items():
            produce(bootstrap, "orders", p, values)
        produce(bootstrap, "events", 0, EVENTS)
        committer = Consumer({"bootstrap.servers": bootstrap, "group.id": GROUP, "enable.auto.commit": False})
        committer.commit(offsets=[TopicPartition("orders", p, o) for p, o in COMMITTED.items()],
                         asynchronous=False)
        committer.close()
        for future in admin.create_acls(ACLS).values():
            future.result(30)
        scram = admin.alter_user_scram_credentials([UserScramCredentialUpsertion(
            "alice", ScramCredentialInfo(ScramMechanism.SCRAM_SHA_256, 8192), b"alice-secret")])
        for future in scram.values():
            future.result(30)
        strom("quotas", "alter", "--bootstrap-server", bootstrap, "--user", "alice",
              "--set", "producer_byte_rate=1048576")
        strom("quotas", "alter", "--bootstrap-server", bootstrap, "--client-default",
              "--set", "request_percentage=50")
        strom("configs", "alter", "--bootstrap-server", bootstrap, "--broker", "3",
              "--set", "log.cleaner.threads=2")
        zk.start(10)
        ids_before = topic_ids(admin, "orders", "events", "__consumer_offsets")
        for name, topic_id in ids_before.items():  # the ids clients see are the ZooKeeper tree's
            zk_id = L.decode_topic(zk.get(L.topic_path(name))[0]).topic_id
            assert zk_id == topic_id
        # a credential of the ZooKeeper tree, to compare byte for byte with the bootstrap records
        zk_scram = L.decode_config(zk.get("/config/users/alice")[0])["SCRAM-SHA-256"]
        # the refusal while brokers run: one line, exit 1, nothing written
        refused = strom("storage", "migrate-from-zookeeper", "-c", str(kraft.config_path(1)),
                        "--zookeeper-connect", connect, check=False)
        assert refused.returncode == 1
        assert "still registered" in refused.stderr and len(refused.stderr.strip().splitlines()) == 1
        assert not kraft.data_dir(1).exists()

        # --- stop, move the data directories under the KRaft nodes, migrate ---------------------------
        old_pids = set()
        for node in BROKERS:
            assert zk_cluster.stop(node) == 0
            old_pids |= producer_ids(zk_cluster.data_dir(node), "orders", 0)
        block = L.decode_producer_id_block(zk.get(L.LATEST_PRODUCER_ID_BLOCK)[0])
        assert block is not None and old_pids and max(old_pids) <= block.end
        assert zk.get_children(L.BROKER_IDS) == []
        cluster_id = L.decode_cluster_id(zk.get(L.CLUSTER_ID)[0])
        for node in BROKERS:
            shutil.move(str(zk_cluster.data_dir(node)), str(kraft.data_dir(node)))
        for node in (1, *BROKERS):
            done = strom("storage", "migrate-from-zookeeper", "-c", str(kraft.config_path(node)),
                         "--zookeeper-connect", connect)
            assert "Formatting" in done.stdout
        for node in (1, *BROKERS):
            props = read_meta_properties(kraft.data_dir(node) / "meta.properties")
            assert props["version"] == "1" and props["node.id"] == str(node)
            assert props["cluster.id"] == cluster_id and props["directory.id"]
        again = strom("storage", "migrate-from-zookeeper", "-c", str(kraft.config_path(1)),
                      "--zookeeper-connect", connect, check=False)
        assert again.returncode == 1 and "already formatted" in again.stderr
        snapshot = read_snapshot(kraft.data_dir(1) / CLUSTER_METADATA_DIR / BOOTSTRAP_SNAPSHOT)
        by_type: dict[str, list[object]] = {}
        for rec in snapshot.records:
            by_type.setdefault(type(rec.message).__name__, []).append(rec.message)
        assert [m.next_producer_id for m in by_type["ProducerIdsRecord"]] == [block.end + 1]
        (cred,) = by_type["UserScramCredentialRecord"]
        assert f"salt={base64.b64encode(cred.salt).decode()}" in zk_scram
        zk.stop()
        zk.close()

        # --- the KRaft cluster serves it all ----------------------------------------------------------
        kraft.start_all()
        bootstrap = kraft.bootstrap_servers
        admin = AdminClient({"bootstrap.servers": bootstrap})
        assert topic_ids(admin, "orders", "events", "__consumer_offsets") == ids_before
        for topic, p, values in [*(("orders", p, v) for p, v in ORDERS.items()), ("events", 0, EVENTS)]:
            assert read(bootstrap, topic, p, 0, len(values), "check") == values
            assert watermarks(bootstrap, topic, p) == (0, len(values))

        configs = admin.describe_configs([ConfigResource(ResourceType.TOPIC, "orders"),
                                          ConfigResource(ResourceType.TOPIC, "events")])
        described = {res.name: future.result(30) for res, future in configs.items()}
        assert described["orders"]["retention.ms"].value == "86400000"
        assert described["orders"]["min.insync.replicas"].value == "2"
        assert described["events"]["max.message.bytes"].value == "200000"
        broker = strom("configs", "describe", "--bootstrap-server", bootstrap, "--broker", "3").stdout
        rows = [line.split() for line in broker.splitlines()]
        assert ["log.cleaner.threads", "2", "DYNAMIC_BROKER_CONFIG"] in rows

        acl_filter = AclBindingFilter(ResourceType.ANY, None, ResourcePatternType.ANY, None, None,
                                      AclOperation.ANY, AclPermissionType.ANY)
        assert sorted(map(str, admin.describe_acls(acl_filter).result(30))) == sorted(map(str, ACLS))
        users = admin.describe_user_scram_credentials(["alice"])
        (info,) = users["alice"].result(30).scram_credential_infos
        assert (info.mechanism, info.iterations) == (ScramMechanism.SCRAM_SHA_256, 8192)
        quotas = strom("quotas", "describe", "--bootstrap-server", bootstrap).stdout
        assert "user-principal 'alice'" in quotas and "producer_byte_rate=1048576" in quotas
        assert "default client-id" in quotas.lower() and "request_percentage=50" in quotas

        offsets = admin.list_consumer_group_offsets(
            [ConsumerGroupTopicPartitions(GROUP)])
        got = {tp.partition: tp.offset for tp in offsets[GROUP].result(30).topic_partitions}
        assert got == COMMITTED
        # the group resumes at its committed offsets
        resumed = Consumer({"bootstrap.servers": bootstrap, "group.id": GROUP, "enable.auto.commit": False,
                            "auto.offset.reset": "latest"})
        try:
            resumed.subscribe(["orders"])
            first: dict[int, int] = {}
            count = 0
            wanted = sum(len(v) - COMMITTED[p] for p, v in ORDERS.items())
            deadline = time.monotonic() + 60
            while count < wanted and time.monotonic() < deadline:
                msg = resumed.poll(0.5)
                if msg is None or msg.error():
                    continue
                first.setdefault(msg.partition(), msg.offset())
                assert msg.value() == ORDERS[msg.partition()][msg.offset()]
                count += 1
            assert count == wanted and first == {p: o for p, o in COMMITTED.items() if o < len(ORDERS[p])}
        finally:
            resumed.close()

        # producing goes on, with producer ids the ZooKeeper cluster never handed out
        produce(bootstrap, "orders", 0, [b"after-migration"])
        assert read(bootstrap, "orders", 0, len(ORDERS[0]), 1, "check")[0] == b"after-migration"
        new_pids = set().union(*(producer_ids(kraft.data_dir(n), "orders", 0) for n in BROKERS)) - old_pids
        assert new_pids and min(new_pids) > block.end, (new_pids, block)
    finally:
        zk.stop()
        zk.close()
        zk_cluster.close()
        kraft.close()
