"""SASL/OAUTHBEARER (RFC 7628, KIP-255) as Kafka's OAuthBearerSaslServer serves it, with Kafka's default
server callback: the unsecured-JWS validator (strom.security.sasl.unsecured_jws), meant for tests.

The client's initial response is `n,[a=authzid],\\x01auth=Bearer <token>\\x01[key=value\\x01...]\\x01`
(Kafka's OAuthBearerClientInitialResponse; extra key=value pairs are SASL extensions, which the unsecured
validator accepts). A valid token completes the exchange with the principal from its claim; its `exp`
bounds the session (SaslAuthenticate v1+ `session_lifetime_ms`, KIP-368), even when
`connections.max.reauth.ms` is 0. An invalid token is answered, as RFC 7628 says, with a JSON challenge
(`{"status":"invalid_token"}`, or `insufficient_scope` with the missing scope); the client acknowledges
with a single 0x01 byte and then gets SASL_AUTHENTICATION_FAILED carrying that JSON.

A listener configured with Kafka's OAuthBearerValidatorCallbackHandler validates signed JWTs against its
JWKS instead (KIP-768, strom.security.sasl.jwt_validator); the exchange is the same.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from strom.security.sasl import SaslAuthenticationError, SaslError
from strom.security.sasl.unsecured_jws import InvalidToken, UnsecuredToken, validate_unsecured

if TYPE_CHECKING:
    from strom.security.sasl.jwt_validator import JwtValidator, ValidatedJwt

__all__ = ["LOGIN_MODULE", "OAuthBearerServer", "oauthbearer_client_token"]

log = logging.getLogger("strom.security.sasl.oauthbearer")

LOGIN_MODULE = "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule"
MECHANISM = "OAUTHBEARER"
_SASLNAME = r"(?:[\x01-\x2B\x2D-\x3C\x3E-\x7F]|=2C|=3D)+"
_KVPAIRS = r"(?:[A-Za-z]+=[\x21-\x7E \t\r\n]+\x01)*"
_INITIAL = re.compile(rf"n,(?:a=(?P<authzid>{_SASLNAME}))?,\x01(?P<kvpairs>{_KVPAIRS})\x01")
_AUTH = re.compile(r"(?P<scheme>\w+) +(?P<token>[-_.a-zA-Z0-9]+)")


class OAuthBearerServer:
    """One connection's OAUTHBEARER exchange, validating unsecured JWS tokens with the JAAS `options`, or
    signed JWTs with the listener's `jwt_validator`."""

    mechanism = MECHANISM

    def __init__(
        self,
        options: Mapping[str, str],
        clock_ms: Callable[[], int],
        jwt_validator: JwtValidator | None = None,
    ) -> None:
        self._options = options
        self._clock_ms = clock_ms
        self._jwt_validator = jwt_validator
        self._error: str | None = None
        self._principal: str | None = None
        self.credential_expiration_ms: int | None = None

    @property
    def complete(self) -> bool:
        return self._principal is not None

    @property
    def authorization_id(self) -> str:
        if self._principal is None:
            raise RuntimeError("Authentication exchange has not completed")
        return self._principal

    async def evaluate(self, token: bytes) -> bytes | None:
        if token == b"\x01" and self._error is not None:
            raise SaslAuthenticationError(self._error)
        self._error = None
        match = _INITIAL.fullmatch(token.decode("utf-8", errors="replace"))
        if match is None:
            raise SaslError("Invalid OAUTHBEARER client first message")
        pairs = dict(p.split("=", 1) for p in match["kvpairs"].split("\x01") if p)
        auth = pairs.get("auth")
        if auth is None:
            raise SaslError("Invalid OAUTHBEARER client first message: 'auth' not specified")
        auth_match = _AUTH.fullmatch(auth)
        if auth_match is None:
            raise SaslError("Invalid OAUTHBEARER client first message: invalid 'auth' format")
        if auth_match["scheme"].lower() != "bearer":
            raise SaslError(f"Invalid scheme in OAUTHBEARER client first message: {auth_match['scheme']}")
        try:
            if self._jwt_validator is not None:
                jws: UnsecuredToken | ValidatedJwt = await self._jwt_validator.validate(
                    auth_match["token"], self._clock_ms()
                )
            else:
                jws = validate_unsecured(auth_match["token"], self._options, self._clock_ms())
        except (InvalidToken, ValueError) as exc:
            scope = exc.scope if isinstance(exc, InvalidToken) else None
            log.debug("OAUTHBEARER token refused: %s", exc)
            status = "insufficient_scope" if scope is not None else "invalid_token"
            extra = f', "scope":"{scope}"' if scope is not None else ""
            self._error = f'{{"status":"{status}"{extra}}}'
            return self._error.encode("utf-8")
        authzid = match["authzid"] or ""
        if authzid and authzid != jws.principal_name:
            raise SaslAuthenticationError(
                f"Authentication failed: Client requested an authorization id ({authzid}) that is different "
                f"from the token's principal name ({jws.principal_name})"
            )
        self._principal = jws.principal_name
        self.credential_expiration_ms = jws.lifetime_ms
        return b""


def oauthbearer_client_token(token: str) -> bytes:
    """The client's initial response carrying `token` (no authorization id, no extensions)."""
    return f"n,,\x01auth=Bearer {token}\x01\x01".encode()
