"""IncrementalAlterConfigs (api key 44), versions 0-1 (KIP-339).

Behaviour: applies operations to a resource's current override set: SET (0) a value, DELETE (1) an
override (back to the default), APPEND (2) items to a LIST key (items already present are not added
twice; the starting list is the key's effective value when it has no override, for a broker key its
static value or default), SUBTRACT (3) items from a LIST key. The result replaces the override set
atomically; `validate_only` checks without changing anything. TOPIC and BROKER resources: this broker's
id, or "" for the cluster-wide defaults (dynamic broker configs, KIP-226); as in Kafka 4.4 a broker key
Strom does not know is accepted and kept as given. CLIENT_METRICS resources (KIP-714) are client-metrics
subscriptions (`metrics`, `interval.ms`, `match`, what `kafka-client-metrics --alter` sets); deleting
every key deletes the subscription. GROUP resources are a group id's group configs (KIP-848, KIP-932,
KIP-1071; strom.group_config): the whole resulting set is checked against the broker's bounds, and, as in
Kafka 4.4, APPEND and SUBTRACT are refused on every group key.

Errors per resource (Kafka 4.4's codes and messages): NONE; INVALID_REQUEST (resource named twice, a key named
twice, an unknown operation, SET to null, a broker id that is not ours, a broker key that cannot change
dynamically, a bad broker value, an empty group name, an unsupported resource type);
UNKNOWN_TOPIC_OR_PARTITION; INVALID_TOPIC_EXCEPTION; INVALID_CONFIG (unknown or bad topic, group or
client-metrics key, a group value outside the broker's bounds, APPEND/SUBTRACT on a non-list key),
TOPIC_AUTHORIZATION_FAILED, GROUP_AUTHORIZATION_FAILED or CLUSTER_AUTHORIZATION_FAILED (no ALTER_CONFIGS on
the topic, group or, for broker resources, the cluster).
"""

from __future__ import annotations

from typing import Any

from strom.apis._admin_util import (
    NO_THROTTLE,
    RESOURCE_CLIENT_METRICS,
    RESOURCE_GROUP,
    RESOURCE_TOPIC,
    kio_module,
)
from strom.apis._config_alter import alter_resources, current_overrides, refuse_null
from strom.config import BROKER_CONFIGS, TOPIC_CONFIGS, ConfigDef, ConfigSource, ConfigType
from strom.protocol.errors import InvalidConfigError, InvalidRequestError
from strom.protocol.registry import ApiSpec

API_KEY = 44
MIN_VERSION = 0
MAX_VERSION = 1

OP_SET, OP_DELETE, OP_APPEND, OP_SUBTRACT = 0, 1, 2, 3


# CLIENT_METRICS keys (KIP-714): `metrics` and `match` are lists, so APPEND and SUBTRACT apply to them
_CLIENT_METRICS_DEFS = {
    "metrics": ConfigDef("metrics", ConfigType.LIST, []),
    "interval.ms": ConfigDef("interval.ms", ConfigType.INT, 300000),
    "match": ConfigDef("match", ConfigType.LIST, []),
}


def _definition(resource_type: int, name: str) -> ConfigDef | None:
    if resource_type == RESOURCE_CLIENT_METRICS:
        return _CLIENT_METRICS_DEFS.get(name)
    if resource_type == RESOURCE_GROUP:
        return None  # Kafka 4.4 has no list type for group keys: APPEND/SUBTRACT are refused
    if resource_type == RESOURCE_TOPIC:
        tdef = TOPIC_CONFIGS.get(name)
        return tdef.definition if tdef else None
    return BROKER_CONFIGS.get(name)


def _items(raw: str | None) -> list[str]:
    return [part.strip() for part in (raw or "").split(",") if part.strip()]


def _effective_list(ctx: Any, resource_type: int, name: str, overrides: dict[str, str]) -> list[str]:
    if name in overrides:
        return _items(overrides[name])
    config = ctx.broker.config
    if resource_type == RESOURCE_CLIENT_METRICS:
        return []
    if resource_type == RESOURCE_TOPIC:
        default = config.resolve_topic({})[name].value
    else:
        # Kafka starts a broker key's list from its static value (or default), not from other dynamic layers
        layers = [v for v, source in config.layers(name) if source >= ConfigSource.STATIC_BROKER_CONFIG]
        default = layers[0] if layers else None
    return [str(v) for v in default or []]


def _list_op_refused(resource_type: int, kind: int, name: str) -> InvalidConfigError:
    """APPEND/SUBTRACT on a key that is not a LIST, in Kafka's words (which differ by resource type)."""
    if resource_type in (RESOURCE_TOPIC, RESOURCE_CLIENT_METRICS, RESOURCE_GROUP):
        verb = "APPEND" if kind == OP_APPEND else "SUBTRACT"
        return InvalidConfigError(f"Can't {verb} to key {name} because its type is not LIST.")
    if name not in BROKER_CONFIGS:
        return InvalidConfigError(f"Unknown config name: {name}")
    verb = "append" if kind == OP_APPEND else "subtract"
    return InvalidConfigError(f"Config value {verb} is not allowed for config key: {name}")


def apply_ops(ctx: Any, resource_type: int, resource_name: str, ops: Any) -> dict[str, str | None]:
    """The override set after applying `ops` to the resource's current overrides."""
    if len({op.name for op in ops}) < len(ops):
        raise InvalidRequestError("Error due to duplicate config keys")
    overrides = current_overrides(ctx, resource_type, resource_name)
    for op in ops:
        kind = int(op.config_operation)
        if kind == OP_SET:
            refuse_null(op.name, op.value)
            overrides[op.name] = op.value
        elif kind == OP_DELETE:
            overrides.pop(op.name, None)
        elif kind in (OP_APPEND, OP_SUBTRACT):
            definition = _definition(resource_type, op.name)
            if definition is None or definition.type != ConfigType.LIST:
                raise _list_op_refused(resource_type, kind, op.name)
            current = _effective_list(ctx, resource_type, op.name, overrides)
            given = _items(op.value)
            if kind == OP_APPEND:
                result = current + [item for item in given if item not in current]
            else:
                result = [item for item in current if item not in given]
            overrides[op.name] = ",".join(result)
        else:
            raise InvalidRequestError(f"Unknown operations type {kind}")
    return dict(overrides)


def _overrides_after_ops(
    ctx: Any, resource_type: int, resource_name: str, resource: Any
) -> dict[str, str | None]:
    return apply_ops(ctx, resource_type, resource_name, resource.configs)


async def handle(ctx: Any, request: Any) -> Any:
    mod = kio_module("incremental_alter_configs", ctx.api_version, "response")
    results = await alter_resources(ctx, request, mod.AlterConfigsResourceResponse, _overrides_after_ops)
    return mod.IncrementalAlterConfigsResponse(throttle_time=NO_THROTTLE, responses=results)


SPEC = ApiSpec(API_KEY, MIN_VERSION, MAX_VERSION, handle, name="IncrementalAlterConfigs")
