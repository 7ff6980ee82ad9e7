"""Connection limits, as Kafka's ConnectionQuotas applies them when a connection is accepted (KIP-308,
KIP-402, KIP-612).

- `max.connections.per.ip` and `max.connections.per.ip.overrides` (`host:count,...`): a new connection
  from an address that already has its maximum is closed at once (Kafka's TooManyConnectionsException);
  the other connections of that address, and everybody else, are served.
- `max.connections` (broker-wide) and `listener.name.<listener>.max.connections`: when a limit is
  reached, new connections wait until one closes (Kafka's acceptor stops accepting meanwhile). The
  inter-broker listener is not held back by the broker-wide limit while other listeners exist (Kafka's
  protected listener), only by its own.
- `max.connection.creation.rate` (broker-wide, not for the inter-broker listener) and
  `listener.name.<listener>.max.connection.creation.rate`: new connections per second over a sampled
  window (strom.security.quotas.rate); a connection over the rate waits until the rate is back under it,
  at most one quota window per connection (Kafka's bounded throttle time).
- `connection_creation_rate` quotas of IPs (AlterClientQuotas with an `ip` entity, or the default IP): a
  connection over its IP's rate is held for the throttle time and then closed (Kafka's
  ConnectionThrottledException and delayed close); it is not counted.

Asyncio accepts for us, so "waits" means the accepted connection is left unread until it may proceed:
the client sees a connection that does not answer yet, as with Kafka's backlogged accept. Limits are read
from the broker's config on every connection, so dynamic changes apply to the next one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Callable
from typing import Any

from strom.security.quotas.rate import Rate

__all__ = ["ConnectionLimits", "Verdict"]

log = logging.getLogger("strom.connection_limits")

INT_MAX = 2**31 - 1


class Verdict:
    ACCEPT = "accept"
    CLOSE = "close"  # over the per-IP count: close now (counted until released)
    THROTTLED = "throttled"  # over the IP's creation rate: close after a delay (not counted)


class ConnectionLimits:
    """Counts of open connections per address, per listener and in all; creation rates."""

    def __init__(
        self,
        config: Any,
        inter_broker_listener: str,
        listener_names: tuple[str, ...],
        *,
        ip_rate: Callable[[str], float | None] = lambda _ip: None,
        clock_ms: Callable[[], int],
    ) -> None:
        self._config = config
        self._inter_broker = inter_broker_listener
        self._listener_names = listener_names
        self._ip_rate = ip_rate
        self._clock_ms = clock_ms
        self._per_ip: dict[str, int] = {}
        self._per_listener: dict[str, int] = dict.fromkeys(listener_names, 0)
        self._total = 0
        self._changed = asyncio.Condition()
        self._broker_rate = Rate(samples=self._samples, window_ms=self._window_ms)
        self._listener_rates: dict[str, Rate] = {}
        self._ip_rates: dict[str, Rate] = {}
        self._overrides_raw: str | None = None
        self._overrides: dict[str, int] = {}

    # --- settings ---------------------------------------------------------------------------------
    def _get(self, key: str, default: int = INT_MAX) -> int:
        try:
            value = self._config.get(key)
        except KeyError:
            return default
        try:
            return int(value) if value is not None else default
        except (TypeError, ValueError):
            return default

    @property
    def _samples(self) -> int:
        return self._get("quota.window.num", 11)

    @property
    def _window_ms(self) -> int:
        return self._get("quota.window.size.seconds", 1) * 1000

    def _listener_key(self, listener: str, key: str) -> int:
        return self._get(f"listener.name.{listener.lower()}.{key}")

    def _max_per_ip(self, ip: str) -> int:
        raw = str(self._get_raw("max.connections.per.ip.overrides") or "")
        if raw != self._overrides_raw:
            self._overrides_raw, self._overrides = raw, _parse_overrides(raw)
        return self._overrides.get(ip, self._get("max.connections.per.ip"))

    def _get_raw(self, key: str) -> Any:
        try:
            return self._config.get(key)
        except KeyError:
            return None

    def _protected(self, listener: str) -> bool:
        return listener == self._inter_broker and len(self._listener_names) > 1

    def _slot_available(self, listener: str) -> bool:
        if self._per_listener.get(listener, 0) >= self._listener_key(listener, "max.connections"):
            return False
        return self._protected(listener) or self._total < self._get("max.connections")

    # --- rates ------------------------------------------------------------------------------------
    def _rate_throttle_ms(self, listener: str, now_ms: int) -> int:
        cap = self._window_ms
        throttle = 0
        if not self._protected(listener):
            self._broker_rate.bound = float(self._get("max.connection.creation.rate"))
            throttle = self._broker_rate.record(1.0, now_ms, max_throttle_ms=cap)
        limit = self._listener_key(listener, "max.connection.creation.rate")
        if limit < INT_MAX or listener in self._listener_rates:
            rate = self._listener_rates.setdefault(listener, Rate(samples=self._samples, window_ms=cap))
            rate.bound = float(limit)
            throttle = max(throttle, rate.record(1.0, now_ms, max_throttle_ms=cap))
        return throttle

    def _ip_throttle_ms(self, ip: str, now_ms: int) -> int:
        limit = self._ip_rate(ip)
        if limit is None:
            self._ip_rates.pop(ip, None)
            return 0
        rate = self._ip_rates.setdefault(ip, Rate(samples=self._samples, window_ms=self._window_ms))
        rate.bound = float(limit)
        throttle = rate.record(1.0, now_ms, max_throttle_ms=self._window_ms)
        if throttle > 0:
            rate.unrecord(1.0, now_ms)  # a refused connection does not count
        return throttle

    # --- admission --------------------------------------------------------------------------------
    async def admit(self, listener: str, ip: str) -> tuple[str, int]:
        """Wait for a slot under the broker-wide and listener limits and rates, then (verdict, delay ms):
        ACCEPT and CLOSE are counted (call `release` when the connection ends); THROTTLED is not."""
        async with self._changed:
            start = self._clock_ms()
            end = start + self._rate_throttle_ms(listener, start)
            while True:
                remaining = end - self._clock_ms()
                if remaining <= 0 and self._slot_available(listener):
                    break
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), max(remaining, 0) / 1000 or None)
            now = self._clock_ms()
            throttle = self._ip_throttle_ms(ip, now)
            if throttle > 0:
                return Verdict.THROTTLED, throttle
            count = self._per_ip.get(ip, 0)
            self._per_ip[ip] = count + 1
            self._per_listener[listener] = self._per_listener.get(listener, 0) + 1
            self._total += 1
            if count >= self._max_per_ip(ip):
                return Verdict.CLOSE, 0
            return Verdict.ACCEPT, 0

    async def release(self, listener: str, ip: str) -> None:
        async with self._changed:
            left = self._per_ip.get(ip, 0) - 1
            if left > 0:
                self._per_ip[ip] = left
            else:
                self._per_ip.pop(ip, None)
            self._per_listener[listener] = max(self._per_listener.get(listener, 0) - 1, 0)
            self._total = max(self._total - 1, 0)
            self._changed.notify_all()

    def count(self, ip: str) -> int:
        return self._per_ip.get(ip, 0)


def _parse_overrides(raw: str) -> dict[str, int]:
    """`host:count,...` with hosts resolved to addresses (Kafka's InetAddress.getByName)."""
    out: dict[str, int] = {}
    for item in raw.split(","):
        item = item.strip()
        if not item:
            continue
        host, _, count = item.rpartition(":")
        try:
            limit = int(count)
        except ValueError:
            log.warning("ignoring max.connections.per.ip.overrides entry %r", item)
            continue
        out[host] = limit
        with contextlib.suppress(OSError):
            for info in socket.getaddrinfo(host, None):
                out.setdefault(str(info[4][0]), limit)
    return out
