"""A broker's metrics: the registry, the request instruments and the per-topic traffic sink.

Request counts and latency (`strom_requests_total`, `strom_request_duration_seconds`, label `api`, Kafka's
RequestsPerSec/TotalTimeMs) come from wrapping every handler of the broker's API registry, once per
request. Per-topic traffic (Kafka's BrokerTopicMetrics, `strom.metrics.traffic`) is counted by the Produce
and Fetch handlers themselves through `traffic`, which is None when metrics are off.
The wrapping and the counting happen only when `metrics.port` is set; without it the broker runs untouched.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Histogram

from strom.metrics.http import MetricsServer
from strom.metrics.state import BrokerStateCollector
from strom.metrics.traffic import TopicTraffic
from strom.protocol.registry import ApiRegistry, ApiSpec

if TYPE_CHECKING:
    from strom.server.broker import Broker

__all__ = ["BrokerMetrics", "api_label"]

# Kafka's request latency buckets reach seconds because produce acks=all and fetch long-polls wait
_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


def api_label(spec: ApiSpec) -> str:
    """Kafka's request name (`Produce`, `OffsetCommit`, ...) for the `api` label."""
    if spec.name:
        return spec.name
    from kio.index import api_key_map

    snake = api_key_map.get(spec.api_key, f"api_{spec.api_key}")
    return "".join(part.capitalize() for part in snake.split("_"))


class BrokerMetrics:
    """Owns the broker's CollectorRegistry; `start()` serves it when `metrics.port` is configured."""

    def __init__(self, broker: Broker) -> None:
        self.broker = broker
        port = broker.config.get("metrics.port")
        self.port: int | None = None if port is None else int(port)
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter("strom_requests", "Requests handled, by API", ["api"], registry=self.registry)
        self.request_errors = Counter(
            "strom_request_failures",
            "Requests whose handler raised (the connection is closed)",
            ["api"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "strom_request_duration_seconds",
            "Time from decoded request to response, by API",
            ["api"],
            buckets=_BUCKETS,
            registry=self.registry,
        )
        topic_traffic = TopicTraffic(broker.clock)
        self.registry.register(topic_traffic)
        # what the Produce and Fetch handlers feed; None (nothing counted) without metrics.port
        self.traffic: TopicTraffic | None = topic_traffic if self.port is not None else None
        self.registry.register(BrokerStateCollector(broker))
        # metrics clients push with PushTelemetry (KIP-714)
        self.registry.register(broker.client_telemetry.exporter)
        self._server: MetricsServer | None = None

    @property
    def enabled(self) -> bool:
        return self.port is not None

    @property
    def bound_port(self) -> int:
        assert self._server is not None, "metrics endpoint not started"
        return self._server.port

    async def start(self) -> None:
        """Instrument the API registry and serve /metrics (no-op unless metrics.port is set)."""
        if self.port is None or self._server is not None:
            return
        self.broker.registry = self.instrument(self.broker.registry)
        host = self._host()
        self._server = MetricsServer(self.registry, ready=self._ready)
        await self._server.start(host, self.port)

    async def stop(self) -> None:
        if self._server is not None:
            await self._server.stop()
            self._server = None

    def _host(self) -> str:
        from strom.server.broker import parse_listener

        _name, host, _port = parse_listener(str(self.broker.config.get("listeners")))
        return host or "0.0.0.0"

    def _ready(self) -> bool:
        # ready = serving Kafka requests with a metadata image
        return bool(getattr(self.broker, "_started", False)) and self.broker.metadata is not None

    # --- instrumentation ------------------------------------------------------------------------
    def instrument(self, registry: ApiRegistry) -> ApiRegistry:
        """A new registry whose handlers are timed and counted; the given one is left as it was."""
        wrapped = ApiRegistry()
        for spec in registry.specs():
            wrapped.register(replace(spec, handler=self._wrap(spec)))
        return wrapped

    def _wrap(self, spec: ApiSpec) -> Any:
        handler = spec.handler
        label = api_label(spec)
        count = self.requests.labels(label)
        failures = self.request_errors.labels(label)
        observe = self.latency.labels(label).observe

        async def timed(ctx: Any, request: Any) -> Any:
            started = time.perf_counter()
            try:
                return await handler(ctx, request)
            except BaseException:
                failures.inc()
                raise
            finally:
                count.inc()
                observe(time.perf_counter() - started)

        return timed
