"""GetTelemetrySubscriptions (api key 71), version 0 (KIP-714): which metrics a client should push, and
how often.

Behaviour (Kafka's ClientMetricsManager): a client that sends the zero client instance id gets a new
random one. The client's subscription is computed from the CLIENT_METRICS resources (strom.telemetry.
subscriptions) whose `match` selects it (by client instance id, client id, source address and port):
the union of their metric prefixes (`""` for every metric; empty: push nothing) and the smallest of
their intervals (300000 ms when none match). The subscription id changes whenever that does. Compression
types accepted: zstd, lz4, gzip, snappy; `telemetry_max_bytes` is `telemetry.max.bytes`;
`delta_temporality` false (cumulative sums, which the Prometheus export wants). Kafka advertises this API
only with a client-metrics plugin; Strom serves it always and exports the pushes itself.

Errors: NONE.
"""

from __future__ import annotations

import datetime
import uuid
from typing import Any

from kio.static.primitive import i32Timedelta

from strom.apis._build import build, no_throttle
from strom.protocol.errors import ErrorCode
from strom.protocol.registry import ApiSpec, response_type
from strom.server.context import RequestContext
from strom.telemetry.manager import ACCEPTED_COMPRESSION
from strom.telemetry.subscriptions import ClientIdentity

API_KEY = 71


def identity(ctx: RequestContext, client_instance_id: uuid.UUID) -> ClientIdentity:
    return ClientIdentity(client_instance_id, ctx.client_id or "", ctx.client_host)


async def handle(ctx: RequestContext, request: Any) -> Any:
    cls = response_type(API_KEY, ctx.api_version)
    assert cls is not None
    client = request.client_instance_id
    if client is None or client == uuid.UUID(int=0):
        client = uuid.uuid4()
    inst = ctx.broker.client_telemetry.subscribe(identity(ctx, client))
    return build(
        cls,
        throttle_time=no_throttle(),
        error_code=ErrorCode.none,
        client_instance_id=client,
        subscription_id=inst.subscription_id,
        accepted_compression_types=ACCEPTED_COMPRESSION,
        push_interval=i32Timedelta.parse(datetime.timedelta(milliseconds=inst.interval_ms)),
        telemetry_max_bytes=ctx.broker.client_telemetry.max_bytes,
        delta_temporality=False,
        requested_metrics=inst.metrics,
    )


SPEC = ApiSpec(
    api_key=API_KEY, min_version=0, max_version=0, handler=handle, name="GetTelemetrySubscriptions"
)
