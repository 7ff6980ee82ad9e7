"""A three-broker ZooKeeper cluster with an INTERNAL listener between brokers and an SSL listener for
clients (client certificates required), and the same with the brokers replicating through TLS: brokers
register both endpoints in Kafka's /brokers/ids layout, clients on each listener are told that listener's
addresses, and records written through TLS with acks=all are replicated to every broker and read back."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic
from kazoo.client import KazooClient

from strom.testing.certs import Pki, make_pki
from strom.testing.cluster import (
    ProcessCluster,
    free_port,
    received_values,
    wait_full_isr,
    wait_replicas_identical,
)

pytestmark = pytest.mark.cluster


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(Path(tmp_path_factory.mktemp("pki")))


@pytest.fixture(params=["INTERNAL", "SSL"], ids=["internal-plaintext", "inter-broker-tls"])
def cluster(request: pytest.FixtureRequest, chroot_connect: str, pki: Pki) -> Iterator[ProcessCluster]:
    inter_broker = request.param
    settings = {
        "listener.security.protocol.map": "INTERNAL:PLAINTEXT,SSL:SSL",
        "inter.broker.listener.name": inter_broker,
        "ssl.keystore.type": "PEM",
        "ssl.keystore.location": str(pki.broker.keystore),
        "ssl.truststore.type": "PEM",
        "ssl.truststore.location": str(pki.ca),
        "ssl.client.auth": "required",
    }
    internal_ports = {i: free_port() for i in (1, 2, 3)}
    ssl_ports = {i: free_port() for i in (1, 2, 3)}
    per_broker = {
        i: {"listeners": f"INTERNAL://127.0.0.1:{internal_ports[i]},SSL://127.0.0.1:{ssl_ports[i]}"}
        for i in (1, 2, 3)
    }
    cluster = ProcessCluster(3, chroot_connect, settings, per_broker=per_broker)
    # ProcessCluster's address() and bootstrap_servers name the INTERNAL (plaintext) listeners
    cluster.ports = internal_ports
    cluster.ssl_ports = ssl_ports  # type: ignore[attr-defined]
    with cluster as running:
        yield running


def _ssl_conf(cluster: ProcessCluster, pki: Pki, **extra: Any) -> dict[str, Any]:
    ports = cluster.ssl_ports  # type: ignore[attr-defined]
    return {
        "bootstrap.servers": ",".join(f"127.0.0.1:{ports[i]}" for i in cluster.node_ids),
        "security.protocol": "SSL",
        "ssl.ca.location": str(pki.ca),
        "ssl.certificate.location": str(pki.client.cert),
        "ssl.key.location": str(pki.client.key),
        "log_level": 0,
        **extra,
    }


def test_cluster_replicates_and_serves_through_tls(
    cluster: ProcessCluster, pki: Pki, zk: KazooClient
) -> None:
    ssl_ports = cluster.ssl_ports  # type: ignore[attr-defined]
    doc = json.loads(zk.get("/brokers/ids/2")[0])
    assert doc["endpoints"] == [f"INTERNAL://127.0.0.1:{cluster.ports[2]}", f"SSL://127.0.0.1:{ssl_ports[2]}"]
    assert doc["listener_security_protocol_map"] == {"INTERNAL": "PLAINTEXT", "SSL": "SSL"}
    assert (doc["host"], doc["port"]) == ("127.0.0.1", cluster.ports[2])

    admin = AdminClient(_ssl_conf(cluster, pki))
    md = admin.list_topics(timeout=20)
    assert {(b.id, b.port) for b in md.brokers.values()} == {(i, ssl_ports[i]) for i in cluster.node_ids}
    internal = AdminClient({"bootstrap.servers": cluster.bootstrap_servers}).list_topics(timeout=20)
    assert {(b.id, b.port) for b in internal.brokers.values()} == {
        (i, cluster.ports[i]) for i in cluster.node_ids
    }

    topic = f"tls-{uuid.uuid4().hex[:8]}"
    admin.create_topics([NewTopic(topic, 3, 3, config={"min.insync.replicas": "2"})])[topic].result(20)
    producer = Producer(_ssl_conf(cluster, pki, acks="all", **{"enable.idempotence": True}))
    values = [f"v{i}".encode() * 100 for i in range(3000)]
    for i, value in enumerate(values):
        producer.produce(topic, value, partition=i % 3)
    assert producer.flush(60) == 0

    wait_full_isr(admin, topic, 3)
    for partition in range(3):
        wait_replicas_identical(cluster, topic, partition, cluster.node_ids, timeout=30)

    consumer = Consumer(
        {**_ssl_conf(cluster, pki), "group.id": "tls-readers", "auto.offset.reset": "earliest"}
    )
    consumer.subscribe([topic])
    got = received_values(consumer, len(values), 40)
    consumer.close()
    assert got == set(values)
