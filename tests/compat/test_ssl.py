"""SSL with client authentication through real clients: librdkafka (confluent-kafka and kcat),
kafka-python, aiokafka, kafkajs, franz-go and Kafka's Java console tools, against a broker with a
PLAINTEXT and an SSL listener configured from the same properties for Strom and for Apache Kafka
(`--kafka-reference`).

Certificates are made at test time with openssl (strom.testing.certs). Metadata through each listener
names that listener's address; a client with a foreign certificate, one with none, and a plaintext client
on the TLS port fail fast, while the broker keeps serving the others.
"""

from __future__ import annotations

import socket
import ssl
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
    aiokafka_round_trip,
    kafka_python_round_trip,
    run_gocompat,
    run_kafkajs,
)
from confluent_kafka import Consumer, KafkaException, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from benchmarks.peers import brokers, tools
from strom.testing.certs import Party, Pki, make_pki
from strom.testing.ports import free_port

pytestmark = pytest.mark.compat


@dataclass(frozen=True)
class SslBroker:
    plain: str  # bootstrap of the PLAINTEXT listener
    tls: str  # bootstrap of the SSL listener
    pki: Pki

    def rdkafka(self, party: Party | None = None, **extra: Any) -> dict[str, Any]:
        conf: dict[str, Any] = {
            "bootstrap.servers": self.tls,
            "security.protocol": "SSL",
            "ssl.ca.location": str(self.pki.ca),
            "log_level": 0,
            **extra,
        }
        party = party or self.pki.client
        conf["ssl.certificate.location"] = str(party.cert)
        conf["ssl.key.location"] = str(party.key)
        return conf

    def java_properties(self, path: Path) -> Path:
        path.write_text(
            "security.protocol=SSL\n"
            f"ssl.truststore.type=PEM\nssl.truststore.location={self.pki.ca}\n"
            f"ssl.keystore.type=PEM\nssl.keystore.location={self.pki.client.keystore}\n"
        )
        return path

    def python_ssl_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=str(self.pki.ca))
        ctx.load_cert_chain(str(self.pki.client.cert), str(self.pki.client.key))
        return ctx


@pytest.fixture(scope="module")
def ssl_broker(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SslBroker]:
    if request.config.getoption("--bootstrap", default=None):
        pytest.skip("needs a broker it configures itself (SSL listener and certificates)")
    pki = make_pki(Path(tmp_path_factory.mktemp("pki")))
    port, ssl_port = free_port(), free_port()
    settings = {
        "ssl.keystore.type": "PEM",
        "ssl.keystore.location": str(pki.broker.keystore),
        "ssl.truststore.type": "PEM",
        "ssl.truststore.location": str(pki.ca),
        "ssl.client.auth": "required",
    }
    listeners = {"SSL": ("SSL", ssl_port)}
    if request.config.getoption("--kafka-reference", default=False):
        tools.ensure_tools()
        proc = brokers.start_kafka(port=port, settings=settings, listeners=listeners)
    else:
        proc = brokers.start_strom(port=port, settings=settings, listeners=listeners)
    try:
        yield SslBroker(f"127.0.0.1:{port}", f"127.0.0.1:{ssl_port}", pki)
    finally:
        proc.stop()


def _topic(ssl_broker: SslBroker) -> str:
    name = f"ssl-{uuid.uuid4().hex[:8]}"
    admin = AdminClient(ssl_broker.rdkafka())
    admin.create_topics([NewTopic(name, 1, 1)])[name].result(20)
    return name


def _consume(conf: dict[str, Any], topic: str, count: int, timeout: float = 30.0) -> list[bytes]:
    consumer = Consumer({**conf, "group.id": f"g-{uuid.uuid4().hex[:6]}", "auto.offset.reset": "earliest"})
    consumer.subscribe([topic])
    got: list[bytes] = []
    deadline = time.monotonic() + timeout
    try:
        while len(got) < count and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is not None and msg.error() is None:
                got.append(msg.value())
    finally:
        consumer.close()
    return got


def test_metadata_through_each_listener_names_that_listener(ssl_broker: SslBroker) -> None:
    via_tls = AdminClient(ssl_broker.rdkafka())
    tls_nodes = {(b.host, b.port) for b in via_tls.list_topics(timeout=20).brokers.values()}
    assert tls_nodes == {("127.0.0.1", int(ssl_broker.tls.split(":")[1]))}
    via_plain = AdminClient({"bootstrap.servers": ssl_broker.plain})
    plain_nodes = {(b.host, b.port) for b in via_plain.list_topics(timeout=20).brokers.values()}
    assert plain_nodes == {("127.0.0.1", int(ssl_broker.plain.split(":")[1]))}
    cluster = via_tls.describe_cluster(request_timeout=20).result(20)
    assert [n.port for n in cluster.nodes] == [int(ssl_broker.tls.split(":")[1])]


def test_librdkafka_produce_consume_and_groups(ssl_broker: SslBroker) -> None:
    topic = _topic(ssl_broker)
    producer = Producer(ssl_broker.rdkafka(**{"enable.idempotence": True}))
    values = [f"tls-{i}".encode() * 50 for i in range(500)]
    for value in values:
        producer.produce(topic, value)
    assert producer.flush(30) == 0
    assert _consume(ssl_broker.rdkafka(), topic, len(values)) == values


def test_kcat_over_ssl(ssl_broker: SslBroker) -> None:
    topic = _topic(ssl_broker)
    pki = ssl_broker.pki
    opts = ["-X", "security.protocol=SSL", "-X", f"ssl.ca.location={pki.ca}",
            "-X", f"ssl.certificate.location={pki.client.cert}",
            "-X", f"ssl.key.location={pki.client.key}"]  # fmt: skip
    kcat = Kcat(ssl_broker.tls)
    kcat.run(*opts, "-P", "-t", topic, input_text="one\ntwo\nthree\n")
    out = kcat.run(*opts, "-C", "-t", topic, "-o", "beginning", "-c", "3", "-e").stdout
    assert out.split() == ["one", "two", "three"]
    listing = kcat.run(*opts, "-L", "-t", topic).stdout
    assert f"at {ssl_broker.tls}" in listing


def test_kafka_python_over_ssl(ssl_broker: SslBroker) -> None:
    topic = _topic(ssl_broker)
    pki = ssl_broker.pki
    got = kafka_python_round_trip(topic, "kp", bootstrap_servers=ssl_broker.tls, security_protocol="SSL",
                                  ssl_cafile=str(pki.ca), ssl_certfile=str(pki.client.cert),
                                  ssl_keyfile=str(pki.client.key))  # fmt: skip
    assert got == [f"kp-{i}".encode() for i in range(20)]


def test_aiokafka_over_ssl(ssl_broker: SslBroker) -> None:
    topic = _topic(ssl_broker)
    got = aiokafka_round_trip(topic, "aio", bootstrap_servers=ssl_broker.tls, security_protocol="SSL",
                              ssl_context=ssl_broker.python_ssl_context())  # fmt: skip
    assert got == [f"aio-{i}".encode() for i in range(20)]


@pytest.mark.parametrize("client", ["kafkajs", "franz-go"])
def test_node_and_go_clients_over_ssl(ssl_broker: SslBroker, fetched_tools: None, client: str) -> None:
    """kafkajs (its `ssl` option with ca, cert and key) and franz-go (kgo.DialTLSConfig with a client
    certificate) produce, then read the records back, through the listener requiring client certificates."""
    topic = _topic(ssl_broker)
    pki = ssl_broker.pki
    files = {"ca": str(pki.ca), "cert": str(pki.client.cert), "key": str(pki.client.key)}
    if client == "kafkajs":
        security = {"ssl": files}
        produced = run_kafkajs(tools.node_modules(), "produce-offsets", ssl_broker.tls, topic, "6",
                               security=security)
        assert [(o["partition"], o["low"], o["high"]) for o in produced["offsets"]] == [(0, "0", "6")]
        seen = run_kafkajs(tools.node_modules(), "group-consume", ssl_broker.tls, topic, "6",
                           security=security)["seen"]
        assert [(s["offset"], s["key"], s["value"]) for s in seen] == [(str(i), f"k{i}", f"v{i}")
                                                                     for i in range(6)]
    else:
        result = run_gocompat("franz-produce-consume", ssl_broker.tls, topic, 8, security={"tls": files})
        assert result["produced_offsets"] == list(range(8))
        assert [(r["offset"], r["key"], r["value"]) for r in result["seen"]] == [(i, f"k{i}", f"v{i}")
                                                                               for i in range(8)]


def test_java_console_tools_over_ssl(ssl_broker: SslBroker, fetched_tools: None, tmp_path: Path) -> None:
    topic = _topic(ssl_broker)
    props = ssl_broker.java_properties(tmp_path / "client.properties")
    java = JavaTools(ssl_broker.tls)
    java.run("org.apache.kafka.tools.ConsoleProducer", "--bootstrap-server", ssl_broker.tls, "--topic", topic,
             "--command-config", str(props), input_text="".join(f"java {i}\n" for i in range(5)))  # fmt: skip
    out = java.run(
        "org.apache.kafka.tools.consumer.ConsoleConsumer", "--bootstrap-server", ssl_broker.tls,
        "--topic", topic, "--from-beginning", "--max-messages", "5", "--timeout-ms", "30000",
        "--command-config", str(props)).stdout  # fmt: skip
    assert [line for line in out.splitlines() if line.strip()] == [f"java {i}" for i in range(5)]


def test_kafka_configs_over_ssl(ssl_broker: SslBroker, fetched_tools: None, tmp_path: Path) -> None:
    """kafka-configs with a client certificate: a topic config altered, then described."""
    topic = _topic(ssl_broker)
    props = ssl_broker.java_properties(tmp_path / "client.properties")
    java = JavaTools(ssl_broker.tls)
    common = ["--bootstrap-server", ssl_broker.tls, "--command-config", str(props), "--entity-type", "topics",
              "--entity-name", topic]  # fmt: skip
    java.run("org.apache.kafka.tools.ConfigCommand", *common, "--alter", "--add-config", "segment.ms=3600000")
    described = java.run("org.apache.kafka.tools.ConfigCommand", *common, "--describe").stdout
    assert "segment.ms=3600000" in described, described


def test_bad_clients_fail_fast_and_others_are_served(ssl_broker: SslBroker) -> None:
    host, port = ssl_broker.tls.split(":")
    # a foreign certificate: librdkafka gives up on the handshake instead of hanging
    admin = AdminClient(ssl_broker.rdkafka(ssl_broker.pki.foreign_client))
    with pytest.raises(KafkaException):
        admin.list_topics(timeout=8)
    # a plaintext Kafka request on the TLS port: the connection is closed at once
    start = time.monotonic()
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(b"\x00\x00\x00\x0c\x00\x12\x00\x00\x00\x00\x00\x07\x00\x02id")
        while sock.recv(64):  # at most a TLS alert, then the close
            pass
    assert time.monotonic() - start < 5
    # no certificate while client auth is required: refused
    ctx = ssl.create_default_context(cafile=str(ssl_broker.pki.ca))
    with pytest.raises((ssl.SSLError, ConnectionError)):
        _request_over_tls(host, int(port), ctx)
    # everyone else is still served
    assert AdminClient(ssl_broker.rdkafka()).list_topics(timeout=20).brokers


def _request_over_tls(host: str, port: int, ctx: ssl.SSLContext) -> None:
    with (
        socket.create_connection((host, port), timeout=10) as raw,
        ctx.wrap_socket(raw, server_hostname=host) as tls,
    ):
        tls.sendall(b"\x00\x00\x00\x0c\x00\x12\x00\x00\x00\x00\x00\x07\x00\x02id")
        if not tls.recv(4):
            raise ConnectionError("closed")
