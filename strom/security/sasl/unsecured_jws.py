"""Kafka's unsecured JWS tokens (OAuthBearerUnsecuredJws, OAuthBearerUnsecuredValidatorCallbackHandler,
OAuthBearerUnsecuredLoginCallbackHandler): JWTs with `"alg":"none"` and no signature, for tests and
development only, as Kafka documents them.

Validation, as Kafka's default OAUTHBEARER server callback does it: three dot-separated base64url parts,
the last empty; header `alg` must be `none`; an `exp` claim (seconds); the principal claim (`sub`, or the
JAAS option `unsecuredValidatorPrincipalClaimName`) a non-blank string; `iat`, when present, not after now
plus `unsecuredValidatorAllowableClockSkewMs`; now minus that skew before `exp`; `exp` after `iat`; every
scope of `unsecuredValidatorRequiredScope` in the token's scope claim (`scope`, or
`unsecuredValidatorScopeClaimName`: a string or a list). A failure is `InvalidToken(reason, scope)`; the
reason is for the broker's log only, the client learns just `invalid_token` or `insufficient_scope`.

`unsecured_login_token(options, now_ms)` makes the token Kafka's unsecured login module makes from
`unsecuredLoginStringClaim_<name>`, `unsecuredLoginNumberClaim_<name>`, `unsecuredLoginListClaim_<name>`
(first character is the separator), `unsecuredLoginPrincipalClaimName` and
`unsecuredLoginLifetimeSeconds` (default 3600), for brokers talking to each other.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["InvalidToken", "UnsecuredToken", "unsecured_login_token", "validate_unsecured"]


class InvalidToken(Exception):
    """The token fails validation; `scope` is set when a required scope is missing."""

    def __init__(self, reason: str, scope: str | None = None) -> None:
        super().__init__(reason)
        self.scope = scope


@dataclass(frozen=True, slots=True)
class UnsecuredToken:
    principal_name: str
    lifetime_ms: int
    start_time_ms: int | None
    scope: frozenset[str]


def _b64url_json(part: str) -> dict[str, Any]:
    try:
        raw = base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
    except (binascii.Error, ValueError):
        raise InvalidToken("malformed Base64 URL encoded value") from None
    try:
        doc = json.loads(raw)
    except (UnicodeDecodeError, ValueError):
        raise InvalidToken("malformed JSON") from None
    if not isinstance(doc, dict):
        raise InvalidToken("malformed JSON")
    return doc


def _number(claims: Mapping[str, Any], name: str) -> float | None:
    value = claims.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidToken(f"The '{name}' claim was not of type Number: {type(value).__name__}")
    return float(value)


def _scope(value: Any) -> frozenset[str]:
    if isinstance(value, str):
        return frozenset([value.strip()]) if value.strip() else frozenset()
    if isinstance(value, list):
        return frozenset(str(item).strip() for item in value if str(item).strip())
    return frozenset()


def _option(options: Mapping[str, str], key: str, default: str) -> str:
    value = (options.get(key) or "").strip()
    return value or default


def validate_unsecured(token: str, options: Mapping[str, str], now_ms: int) -> UnsecuredToken:
    """The token's principal and lifetime, or InvalidToken."""
    if ".." in token:
        raise InvalidToken("Malformed compact serialization contains '..'")
    parts = token.split(".")
    if len(parts) != 3:
        raise InvalidToken(
            "Unsecured JWS compact serializations must have 3 dot-separated Base64URL-encoded values"
        )
    header, claims = _b64url_json(parts[0]), _b64url_json(parts[1])
    if header.get("alg") != "none":
        raise InvalidToken("Unsecured JWS must have 'none' for an algorithm")
    if parts[2]:
        raise InvalidToken("Unsecured JWS must not contain a digital signature")
    principal_claim = _option(options, "unsecuredValidatorPrincipalClaimName", "sub")
    scope_claim = _option(options, "unsecuredValidatorScopeClaimName", "scope")
    skew_text = _option(options, "unsecuredValidatorAllowableClockSkewMs", "0")
    skew = int(skew_text)
    exp = _number(claims, "exp")
    if exp is None:
        raise InvalidToken("No expiration time in JWT")
    principal = claims.get(principal_claim)
    if not isinstance(principal, str) or not principal.strip():
        raise InvalidToken(f"No principal name in JWT claim: {principal_claim}")
    iat = _number(claims, "iat")
    if iat is not None and iat * 1000 > now_ms + skew:
        raise InvalidToken(f"The Issued At value ({iat} seconds) was after the indicated time ({now_ms} ms) "
                           f"plus allowable clock skew ({skew} ms)")
    if now_ms - skew >= exp * 1000:
        raise InvalidToken(f"The indicated time ({now_ms} ms) minus allowable clock skew ({skew} ms) was on "
                           f"or after the Expiration Time value ({exp} seconds)")
    if iat is not None and exp <= iat:
        raise InvalidToken(f"The Expiration Time time ({exp} seconds) was not after the Issued At time "
                           f"({iat} seconds)")
    scope = _scope(claims.get(scope_claim))
    required = (options.get("unsecuredValidatorRequiredScope") or "").split()
    missing = [item for item in required if item not in scope]
    if missing:
        raise InvalidToken(f"The provided scope ({sorted(scope)}) was missing a required scope ({missing})",
                           scope=" ".join(required))
    return UnsecuredToken(principal, round(exp * 1000), None if iat is None else round(iat * 1000), scope)


def _b64url(doc: Mapping[str, Any]) -> str:
    raw = json.dumps(doc, separators=(",", ":")).encode("utf-8")
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def unsecured_login_token(options: Mapping[str, str], now_ms: int) -> str:
    """The unsecured JWS Kafka's OAuthBearerUnsecuredLoginCallbackHandler builds from JAAS options."""
    claims: dict[str, Any] = {}
    for key, value in options.items():
        if key.startswith("unsecuredLoginStringClaim_"):
            claims[key.removeprefix("unsecuredLoginStringClaim_")] = value
        elif key.startswith("unsecuredLoginNumberClaim_"):
            number = float(value)
            name = key.removeprefix("unsecuredLoginNumberClaim_")
            claims[name] = int(number) if number.is_integer() else number
        elif key.startswith("unsecuredLoginListClaim_") and value:
            claims[key.removeprefix("unsecuredLoginListClaim_")] = [v for v in value[1:].split(value[0]) if v]
    principal_claim = _option(options, "unsecuredLoginPrincipalClaimName", "sub")
    if principal_claim not in claims:
        raise ValueError(f"Missing required principal claim: {principal_claim}")
    lifetime_s = int(_option(options, "unsecuredLoginLifetimeSeconds", "3600"))
    claims.setdefault("iat", now_ms / 1000)
    claims.setdefault("exp", now_ms / 1000 + lifetime_s)
    return f"{_b64url({'alg': 'none'})}.{_b64url(claims)}."
