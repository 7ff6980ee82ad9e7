"""ListConfigResources (api key 74), versions 0-1: which resources have configs (KIP-714, KIP-1142).

v0 (KIP-714, then named ListClientMetricsResources) lists client-metrics subscriptions only; v1 (KIP-1142)
takes the resource types to list (empty: every type) and answers name and type of each resource:
TOPIC (2) every topic, BROKER (4) every registered broker by id, BROKER_LOGGER (8), CLIENT_METRICS (16)
and GROUP (32). CLIENT_METRICS lists the client-metrics subscriptions (KIP-714, set with
IncrementalAlterConfigs), GROUP the group ids that have group configs (as Kafka 4.4: not every group).
Strom has no broker-logger resources (DescribeConfigs refuses BROKER_LOGGER), so that type lists nothing.
A type Kafka does not know answers UNSUPPORTED_VERSION, as Kafka 4.4 does.

Errors: NONE, UNSUPPORTED_VERSION (an unknown resource type), CLUSTER_AUTHORIZATION_FAILED (no
DESCRIBE_CONFIGS on the cluster).
"""

from __future__ import annotations

from typing import Any

from strom.apis._build import build, entry_type, no_throttle
from strom.protocol.errors import ErrorCode
from strom.protocol.registry import ApiSpec, response_type
from strom.server.context import RequestContext

API_KEY = 74
TOPIC, BROKER, BROKER_LOGGER, CLIENT_METRICS, GROUP = 2, 4, 8, 16, 32
KNOWN_TYPES = (TOPIC, BROKER, BROKER_LOGGER, CLIENT_METRICS, GROUP)


async def handle(ctx: RequestContext, request: Any) -> Any:
    cls = response_type(API_KEY, ctx.api_version)
    assert cls is not None
    entry_cls = entry_type(cls, "config_resources")
    wanted = {int(t) for t in getattr(request, "resource_types", ())} or set(KNOWN_TYPES)
    if ctx.api_version == 0:
        wanted = {CLIENT_METRICS}
    if wanted - set(KNOWN_TYPES):
        return build(
            cls, throttle_time=no_throttle(), error_code=ErrorCode.unsupported_version, config_resources=()
        )
    image = ctx.broker.metadata.image
    listed: list[tuple[str, int]] = []
    if BROKER in wanted:
        listed += [(str(node_id), BROKER) for node_id in sorted(image.brokers)]
    if TOPIC in wanted:
        listed += [(name, TOPIC) for name in sorted(image.topics)]
    if CLIENT_METRICS in wanted:
        listed += [(name, CLIENT_METRICS) for name in ctx.broker.client_telemetry.subscriptions.names()]
    if GROUP in wanted:
        listed += [(name, GROUP) for name in sorted(image.group_configs)]
    return build(
        cls,
        throttle_time=no_throttle(),
        error_code=ErrorCode.none,
        config_resources=tuple(
            build(entry_cls, resource_name=name, resource_type=kind) for name, kind in listed
        ),
    )


SPEC = ApiSpec(api_key=API_KEY, min_version=0, max_version=1, handler=handle, name="ListConfigResources")
