"""Pushed client metrics on the broker's Prometheus endpoint (KIP-714's broker side, which Kafka leaves to
a ClientTelemetryReceiver plugin).

Each OTLP metric becomes a metric family named after it with every character Prometheus does not allow
turned into `_` (OpenTelemetry's Prometheus convention: `org.apache.kafka.producer.record.queue.time.avg`
is `org_apache_kafka_producer_record_queue_time_avg`); gauges and non-monotonic sums are gauges, monotonic
sums counters. Labels: `client_instance_id`, the resource's attributes (client_id, ... as the client
sends them) and the data point's (node_id, topic, partition, ...). The newest value of each series is
kept; a delta sum (a client that pushes deltas although the broker asks for cumulative values) is added
up. A client's series disappear when it has not pushed for three push intervals (at least a minute).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from strom.telemetry.otlp import DataPoint

_NOT_ALLOWED = re.compile(r"[^a-zA-Z0-9_]")

Labels = tuple[tuple[str, str], ...]


def prometheus_name(name: str) -> str:
    cleaned = _NOT_ALLOWED.sub("_", name)
    return cleaned if cleaned and not cleaned[0].isdigit() else f"_{cleaned}"


@dataclass
class _Family:
    kind: str  # "gauge" or "counter"
    series: dict[Labels, float] = field(default_factory=dict)


@dataclass
class _ClientSeries:
    expires_ms: int
    families: dict[str, _Family] = field(default_factory=dict)


class ClientTelemetryExporter(Collector):
    """The newest pushed value of every series, by client instance; a prometheus_client collector."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._clients: dict[uuid.UUID, _ClientSeries] = {}
        self.points_received = 0

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)

    def record(self, client: uuid.UUID, points: Iterable[DataPoint], interval_ms: int) -> None:
        now = self._now_ms()
        entry = self._clients.setdefault(client, _ClientSeries(0))
        entry.expires_ms = now + max(3 * interval_ms, 60_000)
        for point in points:
            self.points_received += 1
            counter = point.kind == "sum" and point.monotonic
            family = entry.families.setdefault(
                prometheus_name(point.name), _Family("counter" if counter else "gauge")
            )
            labels: Labels = tuple(
                sorted({prometheus_name(k): v for k, v in (*point.resource, *point.attributes)}.items())
            )
            if point.kind == "sum" and point.delta:
                family.series[labels] = family.series.get(labels, 0.0) + point.value
            else:
                family.series[labels] = point.value

    def forget(self, client: uuid.UUID) -> None:
        self._clients.pop(client, None)

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        now = self._now_ms()
        for client in [c for c, e in self._clients.items() if e.expires_ms < now]:
            del self._clients[client]
        merged: dict[str, tuple[str, list[tuple[dict[str, str], float]]]] = {}
        for client, entry in self._clients.items():
            for name, family in entry.families.items():
                _kind, samples = merged.setdefault(name, (family.kind, []))
                for labels, value in family.series.items():
                    samples.append(({"client_instance_id": str(client), **dict(labels)}, value))
        for name, (kind, samples) in sorted(merged.items()):
            label_names = sorted({k for labels, _v in samples for k in labels})
            cls = CounterMetricFamily if kind == "counter" else GaugeMetricFamily
            metric = cls(name, f"client metric {name} pushed with PushTelemetry", labels=label_names)
            for labels, value in samples:
                metric.add_metric([labels.get(k, "") for k in label_names], value)
            yield metric
