"""The `strom` command against SSL (with client certificates), SASL_PLAINTEXT (PLAIN, SCRAM-SHA-256,
SCRAM-SHA-512) and SASL_SSL listeners, configured by a --command-config file in Kafka's client format; the
same files drive Kafka 4.4's own TopicCommand against the same broker, so the format is Kafka's. Bad
properties, wrong passwords, a missing client certificate and a wrong host name fail with one line."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from confluent_kafka.admin import (
    AdminClient,
    ScramCredentialInfo,
    ScramMechanism,
    UserScramCredentialUpsertion,
)
from test_cli import STROM

from strom.testing.certs import PASSWORD, Pki, add_client, make_pki
from strom.testing.embedded import EmbeddedBroker
from tests.metadata.kafka_jars import kafka_run

PLAIN_JAAS = (
    'org.apache.kafka.common.security.plain.PlainLoginModule required username="admin" '
    'password="admin-secret" user_admin="admin-secret" user_alice="alice-secret";'
)
SCRAM_JAAS = "org.apache.kafka.common.security.scram.ScramLoginModule required;"
OAUTH_JAAS = (
    "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required "
    'unsecuredLoginStringClaim_sub="admin";'
)
LISTENERS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")


def broker_settings(pki: Pki, keystore: Path) -> dict[str, str]:
    endpoints = ",".join(f"{name}://127.0.0.1:0" for name in LISTENERS)
    settings = {
        "listeners": endpoints,
        "advertised.listeners": endpoints,
        "sasl.enabled.mechanisms": "PLAIN,SCRAM-SHA-256,SCRAM-SHA-512,OAUTHBEARER",
        "ssl.keystore.type": "PEM",
        "ssl.keystore.location": str(keystore),
        "ssl.truststore.type": "PEM",
        "ssl.truststore.location": str(pki.ca),
        "listener.name.ssl.ssl.client.auth": "required",
    }
    for listener in ("sasl_plaintext", "sasl_ssl"):
        settings[f"listener.name.{listener}.plain.sasl.jaas.config"] = PLAIN_JAAS
        settings[f"listener.name.{listener}.scram-sha-256.sasl.jaas.config"] = SCRAM_JAAS
        settings[f"listener.name.{listener}.scram-sha-512.sasl.jaas.config"] = SCRAM_JAAS
        settings[f"listener.name.{listener}.oauthbearer.sasl.jaas.config"] = OAUTH_JAAS
    return settings


@dataclass(frozen=True)
class Secured:
    broker: EmbeddedBroker
    pki: Pki
    workdir: Path

    def address(self, listener: str) -> str:
        assert self.broker.broker is not None
        host, port = self.broker.broker.bound_addresses[listener]
        return f"{host}:{port}"

    def properties(self, name: str, text: str) -> Path:
        path = self.workdir / f"{name}-{uuid.uuid4().hex[:6]}.properties"
        path.write_text(text)
        return path


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Secured]:
    pki = make_pki(Path(tmp_path_factory.mktemp("pki")))
    with EmbeddedBroker(broker_settings(pki, pki.broker.keystore)) as broker:
        admin = AdminClient({"bootstrap.servers": broker.bootstrap_servers})
        futures = admin.alter_user_scram_credentials(
            [
                UserScramCredentialUpsertion(
                    "bob", ScramCredentialInfo(ScramMechanism.SCRAM_SHA_256, 4096), b"bob-pw"
                ),
                UserScramCredentialUpsertion(
                    "carol", ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, 8192), b"carol-pw"
                ),
            ]
        )
        for future in futures.values():
            future.result(10)
        yield Secured(broker, pki, Path(tmp_path_factory.mktemp("props")))


def strom(
    bootstrap: str, config: Path | None, *args: str, stdin: str | None = None, kafka_opts: str = ""
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("STROM_BOOTSTRAP_SERVER", "KAFKA_OPTS")}
    env["KAFKA_OPTS"] = kafka_opts
    extra = ["--command-config", str(config)] if config is not None else []
    return subprocess.run(
        [STROM, *args, "--bootstrap-server", bootstrap, *extra],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


def ok(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 0, f"exit {proc.returncode}: {proc.stderr}"
    return proc.stdout


def failed_with(proc: subprocess.CompletedProcess[str], *fragments: str, code: int = 1) -> None:
    assert proc.returncode == code, f"exit {proc.returncode}: {proc.stdout} {proc.stderr}"
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def jaas(module: str, user: str, password: str) -> str:
    return f'org.apache.kafka.common.security.{module} required username="{user}" password="{password}";'


def ssl_pem(pki: Pki) -> str:
    return (
        f"security.protocol=SSL\nssl.truststore.type=PEM\nssl.truststore.location={pki.ca}\n"
        f"ssl.keystore.type=PEM\nssl.keystore.location={pki.client.keystore}\n"
    )


def sasl(protocol: str, mechanism: str, user: str, password: str, pki: Pki) -> str:
    module = "plain.PlainLoginModule" if mechanism == "PLAIN" else "scram.ScramLoginModule"
    text = f"security.protocol={protocol}\nsasl.mechanism={mechanism}\n"
    text += f"sasl.jaas.config={jaas(module, user, password)}\n"
    if protocol == "SASL_SSL":
        text += f"ssl.truststore.type=PEM\nssl.truststore.location={pki.ca}\n"
    return text


def configs(pki: Pki) -> dict[str, tuple[str, str]]:
    """name -> (listener, properties text) of every way in that both Strom's and Kafka's tools take."""
    return {
        "ssl-pem": ("SSL", ssl_pem(pki)),
        "ssl-pkcs12-keystore": (
            "SSL",
            f"security.protocol=SSL\nssl.truststore.type=PEM\n"
            f"ssl.truststore.location={pki.ca}\nssl.keystore.type=PKCS12\n"
            f"ssl.keystore.location={pki.client.pkcs12}\n"
            f"ssl.keystore.password={PASSWORD}\n",
        ),
        "sasl-plaintext-plain": (
            "SASL_PLAINTEXT",
            sasl("SASL_PLAINTEXT", "PLAIN", "alice", "alice-secret", pki),
        ),
        "sasl-plaintext-scram-256": (
            "SASL_PLAINTEXT",
            sasl("SASL_PLAINTEXT", "SCRAM-SHA-256", "bob", "bob-pw", pki),
        ),
        "sasl-ssl-scram-512": ("SASL_SSL", sasl("SASL_SSL", "SCRAM-SHA-512", "carol", "carol-pw", pki)),
        "sasl-ssl-plain": ("SASL_SSL", sasl("SASL_SSL", "PLAIN", "alice", "alice-secret", pki)),
        # Kafka's client makes an unsecured token from the JAAS options when no login handler is named
        "sasl-plaintext-oauthbearer": (
            "SASL_PLAINTEXT",
            "security.protocol=SASL_PLAINTEXT\nsasl.mechanism=OAUTHBEARER\nsasl.jaas.config="
            "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required "
            'unsecuredLoginStringClaim_sub="dora";\n',
        ),
    }


CONFIG_NAMES = [
    "ssl-pem",
    "ssl-pkcs12-keystore",
    "sasl-plaintext-plain",
    "sasl-plaintext-scram-256",
    "sasl-ssl-scram-512",
    "sasl-ssl-plain",
    "sasl-plaintext-oauthbearer",
]


@pytest.mark.parametrize("name", CONFIG_NAMES)
def test_strom_and_kafkas_topic_command_share_the_file(secured: Secured, name: str) -> None:
    listener, text = configs(secured.pki)[name]
    config = secured.properties(name, text)
    bootstrap = secured.address(listener)
    topic = f"sec-{name}-{uuid.uuid4().hex[:6]}"
    assert f"Created topic {topic}." in ok(
        strom(bootstrap, config, "topics", "create", topic, "--partitions", "2")
    )
    ok(
        strom(
            bootstrap,
            config,
            "produce",
            topic,
            "--key-separator",
            ":",
            stdin="".join(f"k{i}:v{i}\n" for i in range(6)),
        )
    )
    consumed = ok(strom(bootstrap, config, "consume", topic, "--from-beginning", "--exit"))
    assert sorted(consumed.split()) == [f"v{i}" for i in range(6)]
    # the same file, unchanged, with Kafka 4.4's kafka-topics against this broker
    listed = kafka_run(
        "org.apache.kafka.tools.TopicCommand",
        "--bootstrap-server",
        bootstrap,
        "--command-config",
        str(config),
        "--describe",
        "--topic",
        topic,
    )
    assert listed.returncode == 0, listed.stderr
    assert f"Topic: {topic}\tTopicId:" in listed.stdout and "PartitionCount: 2" in listed.stdout


@pytest.mark.parametrize(
    "variant",
    [
        "pkcs12-truststore",
        "inline-certificates",
        "pkcs12-default-type",
        "encrypted-key",
        "lower-case-protocol",
    ],
)
def test_more_store_forms(secured: Secured, variant: str, tmp_path: Path) -> None:
    """Forms Strom's client reads beyond the shared ones (Java's PEM key store cannot decrypt a PBES2 key,
    nor trust a PKCS12 certificate entry that lacks Java's trust attribute)."""
    pki = secured.pki
    keystore = f"ssl.keystore.type=PEM\nssl.keystore.location={pki.client.keystore}\n"
    if variant == "encrypted-key":
        keystore = (
            f"ssl.keystore.type=PEM\nssl.keystore.location={pki.client.encrypted_keystore}\n"
            f"ssl.key.password={PASSWORD}\n"
        )
    if variant == "pkcs12-truststore":
        from cryptography import x509
        from cryptography.hazmat.primitives.serialization import BestAvailableEncryption, pkcs12

        ca = x509.load_pem_x509_certificate(pki.ca.read_bytes())
        store = tmp_path / "trust.p12"
        store.write_bytes(
            pkcs12.serialize_key_and_certificates(
                b"ca", None, None, [ca], BestAvailableEncryption(b"trust-pw")
            )
        )
        trust = (
            f"ssl.truststore.type=PKCS12\nssl.truststore.location={store}\nssl.truststore.password=trust-pw\n"
        )
    elif variant == "inline-certificates":
        one_line = pki.ca.read_text().strip().replace("\n", "\\n")
        trust = f"ssl.truststore.type=PEM\nssl.truststore.certificates={one_line}\n"
    elif variant == "pkcs12-default-type":  # a PKCS12 file under Kafka's default type JKS, as Java reads it
        keystore = f"ssl.keystore.location={pki.client.pkcs12}\nssl.keystore.password={PASSWORD}\n"
        trust = f"ssl.truststore.type=PEM\nssl.truststore.location={pki.ca}\n"
    else:
        trust = f"ssl.truststore.type=pem\nssl.truststore.location={pki.ca}\n"
    protocol = "ssl" if variant == "lower-case-protocol" else "SSL"
    config = secured.properties(variant, f"security.protocol={protocol}\n{trust}{keystore}")
    ok(strom(secured.address("SSL"), config, "topics", "list"))


def unsecured_token(subject: str, lifetime_s: int) -> str:
    def part(doc: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(doc).encode()).rstrip(b"=").decode()

    now = int(time.time())
    return f"{part({'alg': 'none'})}.{part({'sub': subject, 'iat': now, 'exp': now + lifetime_s})}."


def test_oauthbearer_token_from_a_file(secured: Secured, tmp_path: Path) -> None:
    """Kafka's client reads a token file through OAuthBearerLoginCallbackHandler and a file: URL (the
    broker here validates unsecured tokens only, which Kafka's own client will not send from a file)."""
    address = secured.address("SASL_PLAINTEXT")
    token = tmp_path / "token.jwt"

    def config(url: str, handler: str = "OAuthBearerLoginCallbackHandler") -> Path:
        return secured.properties(
            "oauth",
            "security.protocol=SASL_PLAINTEXT\nsasl.mechanism=OAUTHBEARER\nsasl.jaas.config="
            "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required ;\n"
            f"sasl.login.callback.handler.class=org.apache.kafka.common.security.oauthbearer.{handler}\n"
            f"sasl.oauthbearer.token.endpoint.url={url}\n",
        )

    missing = f"file://{tmp_path}/none.jwt"
    # as Kafka 4.4's tools: the URL must be in the system property's list, given in KAFKA_OPTS
    allowed = f"-Dorg.apache.kafka.sasl.oauthbearer.allowed.urls={token.as_uri()},{missing}"
    token.write_text(unsecured_token("erin", 3600) + "\n")
    ok(strom(address, config(token.as_uri()), "topics", "list", kafka_opts=allowed))
    failed_with(
        strom(address, config(token.as_uri()), "topics", "list"),
        f"Invalid value {token.as_uri()} for configuration sasl.oauthbearer.token.endpoint.url: The URL "
        "cannot be accessed due to restrictions. Update the system property "
        "'org.apache.kafka.sasl.oauthbearer.allowed.urls' to allow the URL to be accessed.",
    )
    token.write_text(unsecured_token("erin", -60))  # expired: the broker refuses it
    failed_with(strom(address, config(token.as_uri()), "topics", "list", kafka_opts=allowed), "invalid_token")
    failed_with(strom(address, config("https://idp.example/token"), "topics", "list"), "file: URL only")
    failed_with(strom(address, config(missing), "topics", "list", kafka_opts=allowed), "token file")
    failed_with(
        strom(address, config(token.as_uri(), "MyHandler"), "topics", "list"),
        "sasl.login.callback.handler.class",
    )


def test_client_id_and_bootstrap_come_from_the_file(secured: Secured) -> None:
    config = secured.properties(
        "bootstrap",
        ssl_pem(secured.pki) + f"bootstrap.servers={secured.address('SSL')}\nclient.id=secured-cli\n",
    )
    ok(strom("127.0.0.1:1", config, "cluster"))


def test_host_name_verification_follows_the_endpoint_identification_algorithm(
    secured: Secured, tmp_path: Path
) -> None:
    """A broker whose certificate names neither 127.0.0.1 nor localhost: refused by default (https, as in
    Kafka's client), accepted with ssl.endpoint.identification.algorithm empty."""
    elsewhere = add_client(secured.pki, "elsewhere", "broker.elsewhere.example")
    with EmbeddedBroker(broker_settings(secured.pki, elsewhere.keystore)) as other:
        assert other.broker is not None
        host, port = other.broker.bound_addresses["SSL"]
        checked = secured.properties("https", ssl_pem(secured.pki))
        failed_with(strom(f"{host}:{port}", checked, "topics", "list"), "CERTIFICATE_VERIFY_FAILED")
        unchecked = secured.properties(
            "no-https", ssl_pem(secured.pki) + "ssl.endpoint.identification.algorithm=\n"
        )
        ok(strom(f"{host}:{port}", unchecked, "topics", "list"))


def test_failures_are_one_line(secured: Secured, tmp_path: Path) -> None:
    pki = secured.pki
    ssl_addr, sasl_addr = secured.address("SSL"), secured.address("SASL_PLAINTEXT")

    def run(text: str, address: str = ssl_addr) -> subprocess.CompletedProcess[str]:
        return strom(address, secured.properties("bad", text), "topics", "list")

    failed_with(run("security.protocol=TLS\n"), "Invalid value TLS for configuration security.protocol")
    # a PEM file left at Kafka's default store type (JKS)
    failed_with(
        run(f"security.protocol=SSL\nssl.truststore.location={pki.ca}\n"), "set ssl.truststore.type=PEM"
    )
    jks = tmp_path / "store.jks"
    jks.write_bytes(b"\xfe\xed\xfe\xed\x00\x00\x00\x02" + bytes(64))
    failed_with(
        run(f"security.protocol=SSL\nssl.truststore.location={jks}\nssl.truststore.password=x\n"),
        "Invalid value JKS for configuration ssl.truststore.type",
        "PEM and PKCS12",
    )
    failed_with(
        run(
            f"security.protocol=SSL\nssl.truststore.type=PKCS12\nssl.truststore.location={pki.client.pkcs12}\n"
            "ssl.truststore.password=wrong\n"
        ),
        "Failed to load SSL keystore",
    )
    failed_with(
        run("security.protocol=SASL_PLAINTEXT\nsasl.mechanism=PLAIN\n", sasl_addr),
        "Could not find a 'KafkaClient' entry in the JAAS configuration. System property "
        "'java.security.auth.login.config' is not set",
    )
    failed_with(
        run(
            "security.protocol=SASL_PLAINTEXT\n"
            f"sasl.jaas.config={jaas('plain.PlainLoginModule', 'a', 'b')}\n",
            sasl_addr,
        ),
        "GSSAPI",
    )
    failed_with(
        run(
            "security.protocol=SASL_PLAINTEXT\nsasl.mechanism=PLAIN\nsasl.jaas.config="
            'org.apache.kafka.common.security.plain.PlainLoginModule required username="a"\n',
            sasl_addr,
        ),
        "not terminated by semi-colon",
    )
    failed_with(
        run(sasl("SASL_PLAINTEXT", "SCRAM-SHA-256", "bob", "wrong", pki), sasl_addr),
        "invalid credentials with SASL mechanism SCRAM-SHA-256",
        "SASL_AUTHENTICATION_FAILED",
    )
    failed_with(
        run(sasl("SASL_PLAINTEXT", "SCRAM-SHA-512", "bob", "bob-pw", pki), sasl_addr),
        "SASL_AUTHENTICATION_FAILED",
    )  # bob has no SCRAM-SHA-512 credential
    # no client certificate on a listener that requires one; PLAINTEXT against a SASL listener
    failed_with(
        run(f"security.protocol=SSL\nssl.truststore.type=PEM\nssl.truststore.location={pki.ca}\n"),
        "certificate",
    )
    failed_with(strom(sasl_addr, None, "topics", "list"), "security.protocol")
    # a missing file is a usage error
    usage = strom(ssl_addr, tmp_path / "missing.properties", "topics", "list")
    assert usage.returncode == 2 and "does not exist" in usage.stderr
