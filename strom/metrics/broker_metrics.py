"""A broker's metrics: the registry, the request/traffic instruments, and their hooks.

Request counts and latency (`strom_requests_total`, `strom_request_duration_seconds`, label `api`, Kafka's
RequestsPerSec/TotalTimeMs) come from wrapping every handler of the broker's API registry, so the
network and API code carry no metrics calls. Per-topic traffic (Kafka's BrokerTopicMetrics):
- Produce: `strom_messages_in_total` and `strom_bytes_in_total` from the request's batch headers (no
  record is parsed), counted only for partitions whose response carries no error.
- Fetch: `strom_bytes_out_total` from the sizes of the log slices sent (label `type`: consumer or
  follower); the topic is the slice's partition directory. Records going out are not counted: they are
  sent by sendfile without being looked at.
The wrapping happens only when `metrics.port` is set; without it the broker runs untouched.
"""

from __future__ import annotations

import os
import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Histogram

from strom.metrics.http import MetricsServer
from strom.metrics.state import BrokerStateCollector
from strom.protocol.frames import FileSlice, RawResponse
from strom.protocol.record_batch import iter_batches
from strom.protocol.registry import ApiRegistry, ApiSpec

if TYPE_CHECKING:
    from strom.server.broker import Broker

__all__ = ["BrokerMetrics", "api_label"]

_PRODUCE, _FETCH = 0, 1
# Kafka's request latency buckets reach seconds because produce acks=all and fetch long-polls wait
_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


def api_label(spec: ApiSpec) -> str:
    """Kafka's request name (`Produce`, `OffsetCommit`, ...) for the `api` label."""
    if spec.name:
        return spec.name
    from kio.index import api_key_map

    snake = api_key_map.get(spec.api_key, f"api_{spec.api_key}")
    return "".join(part.capitalize() for part in snake.split("_"))


def topic_of_slice(piece: FileSlice) -> str | None:
    """The topic of a segment file slice, from its `<topic>-<partition>` directory."""
    name = getattr(piece.file, "name", None)
    if not isinstance(name, str | os.PathLike):
        return None  # an fd number, or no name at all
    topic, sep, partition = Path(name).parent.name.rpartition("-")
    return topic if sep and partition.isdigit() else None


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
        self.messages_in = Counter(
            "strom_messages_in", "Records appended by produce requests", ["topic"], registry=self.registry
        )
        self.bytes_in = Counter(
            "strom_bytes_in",
            "Record batch bytes appended by produce requests",
            ["topic"],
            registry=self.registry,
        )
        self.bytes_out = Counter(
            "strom_bytes_out",
            "Record batch bytes sent in fetch responses",
            ["topic", "type"],
            registry=self.registry,
        )
        self.registry.register(BrokerStateCollector(broker))
        self._server: MetricsServer | None = None
        self._response_readers: dict[int, Any] = {}

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
        api_key = spec.api_key

        async def timed(ctx: Any, request: Any) -> Any:
            started = time.perf_counter()
            try:
                response = await handler(ctx, request)
            except BaseException:
                failures.inc()
                raise
            finally:
                count.inc()
                observe(time.perf_counter() - started)
            if api_key == _PRODUCE:
                self._count_produce(ctx.api_version, request, response)
            elif api_key == _FETCH:
                self._count_fetch(request, response)
            return response

        return timed

    def _produce_errors(self, version: int, response: Any) -> set[tuple[str, int]] | None:
        """(topic, partition) pairs that failed, from the encoded produce response; None if unknown."""
        if response is None:
            return set()  # acks=0: no response; what was appended is not known per partition
        if not isinstance(response, RawResponse):
            return None
        reader = self._response_readers.get(version)
        if reader is None:
            from kio.index import load_response_schema
            from kio.serial import entity_reader

            reader = entity_reader(load_response_schema(_PRODUCE, version))
            self._response_readers[version] = reader
        body = b"".join(bytes(c) for c in response.chunks if not isinstance(c, FileSlice))
        try:
            parsed, _size = reader(memoryview(body), 0)
        except Exception:
            return None
        return {
            (str(t.name), int(p.index))
            for t in parsed.responses
            for p in t.partition_responses
            if int(p.error_code) != 0
        }

    def _count_produce(self, version: int, request: Any, response: Any) -> None:
        failed = self._produce_errors(version, response)
        if failed is None:
            return
        for topic_data in request.topic_data:
            topic = str(topic_data.name)
            messages = size = 0
            for pdata in topic_data.partition_data:
                records = pdata.records
                if not records or (topic, int(pdata.index)) in failed:
                    continue
                size += len(records)
                messages += sum(h.records_count for _pos, h in iter_batches(records))
            if size:
                self.messages_in.labels(topic).inc(messages)
                self.bytes_in.labels(topic).inc(size)

    def _count_fetch(self, request: Any, response: Any) -> None:
        if not isinstance(response, RawResponse):
            return
        kind = "follower" if int(getattr(request, "replica_id", -1)) >= 0 else "consumer"
        totals: dict[str, int] = {}
        for chunk in response.chunks:
            if isinstance(chunk, FileSlice) and chunk.length:
                topic = topic_of_slice(chunk)
                if topic is not None:
                    totals[topic] = totals.get(topic, 0) + chunk.length
        for topic, size in totals.items():
            self.bytes_out.labels(topic, kind).inc(size)
