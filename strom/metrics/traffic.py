"""Per-topic traffic counters, Kafka's BrokerTopicMetrics: `strom_messages_in_total` and
`strom_bytes_in_total` (MessagesInPerSec, BytesInPerSec) and `strom_bytes_out_total` (BytesOutPerSec, label
`type`: consumer or follower).

They are fed at the source: the Produce handler calls `record_produce` once per partition it appended to,
the Fetch handler `record_fetch` once per partition whose records it sends, with numbers they already hold,
so counting parses nothing. As in Kafka, a partition counts once its append succeeded (an idempotent retry
answered from the cache included, an acks=all append whose wait then timed out included); a failed append
counts nothing. Records going out are not counted: they leave by sendfile without being looked at.

The hot path only adds to plain per-topic totals (a dict lookup and two additions, no lock: the handlers
and the /metrics endpoint share the broker's event loop); a prometheus_client Counter child costs several
times that per call. The totals are turned into counter families (`_total` and `_created` samples, as a
Counter exposes them) at scrape time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

__all__ = ["TopicTraffic"]

_MESSAGES_IN = ("strom_messages_in", "Records appended by produce requests")
_BYTES_IN = ("strom_bytes_in", "Record batch bytes appended by produce requests")
_BYTES_OUT = ("strom_bytes_out", "Record batch bytes sent in fetch responses")


@dataclass(slots=True)
class _InTotals:
    created: float
    records: int = 0
    size: int = 0


@dataclass(slots=True)
class _OutTotals:
    created: float
    size: int = 0


class TopicTraffic(Collector):
    """Per-topic totals fed by the handlers; registered in a CollectorRegistry, read at scrape time.
    `clock` (seconds since the epoch) stamps each series' creation."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._in: dict[str, _InTotals] = {}
        self._out: dict[tuple[str, bool], _OutTotals] = {}

    def record_produce(self, topic: str, records: int, size: int) -> None:
        """`records` records in `size` bytes of batches were appended to a partition of `topic`."""
        totals = self._in.get(topic)
        if totals is None:
            totals = _InTotals(self._clock())
            self._in[topic] = totals
        totals.records += records
        totals.size += size

    def record_fetch(self, topic: str, size: int, follower: bool) -> None:
        """`size` bytes of batches of a partition of `topic` go out to a consumer or a follower."""
        totals = self._out.get((topic, follower))
        if totals is None:
            totals = _OutTotals(self._clock())
            self._out[(topic, follower)] = totals
        totals.size += size

    def describe(self) -> list[Metric]:
        return list(self._families())

    def collect(self) -> Iterator[Metric]:
        messages, bytes_in, bytes_out = self._families()
        for topic, totals in list(self._in.items()):
            messages.add_metric([topic], totals.records, created=totals.created)
            bytes_in.add_metric([topic], totals.size, created=totals.created)
        for (topic, follower), out in list(self._out.items()):
            kind = "follower" if follower else "consumer"
            bytes_out.add_metric([topic, kind], out.size, created=out.created)
        yield from (messages, bytes_in, bytes_out)

    @staticmethod
    def _families() -> tuple[CounterMetricFamily, CounterMetricFamily, CounterMetricFamily]:
        return (
            CounterMetricFamily(*_MESSAGES_IN, labels=["topic"]),
            CounterMetricFamily(*_BYTES_IN, labels=["topic"]),
            CounterMetricFamily(*_BYTES_OUT, labels=["topic", "type"]),
        )
