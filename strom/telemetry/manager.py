"""The broker's client telemetry (KIP-714): subscriptions, client instances and the exporter together,
what GetTelemetrySubscriptions and PushTelemetry use.

Accepted compression types are Kafka's order of preference (zstd, lz4, gzip, snappy). Strom asks clients
for cumulative sums (`delta_temporality` false, where Kafka asks for deltas for its plugins): Prometheus
counters are cumulative, so the pushed values can be exported as they are.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path

from strom.protocol.compression import decompress
from strom.protocol.errors import ErrorCode
from strom.telemetry.exporter import ClientTelemetryExporter
from strom.telemetry.otlp import OtlpError, decode_metrics_data
from strom.telemetry.subscriptions import ClientIdentity, ClientInstance, ClientMetricsSubscriptions

ZSTD, LZ4, GZIP, SNAPPY = 4, 3, 1, 2
ACCEPTED_COMPRESSION = (ZSTD, LZ4, GZIP, SNAPPY)
NO_COMPRESSION = 0


class ClientTelemetry:
    def __init__(self, path: Path | None, clock: Callable[[], float], max_bytes: int) -> None:
        self.subscriptions = ClientMetricsSubscriptions.load(path, clock)
        self.exporter = ClientTelemetryExporter(clock)
        self.max_bytes = max_bytes
        self._clock = clock

    def subscribe(self, identity: ClientIdentity) -> ClientInstance:
        inst = self.subscriptions.instance(identity)
        inst.last_get_ms = int(self._clock() * 1000)
        return inst

    def push(
        self,
        identity: ClientIdentity,
        subscription_id: int,
        terminating: bool,
        compression: int,
        payload: bytes,
    ) -> ErrorCode:
        """Kafka's processPushTelemetryRequest checks, then the metrics are decoded and exported."""
        if identity.client_instance_id == uuid.UUID(int=0):
            return ErrorCode.invalid_request
        known = identity.client_instance_id in self.subscriptions.instances
        inst = self.subscriptions.instance(identity)
        now = int(self._clock() * 1000)
        if not known or subscription_id != inst.subscription_id:
            return ErrorCode.unknown_subscription_id
        if inst.terminated:
            # nothing after the last push (Kafka: INVALID_REQUEST for a push after a terminating one)
            return ErrorCode.invalid_request
        # the first push after a GetTelemetrySubscriptions is taken at any time (Kafka's
        # maybeUpdatePushRequestTimestamp); later ones a whole interval apart, or a terminating one
        after_get = inst.last_get_ms > inst.last_push_ms
        since = now - max(inst.last_get_ms, inst.last_push_ms)
        if not terminating and not after_get and since < inst.interval_ms:
            return ErrorCode.throttling_quota_exceeded
        if compression != NO_COMPRESSION and compression not in ACCEPTED_COMPRESSION:
            return ErrorCode.unsupported_compression_type
        if len(payload) > self.max_bytes:
            return ErrorCode.telemetry_too_large
        inst.last_push_ms = now
        inst.terminated = terminating
        if not payload:
            return ErrorCode.none
        try:
            data = decompress(compression, payload) if compression else payload
            points = decode_metrics_data(data)
        except (OtlpError, ValueError, OSError):
            return ErrorCode.invalid_record
        self.exporter.record(identity.client_instance_id, points, inst.interval_ms)
        return ErrorCode.none
