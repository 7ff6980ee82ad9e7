"""Shared steps of AlterConfigs and IncrementalAlterConfigs: the per-resource answer loop with Kafka's
duplicate-resource rule, and resolving a resource to the backend call that replaces its override set.

The two APIs differ only in how a resource's new override set is computed (taken as given, or the
current set with KIP-339 operations applied); everything after that is the same. A BROKER resource is
this broker's id or "" for the cluster-wide dynamic defaults (KIP-226). A CLIENT_METRICS resource is a
client-metrics subscription (KIP-714, strom.telemetry.subscriptions). A GROUP resource is a group id's
group configs (strom.group_config), kept with the cluster metadata; its name may not be empty."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any

from strom.apis._admin_util import (
    RESOURCE_BROKER,
    RESOURCE_CLIENT_METRICS,
    RESOURCE_GROUP,
    RESOURCE_TOPIC,
    broker_id_of,
    build,
    error_of,
)
from strom.apis._authz import config_refusal
from strom.cluster.names import validate_topic_name
from strom.protocol.errors import ErrorCode, InvalidRequestError, KafkaError, UnknownTopicOrPartitionError
from strom.security.authorizer import AclOperation

NewOverrides = Callable[[Any, int, str, Any], Mapping[str, str | None]]
"""new_overrides(ctx, resource_type, resource_name, request resource) -> the resource's whole override set."""


def refuse_null(name: str, value: str | None) -> None:
    """A value set to null: INVALID_REQUEST, with Kafka's message (AlterConfigs and SET operations)."""
    if value is None:
        raise InvalidRequestError(f"Null value not supported for : {name}")


def duplicate_resources(resources: Any) -> set[tuple[int, str]]:
    counts = Counter((int(r.resource_type), r.resource_name) for r in resources)
    return {key for key, n in counts.items() if n > 1}


async def alter_resources(
    ctx: Any, request: Any, resource_response: type, new_overrides: NewOverrides
) -> tuple[Any, ...]:
    """One `resource_response` per resource of `request`, in request order.

    A resource named more than once is not changed and is answered once with INVALID_REQUEST, as Kafka
    does; any other failure is that resource's error only."""
    duplicates = duplicate_resources(request.resources)
    results: list[Any] = []
    answered: set[tuple[int, str]] = set()
    for resource in request.resources:
        key = (int(resource.resource_type), resource.resource_name)
        code, message = ErrorCode.none, None
        if key in duplicates:
            if key in answered:
                continue
            answered.add(key)
            code, message = ErrorCode.invalid_request, "Duplicate resource in request."
        elif (refused := config_refusal(ctx, AclOperation.ALTER_CONFIGS, key[0], key[1])) is not None:
            code, message = refused, None
        else:
            try:
                configs = new_overrides(ctx, key[0], key[1], resource)
                await replace_overrides(
                    ctx, key[0], key[1], configs, validate_only=bool(request.validate_only)
                )
            except Exception as exc:
                code, message = error_of(exc)
        results.append(
            build(
                resource_response,
                error_code=code,
                error_message=message,
                resource_type=resource.resource_type,
                resource_name=resource.resource_name,
            )
        )
    return tuple(results)


def current_overrides(ctx: Any, resource_type: int, resource_name: str) -> dict[str, str]:
    """The override set a resource has now (topic overrides, or this broker's dynamic configs)."""
    image = ctx.broker.metadata.image
    if resource_type == RESOURCE_TOPIC:
        validate_topic_name(resource_name)
        info = image.topic(resource_name)
        if info is None:
            raise UnknownTopicOrPartitionError(f"Topic '{resource_name}' does not exist.")
        return dict(info.configs)
    if resource_type == RESOURCE_BROKER:
        node = _broker_node(ctx, resource_name)
        if node is None:
            return dict(image.default_broker_configs)
        return dict(image.broker_configs.get(node, {}))
    if resource_type == RESOURCE_CLIENT_METRICS:
        return ctx.broker.client_telemetry.subscriptions.get(resource_name)
    if resource_type == RESOURCE_GROUP:
        _check_group_name(resource_name)
        return dict(image.group_configs.get(resource_name, {}))
    raise InvalidRequestError(f"Unsupported resource type {resource_type}")


def _check_group_name(resource_name: str) -> None:
    if not resource_name:
        raise InvalidRequestError("Default group resources are not allowed.")


def _broker_node(ctx: Any, resource_name: str) -> int | None:
    """This broker's id, or None for the cluster-wide defaults (the resource named ""). On a KRaft
    controller any broker's id (Kafka's ControllerConfigurationValidator checks only that it is an
    integer: brokers forward the changes of their own resource there)."""
    if resource_name == "":
        return None
    if getattr(ctx.broker.metadata, "is_controller", False):
        try:
            return int(resource_name)
        except ValueError:
            raise KafkaError(
                f"Node id must be an integer, but it is: {resource_name}", ErrorCode.invalid_request
            ) from None
    code, message = broker_id_of(resource_name, ctx.broker.node_id)
    if code != ErrorCode.none:
        raise KafkaError(message or "", code)
    return int(ctx.broker.node_id)


async def replace_overrides(
    ctx: Any, resource_type: int, resource_name: str, configs: Mapping[str, str | None], validate_only: bool
) -> None:
    """Make `configs` the resource's whole override set."""
    backend = ctx.broker.metadata
    if resource_type == RESOURCE_TOPIC:
        validate_topic_name(resource_name)
        await backend.alter_topic_configs(resource_name, configs, validate_only=validate_only)
    elif resource_type == RESOURCE_BROKER:
        node = _broker_node(ctx, resource_name)
        await backend.alter_broker_configs(node, configs, validate_only=validate_only)
    elif resource_type == RESOURCE_CLIENT_METRICS:
        ctx.broker.client_telemetry.subscriptions.replace(resource_name, configs, validate_only=validate_only)
    elif resource_type == RESOURCE_GROUP:
        _check_group_name(resource_name)
        await backend.alter_group_configs(resource_name, configs, validate_only=validate_only)
    else:
        raise InvalidRequestError(f"Unsupported resource type {resource_type}")
