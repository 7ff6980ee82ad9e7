"""SASL from a static JAAS file, as Kafka's scripts pass it: `-Djava.security.auth.login.config=<file>` in
KAFKA_OPTS. One file serves the broker (`KafkaServer`, PLAIN's users and SCRAM in one section) and the
tools (`KafkaClient`): librdkafka authenticates with PLAIN and SCRAM-SHA-256, the `strom` command and
Kafka 4.4's TopicCommand log in from the KafkaClient section (their --command-config has no
sasl.jaas.config), a broker whose file lacks the section does not start, with Kafka's message, and each
listener takes its login modules in Kafka's order (its `<mechanism>.sasl.jaas.config`, else its own
`<listener>.KafkaServer` section, else `KafkaServer`).
`--kafka-reference` runs the same against Apache Kafka (the JVM takes the property from JAVA_TOOL_OPTIONS,
as kafka-server-start.sh would from KAFKA_OPTS)."""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, KafkaException, Producer
from confluent_kafka.admin import (
    AdminClient,
    ScramCredentialInfo,
    ScramMechanism,
    UserScramCredentialUpsertion,
)

from benchmarks.peers import brokers, tools
from benchmarks.peers.process import BrokerProcess, BrokerStartError
from strom.testing.ports import free_port

pytestmark = pytest.mark.compat

JAAS_FILE = """
/* Strom and Kafka read this file alike */
KafkaServer {
    org.apache.kafka.common.security.plain.PlainLoginModule required
        username="admin" password="admin-secret"
        user_admin="admin-secret" user_alice="alice-secret";   // PLAIN's users
    org.apache.kafka.common.security.scram.ScramLoginModule required;
};

KafkaClient {
    org.apache.kafka.common.security.scram.ScramLoginModule required username="bob" password="bob-pw";
};
"""
CLIENT_PROPERTIES = "security.protocol=SASL_PLAINTEXT\nsasl.mechanism=SCRAM-SHA-256\n"


@dataclass(frozen=True)
class JaasBroker:
    plain: str
    sasl: str
    jaas: Path
    kind: str

    def rdkafka(self, mechanism: str, user: str, password: str, **extra: Any) -> dict[str, Any]:
        return {
            "bootstrap.servers": self.sasl,
            "security.protocol": "SASL_PLAINTEXT",
            "sasl.mechanism": mechanism,
            "sasl.username": user,
            "sasl.password": password,
            "log_level": 0,
            **extra,
        }


def _start(
    kind: str,
    port: int,
    sasl_port: int,
    jaas: Path,
    *,
    settings: dict[str, str] | None = None,
    listeners: brokers.Listeners | None = None,
) -> BrokerProcess:
    settings = settings or {"sasl.enabled.mechanisms": "PLAIN,SCRAM-SHA-256"}
    listeners = listeners or {"SASL_PLAINTEXT": ("SASL_PLAINTEXT", sasl_port)}
    option = f"-Djava.security.auth.login.config={jaas}"
    with pytest.MonkeyPatch.context() as env:
        if kind == "kafka":
            env.setenv("JAVA_TOOL_OPTIONS", option)
            return brokers.start_kafka(port=port, settings=settings, listeners=listeners)
        env.setenv("KAFKA_OPTS", f"-Xmx512m {option}")
        return brokers.start_strom(port=port, settings=settings, listeners=listeners)


@pytest.fixture(scope="module")
def jaas_broker(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[JaasBroker]:
    if request.config.getoption("--bootstrap", default=None):
        pytest.skip("needs a broker it configures itself (a JAAS file)")
    kind = "kafka" if request.config.getoption("--kafka-reference", default=False) else "strom"
    if kind == "kafka":
        tools.ensure_tools()
    jaas = tmp_path_factory.mktemp("jaas") / "kafka_jaas.conf"
    jaas.write_text(JAAS_FILE)
    port, sasl_port = free_port(), free_port()
    proc = _start(kind, port, sasl_port, jaas)
    try:
        admin = AdminClient({"bootstrap.servers": f"127.0.0.1:{port}"})
        upsert = UserScramCredentialUpsertion(
            "bob", ScramCredentialInfo(ScramMechanism.SCRAM_SHA_256, 4096), b"bob-pw"
        )
        for future in admin.alter_user_scram_credentials([upsert]).values():
            future.result(20)
        yield JaasBroker(f"127.0.0.1:{port}", f"127.0.0.1:{sasl_port}", jaas, kind)
    finally:
        proc.stop()


@pytest.mark.parametrize(
    ("mechanism", "user", "password"),
    [("PLAIN", "alice", "alice-secret"), ("SCRAM-SHA-256", "bob", "bob-pw")],
)
def test_librdkafka_logs_in_against_the_files_section(
    jaas_broker: JaasBroker, mechanism: str, user: str, password: str
) -> None:
    topic = f"jaas-{uuid.uuid4().hex[:8]}"
    producer = Producer(jaas_broker.rdkafka(mechanism, user, password))
    for i in range(20):
        producer.produce(topic, b"m%d" % i)
    assert producer.flush(30) == 0
    consumer = Consumer(
        jaas_broker.rdkafka(
            mechanism, user, password, **{"group.id": f"g-{topic}", "auto.offset.reset": "earliest"}
        )
    )
    consumer.subscribe([topic])
    got: list[bytes] = []
    deadline = time.monotonic() + 30
    while len(got) < 20 and time.monotonic() < deadline:
        msg = consumer.poll(0.5)
        if msg is not None and msg.error() is None:
            got.append(msg.value())
    consumer.close()
    assert got == [b"m%d" % i for i in range(20)]


def test_a_password_not_in_the_file_is_refused(jaas_broker: JaasBroker) -> None:
    errors: list[str] = []
    admin = AdminClient(
        jaas_broker.rdkafka("PLAIN", "alice", "wrong", error_cb=lambda err: errors.append(err.str()))
    )
    deadline = time.monotonic() + 15
    while not errors and time.monotonic() < deadline:
        admin.poll(0.1)
    assert errors and "Authentication failed: Invalid username or password" in errors[0]


def test_tools_log_in_from_the_kafkaclient_section(jaas_broker: JaasBroker, tmp_path: Path) -> None:
    config = tmp_path / "client.properties"
    config.write_text(CLIENT_PROPERTIES)
    topic = f"jaas-tool-{uuid.uuid4().hex[:8]}"
    option = f"-Djava.security.auth.login.config={jaas_broker.jaas}"
    command = tools.java_command(
        "org.apache.kafka.tools.TopicCommand",
        "--bootstrap-server",
        jaas_broker.sasl,
        "--command-config",
        str(config),
        "--create",
        "--topic",
        topic,
        "--partitions",
        "2",
    )
    command[1:1] = [option]
    created = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert created.returncode == 0, created.stderr
    # the strom command reads the same file from KAFKA_OPTS
    env = {k: v for k, v in os.environ.items() if k != "STROM_BOOTSTRAP_SERVER"}
    env["KAFKA_OPTS"] = option
    env["PYTHONPATH"] = str(tools.REPO_ROOT)
    listed = subprocess.run(
        [*brokers.strom_command(), "topics", "describe", topic, "--bootstrap-server", jaas_broker.sasl,
         "--command-config", str(config)],
        capture_output=True, text=True, env=env, timeout=60,
    )  # fmt: skip
    assert listed.returncode == 0, listed.stderr
    assert topic in listed.stdout and "PartitionCount: 2" in listed.stdout
    # without the property neither has a login module: Kafka's message
    env["KAFKA_OPTS"] = ""
    refused = subprocess.run(
        [*brokers.strom_command(), "topics", "list", "--bootstrap-server", jaas_broker.sasl,
         "--command-config", str(config)],
        capture_output=True, text=True, env=env, timeout=60,
    )  # fmt: skip
    assert refused.returncode == 1
    assert (
        "Could not find a 'KafkaClient' entry in the JAAS configuration. System property "
        "'java.security.auth.login.config' is not set"
    ) in refused.stderr


def test_a_broker_without_its_section_does_not_start(jaas_broker: JaasBroker, tmp_path: Path) -> None:
    client_only = tmp_path / "client_only.conf"
    client_only.write_text(JAAS_FILE[JAAS_FILE.index("KafkaClient") :])
    with pytest.raises(BrokerStartError) as failed:
        _start(jaas_broker.kind, free_port(), free_port(), client_only).stop()
    assert (
        "Could not find a 'KafkaServer' or 'sasl_plaintext.KafkaServer' entry in the JAAS configuration. "
        f"System property 'java.security.auth.login.config' is {client_only}"
    ) in str(failed.value)


PRECEDENCE_FILE = """
KafkaServer { org.apache.kafka.common.security.plain.PlainLoginModule required user_alice="alice-secret"; };
sasl_plaintext.KafkaServer {
    org.apache.kafka.common.security.plain.PlainLoginModule required user_svc="svc-pw";
};
"""


def _logs_in(bootstrap: str, user: str, password: str) -> bool:
    """Whether PLAIN `user` gets metadata from `bootstrap` (False once the broker refuses the login)."""
    errors: list[str] = []
    conf = {
        "bootstrap.servers": bootstrap,
        "security.protocol": "SASL_PLAINTEXT",
        "sasl.mechanism": "PLAIN",
        "sasl.username": user,
        "sasl.password": password,
        "log_level": 0,
        "error_cb": lambda err: errors.append(err.str()),
    }
    admin = AdminClient(conf)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        admin.poll(0.1)
        if any("Authentication failed" in error for error in errors):
            return False
        try:
            admin.list_topics(timeout=1)
            return True
        except KafkaException:
            pass
    raise AssertionError(f"neither logged in nor refused: {errors}")


def test_which_login_modules_a_listener_takes(jaas_broker: JaasBroker, tmp_path: Path) -> None:
    """A listener's `<mechanism>.sasl.jaas.config` wins over the file; else the listener's own section;
    else KafkaServer (Kafka's JaasContext.loadServerContext)."""
    jaas = tmp_path / "precedence.conf"
    jaas.write_text(PRECEDENCE_FILE)
    port, own, keyed, fallback = free_port(), free_port(), free_port(), free_port()
    listeners = {
        "SASL_PLAINTEXT": ("SASL_PLAINTEXT", own),
        "KEYED": ("SASL_PLAINTEXT", keyed),
        "FALLBACK": ("SASL_PLAINTEXT", fallback),
    }
    settings = {
        "sasl.enabled.mechanisms": "PLAIN",
        "listener.name.keyed.plain.sasl.jaas.config": (
            'org.apache.kafka.common.security.plain.PlainLoginModule required user_zed="zed-pw";'
        ),
    }
    proc = _start(jaas_broker.kind, port, 0, jaas, settings=settings, listeners=listeners)
    try:
        at = "127.0.0.1:{}".format
        assert _logs_in(at(own), "svc", "svc-pw") and not _logs_in(at(own), "alice", "alice-secret")
        assert _logs_in(at(keyed), "zed", "zed-pw") and not _logs_in(at(keyed), "svc", "svc-pw")
        assert _logs_in(at(fallback), "alice", "alice-secret") and not _logs_in(at(fallback), "zed", "zed-pw")
    finally:
        proc.stop()
