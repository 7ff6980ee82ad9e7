"""The broker's client quota manager: who is over which quota, and for how long to throttle them
(Kafka's ClientQuotaManager and ClientRequestQuotaManager, KIP-13, KIP-55, KIP-124, KIP-219).

One table of quotas (from the mode's store, strom.security.quotas.store) and one windowed rate
(strom.security.quotas.rate) per quota key and budget: the budget is the (user, client-id) tags the
matching entity gives (strom.security.quotas.entities.resolve), so the clients of a user quota share one
rate while a default entity gives each user or client its own. `record(key, user, client_id, value)`
adds to the budget's rate and answers the throttle time: 0 within the quota, else how long the client
must stay silent for its rate to fall back to the quota. A client no quota names is not measured at all.

What is measured, as Kafka measures it:
- producer_byte_rate: the size of each Produce request (header and body), once it is appended;
- consumer_byte_rate: the size of a consumer's Fetch response (header and body, as Kafka's
  FetchContext.getResponseSize counts it); a fetch that is then throttled is answered empty and its size
  taken back (`unrecord_fetch`). A single fetch is capped at what fits the quota's window
  (`max_bytes_in_window`, quota x (quota.window.num - 1) x window);
- controller_mutation_rate: partitions created or deleted, in a token bucket rather than a windowed rate
  (`controller_mutation_quota`, strom.security.quotas.controller_mutation);
- request_percentage: Kafka counts the time a request spends on its network and I/O threads, as a
  percentage of one thread (100 = one thread's whole time). Strom serves every connection on one event
  loop, so it counts the time the request's handler runs on the loop (each step between awaits, not the
  time it spends waiting for replication, a fetch's min_bytes or a disk thread), plus nothing for the
  network, whose work the loop does outside any handler. One loop doing nothing but a client's requests
  is 100%. A request throttle is capped at one window, as Kafka's is.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from strom.security.quotas.controller_mutation import UNBOUNDED, MutationQuota, TokenBucket
from strom.security.quotas.entities import (
    CONSUMER_BYTE_RATE,
    CONTROLLER_MUTATION_RATE,
    IP,
    PRODUCER_BYTE_RATE,
    REQUEST_PERCENTAGE,
    Quotas,
    ip_rate,
    resolve,
)
from strom.security.quotas.rate import Rate

__all__ = ["QuotaManager", "QuotaSettings"]

# a budget nobody used for an hour is forgotten (Kafka's INACTIVE_SENSOR_EXPIRATION_TIME_SECONDS)
_EXPIRY_MS = 3600 * 1000
_SWEEP_EVERY = 1024


@dataclass(frozen=True, slots=True)
class QuotaSettings:
    """quota.window.num and quota.window.size.seconds; controller.quota.window.* for the token buckets of
    controller mutation quotas."""

    samples: int = 11
    window_ms: int = 1000
    controller_samples: int = 11
    controller_window_ms: int = 1000

    @classmethod
    def from_config(cls, config: object) -> QuotaSettings:
        get = getattr(config, "get")  # noqa: B009 - a BrokerConfig, kept loose for tests
        return cls(
            int(get("quota.window.num")),
            int(get("quota.window.size.seconds")) * 1000,
            int(get("controller.quota.window.num")),
            int(get("controller.quota.window.size.seconds")) * 1000,
        )


class QuotaManager:
    """Client quotas of one broker: `load(quotas)` from the store, `record(...)` per request."""

    def __init__(
        self, settings: QuotaSettings | None = None, *, clock: Callable[[], float] = time.time
    ) -> None:
        self.settings = settings or QuotaSettings()
        self._clock = clock
        self._quotas: Quotas = {}
        self._keys: frozenset[str] = frozenset()
        self._rates: dict[tuple[str, str, str], tuple[Rate, list[int]]] = {}
        self._buckets: dict[tuple[str, str, str], TokenBucket] = {}
        self._records = 0

    # --- the table --------------------------------------------------------------------------------
    def load(self, quotas: Quotas) -> None:
        """Swap in every entity's quotas (a store's on_change)."""
        self._quotas = {e: dict(v) for e, v in quotas.items()}
        self._keys = frozenset(k for e, v in self._quotas.items() if not e.has(IP) for k in v)

    @property
    def quotas(self) -> Quotas:
        return self._quotas

    def enabled(self, key: str) -> bool:
        """Does any entity set `key`? (When none does, nothing is measured.)"""
        return key in self._keys

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)

    # --- measuring --------------------------------------------------------------------------------
    def _rate(self, key: str, user: str, client_id: str, now_ms: int) -> Rate | None:
        resolved = resolve(self._quotas, key, user, client_id)
        if resolved is None:
            return None
        budget = (key, resolved.user, resolved.client_id)
        entry = self._rates.get(budget)
        if entry is None:
            entry = (Rate(samples=self.settings.samples, window_ms=self.settings.window_ms), [now_ms])
            self._rates[budget] = entry
        rate, used = entry
        rate.bound = resolved.bound  # quotas change while budgets live on
        used[0] = now_ms
        return rate

    def record(self, key: str, user: str, client_id: str | None, value: float) -> int:
        """Add `value` to the budget of this user and client id; the throttle time in ms (0 within the
        quota, or when no quota applies)."""
        if key not in self._keys:
            return 0
        now_ms = self._now_ms()
        rate = self._rate(key, user, client_id or "", now_ms)
        if rate is None:
            return 0
        self._sweep(now_ms)
        cap = self.settings.window_ms if key == REQUEST_PERCENTAGE else None
        return rate.record(value, now_ms, max_throttle_ms=cap)

    def unrecord(self, key: str, user: str, client_id: str | None, value: float) -> None:
        """Take back `value` recorded before (Kafka's unrecordQuotaSensor: the value's negative goes into
        the current window). A consumer's Fetch answered empty because it is throttled gives its bytes
        back so."""
        if key not in self._keys:
            return
        now_ms = self._now_ms()
        rate = self._rate(key, user, client_id or "", now_ms)
        if rate is not None:
            rate.unrecord(value, now_ms)

    def controller_mutation_quota(self, user: str, client_id: str | None, *, strict: bool) -> MutationQuota:
        """The controller_mutation_rate quota of one CreateTopics, CreatePartitions or DeleteTopics request
        (strom.security.quotas.controller_mutation); unbounded when no quota applies."""
        if CONTROLLER_MUTATION_RATE not in self._keys:
            return UNBOUNDED
        resolved = resolve(self._quotas, CONTROLLER_MUTATION_RATE, user, client_id or "")
        if resolved is None:
            return UNBOUNDED
        budget = (CONTROLLER_MUTATION_RATE, resolved.user, resolved.client_id)
        bucket = self._buckets.get(budget)
        if bucket is None:
            burst_seconds = self.settings.controller_samples * self.settings.controller_window_ms / 1000
            bucket = self._buckets[budget] = TokenBucket(resolved.bound, burst_seconds)
        bucket.bound = resolved.bound  # quotas change while budgets live on
        return MutationQuota(bucket, strict, self._clock)

    def record_produce(self, user: str, client_id: str | None, size: int) -> int:
        return self.record(PRODUCER_BYTE_RATE, user, client_id, size)

    def record_fetch(self, user: str, client_id: str | None, size: int) -> int:
        return self.record(CONSUMER_BYTE_RATE, user, client_id, size)

    def unrecord_fetch(self, user: str, client_id: str | None, size: int) -> None:
        self.unrecord(CONSUMER_BYTE_RATE, user, client_id, size)

    def record_request_time(self, user: str, client_id: str | None, seconds: float) -> int:
        """`seconds` of handler time on the event loop, as a percentage of one second."""
        return self.record(REQUEST_PERCENTAGE, user, client_id, seconds * 100.0)

    def max_bytes_in_window(self, key: str, user: str, client_id: str | None) -> int | None:
        """The most one request may take without being throttled for sure, or None (no quota)."""
        if key not in self._keys:
            return None
        resolved = resolve(self._quotas, key, user, client_id or "")
        if resolved is None:
            return None
        seconds = (self.settings.samples - 1) * self.settings.window_ms / 1000
        return max(int(resolved.bound * seconds), 1)

    def ip_connection_rate(self, ip: str) -> float | None:
        """connection_creation_rate of an IP (its own entity, else the default IP), or None."""
        return ip_rate(self._quotas, ip)

    def _sweep(self, now_ms: int) -> None:
        self._records += 1
        if self._records % _SWEEP_EVERY:
            return
        stale = [b for b, (_r, used) in self._rates.items() if now_ms - used[0] > _EXPIRY_MS]
        for budget in stale:
            del self._rates[budget]
