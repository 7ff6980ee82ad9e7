"""`strom users` and `strom quotas` over a SASL_SSL listener (a --command-config in Kafka's format): a
password set with `strom users set-password` lets a librdkafka client authenticate with SCRAM and a wrong
one does not; credentials and quotas written by Strom's command read the same through Kafka 4.4's
kafka-configs (org.apache.kafka.tools.ConfigCommand, with the same properties file), and the other way
round; refusals are one line with exit status 1 (2 for usage)."""

from __future__ import annotations

import json
import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient
from test_cli import STROM

from strom.testing.certs import Pki, make_pki
from strom.testing.embedded import EmbeddedBroker
from tests.metadata.kafka_jars import kafka_run

ADMIN_JAAS = (
    'org.apache.kafka.common.security.plain.PlainLoginModule required username="admin" '
    'password="admin-secret" user_admin="admin-secret";'
)
SCRAM_JAAS = "org.apache.kafka.common.security.scram.ScramLoginModule required;"


@dataclass(frozen=True)
class Broker:
    embedded: EmbeddedBroker
    pki: Pki
    admin_config: Path  # SASL_SSL, PLAIN, user admin: for strom and for Kafka's tools

    def address(self, listener: str) -> str:
        assert self.embedded.broker is not None
        host, port = self.embedded.broker.bound_addresses[listener]
        return f"{host}:{port}"


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    pki = make_pki(Path(tmp_path_factory.mktemp("pki")))
    endpoints = "PLAINTEXT://127.0.0.1:0,SASL_PLAINTEXT://127.0.0.1:0,SASL_SSL://127.0.0.1:0"
    settings = {
        "listeners": endpoints,
        "advertised.listeners": endpoints,
        "sasl.enabled.mechanisms": "PLAIN,SCRAM-SHA-256,SCRAM-SHA-512",
        "ssl.keystore.type": "PEM",
        "ssl.keystore.location": str(pki.broker.keystore),
    }
    for listener in ("sasl_plaintext", "sasl_ssl"):
        settings[f"listener.name.{listener}.plain.sasl.jaas.config"] = ADMIN_JAAS
        settings[f"listener.name.{listener}.scram-sha-256.sasl.jaas.config"] = SCRAM_JAAS
        settings[f"listener.name.{listener}.scram-sha-512.sasl.jaas.config"] = SCRAM_JAAS
    config = Path(tmp_path_factory.mktemp("props")) / "admin.properties"
    config.write_text(
        "security.protocol=SASL_SSL\nsasl.mechanism=PLAIN\n"
        'sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username="admin" '
        'password="admin-secret";\n'
        f"ssl.truststore.type=PEM\nssl.truststore.location={pki.ca}\n"
    )
    with EmbeddedBroker(settings) as embedded:
        yield Broker(embedded, pki, config)


def strom(broker: Broker, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "STROM_BOOTSTRAP_SERVER"}
    argv = [
        STROM,
        *args,
        "--bootstrap-server",
        broker.address("SASL_SSL"),
        "--command-config",
        str(broker.admin_config),
    ]
    return subprocess.run(argv, input=stdin, capture_output=True, text=True, env=env, timeout=60)


def ok(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 0, f"exit {proc.returncode}: {proc.stderr}"
    return proc.stdout


def refused(proc: subprocess.CompletedProcess[str], fragment: str, code: int = 1) -> None:
    assert proc.returncode == code, f"exit {proc.returncode}: {proc.stdout} {proc.stderr}"
    assert fragment in proc.stderr.strip().splitlines()[-1] and "Traceback" not in proc.stderr, proc.stderr


def kafka_configs(broker: Broker, *args: str) -> str:
    """Kafka 4.4's kafka-configs through the same SASL_SSL properties file."""
    proc = kafka_run(
        "org.apache.kafka.tools.ConfigCommand",
        "--bootstrap-server",
        broker.address("SASL_SSL"),
        "--command-config",
        str(broker.admin_config),
        *args,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def scram_login(broker: Broker, mechanism: str, user: str, password: str) -> bool:
    """Whether librdkafka authenticates on the SASL_PLAINTEXT listener (False on Kafka's SCRAM refusal)."""
    errors: list[str] = []
    admin = AdminClient(
        {
            "bootstrap.servers": broker.address("SASL_PLAINTEXT"),
            "security.protocol": "SASL_PLAINTEXT",
            "sasl.mechanism": mechanism,
            "sasl.username": user,
            "sasl.password": password,
            "log_level": 0,
            "error_cb": lambda err: errors.append(err.str()),
        }
    )
    try:
        admin.list_topics(timeout=10)
    except KafkaException:
        deadline = time.monotonic() + 10
        while not any("Authentication failed" in e for e in errors) and time.monotonic() < deadline:
            admin.poll(0.2)  # error_cb runs from poll
        assert any("Authentication failed" in e for e in errors), errors
        return False
    return True


def user_name() -> str:
    return f"user-{uuid.uuid4().hex[:6]}"


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-256", "SCRAM-SHA-512"])
def test_set_password_then_scram_clients_authenticate(broker: Broker, mechanism: str) -> None:
    user = user_name()
    done = ok(
        strom(
            broker,
            "users",
            "set-password",
            user,
            "--mechanism",
            mechanism,
            "--iterations",
            "8192",
            "--password-stdin",
            stdin="s3cret pass\n",
        )
    )
    assert f"{mechanism} credential of user {user}" in done
    assert scram_login(broker, mechanism, user, "s3cret pass")
    assert not scram_login(broker, mechanism, user, "s3cret")
    line = f"SCRAM credential configs for user-principal '{user}' are {mechanism}=iterations=8192"
    assert ok(strom(broker, "users", "describe", user)).strip() == line
    assert line in kafka_configs(broker, "--describe", "--entity-type", "users", "--entity-name", user)
    listed = json.loads(ok(strom(broker, "users", "list", "--format", "json")))
    assert {"user": user, "credentials": [{"mechanism": mechanism, "iterations": 8192}]} in listed
    # a new password replaces the old one
    ok(strom(broker, "users", "set-password", user, "--mechanism", mechanism.lower(), "--password", "other"))
    assert scram_login(broker, mechanism, user, "other")
    assert not scram_login(broker, mechanism, user, "s3cret pass")
    ok(strom(broker, "users", "delete-credential", user, "--mechanism", mechanism))
    assert not scram_login(broker, mechanism, user, "other")
    refused(strom(broker, "users", "describe", user), "RESOURCE_NOT_FOUND")


def test_kafka_configs_credential_is_seen_and_used(broker: Broker) -> None:
    user = user_name()
    kafka_configs(
        broker,
        "--alter",
        "--entity-type",
        "users",
        "--entity-name",
        user,
        "--add-config",
        "SCRAM-SHA-512=[iterations=4096,password=from-kafka]",
    )
    out = ok(strom(broker, "users", "describe", user, "--format", "json"))
    assert json.loads(out) == [
        {"user": user, "credentials": [{"mechanism": "SCRAM-SHA-512", "iterations": 4096}]}
    ]
    ok(strom(broker, "users", "set-password", user, "--mechanism", "SCRAM-SHA-256", "--password", "p2"))
    text = ok(strom(broker, "users", "list"))
    assert any(line.split() == [user, "SCRAM-SHA-256", "4096"] for line in text.splitlines())
    assert scram_login(broker, "SCRAM-SHA-512", user, "from-kafka")
    assert scram_login(broker, "SCRAM-SHA-256", user, "p2")


def test_user_refusals(broker: Broker) -> None:
    user = user_name()
    refused(
        strom(
            broker,
            "users",
            "set-password",
            user,
            "--mechanism",
            "SCRAM-SHA-256",
            "--iterations",
            "100",
            "--password",
            "x",
        ),
        "Too few iterations (UNACCEPTABLE_CREDENTIAL)",
    )
    refused(
        strom(broker, "users", "set-password", user, "--mechanism", "SCRAM-SHA-256", stdin=""),
        "--password-stdin",
        code=2,
    )
    refused(
        strom(
            broker,
            "users",
            "set-password",
            user,
            "--mechanism",
            "SCRAM-SHA-256",
            "--password-stdin",
            "--password",
            "x",
        ),
        "not both",
        code=2,
    )
    refused(
        strom(broker, "users", "set-password", user, "--mechanism", "PLAIN", "--password", "x"),
        "PLAIN",
        code=2,
    )
    refused(
        strom(broker, "users", "delete-credential", user, "--mechanism", "SCRAM-SHA-512"),
        "Attempt to delete a user credential that does not exist (RESOURCE_NOT_FOUND)",
    )


def quota_line(broker: Broker, *entity: str) -> str:
    out = ok(strom(broker, "quotas", "describe", *entity)).strip()
    assert len(out.splitlines()) == 1, out
    return out


def test_quotas_written_by_strom_read_by_kafka_configs(broker: Broker) -> None:
    user = user_name()
    ok(
        strom(
            broker,
            "quotas",
            "alter",
            "--user",
            user,
            "--set",
            "producer_byte_rate=1024",
            "--set",
            "request_percentage=50.5",
        )
    )
    mine = quota_line(broker, "--user", user)
    theirs = kafka_configs(broker, "--describe", "--entity-type", "users", "--entity-name", user).strip()
    assert mine == theirs
    assert mine.startswith(f"Quota configs for user-principal '{user}' are ")
    assert sorted(mine.split(" are ")[1].split(", ")) == [
        "producer_byte_rate=1024.0",
        "request_percentage=50.5",
    ]
    ok(
        strom(
            broker, "quotas", "alter", "--user", user, "--client", "app-1", "--set", "consumer_byte_rate=1e7"
        )
    )
    theirs = kafka_configs(
        broker,
        "--describe",
        "--entity-type",
        "users",
        "--entity-name",
        user,
        "--entity-type",
        "clients",
        "--entity-name",
        "app-1",
    ).strip()
    assert (
        theirs == f"Quota configs for user-principal '{user}', client-id 'app-1' are consumer_byte_rate=1.0E7"
    )
    assert quota_line(broker, "--user", user, "--client", "app-1") == theirs
    ok(strom(broker, "quotas", "alter", "--user", user, "--delete", "request_percentage"))
    theirs = kafka_configs(broker, "--describe", "--entity-type", "users", "--entity-name", user).strip()
    assert theirs == f"Quota configs for user-principal '{user}' are producer_byte_rate=1024.0"


def test_quotas_written_by_kafka_configs_read_by_strom(broker: Broker) -> None:
    client = f"client-{uuid.uuid4().hex[:6]}"
    kafka_configs(
        broker,
        "--alter",
        "--entity-type",
        "clients",
        "--entity-name",
        client,
        "--add-config",
        "producer_byte_rate=4096,consumer_byte_rate=8192",
    )
    kafka_configs(
        broker,
        "--alter",
        "--entity-type",
        "users",
        "--entity-default",
        "--entity-type",
        "clients",
        "--entity-name",
        client,
        "--add-config",
        "request_percentage=25",
    )
    kafka_configs(
        broker,
        "--alter",
        "--entity-type",
        "ips",
        "--entity-default",
        "--add-config",
        "connection_creation_rate=100",
    )
    theirs = kafka_configs(broker, "--describe", "--entity-type", "clients", "--entity-name", client).strip()
    assert quota_line(broker, "--client", client) == theirs
    described: list[dict[str, Any]] = json.loads(ok(strom(broker, "quotas", "describe", "--format", "json")))
    assert {
        "entity": {"client-id": client},
        "quotas": {"producer_byte_rate": 4096.0, "consumer_byte_rate": 8192.0},
    } in described
    assert {
        "entity": {"user": None, "client-id": client},
        "quotas": {"request_percentage": 25.0},
    } in described
    assert {"entity": {"ip": None}, "quotas": {"connection_creation_rate": 100.0}} in described
    assert quota_line(broker, "--user-default", "--client", client) == (
        f"Quota configs for the default user-principal, client-id '{client}' are request_percentage=25.0"
    )
    assert (
        quota_line(broker, "--ip-default")
        == "Quota configs for the default ip are connection_creation_rate=100.0"
    )
    ok(strom(broker, "quotas", "alter", "--ip-default", "--delete", "connection_creation_rate"))
    assert kafka_configs(broker, "--describe", "--entity-type", "ips", "--entity-default").strip() == ""


def test_quota_refusals(broker: Broker) -> None:
    refused(
        strom(broker, "quotas", "alter", "--user", "u", "--set", "bytes_per_hour=1"),
        "Invalid configuration key bytes_per_hour (INVALID_REQUEST)",
    )
    refused(
        strom(broker, "quotas", "alter", "--user", "u", "--set", "producer_byte_rate=1.5"),
        "producer_byte_rate cannot be a fractional value. (INVALID_REQUEST)",
    )
    refused(
        strom(broker, "quotas", "alter", "--ip", "10.0.0.1", "--set", "producer_byte_rate=10"),
        "INVALID_REQUEST",
    )
    refused(
        strom(broker, "quotas", "alter", "--user", "u", "--set", "producer_byte_rate=fast"),
        "Cannot parse quota configuration value for producer_byte_rate: fast",
        code=2,
    )
    refused(strom(broker, "quotas", "alter", "--set", "producer_byte_rate=1"), "name an entity", code=2)
    refused(strom(broker, "quotas", "alter", "--user", "u"), "nothing to do", code=2)
    refused(strom(broker, "quotas", "describe", "--ip", "10.0.0.1", "--user", "u"), "--ip", code=2)
    refused(strom(broker, "quotas", "describe", "--user", "u", "--user-default"), "not both", code=2)
    validated = ok(
        strom(broker, "quotas", "alter", "--user", "v", "--set", "producer_byte_rate=5", "--validate-only")
    )
    assert validated.startswith("Validated")
    assert ok(strom(broker, "quotas", "describe", "--user", "v")) == ""
