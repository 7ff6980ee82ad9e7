"""A SASL listener's settings, read as Kafka's SaslChannelBuilder reads them, and the authenticator each of
its connections gets.

- `sasl.enabled.mechanisms` (Kafka's default GSSAPI; `listener.name.<listener>.sasl.enabled.mechanisms`
  first): any of PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, OAUTHBEARER. GSSAPI (Kerberos) is refused at start-up.
- Each enabled mechanism takes its login modules from the listener's JAAS line
  `listener.name.<listener>.<mechanism lower-cased>.sasl.jaas.config` (exactly one module), else from the
  JAAS file of the system property `java.security.auth.login.config` (its `<listener>.KafkaServer`
  section, else `KafkaServer`; strom.security.sasl.jaas_file), as a Kafka broker does (a plain
  `sasl.jaas.config` is a client setting there, ignored with a warning); without either start-up fails
  with Kafka's message. OAUTHBEARER's context must hold exactly one module. PLAIN's users are the
  `user_<name>` options of its PlainLoginModule; OAUTHBEARER reads the unsecured validator's options,
  or with `listener.name.<l>.oauthbearer.sasl.server.callback.handler.class` set to Kafka's
  OAuthBearerValidatorCallbackHandler validates signed JWTs against a JWKS (strom.security.sasl.
  jwt_validator); SCRAM looks credentials up in the broker's credential store.
- `connections.max.reauth.ms` (KIP-368), per mechanism as
  `listener.name.<l>.<mechanism>.connections.max.reauth.ms`.
- `sasl.server.max.receive.size` (default 524288): the largest frame read before authentication completes.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from strom.config import BrokerConfig, ConfigError
from strom.security.sasl import MECHANISMS, SaslServer
from strom.security.sasl import oauthbearer as oauth_mod
from strom.security.sasl import plain as plain_mod
from strom.security.sasl.authenticator import SaslServerAuthenticator
from strom.security.sasl.jaas import JaasEntry
from strom.security.sasl.jaas_file import SERVER_CONTEXT, JaasError, load_context
from strom.security.sasl.jwt_validator import VALIDATOR_HANDLERS, JwtSettings, JwtValidator
from strom.security.sasl.scram import CredentialLookup, ScramServer, TokenLookup
from strom.server.listeners import Listener, listener_value

__all__ = ["SaslListenerSettings", "config_value", "jaas_entries"]

log = logging.getLogger("strom.security.sasl")


async def _no_credentials(user: str, mechanism: str) -> None:
    return None


def config_value(config: BrokerConfig, listener: str, key: str) -> Any:
    """`key` for one listener (`listener.name.<lower>.<key>` first), or None when neither is set and Strom
    does not define the key."""
    try:
        return listener_value(config, listener, key)
    except KeyError:
        return None


def jaas_entries(config: BrokerConfig, listener: str, mechanism: str) -> list[JaasEntry]:
    """The login modules of one listener's mechanism, as Kafka's JaasContext.loadServerContext finds them:
    `listener.name.<listener>.<mechanism>.sasl.jaas.config`, else the JAAS file's
    `<listener>.KafkaServer` or `KafkaServer` section (strom.security.sasl.jaas_file); ConfigError with
    Kafka's message when there are none."""
    key = f"{mechanism.lower()}.sasl.jaas.config"
    where = f"listener.name.{listener.lower()}.{key}"
    text = config_value(config, listener, key)
    if text is None and config.get("sasl.jaas.config") is not None:
        log.warning(
            "Server config %s should be prefixed with SASL mechanism name, ignoring config",
            "sasl.jaas.config",
        )
    try:
        dynamic = None if text is None else str(text)
        context = load_context(SERVER_CONTEXT, f"{listener.lower()}.{SERVER_CONTEXT}", dynamic, where)
    except JaasError as exc:
        raise ConfigError(str(exc)) from None
    except ValueError as exc:  # the inline value's syntax
        raise ConfigError(f"Invalid value [hidden] for configuration {where}: {exc}") from None
    return list(context.entries)


UNSECURED_VALIDATOR = (
    "org.apache.kafka.common.security.oauthbearer.internals.unsecured."
    "OAuthBearerUnsecuredValidatorCallbackHandler"
)


def _oauthbearer_validator(config: BrokerConfig, listener: str) -> JwtValidator | None:
    """The listener's JWKS validator when its OAUTHBEARER server callback is Kafka's
    OAuthBearerValidatorCallbackHandler; None for the default (unsecured) one."""
    handler = config_value(config, listener, "oauthbearer.sasl.server.callback.handler.class")
    if handler in (None, "", UNSECURED_VALIDATOR):
        return None
    if handler not in VALIDATOR_HANDLERS:
        raise ConfigError(
            f"OAUTHBEARER server callback handler {handler} of listener {listener} is not supported by Strom "
            "(supported: OAuthBearerValidatorCallbackHandler and the unsecured default; docs/GAPS.md)"
        )
    try:
        return JwtValidator(JwtSettings.from_config(config, listener))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"Cannot read the JWKS of listener {listener}: {exc}") from None


@dataclass(frozen=True, slots=True)
class SaslListenerSettings:
    """What a SASL listener needs to authenticate its connections."""

    listener: str
    mechanisms: tuple[str, ...]
    jaas: dict[str, list[JaasEntry]]
    reauth_ms: dict[str, int]
    max_receive_size: int
    jwt_validator: JwtValidator | None = None

    @classmethod
    def build(cls, config: BrokerConfig, listener: Listener) -> SaslListenerSettings:
        name = listener.name
        mechanisms = tuple(config_value(config, name, "sasl.enabled.mechanisms") or ())
        if not mechanisms:
            raise ConfigError(f"No SASL mechanisms are enabled for listener {name}")
        jaas: dict[str, list[JaasEntry]] = {}
        for mechanism in mechanisms:
            if mechanism not in MECHANISMS:
                raise ConfigError(
                    f"SASL mechanism {mechanism} of listener {name} is not supported by Strom "
                    f"(supported: {', '.join(MECHANISMS)}; docs/GAPS.md)"
                )
            entries = jaas_entries(config, name, mechanism)
            if mechanism == "OAUTHBEARER" and len(entries) != 1:
                # Kafka's unsecured OAUTHBEARER login and validator handlers take a context of one module
                raise ConfigError(
                    f"Must supply exactly 1 non-null JAAS mechanism configuration (size was {len(entries)})"
                )
            jaas[mechanism] = entries
        default_reauth = int(config_value(config, name, "connections.max.reauth.ms") or 0)
        reauth = {
            m: int(config_value(config, name, f"{m.lower()}.connections.max.reauth.ms") or default_reauth)
            for m in mechanisms
        }
        max_receive = int(config_value(config, name, "sasl.server.max.receive.size"))
        validator = _oauthbearer_validator(config, name) if "OAUTHBEARER" in mechanisms else None
        return cls(name, mechanisms, jaas, reauth, max_receive, validator)

    def _options(self, mechanism: str, login_module: str) -> dict[str, str]:
        # Kafka's JaasContext.configEntryOption: the options of the entry naming the mechanism's module
        for entry in self.jaas.get(mechanism, ()):
            if entry.login_module == login_module:
                return entry.options
        return {}

    def new_server(
        self,
        mechanism: str,
        clock_ms: Callable[[], int],
        scram_lookup: CredentialLookup | None = None,
        token_lookup: TokenLookup | None = None,
    ) -> SaslServer:
        if mechanism == "PLAIN":
            options = self._options(mechanism, plain_mod.LOGIN_MODULE)
            users = {k.removeprefix("user_"): v for k, v in options.items() if k.startswith("user_")}
            return plain_mod.PlainServer(users)
        if mechanism == "OAUTHBEARER":
            entries = self.jaas.get(mechanism) or []
            return oauth_mod.OAuthBearerServer(
                entries[0].options if entries else {}, clock_ms, self.jwt_validator
            )
        return ScramServer(mechanism, scram_lookup or _no_credentials, token_lookup)

    def authenticator(
        self,
        serves_api_versions: Callable[[int], bool],
        clock_ms: Callable[[], int] | None = None,
        scram_lookup: CredentialLookup | None = None,
        token_lookup: TokenLookup | None = None,
    ) -> SaslServerAuthenticator:
        """A new connection's authenticator; `scram_lookup` reads the broker's SCRAM credentials,
        `token_lookup` its delegation tokens (SCRAM `tokenauth`)."""
        clock = clock_ms or (lambda: int(time.time() * 1000))
        return SaslServerAuthenticator(
            self.mechanisms,
            lambda mechanism: self.new_server(mechanism, clock, scram_lookup, token_lookup),
            lambda mechanism: self.reauth_ms.get(mechanism, 0),
            clock,
            serves_api_versions,
        )
