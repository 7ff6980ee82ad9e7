"""What one listener does to secure its connections: its TLS context (SSL, SASL_SSL) and how a
connection's principal is found (Kafka's ChannelBuilder and DefaultKafkaPrincipalBuilder, per listener).

`ListenerSecurity.build(config, listener)` reads the listener's settings (`listener.name.<name>.<key>`
first) once at start-up; `principal(get_extra_info)` is asked once per connection, after the TLS handshake:
- PLAINTEXT: `User:ANONYMOUS`.
- SSL: the client certificate's subject DN shaped by `ssl.principal.mapping.rules`; `User:ANONYMOUS` when
  the client sent no certificate (ssl.client.auth none or requested), as Kafka does.
- SASL_PLAINTEXT and SASL_SSL (SASL_SSL with the TLS context of an SSL listener underneath): `User:<name>`
  of the SASL exchange, which the connection runs before anything else (`sasl`, a
  strom.security.sasl.listener.SaslListenerSettings, makes each connection's authenticator); until it
  completes the connection is `User:ANONYMOUS` and serves nothing but the exchange. The SSL principal
  mapping does not apply to SASL_SSL, as in Kafka.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from strom.config import BrokerConfig, ConfigError
from strom.security.principal import ANONYMOUS, USER_TYPE, KafkaPrincipal
from strom.security.sasl.listener import SaslListenerSettings
from strom.security.ssl_principal import SslPrincipalMapper, subject_dn
from strom.security.tls import client_context, server_context
from strom.server.listeners import Listener, listener_value

__all__ = ["ListenerSecurity", "inter_broker_ssl_context"]


@dataclass(frozen=True, slots=True)
class ListenerSecurity:
    """One listener's security: its TLS context (None for plaintext) and principal mapping."""

    listener: Listener
    ssl_context: ssl.SSLContext | None = None
    mapper: SslPrincipalMapper | None = None
    sasl: SaslListenerSettings | None = None

    @classmethod
    def build(cls, config: BrokerConfig, listener: Listener) -> ListenerSecurity:
        protocol = listener.security_protocol
        if protocol == "PLAINTEXT":
            return cls(listener)
        sasl = SaslListenerSettings.build(config, listener) if protocol.startswith("SASL_") else None

        def settings(key: str) -> Any:
            return listener_value(config, listener.name, key)

        if protocol == "SASL_PLAINTEXT":
            return cls(listener, sasl=sasl)
        if sasl is not None:
            return cls(listener, server_context(settings, listener.name), sasl=sasl)

        try:
            mapper = SslPrincipalMapper(settings("ssl.principal.mapping.rules"))
        except ValueError as exc:
            raise ConfigError(
                f"Invalid value {settings('ssl.principal.mapping.rules')} for configuration "
                f"ssl.principal.mapping.rules: {exc}"
            ) from None
        return cls(listener, server_context(settings, listener.name), mapper)

    def frame_limit(self, max_request: int) -> int:
        """The largest frame a new connection may send: `sasl.server.max.receive.size` until a SASL
        connection has authenticated (CVE-2022-34917: nothing bigger is allocated for a stranger)."""
        return max_request if self.sasl is None else min(max_request, self.sasl.max_receive_size)

    def principal(self, extra_info: Callable[[str], Any]) -> KafkaPrincipal:
        """The principal of a connection (its transport's get_extra_info); ValueError (NoMatchingRule)
        when no mapping rule applies, which closes the connection. SASL connections start anonymous."""
        if self.mapper is None:
            return ANONYMOUS
        ssl_object = extra_info("ssl_object")
        der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
        if not der:
            return ANONYMOUS
        return KafkaPrincipal(USER_TYPE, self.mapper.name(subject_dn(der)))


def inter_broker_ssl_context(config: BrokerConfig, listener: Listener) -> ssl.SSLContext | None:
    """The context followers and transaction markers connect to other brokers with: None unless the
    inter-broker listener uses TLS."""
    if not listener.tls:
        return None
    return client_context(lambda key: listener_value(config, listener.name, key))
