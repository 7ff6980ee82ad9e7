"""Controller mutation quotas (KIP-599, `controller_mutation_rate`): how many partitions a user or client
may create or delete per second, as Kafka 4.4's ControllerMutationQuotaManager measures and enforces them.

The measure is Kafka's TokenBucket: a budget starts full with a burst of quota x
`controller.quota.window.num` x `controller.quota.window.size.seconds` tokens, refills at the quota per
second up to the burst, and each created or deleted partition takes one token (the bucket may go below
zero). A client whose bucket is below zero has exhausted its quota; the throttle time is how long the
refill takes to bring it back to zero (-tokens / quota, in ms).

Two kinds of quota per request, chosen by the request's version as Kafka chooses them (CreateTopics v6+,
CreatePartitions v3+, DeleteTopics v5+ are strict, older versions permissive):
- strict: a topic is refused with THROTTLING_QUOTA_EXCEEDED ("The throttling quota has been exceeded.")
  when the bucket is already below zero; otherwise its partitions are taken even if that empties the
  bucket, so one request is never refused for its own size;
- permissive: the partitions are always taken; once the bucket is below zero the response carries the
  throttle time (and the connection is muted for it), but nothing is refused.
Either way the response's throttle_time_ms is the throttle time left when it is sent.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from strom.protocol.errors import ErrorCode, KafkaError

__all__ = ["UNBOUNDED", "MutationQuota", "ThrottlingQuotaExceeded", "TokenBucket"]

EXCEEDED_MESSAGE = "The throttling quota has been exceeded."


class ThrottlingQuotaExceeded(KafkaError):
    def __init__(self, throttle_ms: int) -> None:
        super().__init__(EXCEEDED_MESSAGE, code=ErrorCode.throttling_quota_exceeded)
        self.throttle_ms = throttle_ms


class TokenBucket:
    """Kafka's org.apache.kafka.common.metrics.stats.TokenBucket with its quota bound."""

    __slots__ = ("_last_ms", "_tokens", "bound", "burst_seconds")

    def __init__(self, bound: float, burst_seconds: float) -> None:
        self.bound = bound
        self.burst_seconds = burst_seconds
        self._tokens = 0.0
        self._last_ms = 0  # the first refill fills the bucket, as Kafka's starts at time 0

    def _refill(self, now_ms: int) -> None:
        burst = self.bound * self.burst_seconds
        self._tokens = min(burst, self._tokens + self.bound * (now_ms - self._last_ms) / 1000.0)
        self._last_ms = now_ms

    def tokens(self, now_ms: int) -> float:
        self._refill(now_ms)
        return self._tokens

    def record(self, permits: float, now_ms: int) -> None:
        self._refill(now_ms)
        self._tokens = min(self.bound * self.burst_seconds, self._tokens - permits)

    def throttle_ms(self, now_ms: int) -> int:
        """0 while the bucket holds tokens, else the time the refill needs to bring it back to zero."""
        tokens = self.tokens(now_ms)
        if tokens >= 0:
            return 0
        if self.bound <= 0:
            return round(self.burst_seconds * 1000)
        return round(-tokens / self.bound * 1000)


class MutationQuota:
    """The quota of one request (Kafka's Strict/PermissiveControllerMutationQuota)."""

    def __init__(
        self, bucket: TokenBucket | None, strict: bool, clock: Callable[[], float] = time.time
    ) -> None:
        self._bucket = bucket
        self._strict = strict
        self._clock = clock
        self._throttle_ms = 0
        self._recorded_at_ms = 0

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)

    def record(self, permits: float) -> None:
        """Take `permits` partitions; ThrottlingQuotaExceeded when a strict quota is already exhausted."""
        if self._bucket is None or permits <= 0:
            return
        now_ms = self._now_ms()
        if self._strict:
            throttle = self._bucket.throttle_ms(now_ms)
            if throttle > 0:
                self._throttle_ms, self._recorded_at_ms = throttle, now_ms
                raise ThrottlingQuotaExceeded(throttle)
            self._bucket.record(permits, now_ms)
            return
        self._bucket.record(permits, now_ms)
        throttle = self._bucket.throttle_ms(now_ms)
        if throttle > 0:
            self._throttle_ms, self._recorded_at_ms = throttle, now_ms

    @property
    def throttle_ms(self) -> int:
        """The throttle time still to run (the time since it was measured is deducted, as Kafka does)."""
        if self._throttle_ms <= 0:
            return 0
        return max(0, self._throttle_ms - (self._now_ms() - self._recorded_at_ms))


UNBOUNDED = MutationQuota(None, strict=False)
