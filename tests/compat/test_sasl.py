"""SASL through real clients, against a broker with PLAINTEXT, SASL_PLAINTEXT and SASL_SSL listeners
configured from the same properties for Strom and for Apache Kafka (`--kafka-reference`): SCRAM users
created with Kafka's kafka-configs (`--add-config 'SCRAM-SHA-256=[password=...]'`), librdkafka with PLAIN,
SCRAM-SHA-256 and SCRAM-SHA-512 both ways, kafkajs and franz-go producing and reading back through
SASL_SSL with each mechanism and through SASL_PLAINTEXT, kcat, kafka-python, aiokafka, Kafka's console
tools, kafka-configs and kafka-acls (the ACL authorizer is on, allowing everyone where no ACL is set),
Kafka's TopicCommand with a SCRAM --command-config, and a wrong password or an unknown user answered with
Kafka's message while other clients are served."""

from __future__ import annotations

import re
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from compat_support import (
    JavaTools,
    Kcat,
    ToolFailed,
    aiokafka_round_trip,
    kafka_python_round_trip,
    run_gocompat,
    run_kafkajs,
)
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from benchmarks.peers import brokers, tools
from strom.testing.certs import Pki, make_pki
from strom.testing.ports import free_port

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
        # ACLs on for kafka-acls; where a resource has none everyone may use it, as the other tests do
        "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        "allow.everyone.if.no.acl.found": "true",
        "super.users": "User:carol",
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


LOGINS = [
    ("SASL_SSL", "PLAIN", "alice", "alice-secret"),
    ("SASL_SSL", "SCRAM-SHA-256", "bob", "bob-pw"),
    ("SASL_SSL", "SCRAM-SHA-512", "carol", "carol-pw"),
    ("SASL_PLAINTEXT", "PLAIN", "alice", "alice-secret"),
]


def _plain_topic(sasl_broker: SaslBroker, prefix: str) -> str:
    # made through the PLAINTEXT listener so that no client meets a topic still being created
    topic = f"{prefix}-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": sasl_broker.plain})
    admin.create_topics([NewTopic(topic, 1, 1)])[topic].result(20)
    return topic


def _kcat_librdkafka_version() -> tuple[int, ...]:
    found = re.search(r"librdkafka (\d+)\.(\d+)\.(\d+)", Kcat("").run("-V").stdout)
    assert found, "kcat -V names no librdkafka version"
    return tuple(int(part) for part in found.groups())


@pytest.mark.parametrize(("listener", "mechanism", "user", "password"), LOGINS)
def test_kcat_both_ways(sasl_broker: SaslBroker, listener: str, mechanism: str, user: str,
                        password: str) -> None:
    """kcat with PLAIN moves records. Debian's kcat carries librdkafka 2.0.2, whose SCRAM client-final
    message repeats the client nonce (fixed in librdkafka 2.6.1, confluentinc/librdkafka#4895); Kafka 4
    checks the nonce strictly (RFC 5802) and refuses it, and so does Strom."""
    topic = _plain_topic(sasl_broker, "sasl-kcat")
    opts = ["-X", f"security.protocol={listener}", "-X", f"sasl.mechanisms={mechanism}",
            "-X", f"sasl.username={user}", "-X", f"sasl.password={password}"]  # fmt: skip
    if listener == "SASL_SSL":
        opts += ["-X", f"ssl.ca.location={sasl_broker.pki.ca}"]
    kcat = Kcat(sasl_broker.sasl_ssl if listener == "SASL_SSL" else sasl_broker.sasl_plaintext)
    if mechanism.startswith("SCRAM") and _kcat_librdkafka_version() < (2, 6, 1):
        with pytest.raises(ToolFailed, match=f"invalid credentials with SASL mechanism {mechanism}"):
            kcat.run(*opts, "-L", "-t", topic)
        return
    kcat.run(*opts, "-P", "-t", topic, input_text="one\ntwo\nthree\n")
    out = kcat.run(*opts, "-C", "-t", topic, "-o", "beginning", "-c", "3", "-e").stdout
    assert out.split() == ["one", "two", "three"]


@pytest.mark.parametrize("client", ["kafka-python", "aiokafka"])
@pytest.mark.parametrize(("listener", "mechanism", "user", "password"), LOGINS)
def test_python_clients_both_ways(sasl_broker: SaslBroker, client: str, listener: str, mechanism: str,
                                  user: str, password: str) -> None:
    """kafka-python (ssl_cafile) and aiokafka (an ssl_context) write 20 records and read them back."""
    topic = _plain_topic(sasl_broker, f"sasl-{client}")
    common: dict[str, Any] = {
        "bootstrap_servers": sasl_broker.sasl_ssl if listener == "SASL_SSL" else sasl_broker.sasl_plaintext,
        "security_protocol": listener, "sasl_mechanism": mechanism,
        "sasl_plain_username": user, "sasl_plain_password": password,
    }
    if client == "kafka-python":
        if listener == "SASL_SSL":
            common["ssl_cafile"] = str(sasl_broker.pki.ca)
        got = kafka_python_round_trip(topic, client, **common)
    else:
        from aiokafka.helpers import create_ssl_context

        if listener == "SASL_SSL":
            common["ssl_context"] = create_ssl_context(cafile=str(sasl_broker.pki.ca))
        got = aiokafka_round_trip(topic, client, **common)
    assert got == [f"{client}-{i}".encode() for i in range(20)]


JAAS_MODULES = {
    "PLAIN": "org.apache.kafka.common.security.plain.PlainLoginModule",
    "SCRAM-SHA-256": "org.apache.kafka.common.security.scram.ScramLoginModule",
    "SCRAM-SHA-512": "org.apache.kafka.common.security.scram.ScramLoginModule",
}


@pytest.mark.parametrize(("listener", "mechanism", "user", "password"), LOGINS[:3])
def test_java_console_and_config_tools_over_sasl_ssl(
    sasl_broker: SaslBroker, fetched_tools: None, tmp_path: Path, listener: str, mechanism: str, user: str,
    password: str,
) -> None:
    """Kafka's console producer and consumer (the Java client) and kafka-configs, each with a
    --command-config naming the mechanism, the JAAS login and the CA."""
    topic = _plain_topic(sasl_broker, "sasl-java")
    props = tmp_path / "client.properties"
    props.write_text(
        f"security.protocol={listener}\nsasl.mechanism={mechanism}\n"
        f'sasl.jaas.config={JAAS_MODULES[mechanism]} required username="{user}" password="{password}";\n'
        f"ssl.truststore.type=PEM\nssl.truststore.location={sasl_broker.pki.ca}\n"
    )
    bootstrap = sasl_broker.sasl_ssl
    java = JavaTools(bootstrap)
    common = ["--bootstrap-server", bootstrap, "--command-config", str(props)]
    produced = java.run("org.apache.kafka.tools.ConsoleProducer", *common, "--topic", topic,
                        input_text="".join(f"java {i}\n" for i in range(5)))  # fmt: skip
    assert produced.returncode == 0, produced.stderr
    out = java.run("org.apache.kafka.tools.consumer.ConsoleConsumer", *common, "--topic", topic,
                   "--from-beginning", "--max-messages", "5", "--timeout-ms", "30000").stdout  # fmt: skip
    assert [line for line in out.splitlines() if line.strip()] == [f"java {i}" for i in range(5)]
    configs = "org.apache.kafka.tools.ConfigCommand"
    altered = java.run(configs, *common, "--alter", "--entity-type", "topics", "--entity-name", topic,
                       "--add-config", "retention.ms=3600000")  # fmt: skip
    assert altered.returncode == 0, altered.stderr
    described = java.run(configs, *common, "--describe", "--entity-type", "topics", "--entity-name", topic)
    assert "retention.ms=3600000" in described.stdout, described.stdout + described.stderr
    users = java.run(configs, *common, "--describe", "--entity-type", "users", "--entity-name", "bob")
    assert "SCRAM-SHA-256=iterations=4096" in users.stdout, users.stdout + users.stderr


def test_kafka_acls_over_sasl_ssl(sasl_broker: SaslBroker, fetched_tools: None, tmp_path: Path) -> None:
    """kafka-acls as carol (SCRAM-SHA-512, a super user) adds, lists and removes an ACL."""
    props = tmp_path / "admin.properties"
    props.write_text(
        "security.protocol=SASL_SSL\nsasl.mechanism=SCRAM-SHA-512\n"
        f'sasl.jaas.config={JAAS_MODULES["SCRAM-SHA-512"]} required username="carol" password="carol-pw";\n'
        f"ssl.truststore.type=PEM\nssl.truststore.location={sasl_broker.pki.ca}\n"
    )
    JavaTools(sasl_broker.sasl_ssl).acl_round_trip(props, "User:dave", f"sasl-acl-{uuid.uuid4().hex[:6]}")


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


@pytest.mark.parametrize(("listener", "mechanism"), [("SASL_PLAINTEXT", "SCRAM-SHA-512"),
                                                    ("SASL_SSL", "PLAIN")])
def test_unknown_user_fails_fast_and_others_are_served(sasl_broker: SaslBroker, listener: str,
                                                       mechanism: str) -> None:
    errors: list[str] = []
    seen = threading.Event()

    def on_error(err: Any) -> None:
        errors.append(err.str())
        seen.set()

    start = time.monotonic()
    admin = AdminClient(sasl_broker.rdkafka(listener, mechanism, "mallory", "guess", error_cb=on_error))
    while not seen.is_set() and time.monotonic() - start < 15:
        admin.poll(0.1)
    assert seen.is_set()
    assert "Authentication failed" in errors[0], errors
    good = AdminClient(sasl_broker.rdkafka(listener, "SCRAM-SHA-512", "carol", "carol-pw"))
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
