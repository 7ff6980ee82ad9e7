"""SASL through real clients, against a broker with PLAINTEXT, SASL_PLAINTEXT and SASL_SSL listeners
configured from the same properties for Strom and for Apache Kafka (`--kafka-reference`): SCRAM users
created with Kafka's kafka-configs (`--add-config 'SCRAM-SHA-256=[password=...]'`), librdkafka with PLAIN,
SCRAM-SHA-256 and SCRAM-SHA-512 both ways, kafkajs and franz-go producing and reading back through
SASL_SSL with each mechanism and through SASL_PLAINTEXT, Kafka's TopicCommand with a SCRAM
--command-config, and a wrong password answered with Kafka's message while other clients are served."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from compat_support import JavaTools, run_gocompat, run_kafkajs
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from benchmarks.peers import brokers, tools
from benchmarks.peers.tools import free_port
from strom.testing.certs import Pki, make_pki

pytestmark = pytest.mark.compat

PLAIN_JAAS = ('org.apache.kafka.common.security.plain.PlainLoginModule required username="admin" '
              'password="admin-secret" user_admin="admin-secret" user_alice="alice-secret";')
SCRAM_JAAS = "org.apache.kafka.common.security.scram.ScramLoginModule required;"


@dataclass(frozen=True)
class SaslBroker:
    plain: str
    sasl_plaintext: str
    sasl_ssl: str
    pki: Pki

    def rdkafka(
        self, listener: str, mechanism: str, user: str, password: str, **extra: Any
    ) -> dict[str, Any]:
        conf: dict[str, Any] = {
            "bootstrap.servers": self.sasl_ssl if listener == "SASL_SSL" else self.sasl_plaintext,
            "security.protocol": listener, "sasl.mechanism": mechanism,
            "sasl.username": user, "sasl.password": password, "log_level": 0, **extra,
        }
        if listener == "SASL_SSL":
            conf["ssl.ca.location"] = str(self.pki.ca)
            conf["ssl.endpoint.identification.algorithm"] = "none"
        return conf


@pytest.fixture(scope="module")
def sasl_broker(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SaslBroker]:
    if request.config.getoption("--bootstrap", default=None):
        pytest.skip("needs a broker it configures itself (SASL listeners)")
    pki = make_pki(Path(tmp_path_factory.mktemp("pki")))
    port, sp_port, ss_port = free_port(), free_port(), free_port()
    settings = {
        "sasl.enabled.mechanisms": "PLAIN,SCRAM-SHA-256,SCRAM-SHA-512",
        "ssl.keystore.type": "PEM",
        "ssl.keystore.location": str(pki.broker.keystore),
    }
    for listener in ("sasl_plaintext", "sasl_ssl"):
        settings[f"listener.name.{listener}.plain.sasl.jaas.config"] = PLAIN_JAAS
        settings[f"listener.name.{listener}.scram-sha-256.sasl.jaas.config"] = SCRAM_JAAS
        settings[f"listener.name.{listener}.scram-sha-512.sasl.jaas.config"] = SCRAM_JAAS
    listeners = {"SASL_PLAINTEXT": ("SASL_PLAINTEXT", sp_port), "SASL_SSL": ("SASL_SSL", ss_port)}
    if request.config.getoption("--kafka-reference", default=False):
        tools.ensure_tools()
        proc = brokers.start_kafka(port=port, settings=settings, listeners=listeners)
    else:
        proc = brokers.start_strom(port=port, settings=settings, listeners=listeners)
    try:
        plain = f"127.0.0.1:{port}"
        java = JavaTools(plain)
        users = (("SCRAM-SHA-256", "bob", "bob-pw"), ("SCRAM-SHA-512", "carol", "carol-pw"))
        for mechanism, user, password in users:
            done = java.run("org.apache.kafka.tools.ConfigCommand", "--bootstrap-server", plain, "--alter",
                            "--add-config", f"{mechanism}=[password={password}]", "--entity-type", "users",
                            "--entity-name", user)
            assert done.returncode == 0, done.stderr
        yield SaslBroker(plain, f"127.0.0.1:{sp_port}", f"localhost:{ss_port}", pki)
    finally:
        proc.stop()


@pytest.mark.parametrize(("listener", "mechanism", "user", "password"), [
    ("SASL_SSL", "PLAIN", "alice", "alice-secret"),
    ("SASL_PLAINTEXT", "SCRAM-SHA-256", "bob", "bob-pw"),
    ("SASL_SSL", "SCRAM-SHA-512", "carol", "carol-pw"),
])
def test_librdkafka_both_ways(sasl_broker: SaslBroker, listener: str, mechanism: str, user: str,
                              password: str) -> None:
    topic = f"sasl-{uuid.uuid4().hex[:8]}"
    producer = Producer(sasl_broker.rdkafka(listener, mechanism, user, password))
    for i in range(50):
        producer.produce(topic, b"m%d" % i)
    assert producer.flush(30) == 0
    consumer = Consumer(sasl_broker.rdkafka(listener, mechanism, user, password, **{
        "group.id": f"g-{topic}", "auto.offset.reset": "earliest"}))
    consumer.subscribe([topic])
    got: list[bytes] = []
    deadline = time.monotonic() + 30
    while len(got) < 50 and time.monotonic() < deadline:
        msg = consumer.poll(0.5)
        if msg is not None and msg.error() is None:
            got.append(msg.value())
    consumer.close()
    assert got == [b"m%d" % i for i in range(50)]


@pytest.mark.parametrize("client", ["kafkajs", "franz-go"])
@pytest.mark.parametrize(("listener", "mechanism", "user", "password"), [
    ("SASL_SSL", "PLAIN", "alice", "alice-secret"),
    ("SASL_SSL", "SCRAM-SHA-256", "bob", "bob-pw"),
    ("SASL_SSL", "SCRAM-SHA-512", "carol", "carol-pw"),
    ("SASL_PLAINTEXT", "PLAIN", "alice", "alice-secret"),
    ("SASL_PLAINTEXT", "SCRAM-SHA-512", "carol", "carol-pw"),
])
def test_node_and_go_clients_both_ways(sasl_broker: SaslBroker, fetched_tools: None, client: str,
                                       listener: str, mechanism: str, user: str, password: str) -> None:
    """kafkajs (its `sasl` option, `ssl` with the CA on SASL_SSL) and franz-go (pkg/sasl/plain and
    pkg/sasl/scram, kgo.DialTLSConfig on SASL_SSL) produce, then read the records back."""
    topic = f"sasl-{client}-{uuid.uuid4().hex[:8]}"
    # made through the PLAINTEXT listener so that neither client meets a topic still being created
    admin = AdminClient({"bootstrap.servers": sasl_broker.plain})
    admin.create_topics([NewTopic(topic, 1, 1)])[topic].result(20)
    bootstrap = sasl_broker.sasl_ssl if listener == "SASL_SSL" else sasl_broker.sasl_plaintext
    login = {"mechanism": mechanism, "username": user, "password": password}
    if client == "kafkajs":
        security: dict[str, Any] = {"sasl": {**login, "mechanism": mechanism.lower()}}
        if listener == "SASL_SSL":
            security["ssl"] = {"ca": str(sasl_broker.pki.ca)}
        produced = run_kafkajs(tools.node_modules(), "produce-offsets", bootstrap, topic, "6",
                               security=security)
        assert [(o["partition"], o["low"], o["high"]) for o in produced["offsets"]] == [(0, "0", "6")]
        seen = run_kafkajs(tools.node_modules(), "group-consume", bootstrap, topic, "6",
                           security=security)["seen"]
        assert [(s["offset"], s["key"], s["value"]) for s in seen] == [(str(i), f"k{i}", f"v{i}")
                                                                     for i in range(6)]
    else:
        security = {"sasl": login}
        if listener == "SASL_SSL":
            security["tls"] = {"ca": str(sasl_broker.pki.ca)}
        result = run_gocompat("franz-produce-consume", bootstrap, topic, 8, security=security)
        assert result["produced_offsets"] == list(range(8))
        assert [(r["offset"], r["key"], r["value"]) for r in result["seen"]] == [(i, f"k{i}", f"v{i}")
                                                                               for i in range(8)]


def test_wrong_password_gets_kafkas_message(sasl_broker: SaslBroker) -> None:
    errors: list[Any] = []
    seen = threading.Event()

    def on_error(err: Any) -> None:
        errors.append(err.str())
        seen.set()

    start = time.monotonic()
    conf = sasl_broker.rdkafka("SASL_PLAINTEXT", "SCRAM-SHA-256", "bob", "nope", error_cb=on_error)
    admin = AdminClient(conf)
    while not seen.is_set() and time.monotonic() - start < 15:
        admin.poll(0.1)
    assert seen.is_set()
    assert ("Authentication failed during authentication due to invalid credentials with SASL mechanism "
            "SCRAM-SHA-256") in errors[0]
    good = AdminClient(sasl_broker.rdkafka("SASL_PLAINTEXT", "PLAIN", "alice", "alice-secret"))
    assert good.list_topics(timeout=20).brokers


def test_java_tool_with_a_scram_command_config(sasl_broker: SaslBroker, tmp_path: Path) -> None:
    config = tmp_path / "client.properties"
    config.write_text(
        "security.protocol=SASL_PLAINTEXT\nsasl.mechanism=SCRAM-SHA-512\n"
        'sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="carol" '
        'password="carol-pw";\n'
    )
    java = JavaTools(sasl_broker.sasl_plaintext)
    topic = f"java-sasl-{uuid.uuid4().hex[:6]}"
    created = java.topics("--command-config", str(config), "--create", "--topic", topic)
    assert created.returncode == 0, created.stderr
    listed = java.topics("--command-config", str(config), "--list")
    assert topic in listed.stdout.split()
