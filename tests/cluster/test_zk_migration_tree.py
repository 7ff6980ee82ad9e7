"""`strom storage migrate-from-zookeeper` on a ZooKeeper tree written in Kafka's layout (as a Kafka 3.x
ZooKeeper cluster leaves it): every kind of znode becomes its metadata record in the controller's bootstrap
snapshot, which Kafka 4.4's own `kafka-dump-log --cluster-metadata-decoder` reads; a Kafka ZooKeeper-mode
meta.properties (version 0, broker.id) becomes KRaft's; the refusals are one line with exit status 1."""

from __future__ import annotations

import base64
import json
import uuid
from pathlib import Path

import pytest
from click.testing import CliRunner
from kazoo.client import KazooClient

from strom.cli.storage import storage
from strom.cluster import zk_layout as L
from strom.metadata import records as r
from strom.metadata.snapshot import BOOTSTRAP_SNAPSHOT, CLUSTER_METADATA_DIR, read_snapshot
from strom.security.scram_credentials import SCRAM_MECHANISMS, credential_to_string, make_credential
from strom.storage.checkpoint import read_meta_properties, uuid_to_kafka
from strom.testing.ports import free_port
from tests.metadata.kafka_jars import dump_cluster_metadata

pytestmark = pytest.mark.cluster

CLUSTER_ID = "Xn8NRvRaRQ-WdrUkN0WbXg"
ORDERS = uuid.UUID("6e2a2f87-5b0c-4a52-9d0c-6f8d1a1f0b11")
LEGACY = uuid.UUID("0c4f2b6a-1f1e-4a1e-8d8b-3b1e5f2c7a90")


def _put(zk: KazooClient, path: str, doc: object) -> None:
    zk.create(path, doc if isinstance(doc, bytes) else json.dumps(doc).encode(), makepath=True)


def _kafka_tree(zk: KazooClient) -> bytes:
    """A stopped cluster's tree; returns the SCRAM credential string written for alice."""
    _put(zk, L.CLUSTER_ID, L.encode_cluster_id(CLUSTER_ID))
    zk.ensure_path(L.BROKER_IDS)
    _put(zk, L.topic_path("orders"), L.encode_topic(L.TopicAssignment(ORDERS, {0: (1, 2), 1: (2, 1)})))
    _put(zk, L.state_path("orders", 0), L.encode_state(L.LeaderAndIsr(2, 7, (2,), 3)))
    zk.set(L.state_path("orders", 0), L.encode_state(L.LeaderAndIsr(2, 7, (2,), 3)))  # znode version 1
    _put(zk, L.state_path("orders", 1), L.encode_state(L.LeaderAndIsr(1, 4, (1, 2), 3)))
    # a partition never elected: no state znode
    _put(zk, L.topic_path("legacy"), L.encode_topic(L.TopicAssignment(LEGACY, {0: (1,)})))
    _put(zk, L.topic_config_path("orders"), L.encode_config({"retention.ms": "3600000"}))
    _put(zk, L.broker_config_path("<default>"), L.encode_config({"log.cleaner.threads": "2"}))
    _put(zk, L.broker_config_path(1), L.encode_config({"log.retention.bytes": "1000"}))
    _put(zk, L.group_config_path("billing team"), L.encode_config({"consumer.session.timeout.ms": "50000"}))
    _put(zk, "/kafka-acl/Topic/orders", {"version": 1, "acls": [
        {"principal": "User:alice", "permissionType": "Allow", "operation": "Read", "host": "*"}]})
    _put(zk, "/kafka-acl-extended/prefixed/Group/billing-", {"version": 1, "acls": [
        {"principal": "User:bob", "permissionType": "Deny", "operation": "Describe", "host": "10.0.0.7"}]})
    credential = make_credential(SCRAM_MECHANISMS["SCRAM-SHA-512"], b"salted-password", b"salt", 4096)
    text = credential_to_string(credential)
    _put(zk, "/config/users/alice", L.encode_config({"SCRAM-SHA-512": text, "producer_byte_rate": "1024"}))
    _put(zk, "/config/users/<default>", L.encode_config({"consumer_byte_rate": "2048"}))
    _put(zk, "/config/users/<default>/clients/billing", L.encode_config({"request_percentage": "50.0"}))
    _put(zk, "/config/clients/<default>", L.encode_config({"producer_byte_rate": "4096"}))
    _put(zk, "/config/ips/10.0.0.1", L.encode_config({"connection_creation_rate": "5"}))
    _put(zk, L.LATEST_PRODUCER_ID_BLOCK, L.encode_producer_id_block(L.ProducerIdBlock(2, 3000, 3999)))
    _put(zk, "/delegation_token/tokens/tok-1", {
        "version": 3, "owner": "User%3Aalice", "tokenRequester": "User%3Aalice", "renewers": ["User%3Abob"],
        "issueTimestamp": 1000, "maxTimestamp": 9000, "expiryTimestamp": 5000})
    return text.encode()


def _config(root: Path, roles: str, node_id: int) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    path = root / "server.properties"
    listeners = "CONTROLLER://127.0.0.1:9093" if roles == "controller" else "PLAINTEXT://127.0.0.1:9092"
    path.write_text(f"process.roles={roles}\nnode.id={node_id}\ncontroller.quorum.voters=9@127.0.0.1:9093\n"
                    f"listeners={listeners}\ncontroller.listener.names=CONTROLLER\nlog.dirs={root}/data\n")
    return path


def _migrate(config: Path, connect: str, *extra: str) -> tuple[int, str]:
    result = CliRunner().invoke(storage, ["migrate-from-zookeeper", "-c", str(config),
                                          "--zookeeper-connect", connect, *extra])
    return result.exit_code, result.output


def test_every_znode_kind_becomes_its_record(zk: KazooClient, chroot_connect: str, tmp_path: Path) -> None:
    scram_text = _kafka_tree(zk)
    controller = _config(tmp_path / "c", "controller", 9)
    code, out = _migrate(controller, chroot_connect)
    assert code == 0, out
    meta = read_meta_properties(tmp_path / "c" / "data" / "meta.properties")
    assert meta["cluster.id"] == CLUSTER_ID and meta["node.id"] == "9" and meta["version"] == "1"
    snapshot = read_snapshot(tmp_path / "c" / "data" / CLUSTER_METADATA_DIR / BOOTSTRAP_SNAPSHOT)
    messages = [rec.message for rec in snapshot.records]
    of = {kind: [m for m in messages if isinstance(m, kind)] for kind in {type(m) for m in messages}}
    first = messages[0]
    assert isinstance(first, r.FeatureLevelRecord) and first.name == "metadata.version"
    assert {(t.name, t.topic_id) for t in of[r.TopicRecord]} == {("orders", ORDERS), ("legacy", LEGACY)}
    parts = {(p.topic_id, p.partition_id): p for p in of[r.PartitionRecord]}
    p0 = parts[(ORDERS, 0)]
    assert (p0.replicas, p0.isr, p0.leader, p0.leader_epoch, p0.partition_epoch) == ((1, 2), (2,), 2, 7, 1)
    p1 = parts[(ORDERS, 1)]
    assert (p1.replicas, p1.isr, p1.leader, p1.leader_epoch, p1.partition_epoch) == ((2, 1), (1, 2), 1, 4, 0)
    unelected = parts[(LEGACY, 0)]
    assert (unelected.replicas, unelected.isr, unelected.leader) == ((1,), (1,), -1)
    assert {(c.resource_type, c.resource_name, c.name, c.value) for c in of[r.ConfigRecord]} == {
        (2, "orders", "retention.ms", "3600000"), (4, "", "log.cleaner.threads", "2"),
        (4, "1", "log.retention.bytes", "1000"), (32, "billing team", "consumer.session.timeout.ms", "50000")}
    assert {(a.resource_type, a.resource_name, a.pattern_type, a.principal, a.host, a.operation,
             a.permission_type) for a in of[r.AccessControlEntryRecord]} == {
        (2, "orders", 3, "User:alice", "*", 3, 3), (3, "billing-", 4, "User:bob", "10.0.0.7", 8, 2)}
    (scram,) = of[r.UserScramCredentialRecord]
    assert scram.name == "alice" and scram.mechanism == 2 and scram.iterations == 4096
    assert f"stored_key={base64.b64encode(scram.stored_key).decode()}".encode() in scram_text
    quotas = {(tuple((e.entity_type, e.entity_name) for e in q.entity), q.key, q.value)
              for q in of[r.ClientQuotaRecord]}
    assert quotas == {
        ((("user", "alice"),), "producer_byte_rate", 1024.0),
        ((("client-id", "billing"), ("user", None)), "request_percentage", 50.0),
        ((("user", None),), "consumer_byte_rate", 2048.0),
        ((("client-id", None),), "producer_byte_rate", 4096.0),
        ((("ip", "10.0.0.1"),), "connection_creation_rate", 5.0),
    }
    assert [p.next_producer_id for p in of[r.ProducerIdsRecord]] == [4000]
    (token,) = of[r.DelegationTokenRecord]
    assert (token.token_id, token.owner, token.renewers, token.expiration_timestamp) == (
        "tok-1", "User:alice", ("User:bob",), 5000)
    assert "2 topics, 3 partitions" in out

    # Kafka 4.4 reads the bootstrap snapshot (skips without Java or Kafka's jars)
    decoded = dump_cluster_metadata(tmp_path / "c" / "data" / CLUSTER_METADATA_DIR / BOOTSTRAP_SNAPSHOT)
    kinds = [kind for kind, _json in decoded.values()]
    for kind in ("TOPIC_RECORD", "PARTITION_RECORD", "CONFIG_RECORD", "ACCESS_CONTROL_ENTRY_RECORD",
                 "USER_SCRAM_CREDENTIAL_RECORD", "CLIENT_QUOTA_RECORD", "PRODUCER_IDS_RECORD",
                 "DELEGATION_TOKEN_RECORD"):
        assert kind in kinds, (kind, kinds)
    topics = {data["name"]: data["topicId"] for kind, data in decoded.values() if kind == "TOPIC_RECORD"}
    assert topics == {"orders": uuid_to_kafka(ORDERS), "legacy": uuid_to_kafka(LEGACY)}


def test_a_kafka_broker_directory_is_rewritten_for_kraft(
    zk: KazooClient, chroot_connect: str, tmp_path: Path
) -> None:
    _kafka_tree(zk)
    broker = _config(tmp_path / "b", "broker", 2)
    data = tmp_path / "b" / "data"
    (data / "orders-0").mkdir(parents=True)
    (data / "orders-0" / "partition.metadata").write_text(f"version: 0\ntopic_id: {uuid_to_kafka(ORDERS)}\n")
    (data / "meta.properties").write_text(f"version=0\nbroker.id=2\ncluster.id={CLUSTER_ID}\n")
    code, out = _migrate(broker, chroot_connect)
    assert code == 0, out
    meta = read_meta_properties(data / "meta.properties")
    assert meta["version"] == "1" and meta["node.id"] == "2" and meta["cluster.id"] == CLUSTER_ID
    assert meta["directory.id"] and "broker.id" not in meta
    assert (data / "orders-0" / "partition.metadata").exists()
    assert not (data / CLUSTER_METADATA_DIR).exists()  # brokers get no bootstrap snapshot

    # another broker's directory, or another cluster's, is refused
    (tmp_path / "x" / "data").mkdir(parents=True)
    other = _config(tmp_path / "x", "broker", 3)
    foreign = f"version=0\nbroker.id=5\ncluster.id={CLUSTER_ID}\n"
    (tmp_path / "x" / "data" / "meta.properties").write_text(foreign)
    code, out = _migrate(other, chroot_connect)
    assert code == 1 and "holds the data of broker 5" in out


def test_refusals(zk: KazooClient, chroot_connect: str, tmp_path: Path) -> None:
    controller = _config(tmp_path / "c", "controller", 9)
    code, out = _migrate(controller, chroot_connect)  # an empty chroot: no cluster
    assert code == 1 and "/cluster/id does not exist" in out and out.count("\n") == 1
    _kafka_tree(zk)
    zk.create(L.broker_path(1), b"{}", ephemeral=True)
    code, out = _migrate(controller, chroot_connect)
    assert code == 1 and "Brokers 1 are still registered" in out
    assert not (tmp_path / "c" / "data").exists()
    zk.delete(L.broker_path(1))
    code, out = _migrate(controller, f"127.0.0.1:{free_port()}", "--zookeeper-timeout", "1")
    assert code == 1 and "Cannot reach ZooKeeper" in out and out.count("\n") == 1
    assert _migrate(controller, chroot_connect)[0] == 0
    code, out = _migrate(controller, chroot_connect)
    assert code == 1 and "already formatted for KRaft" in out
    code, out = _migrate(controller, chroot_connect, "--ignore-formatted")
    assert code == 0 and "already formatted" in out
