"""PushTelemetry (api key 72), version 0 (KIP-714): a client's metrics, OTLP `MetricsData` in protobuf,
optionally compressed.

Behaviour: the push is checked as Kafka's ClientMetricsManager does, then decoded (strom.telemetry.otlp)
and exported on the broker's Prometheus endpoint (strom.telemetry.exporter), what Kafka leaves to a
ClientTelemetryReceiver plugin. `terminating` marks a client's last push, which may come before its
interval.

Errors: NONE; INVALID_REQUEST (the zero client instance id, or a push after the terminating one);
UNKNOWN_SUBSCRIPTION_ID (an unknown client instance, or the subscription changed: the client asks
again); THROTTLING_QUOTA_EXCEEDED (sooner than the push interval); UNSUPPORTED_COMPRESSION_TYPE;
TELEMETRY_TOO_LARGE (over `telemetry.max.bytes`); INVALID_RECORD (the payload does not decode).
"""

from __future__ import annotations

import uuid
from typing import Any

from strom.apis._build import build, no_throttle
from strom.apis.get_telemetry_subscriptions import identity
from strom.protocol.registry import ApiSpec, response_type
from strom.server.context import RequestContext

API_KEY = 72


async def handle(ctx: RequestContext, request: Any) -> Any:
    cls = response_type(API_KEY, ctx.api_version)
    assert cls is not None
    client = request.client_instance_id or uuid.UUID(int=0)
    code = ctx.broker.client_telemetry.push(
        identity(ctx, client),
        int(request.subscription_id),
        bool(request.terminating),
        int(request.compression_type),
        bytes(request.metrics),
    )
    return build(cls, throttle_time=no_throttle(), error_code=code)


SPEC = ApiSpec(api_key=API_KEY, min_version=0, max_version=0, handler=handle, name="PushTelemetry")
