"""The client side of SASL, for connections Strom opens itself: brokers to each other (follower fetchers,
transaction markers, with `sasl.mechanism.inter.broker.protocol` and the inter-broker listener's JAAS
line, as Kafka's brokers do) and the `strom` command (`security.protocol`, `sasl.mechanism` and
`sasl.jaas.config` of its --command-config, or the `KafkaClient` section of the JAAS file named by
`java.security.auth.login.config`, as Java clients read them).

The exchange is Kafka's SaslClientAuthenticator with SaslHandshake v1 and SaslAuthenticate v1: the
handshake names the mechanism, then each token goes in a SaslAuthenticate request until the mechanism is
done. A refusal raises KafkaError with the broker's code and message (UNSUPPORTED_SASL_MECHANISM,
SASL_AUTHENTICATION_FAILED). The client does not re-authenticate (KIP-368): when a broker's session
lifetime runs out the broker closes the connection and the caller reconnects.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from strom.config import BrokerConfig, ConfigError
from strom.protocol.errors import ErrorCode, KafkaError
from strom.security.sasl import MECHANISMS, SaslError
from strom.security.sasl.jaas import JaasEntry
from strom.security.sasl.jaas_file import CLIENT_CONTEXT, JaasError, load_context
from strom.security.sasl.oauthbearer import oauthbearer_client_token
from strom.security.sasl.plain import plain_client_token
from strom.security.sasl.scram import ScramClient
from strom.security.sasl.unsecured_jws import unsecured_login_token

if TYPE_CHECKING:
    from strom.client.connection import BrokerConnection
    from strom.server.listeners import Listener

__all__ = ["SaslClientSettings", "authenticate"]


@dataclass(frozen=True, slots=True)
class SaslClientSettings:
    """How to authenticate: the mechanism and the JAAS options (username, password, or the unsecured
    OAUTHBEARER login's claims); `token`, when set, is the OAUTHBEARER token to send as it is (a client's
    token file) instead of an unsecured login token."""

    mechanism: str
    options: dict[str, str] = field(default_factory=dict)
    token: str | None = None

    def __repr__(self) -> str:  # never show the password
        return f"SaslClientSettings(mechanism={self.mechanism!r})"

    @classmethod
    def from_jaas(cls, mechanism: str, entries: list[JaasEntry] | None, where: str) -> SaslClientSettings:
        if mechanism not in MECHANISMS:
            raise ConfigError(f"SASL mechanism {mechanism} is not supported by Strom ({where})")
        if not entries:
            raise ConfigError(f"{where}: no JAAS configuration for SASL mechanism {mechanism}")
        return cls(mechanism, dict(_login_entry(mechanism, entries).options))

    @classmethod
    def from_client_properties(
        cls, props: Mapping[str, str], environ: Mapping[str, str] | None = None
    ) -> SaslClientSettings | None:
        """From a Java client's properties, or None when `security.protocol` is not SASL_*. The login
        modules are `sasl.jaas.config`'s, else the `KafkaClient` section of the JAAS file the system
        property java.security.auth.login.config names (KAFKA_OPTS of `environ`), as Kafka's
        JaasContext.loadClientContext finds them."""
        protocol = str(props.get("security.protocol", "PLAINTEXT")).upper()
        if not protocol.startswith("SASL_"):
            return None
        mechanism = str(props.get("sasl.mechanism", "GSSAPI")).upper()
        jaas = props.get("sasl.jaas.config")
        try:
            context = load_context(CLIENT_CONTEXT, None, jaas, "sasl.jaas.config", environ)
        except JaasError as exc:
            raise ConfigError(str(exc)) from None
        except ValueError as exc:
            raise ConfigError(f"Invalid value [hidden] for configuration sasl.jaas.config: {exc}") from None
        return cls.from_jaas(mechanism, list(context.entries), context.source)

    @classmethod
    def inter_broker(cls, config: BrokerConfig, listener: Listener) -> SaslClientSettings | None:
        """What this broker authenticates to others with, or None when the inter-broker listener has no
        SASL."""
        from strom.security.sasl.listener import jaas_entries

        if not listener.security_protocol.startswith("SASL_"):
            return None
        mechanism = str(config.get("sasl.mechanism.inter.broker.protocol"))
        where = f"listener.name.{listener.name.lower()}.{mechanism.lower()}.sasl.jaas.config"
        return cls.from_jaas(mechanism, jaas_entries(config, listener.name, mechanism), where)


_LOGIN_MODULES = {
    "PLAIN": "org.apache.kafka.common.security.plain.PlainLoginModule",
    "SCRAM-SHA-256": "org.apache.kafka.common.security.scram.ScramLoginModule",
    "SCRAM-SHA-512": "org.apache.kafka.common.security.scram.ScramLoginModule",
    "OAUTHBEARER": "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule",
}


def _login_entry(mechanism: str, entries: list[JaasEntry]) -> JaasEntry:
    """The entry whose options a mechanism logs in with. A JAAS file section may hold several modules (a
    KafkaServer section often has PLAIN's and SCRAM's); Kafka's login puts every module's username and
    password in one Subject, so take the module of the mechanism, else the first with a username."""
    for entry in entries:
        if entry.login_module == _LOGIN_MODULES.get(mechanism):
            return entry
    return next((entry for entry in entries if "username" in entry.options), entries[0])


class _Exchange:
    """One authentication's client tokens: `next(challenge)` -> the token to send, or None when done."""

    def __init__(self, settings: SaslClientSettings) -> None:
        self._settings = settings
        self._round = 0
        self._scram: ScramClient | None = None

    def next(self, challenge: bytes | None) -> bytes | None:
        settings, options = self._settings, self._settings.options
        self._round += 1
        mechanism = settings.mechanism
        if mechanism == "PLAIN":
            return (
                plain_client_token(options.get("username", ""), options.get("password", ""))
                if (self._round == 1)
                else None
            )
        if mechanism == "OAUTHBEARER":
            if self._round == 1:
                token = settings.token or unsecured_login_token(options, int(time.time() * 1000))
                return oauthbearer_client_token(token)
            # a non-empty challenge is the server's JSON error: acknowledge it to get the failure
            return b"\x01" if challenge else None
        if self._round == 1:
            self._scram = ScramClient(
                mechanism,
                options.get("username", ""),
                options.get("password", ""),
                token=options.get("tokenauth", "").lower() == "true",  # delegation token (KIP-48)
            )
            return self._scram.first()
        assert self._scram is not None
        if self._round == 2:
            return self._scram.final(challenge or b"")
        self._scram.verify(challenge or b"")
        return None


async def authenticate(conn: BrokerConnection, settings: SaslClientSettings, timeout: float = 10.0) -> int:
    """Authenticate `conn`; returns the session lifetime the broker gave (ms, 0 for none)."""
    from kio.schema.sasl_authenticate.v1.request import SaslAuthenticateRequest
    from kio.schema.sasl_handshake.v1.request import SaslHandshakeRequest

    handshake: Any = await conn.request(SaslHandshakeRequest(mechanism=settings.mechanism), timeout=timeout)
    if handshake.error_code != ErrorCode.none:
        raise KafkaError(
            f"Unsupported SASL mechanism {settings.mechanism} (enabled: {', '.join(handshake.mechanisms)})",
            code=handshake.error_code,
        )
    exchange = _Exchange(settings)
    challenge: bytes | None = None
    lifetime = 0
    while True:
        try:
            token = exchange.next(challenge)
        except SaslError as exc:
            raise KafkaError(str(exc), code=ErrorCode.sasl_authentication_failed) from None
        if token is None:
            return lifetime
        response: Any = await conn.request(SaslAuthenticateRequest(auth_bytes=token), timeout=timeout)
        if response.error_code != ErrorCode.none:
            raise KafkaError(response.error_message or "SASL authentication failed", code=response.error_code)
        challenge = bytes(response.auth_bytes)
        lifetime = int(response.session_lifetime.total_seconds() * 1000)
