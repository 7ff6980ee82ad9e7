"""Delegation tokens (KIP-48, KIP-373) through Kafka's own tools, against a broker configured from the same
properties for Strom and for Apache Kafka (`--kafka-reference`): kafka-delegation-tokens --create,
--describe, --renew and --expire as a SCRAM user over SASL_SSL, refused over PLAINTEXT; the Java client
authenticating with the token (SCRAM-SHA-512 with `tokenauth=true`) over SASL_SSL, refused token requests
on that connection, and no authentication once the token is expired."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from benchmarks.peers import brokers, tools
from strom.testing.certs import Pki, make_pki
from strom.testing.ports import free_port

pytestmark = pytest.mark.compat

SCRAM_JAAS = "org.apache.kafka.common.security.scram.ScramLoginModule required;"
TOKENS = "org.apache.kafka.tools.DelegationTokenCommand"
NOT_ALLOWED = "Delegation Token requests are not allowed on PLAINTEXT/1-way SSL channels"


def _java(main_class: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(tools.java_command(main_class, *args), capture_output=True, text=True, timeout=90)


@dataclass(frozen=True)
class TokenBroker:
    plain: str
    sasl_ssl: str
    pki: Pki
    workdir: Path

    def client_config(self, name: str, user: str, password: str, *, token: bool = False) -> Path:
        extra = ' tokenauth="true"' if token else ""
        path = self.workdir / f"{name}.properties"
        path.write_text(
            "security.protocol=SASL_SSL\nsasl.mechanism=SCRAM-SHA-512\n"
            f"ssl.truststore.type=PEM\nssl.truststore.location={self.pki.ca}\n"
            "ssl.endpoint.identification.algorithm=\n"
            "sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required "
            f'username="{user}" password="{password}"{extra};\n'
        )
        return path

    def tokens(self, config: Path, *args: str) -> subprocess.CompletedProcess[str]:
        return _java(TOKENS, "--bootstrap-server", self.sasl_ssl, "--command-config", str(config), *args)


@pytest.fixture(scope="module")
def token_broker(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TokenBroker]:
    if request.config.getoption("--bootstrap", default=None):
        pytest.skip("needs a broker it configures itself (SASL listeners, a token secret)")
    workdir = Path(tmp_path_factory.mktemp("tokens"))
    pki = make_pki(workdir / "pki")
    port, ss_port = free_port(), free_port()
    settings = {
        "sasl.enabled.mechanisms": "SCRAM-SHA-512",
        "listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config": SCRAM_JAAS,
        "ssl.keystore.type": "PEM",
        "ssl.keystore.location": str(pki.broker.keystore),
        "delegation.token.secret.key": "token-secret-key",
        "delegation.token.max.lifetime.ms": "3600000",
        "delegation.token.expiry.time.ms": "600000",
    }
    listeners = {"SASL_SSL": ("SASL_SSL", ss_port)}
    if request.config.getoption("--kafka-reference", default=False):
        tools.ensure_tools()
        proc = brokers.start_kafka(port=port, settings=settings, listeners=listeners)
    else:
        proc = brokers.start_strom(port=port, settings=settings, listeners=listeners)
    try:
        plain = f"127.0.0.1:{port}"
        done = _java("org.apache.kafka.tools.ConfigCommand", "--bootstrap-server", plain, "--alter",
                     "--add-config", "SCRAM-SHA-512=[password=alice-pw]", "--entity-type", "users",
                     "--entity-name", "alice")
        assert done.returncode == 0, done.stderr
        yield TokenBroker(plain, f"localhost:{ss_port}", pki, workdir)
    finally:
        proc.stop()


def _token_line(output: str) -> list[str]:
    """The row of a created or described token: id, HMAC, owner, requester, renewers, dates."""
    rows = [line.split() for line in output.splitlines() if line.strip() and not line.startswith(
        ("TOKENID", "Calling", "Created", "Total"))]
    assert len(rows) == 1, output
    return rows[0]


def test_token_lifecycle_with_kafka_tools(token_broker: TokenBroker) -> None:
    plain_config = token_broker.workdir / "plain.properties"
    plain_config.write_text("security.protocol=PLAINTEXT\n")
    refused = _java(TOKENS, "--bootstrap-server", token_broker.plain, "--command-config", str(plain_config),
                    "--create", "--max-life-time-period", "-1")
    assert refused.returncode != 0 and NOT_ALLOWED in refused.stderr

    alice = token_broker.client_config("alice", "alice", "alice-pw")
    created = token_broker.tokens(alice, "--create", "--max-life-time-period", "-1",
                                  "--renewer-principal", "User:bob")
    assert created.returncode == 0, created.stderr
    token_id, hmac, owner, requester, renewers = _token_line(created.stdout)[:5]
    assert (owner, requester, renewers) == ("User:alice", "User:alice", "[User:bob]")

    described = token_broker.tokens(alice, "--describe", "--owner-principal", "User:alice")
    assert described.returncode == 0, described.stderr
    assert _token_line(described.stdout)[:3] == [token_id, hmac, "User:alice"]

    renewed = token_broker.tokens(alice, "--renew", "--hmac", hmac, "--renew-time-period", "60000")
    assert renewed.returncode == 0 and "Completed renew operation" in renewed.stdout, renewed.stderr

    # the Java client authenticates with the token; its principal is the owner's
    with_token = token_broker.client_config("token", token_id, hmac, token=True)
    listed = _java("org.apache.kafka.tools.TopicCommand", "--bootstrap-server", token_broker.sasl_ssl,
                   "--command-config", str(with_token), "--list")
    assert listed.returncode == 0, listed.stderr
    # ... but a token cannot mint tokens
    minted = token_broker.tokens(with_token, "--create", "--max-life-time-period", "-1")
    assert minted.returncode != 0 and NOT_ALLOWED in minted.stderr

    bad = token_broker.tokens(alice, "--renew", "--hmac", "AAAA", "--renew-time-period", "60000")
    assert bad.returncode != 0 and "DelegationTokenNotFoundException" in bad.stderr
    expired = token_broker.tokens(alice, "--expire", "--hmac", hmac, "--expiry-time-period", "-1")
    assert expired.returncode == 0 and "Completed expire operation" in expired.stdout, expired.stderr
    gone = _java("org.apache.kafka.tools.TopicCommand", "--bootstrap-server", token_broker.sasl_ssl,
                 "--command-config", str(with_token), "--list")
    assert gone.returncode != 0 and "Authentication failed" in gone.stderr + gone.stdout
