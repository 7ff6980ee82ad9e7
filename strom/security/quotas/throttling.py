"""Throttling a client as Kafka does since KIP-219: the response says `throttle_time_ms` at once, then
the broker mutes the connection for that long (reads none of its requests), instead of holding the
response back. Handlers call these helpers with their request context; the connection does the muting
(`ctx.throttle(ms)`, strom.server.connection).

- `produce_throttle_ms(ctx)`: after a Produce request is appended (also for acks=0, which gets no
  response but is muted all the same), its size counts against producer_byte_rate.
- `fetch_max_bytes(ctx, max_bytes)` before a consumer's Fetch reads, `fetch_throttle_ms(ctx, size)` once
  its response size is known (consumer_byte_rate). Follower fetches are never throttled here (replication
  quotas are Kafka's other mechanism).
- `mutation_quota(ctx, strict_since)` for CreateTopics, CreatePartitions and DeleteTopics
  (controller_mutation_rate, KIP-599), then `mutation_throttle_ms(ctx, quota)` when the response is built.
- `OnLoopTimer`: wraps a handler's coroutine and adds up the time its steps run on the event loop, for
  request_percentage (strom.security.quotas.manager says how that maps to Kafka's thread time).
"""

from __future__ import annotations

import time
from collections.abc import Coroutine, Generator
from typing import TYPE_CHECKING, Any

from strom.security.quotas.controller_mutation import UNBOUNDED, MutationQuota
from strom.security.quotas.entities import CONSUMER_BYTE_RATE

if TYPE_CHECKING:
    from strom.server.context import RequestContext

__all__ = [
    "OnLoopTimer",
    "fetch_max_bytes",
    "fetch_throttle_ms",
    "mutation_quota",
    "mutation_throttle_ms",
    "produce_throttle_ms",
]


def produce_throttle_ms(ctx: RequestContext) -> int:
    quotas = getattr(ctx.broker, "quotas", None)
    if quotas is None:
        return 0
    ms = quotas.record_produce(ctx.principal.name, ctx.client_id, ctx.request_size)
    if ms > 0:
        ctx.throttle(ms)
    return int(ms)


def fetch_max_bytes(ctx: RequestContext, max_bytes: int) -> int:
    quotas = getattr(ctx.broker, "quotas", None)
    if quotas is None:
        return max_bytes
    cap = quotas.max_bytes_in_window(CONSUMER_BYTE_RATE, ctx.principal.name, ctx.client_id)
    return max_bytes if cap is None else min(max_bytes, cap)


def fetch_throttle_ms(ctx: RequestContext, size: int) -> int:
    quotas = getattr(ctx.broker, "quotas", None)
    if quotas is None:
        return 0
    ms = quotas.record_fetch(ctx.principal.name, ctx.client_id, size)
    if ms > 0:
        ctx.throttle(ms)
    return int(ms)


def mutation_quota(ctx: RequestContext, strict_since: int) -> MutationQuota:
    """The request's controller mutation quota: strict from version `strict_since` on, permissive below."""
    quotas = getattr(ctx.broker, "quotas", None)
    if quotas is None:
        return UNBOUNDED
    strict = ctx.api_version >= strict_since
    return quotas.controller_mutation_quota(ctx.principal.name, ctx.client_id, strict=strict)  # type: ignore[no-any-return]


def mutation_throttle_ms(ctx: RequestContext, quota: MutationQuota) -> int:
    """The throttle time the response carries (the connection is muted for it)."""
    ms = quota.throttle_ms
    if ms > 0:
        ctx.throttle(ms)
    return ms


class OnLoopTimer:
    """Awaits a coroutine, adding the wall time of each of its steps (the stretches between awaits,
    which is when it holds the event loop) to `elapsed` (seconds)."""

    __slots__ = ("_coro", "elapsed")

    def __init__(self, coro: Coroutine[Any, Any, Any]) -> None:
        self._coro = coro
        self.elapsed = 0.0

    def __await__(self) -> Generator[Any, Any, Any]:
        coro = self._coro
        value: Any = None
        error: BaseException | None = None
        clock = time.perf_counter
        while True:
            start = clock()
            try:
                yielded = coro.send(value) if error is None else coro.throw(error)
            except StopIteration as stop:
                self.elapsed += clock() - start
                return stop.value
            except BaseException:
                self.elapsed += clock() - start
                raise
            self.elapsed += clock() - start
            value, error = None, None
            try:
                value = yield yielded
            except BaseException as exc:  # cancellation goes on into the handler
                error = exc
