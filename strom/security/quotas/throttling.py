"""Throttling a client as Kafka does since KIP-219: the response says `throttle_time_ms` at once, then
the broker mutes the connection for that long (reads none of its requests), instead of holding the
response back. Handlers call these helpers with their request context; the connection does the muting
(`ctx.throttle(ms)`, strom.server.connection).

- `produce_throttle_ms(ctx)`: after a Produce request is appended (also for acks=0, which gets no
  response but is muted all the same), its size counts against producer_byte_rate; the answer is the
  longer of that throttle and the request_percentage one (not for acks=0), as in Kafka's
  handleProduceRequest.
- `fetch_max_bytes(ctx, max_bytes)` before a consumer's Fetch reads (the most one quota window allows, as
  Kafka's getMaxValueInQuotaWindow), `consumer_fetch_throttle_ms(ctx, size)` once its response size is
  known: the size counts against consumer_byte_rate and the handler time against request_percentage; when
  either throttles, the size is taken back and the fetch is answered empty (Kafka's handleFetchRequest
  with FetchContext.getThrottledResponse). Follower fetches are never throttled here (replication quotas
  are Kafka's other mechanism).
- `request_throttle_ms(ctx)`: the request_percentage throttle of a response encoded by hand (Metadata),
  Kafka's sendResponseMaybeThrottle.
- `mutation_quota(ctx, strict_since)` for CreateTopics, CreatePartitions and DeleteTopics
  (controller_mutation_rate, KIP-599), then `mutation_throttle_ms(ctx, quota)` when the response is built.
- `OnLoopTimer`: wraps a handler's coroutine and adds up the time its steps run on the event loop, for
  request_percentage (strom.security.quotas.manager says how that maps to Kafka's thread time).
  `RequestTimeQuota` records it: once, when the handler asks (`ctx.request_throttle()`, Kafka's
  ClientRequestQuotaManager.maybeRecordAndGetThrottleTimeMs while building the response), with the
  handler's later time counted without throttling (as Kafka records network thread time); or, for a
  handler that never asks, all of it when the handler returns.
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
    "RequestTimeQuota",
    "consumer_fetch_throttle_ms",
    "fetch_max_bytes",
    "measures_fetch_bytes",
    "mutation_quota",
    "mutation_throttle_ms",
    "produce_throttle_ms",
    "request_throttle_ms",
]


def produce_throttle_ms(ctx: RequestContext, *, acks: int = 1) -> int:
    """producer_byte_rate, then (except for acks=0) request_percentage: the longer throttle, for which the
    connection is muted."""
    quotas = getattr(ctx.broker, "quotas", None)
    bandwidth = 0
    if quotas is not None:
        bandwidth = quotas.record_produce(ctx.principal.name, ctx.client_id, ctx.request_size)
    request = 0 if acks == 0 else ctx.request_throttle()
    ms = int(max(bandwidth, request))
    if ms > 0:
        ctx.throttle(ms)
    return ms


def request_throttle_ms(ctx: RequestContext) -> int:
    """request_percentage for a response built by hand: the throttle it carries (the connection is
    muted for it)."""
    ms = ctx.request_throttle()
    if ms > 0:
        ctx.throttle(ms)
    return ms


def fetch_max_bytes(ctx: RequestContext, max_bytes: int) -> int:
    quotas = getattr(ctx.broker, "quotas", None)
    if quotas is None:
        return max_bytes
    cap = quotas.max_bytes_in_window(CONSUMER_BYTE_RATE, ctx.principal.name, ctx.client_id)
    return max_bytes if cap is None else min(max_bytes, cap)


def measures_fetch_bytes(ctx: RequestContext) -> bool:
    """Does any consumer_byte_rate quota exist (else a fetch's size need not be known)?"""
    quotas = getattr(ctx.broker, "quotas", None)
    return quotas is not None and bool(quotas.enabled(CONSUMER_BYTE_RATE))


def consumer_fetch_throttle_ms(ctx: RequestContext, response_size: int) -> int:
    """A consumer's Fetch whose response would be `response_size` bytes: its handler time so far counts
    against request_percentage and the size against consumer_byte_rate. When either throttles, the size
    is taken back (the fetch will be answered empty, so the client is charged nothing for it), the
    connection is muted for the longer throttle, and that is answered; else 0."""
    request = ctx.request_throttle()
    quotas = getattr(ctx.broker, "quotas", None)
    if quotas is None:
        bandwidth = 0
    else:
        bandwidth = quotas.record_fetch(ctx.principal.name, ctx.client_id, response_size)
    ms = int(max(bandwidth, request))
    if ms > 0:
        if quotas is not None:
            quotas.unrecord_fetch(ctx.principal.name, ctx.client_id, response_size)
        ctx.throttle(ms)
    return ms


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
    which is when it holds the event loop) to `elapsed` (seconds). `so_far()` is that time including the
    step running now."""

    __slots__ = ("_coro", "_step_start", "elapsed")

    def __init__(self, coro: Coroutine[Any, Any, Any]) -> None:
        self._coro = coro
        self._step_start: float | None = None
        self.elapsed = 0.0

    def so_far(self) -> float:
        start = self._step_start
        return self.elapsed + (0.0 if start is None else time.perf_counter() - start)

    def __await__(self) -> Generator[Any, Any, Any]:
        coro = self._coro
        value: Any = None
        error: BaseException | None = None
        clock = time.perf_counter
        while True:
            start = self._step_start = clock()
            try:
                yielded = coro.send(value) if error is None else coro.throw(error)
            except StopIteration as stop:
                self.elapsed += clock() - start
                self._step_start = None
                return stop.value
            except BaseException:
                self.elapsed += clock() - start
                self._step_start = None
                raise
            self.elapsed += clock() - start
            self._step_start = None
            value, error = None, None
            try:
                value = yield yielded
            except BaseException as exc:  # cancellation goes on into the handler
                error = exc


class RequestTimeQuota:
    """request_percentage for one request: `record()` (the handler's `ctx.request_throttle`) counts the
    handler's time on the loop so far and answers the throttle, once; `finish()` when the handler has
    returned counts the rest, and answers a throttle only if the handler never asked (then the connection
    throttles and writes it into the response where it can)."""

    __slots__ = ("_client_id", "_quotas", "_recorded", "_user", "timer")

    def __init__(self, quotas: Any, user: str, client_id: str | None) -> None:
        self._quotas = quotas
        self._user = user
        self._client_id = client_id
        self._recorded: float | None = None
        self.timer: OnLoopTimer | None = None

    def record(self) -> int:
        if self._recorded is not None or self.timer is None:
            return 0
        self._recorded = self.timer.so_far()
        return int(self._quotas.record_request_time(self._user, self._client_id, self._recorded))

    def finish(self) -> int:
        assert self.timer is not None
        elapsed = self.timer.elapsed
        if self._recorded is None:
            return int(self._quotas.record_request_time(self._user, self._client_id, elapsed))
        rest = elapsed - self._recorded
        if rest > 0:
            self._quotas.record_request_time(self._user, self._client_id, rest)  # counted, never throttles
        return 0
