"""A Java client's security properties, as Kafka's clients and tools read a `--command-config` file
(CommonClientConfigs, SslConfigs, SaslConfigs): what `ClusterClient` connects to a secured listener with.

- `security.protocol`: PLAINTEXT (the default), SSL, SASL_PLAINTEXT or SASL_SSL, in any case; another value
  is refused with Kafka's message.
- SSL and SASL_SSL: a TLS context from the `ssl.*` keys, built by `strom.security.tls.client_context` as the
  broker builds its inter-broker client: trust store (`ssl.truststore.type` PEM or PKCS12 with
  `ssl.truststore.location`/`password`, or inline `ssl.truststore.certificates`; none: the system's CAs, as
  Java falls back to the JVM's), key store for a client certificate (`ssl.keystore.*`, `ssl.key.password`),
  `ssl.enabled.protocols`, `ssl.cipher.suites`, and `ssl.endpoint.identification.algorithm` (`https`, the
  Java client's default, checks the broker's host name; empty does not).
- Store types: Kafka's default type is JKS. A Java key store file (JKS or JCEKS) is refused with one line
  naming PEM and PKCS12 (no maintained Python library reads JKS); a PKCS12 file left at the default type
  is read as PKCS12, as Java's JKS key store does (`keystore.type.compat`); a PEM file left at the default
  type is refused with a hint to set the type to PEM.
- SASL_PLAINTEXT and SASL_SSL: `sasl.mechanism` (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, OAUTHBEARER; Kafka's
  default GSSAPI is not served) and `sasl.jaas.config` (`...PlainLoginModule required username="u"
  password="p";`, the ScramLoginModule form, or OAuthBearerLoginModule with the unsecured login's
  `unsecuredLoginStringClaim_sub="u"`), through `strom.security.sasl.client`. Without `sasl.jaas.config`
  the login module comes from the `KafkaClient` section of the JAAS file named by the system property
  `java.security.auth.login.config` (`-D...` in KAFKA_OPTS, strom.security.sasl.jaas_file), as Kafka's
  clients take it; with neither, Kafka's "Could not find a 'KafkaClient' entry in the JAAS configuration"
  message.
- OAUTHBEARER with a token of one's own: `sasl.login.callback.handler.class=org.apache.kafka.common.
  security.oauthbearer.OAuthBearerLoginCallbackHandler` and `sasl.oauthbearer.token.endpoint.url=file:
  /path/token.jwt`, as Kafka's client reads a token file; as in Kafka 4.4 the URL must be listed in the
  system property `org.apache.kafka.sasl.oauthbearer.allowed.urls` (`-D...` in KAFKA_OPTS,
  `strom.security.system_properties`). The token is sent as it is, for the broker to validate. Token
  endpoints (http, https) and other login callback handlers are refused.

Every problem is a `ConfigError` with one line naming the key. Keys the Java client has and Strom's client
does not need (`ssl.protocol`, `ssl.keymanager.algorithm`, `sasl.login.*`, ...) are ignored, as Kafka
ignores keys it does not know.
"""

from __future__ import annotations

import dataclasses
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse

from strom.config import ConfigError
from strom.security.sasl import MECHANISMS
from strom.security.sasl.client import SaslClientSettings
from strom.security.sasl.jaas_file import CLIENT_CONTEXT, LOGIN_CONFIG
from strom.security.system_properties import system_property, url_refusal
from strom.security.tls import client_context

__all__ = ["PLAINTEXT", "SECURITY_PROTOCOLS", "ClientSecurity"]

SECURITY_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
_LIST_KEYS = frozenset({"ssl.enabled.protocols", "ssl.cipher.suites"})
_JAVA_STORE_MAGIC = {b"\xfe\xed\xfe\xed": "JKS", b"\xce\xce\xce\xce": "JCEKS"}
_OAUTH_LOGIN_HANDLERS = frozenset(
    {
        "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginCallbackHandler",
        "org.apache.kafka.common.security.oauthbearer.secured.OAuthBearerLoginCallbackHandler",  # before 3.4
    }
)
_JAAS_EXAMPLES = {
    "PLAIN": 'org.apache.kafka.common.security.plain.PlainLoginModule required username="u" password="p";',
    "SCRAM": 'org.apache.kafka.common.security.scram.ScramLoginModule required username="u" password="p";',
    "OAUTHBEARER": "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required "
    'unsecuredLoginStringClaim_sub="u";',
}


@dataclass(frozen=True, slots=True)
class ClientSecurity:
    """How to reach the brokers: the TLS context (None without TLS) and the SASL settings (None without
    SASL) that every connection of a client opens with."""

    protocol: str = "PLAINTEXT"
    ssl_context: ssl.SSLContext | None = None
    sasl: SaslClientSettings | None = None

    @classmethod
    def from_properties(cls, props: Mapping[str, str]) -> ClientSecurity:
        """From a Java client's properties; ConfigError (one line) when they do not make a connection."""
        protocol = str(props.get("security.protocol", "PLAINTEXT")).strip().upper()
        if protocol not in SECURITY_PROTOCOLS:
            raise ConfigError(
                f"Invalid value {props['security.protocol']} for configuration security.protocol: "
                f"String must be one of (case insensitive): {', '.join(SECURITY_PROTOCOLS)}"
            )
        context = _tls_context(props) if protocol in ("SSL", "SASL_SSL") else None
        sasl = _sasl_settings(props) if protocol.startswith("SASL_") else None
        return cls(protocol, context, sasl)


PLAINTEXT = ClientSecurity()


def _tls_context(props: Mapping[str, str]) -> ssl.SSLContext:
    def settings(key: str) -> object:
        value = props.get(key)
        if key in _LIST_KEYS:
            return [item.strip() for item in value.split(",") if item.strip()] if value else []
        if key == "ssl.endpoint.identification.algorithm":
            return "https" if value is None else value.strip()
        if key in ("ssl.keystore.type", "ssl.truststore.type"):
            return _store_type(props, key)
        return value

    return client_context(settings)


def _store_type(props: Mapping[str, str], key: str) -> str:
    """The store type to read with: the given one, except that a PKCS12 file under Kafka's default type JKS
    is read as PKCS12 (Java does the same); JKS files and PEM files under type JKS are refused."""
    kind = str(props.get(key) or "JKS").strip().upper()
    location = props.get(key.replace(".type", ".location"))
    if kind not in ("JKS", "JCEKS") or not location:
        return kind
    try:
        with Path(location).open("rb") as f:
            head = f.read(11)
    except OSError as exc:
        raise ConfigError(
            f"Failed to load SSL store {location} ({key.replace('.type', '.location')}): {exc.strerror}"
        ) from None
    java_kind = _JAVA_STORE_MAGIC.get(head[:4])
    if java_kind is not None or kind == "JCEKS":
        what = f"{location} is a Java key store ({java_kind}); " if java_kind else ""
        raise ConfigError(
            f"Invalid value {kind} for configuration {key}: {what}Strom reads PEM and PKCS12 stores (convert "
            "a Java key store with keytool -importkeystore -deststoretype PKCS12)"
        )
    if head.lstrip().startswith(b"-----BEGIN"):
        raise ConfigError(
            f"{location} is a PEM file but {key} is {props.get(key) or 'JKS (the default)'}: set {key}=PEM"
        )
    return "PKCS12"


def _sasl_settings(props: Mapping[str, str]) -> SaslClientSettings:
    mechanism = str(props.get("sasl.mechanism", "GSSAPI")).strip().upper()
    if mechanism not in MECHANISMS:
        default = "" if "sasl.mechanism" in props else " (GSSAPI is Kafka's default: set sasl.mechanism)"
        raise ConfigError(
            f"Invalid value {mechanism} for configuration sasl.mechanism: Strom's client authenticates with "
            f"{', '.join(MECHANISMS)}{default}"
        )
    settings = SaslClientSettings.from_client_properties(props)
    assert settings is not None
    handler = str(props.get("sasl.login.callback.handler.class") or "").strip()
    if handler:
        if mechanism != "OAUTHBEARER" or handler not in _OAUTH_LOGIN_HANDLERS:
            raise ConfigError(
                f"Invalid value {handler} for configuration sasl.login.callback.handler.class: Strom's "
                "client runs no login callback handler (only OAUTHBEARER's OAuthBearerLoginCallbackHandler "
                "with a file: token URL)"
            )
        return dataclasses.replace(settings, token=_token_file(props))
    if mechanism != "OAUTHBEARER":
        missing = [key for key in ("username", "password") if key not in settings.options]
        if missing:
            where = (
                "Invalid value [hidden] for configuration sasl.jaas.config"
                if "sasl.jaas.config" in props
                else f"The '{CLIENT_CONTEXT}' entry of the JAAS file {system_property(LOGIN_CONFIG)}"
            )
            raise ConfigError(
                f"{where}: {mechanism} needs the "
                f"{' and '.join(missing)} option{'s' if len(missing) > 1 else ''} of the login module, e.g. "
                f"{_JAAS_EXAMPLES[mechanism.split('-')[0]]}"
            )
    return settings


def _token_file(props: Mapping[str, str]) -> str:
    """The OAUTHBEARER token in the file a `file:` sasl.oauthbearer.token.endpoint.url names."""
    url = str(props.get("sasl.oauthbearer.token.endpoint.url") or "").strip()
    parsed = urlparse(url)
    if parsed.scheme != "file":
        raise ConfigError(
            f"Invalid value {url or '(none)'} for configuration sasl.oauthbearer.token.endpoint.url: Strom's "
            "client reads an OAUTHBEARER token from a file: URL only (it asks no token endpoint)"
        )
    refusal = url_refusal("sasl.oauthbearer.token.endpoint.url", url)
    if refusal is not None:
        raise ConfigError(refusal)  # as Kafka 4.4's tools: the URL must be in the allowed list
    path = unquote(parsed.path)
    try:
        token = Path(path).read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigError(f"Cannot read the OAUTHBEARER token file {path}: {exc.strerror}") from None
    if not token:
        raise ConfigError(f"The OAUTHBEARER token file {path} is empty")
    return token
