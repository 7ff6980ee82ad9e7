"""DescribeConfigs (api key 32), versions 1-4.

Behaviour: for a TOPIC resource, every topic-level key with its effective value and source
(DYNAMIC_TOPIC_CONFIG for an override, else the broker key that supplies it: DYNAMIC_BROKER_CONFIG,
STATIC_BROKER_CONFIG or DEFAULT_CONFIG); for a BROKER resource (named by this broker's id), every
broker key, and the keys Strom does not know that server.properties or a dynamic change set (type
UNKNOWN, read-only, sensitive, as Kafka 4.4 describes them). `configuration_keys` filters (keys nothing
sets are silently left out); `include_synonyms` lists each layer that sets the key, highest precedence
first (KIP-226); v3+ adds the config type and, with `include_documentation`, its documentation
(KIP-569). Sensitive values are answered as null. The BROKER resource with the empty name lists the
cluster-wide dynamic defaults only (source DYNAMIC_DEFAULT_BROKER_CONFIG). A CLIENT_METRICS resource
(KIP-714) lists its subscription's keys (source CLIENT_METRICS_CONFIG, or DEFAULT_CONFIG where unset). A
GROUP resource (KIP-848, KIP-932, KIP-1071) lists every group config of that group id, whether or not a
group of that id exists: those it sets (source GROUP_CONFIG), the others with the broker key they fall back
to as synonyms (strom.group_config), as Kafka 4.4 does.

Errors per resource: NONE; UNKNOWN_TOPIC_OR_PARTITION (no such topic); INVALID_TOPIC_EXCEPTION (illegal topic
name); INVALID_REQUEST (broker id not ours or not a number, an empty group name, or an unsupported resource
type such as BROKER_LOGGER), TOPIC_AUTHORIZATION_FAILED, GROUP_AUTHORIZATION_FAILED or
CLUSTER_AUTHORIZATION_FAILED (no DESCRIBE_CONFIGS on the topic, group or, for broker resources, the cluster).
"""

from __future__ import annotations

from typing import Any

from strom.apis._admin_util import (
    NO_THROTTLE,
    RESOURCE_BROKER,
    RESOURCE_CLIENT_METRICS,
    RESOURCE_GROUP,
    RESOURCE_TOPIC,
    broker_id_of,
    build,
    error_of,
    kio_module,
)
from strom.apis._authz import config_refusal
from strom.apis._config_describe import ConfigEntry, describe_broker, describe_group, describe_topic
from strom.cluster.names import validate_topic_name
from strom.config import ConfigSource
from strom.protocol.errors import ErrorCode, UnknownTopicOrPartitionError
from strom.protocol.registry import ApiSpec
from strom.security.authorizer import AclOperation
from strom.telemetry.subscriptions import DEFAULTS as CLIENT_METRICS_DEFAULTS

API_KEY = 32
MIN_VERSION = 1
MAX_VERSION = 4


def _entries(ctx: Any, resource: Any) -> list[ConfigEntry]:
    keys = resource.configuration_keys
    name = resource.resource_name
    refused = config_refusal(ctx, AclOperation.DESCRIBE_CONFIGS, resource.resource_type, name)
    if refused is not None:
        raise _Refused(refused, None)
    if resource.resource_type == RESOURCE_TOPIC:
        validate_topic_name(resource.resource_name)
        info = ctx.broker.metadata.image.topic(resource.resource_name)
        if info is None:
            raise UnknownTopicOrPartitionError(f"Topic '{resource.resource_name}' does not exist.")
        return describe_topic(ctx.broker.config, info.configs, keys)
    if resource.resource_type == RESOURCE_BROKER:
        if resource.resource_name == "":
            return describe_broker(ctx.broker.config, keys, cluster_default=True)
        code, message = broker_id_of(resource.resource_name, ctx.broker.node_id)
        if code != ErrorCode.none:
            raise _Refused(code, message)
        return describe_broker(ctx.broker.config, keys)
    if resource.resource_type == RESOURCE_CLIENT_METRICS:
        return _client_metrics(ctx, name, keys)
    if resource.resource_type == RESOURCE_GROUP:
        if not name:
            raise _Refused(ErrorCode.invalid_request, "Group name must not be empty")
        overrides = ctx.broker.metadata.image.group_configs.get(name, {})
        return describe_group(ctx.broker.config, overrides, keys)
    raise _Refused(ErrorCode.invalid_request, f"Unsupported resource type {resource.resource_type}")


def _client_metrics(ctx: Any, name: str, keys: Any) -> list[ConfigEntry]:
    """A client-metrics subscription's three keys as Kafka 4.4 lists them: the value set (source
    CLIENT_METRICS_CONFIG) or the default (DEFAULT_CONFIG), no synonyms, type UNKNOWN."""
    if not name:
        raise _Refused(ErrorCode.invalid_request, "Client metrics subscription name must not be empty")
    configs = ctx.broker.client_telemetry.subscriptions.get(name)
    return [
        ConfigEntry(
            key,
            configs.get(key, default),
            ConfigSource.CLIENT_METRICS_CONFIG if key in configs else ConfigSource.DEFAULT_CONFIG,
            False,
            False,
            (),
            0,
            "",
        )
        for key, default in CLIENT_METRICS_DEFAULTS.items()
        if keys is None or key in keys
    ]


class _Refused(Exception):
    def __init__(self, code: ErrorCode, message: str | None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


async def handle(ctx: Any, request: Any) -> Any:
    mod = kio_module("describe_configs", ctx.api_version, "response")
    synonyms_wanted = bool(request.include_synonyms)
    docs_wanted = bool(getattr(request, "include_documentation", False))
    results: list[Any] = []
    for resource in request.resources:
        code, message = ErrorCode.none, None
        configs: tuple[Any, ...] = ()
        try:
            entries = _entries(ctx, resource)
        except _Refused as refused:
            code, message = refused.code, refused.message
        except Exception as exc:
            code, message = error_of(exc)
        else:
            configs = tuple(
                build(
                    mod.DescribeConfigsResourceResult,
                    name=e.name,
                    value=e.value,
                    read_only=e.read_only,
                    config_source=int(e.source),
                    is_sensitive=e.sensitive,
                    synonyms=tuple(
                        mod.DescribeConfigsSynonym(name=n, value=v, source=int(s)) for n, v, s in e.synonyms
                    )
                    if synonyms_wanted
                    else (),
                    config_type=e.config_type,
                    documentation=e.documentation if docs_wanted else None,
                )
                for e in entries
            )
        results.append(
            build(
                mod.DescribeConfigsResult,
                error_code=code,
                error_message=message,
                resource_type=resource.resource_type,
                resource_name=resource.resource_name,
                configs=configs,
            )
        )
    return mod.DescribeConfigsResponse(throttle_time=NO_THROTTLE, results=tuple(results))


SPEC = ApiSpec(API_KEY, MIN_VERSION, MAX_VERSION, handle, name="DescribeConfigs")
