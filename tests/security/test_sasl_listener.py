"""A broker with a PLAINTEXT, a SASL_PLAINTEXT and a SASL_SSL listener: real clients (librdkafka,
kafka-python, aiokafka) authenticate with PLAIN, SCRAM-SHA-256 and SCRAM-SHA-512 and move records;
wrong passwords and unknown users fail fast with Kafka's errors while others are served; and the wire
rules of Kafka's SaslServerAuthenticator hold for raw frames (nothing but ApiVersions and SaslHandshake
before authentication, v0 raw tokens, ILLEGAL_SASL_STATE, the pre-authentication size cap, sessions that
expire unless re-authenticated, and mutated frames that never hurt the broker)."""

from __future__ import annotations

import asyncio
import io
import random
import resource
import socket
import struct
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from confluent_kafka import Consumer, KafkaException, Producer
from confluent_kafka.admin import (
    AdminClient,
    ScramCredentialInfo,
    ScramMechanism,
    UserScramCredentialUpsertion,
)
from kio.serial import entity_writer

from strom.protocol.errors import ErrorCode
from strom.security.principal import KafkaPrincipal
from strom.security.sasl.plain import plain_client_token
from strom.security.sasl.scram import ScramClient
from strom.testing.certs import Pki
from strom.testing.embedded import EmbeddedBroker

PLAIN_JAAS = (
    'org.apache.kafka.common.security.plain.PlainLoginModule required username="admin" '
    'password="admin-secret" user_admin="admin-secret" user_alice="alice-secret";'
)
SCRAM_JAAS = "org.apache.kafka.common.security.scram.ScramLoginModule required;"
MECHANISMS = "PLAIN,SCRAM-SHA-256,SCRAM-SHA-512"


def sasl_props(pki: Pki, reauth_ms: int = 0) -> dict[str, str]:
    props = {
        "listeners": "PLAINTEXT://127.0.0.1:0,SASL_PLAINTEXT://127.0.0.1:0,SASL_SSL://127.0.0.1:0",
        "advertised.listeners": "PLAINTEXT://127.0.0.1:0,SASL_PLAINTEXT://127.0.0.1:0,SASL_SSL://localhost:0",
        "sasl.enabled.mechanisms": MECHANISMS,
        "ssl.keystore.type": "PEM",
        "ssl.keystore.location": str(pki.broker.keystore),
        "ssl.truststore.type": "PEM",
        "ssl.truststore.location": str(pki.ca),
        "connections.max.reauth.ms": str(reauth_ms),
    }
    for listener in ("sasl_plaintext", "sasl_ssl"):
        props[f"listener.name.{listener}.plain.sasl.jaas.config"] = PLAIN_JAAS
        props[f"listener.name.{listener}.scram-sha-256.sasl.jaas.config"] = SCRAM_JAAS
        props[f"listener.name.{listener}.scram-sha-512.sasl.jaas.config"] = SCRAM_JAAS
    return props


@pytest.fixture(scope="module")
def broker(pki: Pki) -> Iterator[EmbeddedBroker]:
    with EmbeddedBroker(sasl_props(pki)) as b:
        admin = AdminClient({"bootstrap.servers": b.bootstrap_servers})
        futures = admin.alter_user_scram_credentials([
            UserScramCredentialUpsertion("bob", ScramCredentialInfo(ScramMechanism.SCRAM_SHA_256, 4096),
                                         b"bob-pw"),
            UserScramCredentialUpsertion("carol", ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, 8192),
                                         b"carol-pw"),
        ])
        for future in futures.values():
            future.result(10)
        yield b


def port(broker: EmbeddedBroker, listener: str) -> int:
    assert broker.broker is not None
    return broker.broker.bound_addresses[listener][1]


def client_conf(broker: EmbeddedBroker, pki: Pki, listener: str, mechanism: str, user: str, password: str,
                **extra: Any) -> dict[str, Any]:
    host = "localhost" if listener == "SASL_SSL" else "127.0.0.1"
    conf = {
        "bootstrap.servers": f"{host}:{port(broker, listener)}",
        "security.protocol": listener,
        "sasl.mechanism": mechanism,
        "sasl.username": user,
        "sasl.password": password,
        "log_level": 0,
        **extra,
    }
    if listener == "SASL_SSL":
        conf["ssl.ca.location"] = str(pki.ca)
    return conf


CASES = [
    ("SASL_PLAINTEXT", "PLAIN", "alice", "alice-secret"),
    ("SASL_SSL", "PLAIN", "alice", "alice-secret"),
    ("SASL_PLAINTEXT", "SCRAM-SHA-256", "bob", "bob-pw"),
    ("SASL_SSL", "SCRAM-SHA-512", "carol", "carol-pw"),
]


@pytest.mark.parametrize(("listener", "mechanism", "user", "password"), CASES)
def test_librdkafka_produces_and_consumes(
    broker: EmbeddedBroker, pki: Pki, listener: str, mechanism: str, user: str, password: str
) -> None:
    topic = f"sasl-{listener}-{mechanism}".lower()
    producer = Producer(client_conf(broker, pki, listener, mechanism, user, password))
    for i in range(20):
        producer.produce(topic, value=b"v%d" % i)
    assert producer.flush(15) == 0
    consumer = Consumer(client_conf(broker, pki, listener, mechanism, user, password, **{
        "group.id": f"g-{topic}", "auto.offset.reset": "earliest"}))
    consumer.subscribe([topic])
    seen: list[bytes] = []
    deadline = time.monotonic() + 20
    while len(seen) < 20 and time.monotonic() < deadline:
        msg = consumer.poll(0.5)
        if msg is not None and msg.error() is None:
            seen.append(msg.value())
    assert seen == [b"v%d" % i for i in range(20)]
    # the consumer's connections act as the authenticated user (bounded wait: librdkafka reconnects)
    assert broker.broker is not None
    wanted = (listener, KafkaPrincipal("User", user))
    found = False
    deadline = time.monotonic() + 10
    while not found and time.monotonic() < deadline:
        found = wanted in {(c.listener_name, c.principal) for c in list(broker.broker._connections)}
        time.sleep(0.02)
    consumer.close()
    assert found


@pytest.mark.parametrize(
    ("mechanism", "user", "password", "message"),
    [
        ("PLAIN", "alice", "wrong", "Authentication failed: Invalid username or password"),
        ("PLAIN", "mallory", "x", "Authentication failed: Invalid username or password"),
        ("SCRAM-SHA-256", "bob", "wrong", "Authentication failed during authentication due to invalid "
                                          "credentials with SASL mechanism SCRAM-SHA-256"),
        ("SCRAM-SHA-512", "nobody", "x", "Authentication failed during authentication due to invalid "
                                         "credentials with SASL mechanism SCRAM-SHA-512"),
    ],
)
def test_bad_credentials_fail_fast_while_others_are_served(
    broker: EmbeddedBroker, pki: Pki, mechanism: str, user: str, password: str, message: str
) -> None:
    errors: list[Any] = []
    got = threading.Event()

    def on_error(err: Any) -> None:
        errors.append(err)
        got.set()

    start = time.monotonic()
    conf = client_conf(broker, pki, "SASL_PLAINTEXT", mechanism, user, password, error_cb=on_error)
    admin = AdminClient(conf)  # connects on creation; the failure arrives through error_cb
    deadline = time.monotonic() + 10
    while not got.is_set() and time.monotonic() < deadline:
        admin.poll(0.1)
    assert got.is_set(), "no authentication error reported"
    assert time.monotonic() - start < 5
    assert message in errors[0].str()
    good = AdminClient(client_conf(broker, pki, "SASL_PLAINTEXT", "PLAIN", "alice", "alice-secret"))
    assert good.list_topics(timeout=10).brokers


def test_kafka_python_and_aiokafka(broker: EmbeddedBroker) -> None:
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
    from kafka import KafkaConsumer, KafkaProducer

    bootstrap = f"127.0.0.1:{port(broker, 'SASL_PLAINTEXT')}"
    producer = KafkaProducer(bootstrap_servers=bootstrap, security_protocol="SASL_PLAINTEXT",
                             sasl_mechanism="SCRAM-SHA-256", sasl_plain_username="bob",
                             sasl_plain_password="bob-pw")
    producer.send("sasl-kafka-python", b"kp").get(timeout=15)
    producer.close()
    consumer = KafkaConsumer("sasl-kafka-python", bootstrap_servers=bootstrap,
                             security_protocol="SASL_PLAINTEXT", sasl_mechanism="PLAIN",
                             sasl_plain_username="alice", sasl_plain_password="alice-secret",
                             auto_offset_reset="earliest", consumer_timeout_ms=10000)
    assert [m.value for m in consumer][:1] == [b"kp"]
    consumer.close()

    async def aio() -> list[bytes]:
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, security_protocol="SASL_PLAINTEXT",
                                    sasl_mechanism="SCRAM-SHA-512", sasl_plain_username="carol",
                                    sasl_plain_password="carol-pw")
        await producer.start()
        try:
            await producer.send_and_wait("sasl-aiokafka", b"aio")
        finally:
            await producer.stop()
        consumer = AIOKafkaConsumer("sasl-aiokafka", bootstrap_servers=bootstrap,
                                    security_protocol="SASL_PLAINTEXT", sasl_mechanism="PLAIN",
                                    sasl_plain_username="alice", sasl_plain_password="alice-secret",
                                    auto_offset_reset="earliest")
        await consumer.start()
        try:
            msg = await asyncio.wait_for(consumer.getone(), 15)
            return [msg.value]
        finally:
            await consumer.stop()

    assert asyncio.run(aio()) == [b"aio"]


# --- raw frames ------------------------------------------------------------------------------------------
def _request(api_key: int, version: int, correlation: int, body: Any, flexible: bool = False) -> bytes:
    buf = io.BytesIO()
    entity_writer(type(body))(buf, body)
    header = struct.pack(">hhih", api_key, version, correlation, 2) + b"id" + (b"\x00" if flexible else b"")
    payload = header + buf.getvalue()
    return struct.pack(">i", len(payload)) + payload


def _handshake(mechanism: str, version: int = 1) -> bytes:
    from kio.schema.sasl_handshake.v1.request import SaslHandshakeRequest

    return _request(17, version, 1, SaslHandshakeRequest(mechanism=mechanism))


def _authenticate(token: bytes, correlation: int = 2) -> bytes:
    from kio.schema.sasl_authenticate.v1.request import SaslAuthenticateRequest

    return _request(36, 1, correlation, SaslAuthenticateRequest(auth_bytes=token))


class Raw:
    """A blocking socket speaking size-prefixed frames, every read bounded by a timeout."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def frame(self) -> bytes | None:
        """The next frame's payload, or None when the broker closed the connection."""
        head = self._exactly(4)
        if head is None:
            return None
        return self._exactly(struct.unpack(">i", head)[0])

    def _exactly(self, n: int) -> bytes | None:
        data = b""
        while len(data) < n:
            try:
                chunk = self.sock.recv(n - len(data))
            except (ConnectionResetError, TimeoutError):
                return None
            if not chunk:
                return None
            data += chunk
        return data

    def closed(self) -> bool:
        return self.frame() is None

    def close(self) -> None:
        self.sock.close()


def _parse(api_key: int, version: int, payload: bytes, header_v1: bool = False) -> Any:
    from kio.serial import entity_reader

    from strom.protocol.registry import response_type

    cls = response_type(api_key, version)
    return entity_reader(cls)(memoryview(payload).toreadonly(), 5 if header_v1 else 4)[0]


def test_only_api_versions_and_handshake_before_authentication(broker: EmbeddedBroker) -> None:
    from kio.schema.metadata.v1.request import MetadataRequest

    raw = Raw(port(broker, "SASL_PLAINTEXT"))
    raw.send(_request(3, 1, 1, MetadataRequest(topics=None)))
    assert raw.closed()
    raw = Raw(port(broker, "SASL_PLAINTEXT"))
    raw.send(b"GET / HTTP/1.1\r\n\r\n")
    assert raw.closed()


def test_handshake_answers_and_refusals(broker: EmbeddedBroker) -> None:
    raw = Raw(port(broker, "SASL_PLAINTEXT"))
    raw.send(_handshake("GSSAPI"))
    answer = _parse(17, 1, raw.frame() or b"")
    assert answer.error_code == ErrorCode.unsupported_sasl_mechanism
    assert list(answer.mechanisms) == ["PLAIN", "SCRAM-SHA-512", "SCRAM-SHA-256"]
    assert raw.closed()
    # a request other than SaslAuthenticate mid-exchange: ILLEGAL_SASL_STATE in its own response, then close
    from kio.schema.metadata.v1.request import MetadataRequest

    raw = Raw(port(broker, "SASL_PLAINTEXT"))
    raw.send(_handshake("PLAIN"))
    assert _parse(17, 1, raw.frame() or b"").error_code == ErrorCode.none
    raw.send(_request(3, 1, 2, MetadataRequest(topics=None)))
    raw.frame()  # Metadata v1 has no top-level error code: nothing, or an empty answer
    assert raw.closed()


def test_plain_v0_handshake_uses_raw_tokens(broker: EmbeddedBroker) -> None:
    raw = Raw(port(broker, "SASL_PLAINTEXT"))
    raw.send(_handshake("PLAIN", version=0))
    assert _parse(17, 0, raw.frame() or b"").error_code == ErrorCode.none
    token = plain_client_token("alice", "alice-secret")
    raw.send(struct.pack(">i", len(token)) + token)
    assert raw.frame() == b""  # PLAIN's empty challenge, as a raw zero-length frame
    from kio.schema.api_versions.v0.request import ApiVersionsRequest

    raw.send(_request(18, 0, 9, ApiVersionsRequest()))
    assert _parse(18, 0, raw.frame() or b"").error_code == ErrorCode.none
    raw.close()


def test_scram_over_raw_frames_and_illegal_state_after(broker: EmbeddedBroker) -> None:
    raw = Raw(port(broker, "SASL_PLAINTEXT"))
    raw.send(_handshake("SCRAM-SHA-256"))
    raw.frame()
    client = ScramClient("SCRAM-SHA-256", "bob", "bob-pw")
    raw.send(_authenticate(client.first()))
    first = _parse(36, 1, raw.frame() or b"")
    raw.send(_authenticate(client.final(bytes(first.auth_bytes)), 3))
    final = _parse(36, 1, raw.frame() or b"")
    assert final.error_code == ErrorCode.none
    client.verify(bytes(final.auth_bytes))
    raw.send(_authenticate(b"again", 4))
    after = _parse(36, 1, raw.frame() or b"")
    assert after.error_code == ErrorCode.illegal_sasl_state
    assert after.error_message == "SaslAuthenticate request received after successful authentication"
    raw.send(_handshake("PLAIN"))  # no session lifetime: an ordinary request, refused
    assert _parse(17, 1, raw.frame() or b"").error_code == ErrorCode.illegal_sasl_state
    raw.close()


def test_pre_auth_frames_are_capped(broker: EmbeddedBroker) -> None:
    raw = Raw(port(broker, "SASL_PLAINTEXT"))
    raw.send(struct.pack(">i", 524289) + b"\x00" * 100)
    assert raw.closed()
    # authenticated connections take the usual sizes
    raw = Raw(port(broker, "SASL_PLAINTEXT"))
    raw.send(_handshake("PLAIN"))
    raw.frame()
    raw.send(_authenticate(plain_client_token("alice", "alice-secret")))
    assert _parse(36, 1, raw.frame() or b"").error_code == ErrorCode.none
    raw.send(struct.pack(">i", 600_000) + b"\x00" * 600_000)  # decodes as nothing: closed, but not for size
    assert raw.closed()


def test_mutated_frames_and_huge_sizes_leave_the_broker_serving(broker: EmbeddedBroker) -> None:
    rng = random.Random(12)
    seeds = [_handshake("PLAIN"), _handshake("SCRAM-SHA-256", 0), _authenticate(b"\x00alice\x00x")]
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    socks = []
    for i in range(150):
        data = bytearray(rng.choice(seeds))
        for _ in range(rng.randint(1, 6)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        if i % 3 == 0:  # a size far over the cap, then silence
            data[0:4] = struct.pack(">i", rng.choice([2**31 - 1, 100 * 2**20, 524289, -5]))
        s = socket.create_connection(("127.0.0.1", port(broker, "SASL_PLAINTEXT")), timeout=5)
        s.sendall(bytes(data))
        socks.append(s)
    time.sleep(0.5)
    for s in socks:
        s.close()
    grown_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    assert grown_kib < 64 * 1024, f"resident memory grew by {grown_kib} KiB"
    good = AdminClient({"bootstrap.servers": f"127.0.0.1:{port(broker, 'SASL_PLAINTEXT')}",
                        "security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": "PLAIN",
                        "sasl.username": "alice", "sasl.password": "alice-secret"})
    assert good.list_topics(timeout=10).brokers


def test_session_lifetime_and_reauthentication(pki: Pki) -> None:
    from kio.schema.api_versions.v0.request import ApiVersionsRequest

    with EmbeddedBroker(sasl_props(pki, reauth_ms=1500)) as b:
        raw = Raw(port(b, "SASL_PLAINTEXT"))
        raw.send(_handshake("PLAIN"))
        raw.frame()
        raw.send(_authenticate(plain_client_token("alice", "alice-secret")))
        done = _parse(36, 1, raw.frame() or b"")
        assert done.error_code == ErrorCode.none and done.session_lifetime.total_seconds() == 1.5
        time.sleep(1.1)  # re-authenticate before the session ends: the connection lives on
        raw.send(_handshake("PLAIN"))
        assert _parse(17, 1, raw.frame() or b"").error_code == ErrorCode.none
        raw.send(_authenticate(plain_client_token("alice", "alice-secret"), 5))
        assert _parse(36, 1, raw.frame() or b"").error_code == ErrorCode.none
        time.sleep(1.0)
        raw.send(_request(18, 0, 6, ApiVersionsRequest()))
        assert _parse(18, 0, raw.frame() or b"").error_code == ErrorCode.none
        time.sleep(0.7)  # now past the renewed session: the next request closes the connection
        raw.send(_request(18, 0, 7, ApiVersionsRequest()))
        assert raw.closed()
        # re-authenticating as someone else fails
        raw = Raw(port(b, "SASL_PLAINTEXT"))
        raw.send(_handshake("PLAIN"))
        raw.frame()
        raw.send(_authenticate(plain_client_token("alice", "alice-secret")))
        raw.frame()
        time.sleep(1.05)
        raw.send(_handshake("PLAIN"))
        raw.frame()
        raw.send(_authenticate(plain_client_token("admin", "admin-secret"), 3))
        refused = _parse(36, 1, raw.frame() or b"")
        assert refused.error_code == ErrorCode.sasl_authentication_failed
        assert refused.error_message == (
            "Cannot change principals during re-authentication from User.alice: User.admin"
        )
        assert raw.closed()


def test_describe_user_scram_credentials(broker: EmbeddedBroker) -> None:
    admin = AdminClient({"bootstrap.servers": broker.bootstrap_servers})
    described = admin.describe_user_scram_credentials(["bob", "carol"])
    bob = described["bob"].result(10)
    infos = [(i.mechanism, i.iterations) for i in bob.scram_credential_infos]
    assert infos == [(ScramMechanism.SCRAM_SHA_256, 4096)]
    with pytest.raises(KafkaException, match="user credential that does not exist: dave"):
        admin.describe_user_scram_credentials(["dave"])["dave"].result(10)
