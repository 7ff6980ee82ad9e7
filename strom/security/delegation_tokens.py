"""Delegation tokens (KIP-48, KIP-373): what a token is, its HMAC, and Kafka 4.4's rules for creating,
renewing, expiring, describing and authenticating with one.

A token is `TokenInformation` (id, owner, requester, renewers, issue/max/expiry timestamps in ms). Its
secret is never stored: the HMAC-SHA512 of the token id under `delegation.token.secret.key` (Kafka's
DelegationTokenManager.createHmac), so every broker sharing the key derives it. A client authenticates
with SCRAM as user = token id, password = base64(HMAC) and the extension `tokenauth=true`; the SCRAM
credential of that password (4096 iterations, a random salt, as Kafka's token cache prepares it) is made
on first use and kept per token and mechanism.

Settings (`TokenSettings.from_config`): `delegation.token.secret.key` (none: every request answers
DELEGATION_TOKEN_AUTH_DISABLED), `delegation.token.max.lifetime.ms` (7 days),
`delegation.token.expiry.time.ms` (the renew period, 1 day) and
`delegation.token.expiry.check.interval.ms` (how often expired tokens are removed, 1 hour).

`TokenManager` applies the rules of Kafka's DelegationTokenControlManager over a `TokenStore`
(strom.security.token_store): create (renewers must be `User` principals: INVALID_PRINCIPAL_TYPE; the
lifetime is the smaller of the request's and the max), renew and expire (by HMAC: DELEGATION_TOKEN_NOT_FOUND;
only the owner, requester or a renewer: DELEGATION_TOKEN_OWNER_MISMATCH; past expiry or max:
DELEGATION_TOKEN_EXPIRED; a negative expiry period removes the token now), and `remove_expired()`, run
every check interval by `run_expiry()`.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol

from strom.protocol.errors import ErrorCode, KafkaError
from strom.security.principal import USER_TYPE, KafkaPrincipal
from strom.security.scram_credentials import (
    SCRAM_MECHANISMS,
    ScramCredential,
    make_credential,
    salted_password,
    secure_random_string,
)

__all__ = [
    "TokenInformation",
    "TokenManager",
    "TokenSettings",
    "TokenStore",
    "token_hmac",
]

log = logging.getLogger("strom.security.delegation_tokens")

DEFAULT_MAX_LIFETIME_MS = 7 * 24 * 3600 * 1000
DEFAULT_RENEW_MS = 24 * 3600 * 1000
DEFAULT_CHECK_INTERVAL_MS = 3600 * 1000


@dataclass(frozen=True, slots=True)
class TokenInformation:
    token_id: str
    owner: KafkaPrincipal
    requester: KafkaPrincipal
    renewers: tuple[KafkaPrincipal, ...]
    issue_ms: int
    max_ms: int
    expiry_ms: int

    def owner_or_renewer(self, principal: KafkaPrincipal) -> bool:
        """Kafka's TokenInformation.ownerOrRenewer (the requester counts since KIP-373)."""
        return principal in (self.owner, self.requester) or principal in self.renewers


class TokenStore(Protocol):
    async def all(self) -> dict[str, TokenInformation]: ...

    async def put(self, token: TokenInformation) -> None: ...

    async def remove(self, token_id: str) -> None: ...


def token_hmac(secret_key: str, token_id: str) -> bytes:
    """HmacSHA512(key = the secret key's UTF-8 bytes, message = the token id's), as Kafka computes it."""
    return hmac.new(secret_key.encode("utf-8"), token_id.encode("utf-8"), hashlib.sha512).digest()


@dataclass(frozen=True, slots=True)
class TokenSettings:
    secret_key: str | None = None
    max_lifetime_ms: int = DEFAULT_MAX_LIFETIME_MS
    renew_ms: int = DEFAULT_RENEW_MS
    check_interval_ms: int = DEFAULT_CHECK_INTERVAL_MS

    @property
    def enabled(self) -> bool:
        return bool(self.secret_key)

    @classmethod
    def from_config(cls, config: Any) -> TokenSettings:
        secret = config.get("delegation.token.secret.key")
        # a PASSWORD config may come back wrapped; the key is its plain text
        secret = getattr(secret, "value", secret)
        return cls(
            secret_key=str(secret) if secret else None,
            max_lifetime_ms=int(config.get("delegation.token.max.lifetime.ms")),
            renew_ms=int(config.get("delegation.token.expiry.time.ms")),
            check_interval_ms=int(config.get("delegation.token.expiry.check.interval.ms")),
        )


@dataclass(frozen=True, slots=True)
class Created:
    code: ErrorCode
    token: TokenInformation | None = None
    hmac: bytes = b""


class TokenManager:
    """The tokens of one broker: `store` keeps them in this mode's place, `clock_ms` is injected."""

    def __init__(self, settings: TokenSettings, store: TokenStore, clock_ms: Callable[[], int]) -> None:
        self.settings = settings
        self.store = store
        self._clock_ms = clock_ms
        # (token id, mechanism) -> (issue time, credential): credentials are derived once per token
        self._credentials: dict[tuple[str, str], tuple[int, ScramCredential]] = {}

    @property
    def enabled(self) -> bool:
        return self.settings.enabled

    def hmac_of(self, token_id: str) -> bytes:
        assert self.settings.secret_key is not None
        return token_hmac(self.settings.secret_key, token_id)

    async def _by_hmac(self, mac: bytes) -> TokenInformation | None:
        for token in (await self.store.all()).values():
            if hmac.compare_digest(self.hmac_of(token.token_id), mac):
                return token
        return None

    async def create(
        self,
        requester: KafkaPrincipal,
        owner: KafkaPrincipal,
        renewers: Sequence[KafkaPrincipal],
        max_lifetime_ms: int,
    ) -> Created:
        if not self.enabled:
            return Created(ErrorCode.delegation_token_auth_disabled)
        if any(r.principal_type != USER_TYPE for r in renewers):
            return Created(ErrorCode.invalid_principal_type)
        now = self._clock_ms()
        lifetime = self.settings.max_lifetime_ms
        if max_lifetime_ms > 0:
            lifetime = min(lifetime, max_lifetime_ms)
        max_ms = now + lifetime
        token = TokenInformation(
            token_id=_random_token_id(), owner=owner, requester=requester, renewers=tuple(renewers),
            issue_ms=now, max_ms=max_ms, expiry_ms=min(max_ms, now + self.settings.renew_ms),
        )
        await self.store.put(token)
        return Created(ErrorCode.none, token, self.hmac_of(token.token_id))

    async def _checked(
        self, principal: KafkaPrincipal, mac: bytes
    ) -> tuple[ErrorCode, TokenInformation | None]:
        if not self.enabled:
            return ErrorCode.delegation_token_auth_disabled, None
        token = await self._by_hmac(mac)
        if token is None:
            return ErrorCode.delegation_token_not_found, None
        if not token.owner_or_renewer(principal):
            return ErrorCode.delegation_token_owner_mismatch, None
        now = self._clock_ms()
        if token.max_ms < now or token.expiry_ms < now:
            return ErrorCode.delegation_token_expired, None
        return ErrorCode.none, token

    async def renew(self, principal: KafkaPrincipal, mac: bytes, period_ms: int) -> tuple[ErrorCode, int]:
        """-> (error, new expiry timestamp or -1); a negative period renews by the default period."""
        code, token = await self._checked(principal, mac)
        if token is None:
            return code, -1
        period = self.settings.renew_ms if period_ms < 0 else period_ms
        expiry = min(token.max_ms, self._clock_ms() + period)
        await self.store.put(replace(token, expiry_ms=expiry))
        return ErrorCode.none, expiry

    async def expire(self, principal: KafkaPrincipal, mac: bytes, period_ms: int) -> tuple[ErrorCode, int]:
        """-> (error, new expiry timestamp or -1); a negative period removes the token at once."""
        code, token = await self._checked(principal, mac)
        if token is None:
            return code, -1
        now = self._clock_ms()
        if period_ms < 0:
            await self.store.remove(token.token_id)
            self._forget(token.token_id)
            return ErrorCode.none, now
        expiry = min(token.max_ms, now + period_ms)
        await self.store.put(replace(token, expiry_ms=expiry))
        return ErrorCode.none, expiry

    async def tokens(self) -> list[TokenInformation]:
        return sorted((await self.store.all()).values(), key=lambda t: (t.issue_ms, t.token_id))

    async def remove_expired(self) -> list[str]:
        """Removes the tokens past their expiry; -> their ids."""
        now = self._clock_ms()
        gone = [t.token_id for t in (await self.store.all()).values() if t.expiry_ms < now]
        for token_id in gone:
            await self.store.remove(token_id)
            self._forget(token_id)
        return gone

    async def run_expiry(self) -> None:
        """Removes expired tokens every check interval until cancelled."""
        while True:
            await asyncio.sleep(self.settings.check_interval_ms / 1000)
            try:
                removed = await self.remove_expired()
            except KafkaError:
                continue  # not the active controller (KRaft): the active one removes them
            except Exception:  # the store may be briefly unreachable (ZooKeeper); try next interval
                log.exception("could not remove expired delegation tokens")
                continue
            if removed:
                log.info("removed %d expired delegation token(s)", len(removed))

    def _forget(self, token_id: str) -> None:
        for key in [k for k in self._credentials if k[0] == token_id]:
            del self._credentials[key]

    async def scram_lookup(self, token_id: str, mechanism: str) -> tuple[ScramCredential, str, int] | None:
        """For SCRAM's `tokenauth`: (credential, owner name, expiry ms) of a live token, else None."""
        if not self.enabled:
            return None
        token = (await self.store.all()).get(token_id)
        if token is None or token.expiry_ms < self._clock_ms():
            return None
        cached = self._credentials.get((token_id, mechanism))
        if cached is None or cached[0] != token.issue_ms:
            spec = SCRAM_MECHANISMS[mechanism]
            password = base64.b64encode(self.hmac_of(token_id)).decode("ascii")
            salt = secure_random_string().encode("ascii")  # ScramFormatter.salt()
            salted = await asyncio.to_thread(salted_password, spec, password, salt, spec.min_iterations)
            cached = (token.issue_ms, make_credential(spec, salted, salt, spec.min_iterations))
            self._credentials[(token_id, mechanism)] = cached
        return cached[1], token.owner.name, token.expiry_ms


def _random_token_id() -> str:
    """Kafka's Uuid.randomUuid().toString(): URL-safe base64 of 16 random bytes, no padding, never
    starting with '-' (Kafka draws again, so an id is never read as a command-line flag)."""
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode("ascii")
        if not text.startswith("-"):
            return text
