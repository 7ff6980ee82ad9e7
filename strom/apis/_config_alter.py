"""Shared steps of AlterConfigs and IncrementalAlterConfigs: resolving a resource to the backend call
that replaces its override set, and Kafka's duplicate-resource rule."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any

from strom.apis._admin_util import RESOURCE_BROKER, RESOURCE_TOPIC, broker_id_of
from strom.cluster.names import validate_topic_name
from strom.protocol.errors import ErrorCode, InvalidRequestError, KafkaError, UnknownTopicOrPartitionError


def duplicate_resources(resources: Any) -> set[tuple[int, str]]:
    counts = Counter((int(r.resource_type), r.resource_name) for r in resources)
    return {key for key, n in counts.items() if n > 1}


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
        return dict(image.broker_configs.get(node, {}))
    raise InvalidRequestError(f"Unsupported resource type {resource_type}")


def _broker_node(ctx: Any, resource_name: str) -> int:
    if resource_name == "":
        raise InvalidRequestError("Cluster-wide default broker configs are not supported")
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
    else:
        raise InvalidRequestError(f"Unsupported resource type {resource_type}")
