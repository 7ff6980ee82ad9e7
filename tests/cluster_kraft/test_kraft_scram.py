"""SCRAM credentials in KRaft mode: AlterUserScramCredentials through a broker is forwarded to the
controller, which appends UserScramCredentialRecords; the broker authenticates SASL/SCRAM clients with the
credentials of its replayed log, and a deletion takes them away again."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from strom.cluster.kraft.scram import scram_records
from strom.metadata.image import MetadataState
from strom.security.scram_credentials import ScramCredential
from strom.testing.kraft_node import EmbeddedKRaftNode
from strom.testing.raft_quorum import wait_for

SCRAM_JAAS = "org.apache.kafka.common.security.scram.ScramLoginModule required;"


def test_scram_records_replay() -> None:
    state = MetadataState()
    credential = ScramCredential(b"salt", b"stored", b"server", 4096)
    for offset, record in enumerate(scram_records([("alice", "SCRAM-SHA-512", credential)], [])):
        state.replay(record, offset)
    assert state.scram == {("alice", "SCRAM-SHA-512"): credential}
    for offset, record in enumerate(scram_records([], [("alice", "SCRAM-SHA-512")]), start=5):
        state.replay(record, offset)
    assert state.scram == {} and state.scram_version == 2


@pytest.fixture(scope="module")
def node() -> Iterator[EmbeddedKRaftNode]:
    settings = {
        "sasl.enabled.mechanisms": "SCRAM-SHA-256",
        "listener.name.sasl_plaintext.scram-sha-256.sasl.jaas.config": SCRAM_JAAS,
    }
    with EmbeddedKRaftNode(settings, extra_listeners={"SASL_PLAINTEXT": "SASL_PLAINTEXT"}) as node:
        yield node


def test_credentials_from_the_metadata_log_authenticate(node: EmbeddedKRaftNode) -> None:
    admin_mod = pytest.importorskip("confluent_kafka.admin")
    admin = admin_mod.AdminClient({"bootstrap.servers": node.bootstrap_servers})
    info = admin_mod.ScramCredentialInfo(admin_mod.ScramMechanism.SCRAM_SHA_256, 4096)
    for future in admin.alter_user_scram_credentials(
        [admin_mod.UserScramCredentialUpsertion("alice", info, b"alice-secret")]
    ).values():
        future.result(15)
    assert node.controller is not None and node.broker is not None
    assert ("alice", "SCRAM-SHA-256") in node.controller.controller.state.scram
    broker = node.broker
    wait_for(lambda: ("alice", "SCRAM-SHA-256") in broker.metadata.state.scram, 10, "the broker's replay")
    described = admin.describe_user_scram_credentials(["alice"])["alice"].result(15)
    assert [c.mechanism for c in described.scram_credential_infos] == [admin_mod.ScramMechanism.SCRAM_SHA_256]
    host, port = broker.bound_addresses["SASL_PLAINTEXT"]

    def client(password: str) -> object:
        return admin_mod.AdminClient(
            {
                "bootstrap.servers": f"{host}:{port}",
                "security.protocol": "SASL_PLAINTEXT",
                "sasl.mechanism": "SCRAM-SHA-256",
                "sasl.username": "alice",
                "sasl.password": password,
            }
        )

    assert client("alice-secret").list_topics(timeout=10).brokers  # type: ignore[attr-defined]
    with pytest.raises(Exception):  # noqa: B017 - librdkafka reports a failed login as a transport failure
        client("wrong").list_topics(timeout=5)  # type: ignore[attr-defined]
    for future in admin.alter_user_scram_credentials(
        [admin_mod.UserScramCredentialDeletion("alice", admin_mod.ScramMechanism.SCRAM_SHA_256)]
    ).values():
        future.result(15)
    wait_for(lambda: not broker.metadata.state.scram, 10, "the deletion to reach the broker")
    with pytest.raises(Exception):  # noqa: B017 - librdkafka reports a failed login as a transport failure
        client("alice-secret").list_topics(timeout=5)  # type: ignore[attr-defined]
