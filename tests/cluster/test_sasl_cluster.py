"""A three-broker ZooKeeper cluster whose brokers replicate over SASL_PLAINTEXT (PLAIN, authenticating as
the super user `admin`) with an authorizer that refuses anything no ACL allows: replication, transaction
markers and the controller's requests only work if the brokers authenticate to each other. Clients use
the same listener: admin (PLAIN) creates a SCRAM-SHA-256 credential for alice and the ACLs she needs,
alice (SCRAM, checked by whichever broker she reaches, so the credential must have reached every broker
through ZooKeeper) writes acks=all through a transactional producer and reads back with a read_committed
group and with a share group (whose share-partition state the leaders keep through the share coordinators
on the other brokers), and a wrong password is refused."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from confluent_kafka import Consumer, KafkaException, Producer, ShareConsumer
from confluent_kafka.admin import (
    AclBinding,
    AclOperation,
    AclPermissionType,
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    NewTopic,
    ResourcePatternType,
    ResourceType,
    ScramCredentialInfo,
    ScramMechanism,
    UserScramCredentialUpsertion,
)

from strom.testing.cluster import (
    ProcessCluster,
    free_port,
    received_values,
    wait_full_isr,
    wait_replicas_identical,
    wait_until,
)

pytestmark = pytest.mark.cluster

PLAIN_JAAS = (
    'org.apache.kafka.common.security.plain.PlainLoginModule required username="admin" '
    'password="admin-secret" user_admin="admin-secret";'
)
SCRAM_JAAS = "org.apache.kafka.common.security.scram.ScramLoginModule required;"


@pytest.fixture
def cluster(chroot_connect: str) -> Iterator[ProcessCluster]:
    settings = {
        "listener.security.protocol.map": "INTERNAL:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT",
        "inter.broker.listener.name": "SASL_PLAINTEXT",
        "sasl.enabled.mechanisms": "PLAIN,SCRAM-SHA-256",
        "sasl.mechanism.inter.broker.protocol": "PLAIN",
        "listener.name.sasl_plaintext.plain.sasl.jaas.config": PLAIN_JAAS,
        "listener.name.sasl_plaintext.scram-sha-256.sasl.jaas.config": SCRAM_JAAS,
        "authorizer.class.name": "kafka.security.authorizer.AclAuthorizer",
        "super.users": "User:admin",
        "allow.everyone.if.no.acl.found": "false",
        "offsets.topic.replication.factor": "3",
        "transaction.state.log.replication.factor": "3",
        "transaction.state.log.min.isr": "2",
    }
    internal_ports = {i: free_port() for i in (1, 2, 3)}
    sasl_ports = {i: free_port() for i in (1, 2, 3)}
    per_broker = {
        i: {
            "listeners": f"INTERNAL://127.0.0.1:{internal_ports[i]},SASL_PLAINTEXT://127.0.0.1:{sasl_ports[i]}"
        }
        for i in (1, 2, 3)
    }
    cluster = ProcessCluster(3, chroot_connect, settings, per_broker=per_broker)
    cluster.ports = internal_ports  # ProcessCluster's own helpers use the INTERNAL listener
    cluster.sasl_ports = sasl_ports  # type: ignore[attr-defined]
    with cluster as running:
        yield running


def _conf(cluster: ProcessCluster, mechanism: str, user: str, password: str, **extra: Any) -> dict[str, Any]:
    ports = cluster.sasl_ports  # type: ignore[attr-defined]
    return {
        "bootstrap.servers": ",".join(f"127.0.0.1:{ports[i]}" for i in cluster.node_ids),
        "security.protocol": "SASL_PLAINTEXT",
        "sasl.mechanism": mechanism,
        "sasl.username": user,
        "sasl.password": password,
        "log_level": 0,
        **extra,
    }


def _allow(principal: str, resource: ResourceType, name: str, *operations: AclOperation) -> list[AclBinding]:
    return [
        AclBinding(resource, name, ResourcePatternType.LITERAL, principal, "*", op, AclPermissionType.ALLOW)
        for op in operations
    ]


def test_brokers_replicate_and_authorize_over_sasl(cluster: ProcessCluster) -> None:
    admin = AdminClient(_conf(cluster, "PLAIN", "admin", "admin-secret"))
    topic = f"sasl-{uuid.uuid4().hex[:8]}"
    group = f"g-{uuid.uuid4().hex[:8]}"
    share_group = f"s-{uuid.uuid4().hex[:8]}"
    txn_id = f"t-{uuid.uuid4().hex[:8]}"
    admin.create_topics([NewTopic(topic, 3, 3, config={"min.insync.replicas": "2"})])[topic].result(30)
    credential = UserScramCredentialUpsertion(
        "alice", ScramCredentialInfo(ScramMechanism.SCRAM_SHA_256, 4096), b"alice-secret"
    )
    admin.alter_user_scram_credentials([credential])["alice"].result(30)
    acls = [
        *_allow("User:alice", ResourceType.TOPIC, topic, AclOperation.WRITE, AclOperation.READ,
                AclOperation.DESCRIBE),
        *_allow("User:alice", ResourceType.GROUP, group, AclOperation.READ),
        *_allow("User:alice", ResourceType.GROUP, share_group, AclOperation.READ),
        *_allow("User:alice", ResourceType.TRANSACTIONAL_ID, txn_id, AclOperation.WRITE,
                AclOperation.DESCRIBE),
    ]  # fmt: skip
    for future in admin.create_acls(acls).values():
        future.result(30)
    earliest = ConfigEntry(
        "share.auto.offset.reset", "earliest", incremental_operation=AlterConfigOpType.SET
    )
    resource = ConfigResource(ConfigResource.Type.GROUP, share_group, incremental_configs=[earliest])
    admin.incremental_alter_configs([resource])[resource].result(30)

    alice = _conf(cluster, "SCRAM-SHA-256", "alice", "alice-secret")
    producer = Producer({**alice, "transactional.id": txn_id, "acks": "all"})
    deadline = time.monotonic() + 60
    while True:  # the credential and the ACLs reach each broker through ZooKeeper
        try:
            producer.init_transactions(10)
            break
        except KafkaException:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)
    values = [f"v{i}".encode() * 50 for i in range(600)]
    producer.begin_transaction()
    for i, value in enumerate(values):
        producer.produce(topic, value, partition=i % 3)
    producer.commit_transaction(60)

    wait_full_isr(admin, topic, 3)
    for partition in range(3):
        wait_replicas_identical(cluster, topic, partition, cluster.node_ids, timeout=30)

    consumer = Consumer(
        {**alice, "group.id": group, "auto.offset.reset": "earliest", "isolation.level": "read_committed"}
    )
    consumer.subscribe([topic])
    got = received_values(consumer, len(values))
    consumer.close()
    assert got == set(values)

    shared = ShareConsumer({**alice, "group.id": share_group})
    shared.subscribe([topic])
    got = received_values(shared, len(values))
    shared.close()
    assert got == set(values)

    errors: list[str] = []
    wrong = AdminClient(
        _conf(cluster, "SCRAM-SHA-256", "alice", "not-hers", error_cb=lambda e: errors.append(e.str()))
    )
    wait_until(lambda: wrong.poll(0.1) >= 0 and bool(errors), 20, "the authentication error")
    assert "Authentication failed during authentication due to invalid credentials" in errors[0], errors
