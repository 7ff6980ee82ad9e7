"""TLS contexts from Kafka's ssl.* keys (strom.security.tls): every key store form, Kafka's messages for
contradictory settings, and what the contexts then accept."""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

import pytest

from strom.config import BrokerConfig, ConfigError
from strom.security.tls import client_context, server_context
from strom.server.listeners import listener_value
from strom.testing.certs import PASSWORD, Pki


def _settings(props: dict[str, str], listener: str = "SSL") -> Any:
    config = BrokerConfig(props)
    return lambda key: listener_value(config, listener, key)


def _pem(path: Path) -> str:
    return path.read_text()


def test_key_store_forms(pki: Pki) -> None:
    forms = [
        {"ssl.keystore.type": "PEM", "ssl.keystore.location": str(pki.broker.keystore)},
        {
            "ssl.keystore.type": "PEM",
            "ssl.keystore.location": str(pki.broker.encrypted_keystore),
            "ssl.key.password": PASSWORD,
        },
        # KIP-651 inline, one line as a properties file would hold it
        {
            "ssl.keystore.type": "PEM",
            "ssl.keystore.key": _pem(pki.broker.key).replace("\n", " "),
            "ssl.keystore.certificate.chain": _pem(pki.broker.cert).replace("\n", "\\n"),
        },
        {
            "ssl.keystore.type": "PKCS12",
            "ssl.keystore.location": str(pki.broker.pkcs12),
            "ssl.keystore.password": PASSWORD,
        },
    ]
    for form in forms:
        ctx = server_context(_settings(form), "SSL")
        assert ctx.verify_mode == ssl.CERT_NONE


def test_client_auth_trust_store_and_protocols(pki: Pki) -> None:
    base = {"ssl.keystore.type": "PEM", "ssl.keystore.location": str(pki.broker.keystore)}
    ctx = server_context(
        _settings(
            {
                **base,
                "ssl.client.auth": "requested",
                "ssl.truststore.type": "PEM",
                "ssl.truststore.certificates": _pem(pki.ca),
                "ssl.enabled.protocols": "TLSv1.3",
                "ssl.cipher.suites": "TLS_AES_128_GCM_SHA256",
            }
        ),
        "SSL",
    )
    assert ctx.verify_mode == ssl.CERT_OPTIONAL and ctx.minimum_version == ssl.TLSVersion.TLSv1_3
    assert ctx.cert_store_stats()["x509_ca"] == 1
    ctx = server_context(
        _settings({**base, "ssl.cipher.suites": "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"}), "SSL"
    )
    assert "ECDHE-ECDSA-AES128-GCM-SHA256" in {c["name"] for c in ctx.get_ciphers()}
    # per-listener keys win
    ctx = server_context(_settings({**base, "listener.name.ssl.ssl.client.auth": "required"}), "SSL")
    assert ctx.verify_mode == ssl.CERT_REQUIRED
    client = client_context(
        _settings(
            {
                **pki.client.pem_settings(),
                "ssl.truststore.type": "PEM",
                "ssl.truststore.location": str(pki.ca),
            }
        )
    )
    assert client.check_hostname and client.verify_mode == ssl.CERT_REQUIRED


@pytest.mark.parametrize(
    ("props", "message"),
    [
        ({}, "SSL listener SSL needs a key store"),
        ({"ssl.keystore.location": "/x.jks", "ssl.keystore.password": "p"}, "Strom reads PEM and PKCS12"),
        ({"ssl.keystore.key": "k"}, "only for PEM, but key store type is JKS."),
        (
            {"ssl.keystore.type": "PEM", "ssl.keystore.key": "k"},
            "SSL private key is specified, but certificate chain is not specified.",
        ),
        (
            {"ssl.keystore.type": "PEM", "ssl.keystore.key": "k", "ssl.keystore.certificate.chain": "c",
             "ssl.keystore.location": "/x"},
            "Both SSL key store location and separate private key are specified.",
        ),
        (
            {"ssl.keystore.type": "PEM", "ssl.keystore.location": "/x", "ssl.keystore.password": "p"},
            "SSL key store password cannot be specified with PEM format, only key password may be specified",
        ),
        ({"ssl.keystore.location": "/x"}, "key store is specified, but key store password is not specified."),
        ({"ssl.keystore.certificate.chain": "c"}, "certificate chain is specified, but private key is not"),
        ({"ssl.keystore.type": "PEM", "ssl.keystore.location": "/absent.pem"}, "Failed to load SSL keystore"),
        ({"ssl.enabled.protocols": "SSLv3"}, "Invalid value SSLv3 for configuration ssl.enabled.protocols"),
    ],
)  # fmt: skip
def test_kafka_messages_for_bad_stores(props: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as err:
        server_context(_settings(props), "SSL")
    assert message in str(err.value)


def test_encrypted_key_without_password_fails_and_never_prompts(pki: Pki) -> None:
    props = {"ssl.keystore.type": "PEM", "ssl.keystore.location": str(pki.broker.encrypted_keystore)}
    with pytest.raises(ConfigError, match=r"ssl\.key\.password is not set"):
        server_context(_settings(props), "SSL")
    with pytest.raises(ConfigError, match="Failed to load SSL keystore"):
        server_context(_settings({**props, "ssl.key.password": "wrong"}), "SSL")
    trust = {
        **pki.broker.pem_settings(),
        "ssl.truststore.type": "PEM",
        "ssl.truststore.certificates": "x",
        "ssl.truststore.location": "/y",
    }
    with pytest.raises(ConfigError, match="Both SSL trust store location and separate trust certificates"):
        server_context(_settings(trust), "SSL")
