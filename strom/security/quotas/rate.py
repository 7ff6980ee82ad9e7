"""Kafka's windowed rate with an upper-bound quota (org.apache.kafka.common.metrics: SampledStat, Rate,
Quota, QuotaUtils), the measure every client quota and connection-rate limit is checked against.

A rate keeps `samples` windows of `window_ms` each (`quota.window.num`, default 11, and
`quota.window.size.seconds`, default 1). A value goes into the current window, or into a new one once the
current window is `window_ms` old; windows older than `samples * window_ms` are reset (purged). The rate is
the sum of the windows over the time they span, where fewer than `samples - 1` full windows count as
`samples - 1` (so a fresh client does not measure a huge rate from its first request), and at least 1 ms.

`record(value, now_ms)` adds the value and answers the throttle time Kafka computes when the rate is then
over the bound: `(rate - bound) / bound * window span`, the time without new values after which the rate
is back at the bound (QuotaUtils.throttleTime), optionally capped. Values are recorded even when they
violate the quota, as Kafka's Sensor.record does; `unrecord` takes one back.
"""

from __future__ import annotations

__all__ = ["Rate"]


class _Sample:
    __slots__ = ("start_ms", "value")

    def __init__(self, now_ms: int) -> None:
        self.start_ms = now_ms
        self.value = 0.0

    def reset(self, now_ms: int) -> None:
        self.start_ms = now_ms
        self.value = 0.0


class Rate:
    """A per-second rate over sampled windows, checked against `bound` (None: unbounded)."""

    __slots__ = ("_current", "_samples", "bound", "samples", "window_ms")

    def __init__(self, bound: float | None = None, *, samples: int = 11, window_ms: int = 1000) -> None:
        self.bound = bound
        self.samples = max(samples, 2)
        self.window_ms = max(window_ms, 1)
        self._samples: list[_Sample] = []
        self._current = 0

    def _purge(self, now_ms: int) -> None:
        expire = self.samples * self.window_ms
        for sample in self._samples:
            if now_ms - sample.start_ms >= expire:
                sample.reset(now_ms)

    def _record(self, value: float, now_ms: int) -> None:
        if not self._samples:
            self._samples.append(_Sample(now_ms))
        sample = self._samples[self._current]
        if now_ms - sample.start_ms >= self.window_ms:
            self._current = (self._current + 1) % self.samples
            if self._current >= len(self._samples):
                self._samples.append(_Sample(now_ms))
            else:
                self._samples[self._current].reset(now_ms)
            sample = self._samples[self._current]
        sample.value += value

    def window_size_ms(self, now_ms: int) -> int:
        """The time the retained windows span (Rate.windowSize)."""
        self._purge(now_ms)
        oldest = min((s.start_ms for s in self._samples), default=now_ms)
        elapsed = now_ms - oldest
        full = elapsed // self.window_ms
        if full < self.samples - 1:
            elapsed += (self.samples - 1 - full) * self.window_ms
        return max(elapsed, 1)

    def measure(self, now_ms: int) -> float:
        """The rate per second now."""
        size = self.window_size_ms(now_ms)
        return sum(s.value for s in self._samples) / (size / 1000.0)

    def record(self, value: float, now_ms: int, *, max_throttle_ms: int | None = None) -> int:
        """Add `value`; the throttle time in ms when the rate is now over the bound, else 0."""
        self._record(value, now_ms)
        return self.throttle_ms(now_ms, max_throttle_ms=max_throttle_ms)

    def throttle_ms(self, now_ms: int, *, max_throttle_ms: int | None = None) -> int:
        """How long to stay silent for the rate to fall back to the bound (0 when within it)."""
        if self.bound is None:
            return 0
        rate = self.measure(now_ms)
        if rate <= self.bound:
            return 0
        if self.bound <= 0:
            # Kafka divides by the bound: a zero quota throttles for as long as it may
            longest = self.samples * self.window_ms
            throttle = float(max_throttle_ms if max_throttle_ms is not None else longest)
        else:
            throttle = (rate - self.bound) / self.bound * self.window_size_ms(now_ms)
        if max_throttle_ms is not None:
            throttle = min(throttle, max_throttle_ms)
        return round(throttle)

    def unrecord(self, value: float, now_ms: int) -> None:
        """Take back a value recorded before (Kafka records its negative)."""
        self._record(-value, now_ms)
