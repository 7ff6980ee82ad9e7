"""A broker with a PLAINTEXT and an SSL listener (client auth required): each listener's Metadata names
that listener's addresses, each connection knows its listener and principal, records go both ways
through TLS (the fetch path without sendfile), and bad clients fail fast while others are served."""

from __future__ import annotations

import os
import socket
import ssl
import time
from collections.abc import Iterator
from typing import Any

import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient

from strom.security.principal import ANONYMOUS, KafkaPrincipal
from strom.testing.certs import Party, Pki
from strom.testing.embedded import EmbeddedBroker

API_VERSIONS_V0 = b"\x00\x00\x00\x0c\x00\x12\x00\x00\x00\x00\x00\x07\x00\x02id"


@pytest.fixture(scope="module")
def broker(pki: Pki) -> Iterator[EmbeddedBroker]:
    props = {
        "listeners": "PLAINTEXT://127.0.0.1:0,SSL://127.0.0.1:0",
        "advertised.listeners": "PLAINTEXT://127.0.0.1:0,SSL://localhost:0",
        "ssl.keystore.type": "PEM",
        "ssl.keystore.location": str(pki.broker.keystore),
        "ssl.truststore.type": "PEM",
        "ssl.truststore.location": str(pki.ca),
        "ssl.client.auth": "required",
        "listener.name.ssl.ssl.principal.mapping.rules": "RULE:^CN=(.*?),OU=(.*?),.*$/$1@$2/L,DEFAULT",
    }
    with EmbeddedBroker(props) as b:
        yield b


def _ssl_port(broker: EmbeddedBroker) -> int:
    assert broker.broker is not None
    return broker.broker.bound_addresses["SSL"][1]


def _ssl_conf(broker: EmbeddedBroker, pki: Pki, party: Party | None = None) -> dict[str, Any]:
    party = party or pki.client
    return {
        "bootstrap.servers": f"localhost:{_ssl_port(broker)}",
        "security.protocol": "SSL",
        "ssl.ca.location": str(pki.ca),
        "ssl.certificate.location": str(party.cert),
        "ssl.key.location": str(party.key),
        "log_level": 0,
    }


def test_metadata_names_the_listener_the_client_came_through(broker: EmbeddedBroker, pki: Pki) -> None:
    assert broker.broker is not None
    plain_port = broker.broker.bound_addresses["PLAINTEXT"][1]
    ssl_port = _ssl_port(broker)
    via_ssl = AdminClient(_ssl_conf(broker, pki)).list_topics(timeout=10)
    assert {(b.id, b.host, b.port) for b in via_ssl.brokers.values()} == {(1, "localhost", ssl_port)}
    via_plain = AdminClient({"bootstrap.servers": broker.bootstrap_servers}).list_topics(timeout=10)
    assert {(b.id, b.host, b.port) for b in via_plain.brokers.values()} == {(1, "127.0.0.1", plain_port)}
    admin = AdminClient(_ssl_conf(broker, pki))
    cluster = admin.describe_cluster(request_timeout=10).result(10)
    assert [(n.host, n.port) for n in cluster.nodes] == [("localhost", ssl_port)]


def test_connections_know_their_listener_and_principal(broker: EmbeddedBroker, pki: Pki) -> None:
    assert broker.broker is not None
    admin = AdminClient(_ssl_conf(broker, pki))
    admin.list_topics(timeout=10)
    plain = AdminClient({"bootstrap.servers": broker.bootstrap_servers})
    plain.list_topics(timeout=10)
    wanted = {("SSL", "SSL", KafkaPrincipal("User", "alice@clients")), ("PLAINTEXT", "PLAINTEXT", ANONYMOUS)}
    # librdkafka swaps its bootstrap connection for the broker's own: look until both are open
    deadline = time.monotonic() + 10
    seen: set[Any] = set()
    while not wanted <= seen and time.monotonic() < deadline:
        seen |= {
            (c.listener_name, c.security_protocol, c.principal) for c in list(broker.broker._connections)
        }
        time.sleep(0.05)
    assert wanted <= seen


def test_records_through_tls_both_ways(broker: EmbeddedBroker, pki: Pki) -> None:
    conf = _ssl_conf(broker, pki)
    producer = Producer(conf)
    values = [bytes([i % 256]) * 20000 for i in range(200)]  # 4 MB: several fetches through pread
    for value in values:
        producer.produce("tls-both-ways", value)
    assert producer.flush(30) == 0
    assert _read_back({**conf, "group.id": "tls"}, "tls-both-ways", len(values), 30) == values


def test_large_fetches_through_tls_arrive_whole(broker: EmbeddedBroker, pki: Pki) -> None:
    # responses of several MiB: the broker streams each one in pieces; every byte must arrive in order
    conf = _ssl_conf(broker, pki)
    producer = Producer({**conf, "batch.size": 1_000_000, "linger.ms": 20})
    values = [os.urandom(16_000) for _ in range(500)]  # 8 MB of distinct bytes
    for value in values:
        producer.produce("tls-large-fetches", value)
    assert producer.flush(30) == 0
    large = {"group.id": "tls-large", "max.partition.fetch.bytes": 5_000_000, "fetch.max.bytes": 10_000_000}
    assert _read_back({**conf, **large}, "tls-large-fetches", len(values), 60) == values


def _read_back(conf: dict[str, object], topic: str, count: int, timeout: float) -> list[bytes]:
    """The values a consumer group reads from the start of `topic`, in order, until it has `count`."""
    consumer = Consumer({**conf, "auto.offset.reset": "earliest"})
    consumer.subscribe([topic])
    got: list[bytes] = []
    deadline = time.monotonic() + timeout
    while len(got) < count and time.monotonic() < deadline:
        msg = consumer.poll(0.5)
        if msg is not None and msg.error() is None:
            got.append(msg.value())
    consumer.close()
    return got


def _raw_tls(port: int, ctx: ssl.SSLContext) -> bytes:
    """Handshake, send an ApiVersions v0 request, return what comes back (b"" if the broker closed)."""
    with (
        socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
        ctx.wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        tls.sendall(API_VERSIONS_V0)
        try:
            return tls.recv(4)
        except (ssl.SSLError, ConnectionError):
            return b""


def test_bad_clients_fail_fast_and_others_are_served(broker: EmbeddedBroker, pki: Pki) -> None:
    port = _ssl_port(broker)
    # a plaintext Kafka request on the TLS port: the broker closes the connection at once
    start = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(API_VERSIONS_V0)
        while sock.recv(64):  # a TLS alert at most, then the close
            pass
    assert time.monotonic() - start < 3

    # a certificate from a foreign CA, and no certificate at all (client auth is required): refused
    def client_ctx(party: Party | None) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=str(pki.ca))
        if party is not None:
            ctx.load_cert_chain(str(party.cert), str(party.key))
        return ctx

    for party in (pki.foreign_client, None):
        start = time.monotonic()
        with pytest.raises((ssl.SSLError, ConnectionError)):
            if _raw_tls(port, client_ctx(party)) == b"":
                raise ConnectionError("closed")
        assert time.monotonic() - start < 3
    # a good client still gets its answer
    assert len(_raw_tls(port, client_ctx(pki.client))) == 4
    md = AdminClient(_ssl_conf(broker, pki)).list_topics(timeout=10)
    assert md.brokers
