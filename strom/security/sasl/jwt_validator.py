"""OAUTHBEARER tokens validated as signed JWTs against a JWKS (KIP-768), as Kafka 4.4's
OAuthBearerValidatorCallbackHandler validates them on a broker.

A listener turns it on as Kafka does:
`listener.name.<listener>.oauthbearer.sasl.server.callback.handler.class=
org.apache.kafka.common.security.oauthbearer.OAuthBearerValidatorCallbackHandler` (the older
`...oauthbearer.secured.OAuthBearerValidatorCallbackHandler` name too), with the broker keys (each also as
`listener.name.<listener>.<key>`):
- `sasl.oauthbearer.jwks.endpoint.url` (required): `file://` a JWKS file, or an `http(s)://` endpoint; the
  keys are read at start-up, again every `sasl.oauthbearer.jwks.endpoint.refresh.ms` (default one hour),
  and at once (at most every `sasl.oauthbearer.jwks.endpoint.retry.backoff.ms`) when a token names a key
  id the set does not hold, so a rotated key is picked up as Kafka's refreshing key resolver does;
- `sasl.oauthbearer.expected.audience` (the token's `aud` must hold one of them, when set),
  `sasl.oauthbearer.expected.issuer` (`iss` must equal it, when set), `sasl.oauthbearer.sub.claim.name`
  (default `sub`: the principal), `sasl.oauthbearer.scope.claim.name` (default `scope`),
  `sasl.oauthbearer.clock.skew.seconds` (default 30).
A token must carry a valid signature by a JWKS key (RSA, RSA-PSS or ECDSA; never `none` nor HMAC), `exp`
and `iat`; `exp` and `nbf` are checked with the clock skew. Its lifetime is `exp`. The JOSE work is
joserfc's (an optional dependency, `pip install strom[oauth]`); a listener that asks for this validator
without it fails at start-up. As in Kafka 4.4, the JWKS URL must be listed in the system property
`org.apache.kafka.sasl.oauthbearer.allowed.urls` (`-D...` in KAFKA_OPTS, `strom.security.system_properties`),
else the broker does not start.
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from strom.config import BrokerConfig, ConfigError
from strom.security.sasl.unsecured_jws import InvalidToken
from strom.security.system_properties import url_refusal

__all__ = ["VALIDATOR_HANDLERS", "JwtSettings", "JwtValidator", "ValidatedJwt"]

VALIDATOR_HANDLERS = frozenset({
    "org.apache.kafka.common.security.oauthbearer.OAuthBearerValidatorCallbackHandler",
    "org.apache.kafka.common.security.oauthbearer.secured.OAuthBearerValidatorCallbackHandler",
})
ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512"]


@dataclass(frozen=True, slots=True)
class ValidatedJwt:
    principal_name: str
    lifetime_ms: int
    scope: frozenset[str]


@dataclass(frozen=True, slots=True)
class JwtSettings:
    jwks_url: str
    refresh_ms: int = 3_600_000
    retry_backoff_ms: int = 100
    audience: tuple[str, ...] = ()
    issuer: str | None = None
    sub_claim: str = "sub"
    scope_claim: str = "scope"
    clock_skew_s: int = 30

    @classmethod
    def from_config(cls, config: BrokerConfig, listener: str) -> JwtSettings:
        from strom.server.listeners import listener_value

        def value(key: str) -> Any:
            return listener_value(config, listener, f"sasl.oauthbearer.{key}")

        url = value("jwks.endpoint.url")
        if not url:
            raise ConfigError(
                f"Listener {listener} validates OAUTHBEARER tokens against a JWKS "
                "(OAuthBearerValidatorCallbackHandler) but sasl.oauthbearer.jwks.endpoint.url is not set"
            )
        refusal = url_refusal("sasl.oauthbearer.jwks.endpoint.url", str(url))
        if refusal is not None:
            raise ConfigError(refusal)
        return cls(
            jwks_url=str(url),
            refresh_ms=int(value("jwks.endpoint.refresh.ms")),
            retry_backoff_ms=int(value("jwks.endpoint.retry.backoff.ms")),
            audience=tuple(value("expected.audience") or ()),
            issuer=value("expected.issuer") or None,
            sub_claim=str(value("sub.claim.name")),
            scope_claim=str(value("scope.claim.name")),
            clock_skew_s=int(value("clock.skew.seconds")),
        )


def _jose() -> Any:
    try:
        import joserfc  # noqa: F401 - only checks that it is there
    except ImportError:
        raise ConfigError(
            "OAUTHBEARER validation against a JWKS needs the joserfc package (pip install strom[oauth])"
        ) from None
    from joserfc import jwk, jwt

    return jwk, jwt


def _read_jwks(url: str) -> dict[str, Any]:
    parsed = urlparse(url)
    if parsed.scheme == "file":
        raw = Path(unquote(parsed.path)).read_bytes()
    elif parsed.scheme in ("http", "https"):
        with urllib.request.urlopen(url, timeout=10) as response:
            raw = response.read()
    else:
        raise ConfigError(f"sasl.oauthbearer.jwks.endpoint.url {url!r}: only file, http and https URLs")
    doc = json.loads(raw)
    if not isinstance(doc, dict) or not isinstance(doc.get("keys"), list):
        raise ValueError(f"{url} holds no JWKS (a JSON object with a 'keys' list)")
    return doc


class JwtValidator:
    """One listener's JWKS and the checks of Kafka's broker-side JWT validator."""

    def __init__(self, settings: JwtSettings) -> None:
        self.settings = settings
        self._jwk, self._jwt = _jose()
        self._keys = self._jwk.KeySet.import_key_set(_read_jwks(settings.jwks_url))
        self._loaded_ms = self._now_ms()
        self._lock = asyncio.Lock()

    @staticmethod
    def _now_ms() -> int:
        return int(time.time() * 1000)

    async def _reload(self, *, forced: bool) -> None:
        async with self._lock:
            since = self._now_ms() - self._loaded_ms
            if since < (self.settings.retry_backoff_ms if forced else self.settings.refresh_ms):
                return
            doc = await asyncio.to_thread(_read_jwks, self.settings.jwks_url)
            self._keys = self._jwk.KeySet.import_key_set(doc)
            self._loaded_ms = self._now_ms()

    async def validate(self, token: str, now_ms: int) -> ValidatedJwt:
        """The token's principal, lifetime and scope; InvalidToken (reason for the log) otherwise."""
        from joserfc.errors import InvalidKeyIdError, JoseError

        try:
            await self._reload(forced=False)
        except (OSError, ValueError) as exc:  # keep the keys we have; a later token retries
            raise InvalidToken(f"cannot refresh the JWKS: {exc}") from None
        try:
            try:
                decoded = self._jwt.decode(token, self._keys, algorithms=ALGORITHMS)
            except InvalidKeyIdError:
                await self._reload(forced=True)
                decoded = self._jwt.decode(token, self._keys, algorithms=ALGORITHMS)
        except (JoseError, ValueError, OSError) as exc:
            raise InvalidToken(f"the token's signature does not verify: {exc}") from None
        return self._check_claims(decoded.claims, now_ms)

    def _check_claims(self, claims: dict[str, Any], now_ms: int) -> ValidatedJwt:
        s = self.settings
        skew_ms = s.clock_skew_s * 1000
        exp, iat = claims.get("exp"), claims.get("iat")
        if not isinstance(exp, int | float):
            raise InvalidToken("no Expiration Time (exp) claim")
        if not isinstance(iat, int | float):
            raise InvalidToken("no Issued At (iat) claim")
        if now_ms - skew_ms >= exp * 1000:
            raise InvalidToken("the token has expired")
        nbf = claims.get("nbf")
        if isinstance(nbf, int | float) and now_ms + skew_ms < nbf * 1000:
            raise InvalidToken("the token is not valid yet (nbf)")
        if s.audience:
            aud = claims.get("aud")
            audiences = {aud} if isinstance(aud, str) else set(aud) if isinstance(aud, list) else set()
            if not audiences & set(s.audience):
                raise InvalidToken(f"audience {sorted(audiences)} is none of {list(s.audience)}")
        if s.issuer is not None and claims.get("iss") != s.issuer:
            raise InvalidToken(f"issuer {claims.get('iss')!r} is not {s.issuer!r}")
        principal = claims.get(s.sub_claim)
        if not isinstance(principal, str) or not principal.strip():
            raise InvalidToken(f"no {s.sub_claim} claim naming the principal")
        raw_scope = claims.get(s.scope_claim)
        if isinstance(raw_scope, str):
            scope = frozenset(raw_scope.split())
        elif isinstance(raw_scope, list):
            scope = frozenset(str(x) for x in raw_scope)
        else:
            scope = frozenset()
        return ValidatedJwt(principal, int(exp * 1000), scope)
