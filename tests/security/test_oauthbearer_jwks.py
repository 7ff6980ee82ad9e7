"""OAUTHBEARER with signed JWTs validated against a JWKS file (KIP-768, Kafka's
OAuthBearerValidatorCallbackHandler), through librdkafka's oauth_cb: RS256 and ES256 tokens of the JWKS's
keys authenticate as their `sub`, which the ACL authorizer then sees; tokens with the wrong audience or
issuer, expired ones, unsigned ones and those of an unknown key are refused; a key added to the JWKS file
later is picked up when a token names it."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import KafkaError, Producer
from confluent_kafka.admin import (
    AclBinding,
    AclOperation,
    AclPermissionType,
    AdminClient,
    NewTopic,
    ResourcePatternType,
)
from confluent_kafka.admin import ResourceType as AclResource

jwk = pytest.importorskip("joserfc.jwk")
jwt = pytest.importorskip("joserfc.jwt")

from strom.testing.embedded import EmbeddedBroker  # noqa: E402

AUDIENCE = "strom-test"
ISSUER = "https://issuer.example"
VALIDATOR = "org.apache.kafka.common.security.oauthbearer.OAuthBearerValidatorCallbackHandler"


class Keys:
    """Signing keys; the JWKS file holds the public half of those published."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.keys = {
            "rsa-1": jwk.RSAKey.generate_key(2048, parameters={"kid": "rsa-1"}, private=True),
            "ec-1": jwk.ECKey.generate_key("P-256", parameters={"kid": "ec-1"}, private=True),
            "rsa-2": jwk.RSAKey.generate_key(2048, parameters={"kid": "rsa-2"}, private=True),
        }
        self.publish("rsa-1", "ec-1")

    def publish(self, *kids: str) -> None:
        public = jwk.KeySet([self.keys[k] for k in kids]).as_dict(private=False)
        self.path.write_text(json.dumps(public))

    def token(self, kid: str = "rsa-1", **claims: Any) -> str:
        now = int(time.time())
        body = {"sub": "alice", "aud": AUDIENCE, "iss": ISSUER, "iat": now, "exp": now + 600, **claims}
        alg = "ES256" if kid.startswith("ec") else "RS256"
        return str(jwt.encode({"alg": alg, "kid": kid}, body, self.keys[kid]))


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Keys:
    return Keys(tmp_path_factory.mktemp("jwks") / "jwks.json")


def _props(keys: Keys) -> dict[str, str]:
    """A PLAINTEXT listener that administers and a SASL_PLAINTEXT one validating tokens with the JWKS."""
    return {
        "listeners": "PLAINTEXT://127.0.0.1:0,SASL_PLAINTEXT://127.0.0.1:0",
        "advertised.listeners": "PLAINTEXT://127.0.0.1:0,SASL_PLAINTEXT://127.0.0.1:0",
        "sasl.enabled.mechanisms": "OAUTHBEARER",
        "listener.name.sasl_plaintext.oauthbearer.sasl.jaas.config":
            "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required ;",
        "listener.name.sasl_plaintext.oauthbearer.sasl.server.callback.handler.class": VALIDATOR,
        "sasl.oauthbearer.jwks.endpoint.url": keys.path.as_uri(),
    }  # fmt: skip


@pytest.fixture(scope="module")
def broker(keys: Keys) -> Iterator[EmbeddedBroker]:
    props = {
        **_props(keys),
        "sasl.oauthbearer.expected.audience": AUDIENCE,
        "sasl.oauthbearer.expected.issuer": ISSUER,
        "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        "super.users": "User:ANONYMOUS",  # the PLAINTEXT listener administers
    }
    # Kafka 4.4 fetches only the URLs its system property allows; KAFKA_OPTS passes it to both
    allowed = f"-Dorg.apache.kafka.sasl.oauthbearer.allowed.urls={keys.path.as_uri()}"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("KAFKA_OPTS", allowed)
        with EmbeddedBroker(props) as b:
            yield b


def test_a_jwks_url_outside_the_allowed_urls_stops_the_broker(
    keys: Keys, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Kafka 4.4's default allows no URL: a broker whose JWKS URL is not listed does not start."""
    monkeypatch.setenv("KAFKA_OPTS", "-Dorg.apache.kafka.sasl.oauthbearer.allowed.urls=file:///elsewhere.json")
    props = _props(keys)
    refusal = "The URL cannot be accessed due to restrictions"
    with pytest.raises(Exception, match=refusal) as refused, EmbeddedBroker(props):
        pass
    assert f"Invalid value {keys.path.as_uri()} for configuration sasl.oauthbearer.jwks.endpoint.url" in str(
        refused.value
    )


@pytest.fixture(scope="module")
def topic(broker: EmbeddedBroker) -> str:
    name = f"jwt-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": broker.bootstrap_servers})
    admin.create_topics([NewTopic(name, 1, 1)])[name].result(15)
    binding = AclBinding(AclResource.TOPIC, name, ResourcePatternType.LITERAL, "User:alice", "*",
                         AclOperation.ALL, AclPermissionType.ALLOW)
    for future in admin.create_acls([binding]).values():
        future.result(15)
    return name


def _producer(broker: EmbeddedBroker, token: str, errors: list[KafkaError]) -> Producer:
    assert broker.broker is not None
    port = broker.broker.bound_addresses["SASL_PLAINTEXT"][1]
    oauth_cb: Callable[[str], tuple[str, float, str, dict[str, str]]] = (
        lambda _config: (token, time.time() + 600, "client-side-name", {}))
    return Producer({
        "bootstrap.servers": f"127.0.0.1:{port}",
        "security.protocol": "SASL_PLAINTEXT",
        "sasl.mechanism": "OAUTHBEARER",
        "oauth_cb": oauth_cb,
        "error_cb": errors.append,
        "log_level": 0,
    })


def produce(broker: EmbeddedBroker, topic: str, token: str) -> KafkaError | None:
    """None when a record was written with `token`, else the error the client reported."""
    errors: list[KafkaError] = []
    delivered: list[KafkaError | None] = []
    producer = _producer(broker, token, errors)
    producer.produce(topic, b"v", on_delivery=lambda err, _msg: delivered.append(err))
    deadline = time.monotonic() + 15
    while not delivered and not errors and time.monotonic() < deadline:
        producer.poll(0.1)
    producer.purge()
    producer.flush(1)
    if delivered and delivered[0] is None:
        return None
    if errors:
        return errors[0]
    assert delivered, "neither a delivery nor an error within 15 s"
    return delivered[0]


def test_signed_tokens_of_the_jwks_authenticate_as_their_subject(
    broker: EmbeddedBroker, topic: str, keys: Keys
) -> None:
    assert produce(broker, topic, keys.token("rsa-1")) is None
    assert produce(broker, topic, keys.token("ec-1")) is None
    # a valid token of another subject authenticates, but the authorizer sees that subject
    refused = produce(broker, topic, keys.token("rsa-1", sub="mallory"))
    assert refused is not None and refused.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED, refused


@pytest.mark.parametrize("case", ["audience", "issuer", "expired", "no-iat", "unsigned", "unknown-key"])
def test_invalid_tokens_are_refused(broker: EmbeddedBroker, topic: str, keys: Keys, case: str) -> None:
    now = int(time.time())
    token = {
        "audience": lambda: keys.token(aud="someone-else"),
        "issuer": lambda: keys.token(iss="https://elsewhere.example"),
        "expired": lambda: keys.token(iat=now - 7200, exp=now - 3600),
        "no-iat": lambda: keys.token(iat=None),
        "unsigned": lambda: keys.token().rsplit(".", 1)[0] + ".",
        "unknown-key": lambda: keys.token("rsa-2"),
    }[case]()
    error = produce(broker, topic, token)
    assert error is not None and error.code() == KafkaError._AUTHENTICATION, error


def test_a_key_added_to_the_jwks_is_picked_up(broker: EmbeddedBroker, topic: str, keys: Keys) -> None:
    try:
        keys.publish("rsa-1", "ec-1", "rsa-2")
        assert produce(broker, topic, keys.token("rsa-2")) is None
    finally:
        keys.publish("rsa-1", "ec-1")
