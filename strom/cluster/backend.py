"""The interface every cluster metadata backend implements (`local` now, `zookeeper` later).

A backend owns the cluster metadata: it validates and applies topic and config changes, persists them,
publishes a new immutable `MetadataImage` for each change, and calls its listeners with (old, new) so the
replica manager can create or delete logs and push config changes to running logs.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Protocol, runtime_checkable

from strom.cluster.metadata import MetadataImage, TopicInfo

MetadataListener = Callable[[MetadataImage, MetadataImage], "Awaitable[None] | None"]
"""Called with (old image, new image) after each change; may be a plain or an async function."""


@runtime_checkable
class ClusterBackend(Protocol):
    """Cluster metadata. Errors are KafkaErrors carrying the code the admin APIs answer with."""

    @property
    def image(self) -> MetadataImage: ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def create_topic(
        self,
        name: str,
        num_partitions: int,
        replication_factor: int,
        configs: Mapping[str, str | None],
        assignments: Mapping[int, Sequence[int]] | None = None,
        validate_only: bool = False,
    ) -> TopicInfo:
        """Create a topic. -1 partitions or replication factor mean the broker defaults (KIP-464).
        TOPIC_ALREADY_EXISTS, INVALID_TOPIC_EXCEPTION, INVALID_PARTITIONS, INVALID_REPLICATION_FACTOR,
        INVALID_REPLICA_ASSIGNMENT, INVALID_CONFIG, INVALID_REQUEST."""
        ...

    async def delete_topic(self, name: str) -> TopicInfo:
        """Delete a topic; returns what was deleted. UNKNOWN_TOPIC_OR_PARTITION, INVALID_REQUEST for internal
        topics, TOPIC_DELETION_DISABLED."""
        ...

    async def create_partitions(
        self,
        name: str,
        total: int,
        assignments: Sequence[Sequence[int]] | None = None,
        validate_only: bool = False,
    ) -> TopicInfo:
        """Grow a topic to `total` partitions; `assignments` lists replicas of the new partitions only.
        UNKNOWN_TOPIC_OR_PARTITION, INVALID_PARTITIONS, INVALID_REPLICA_ASSIGNMENT."""
        ...

    async def alter_topic_configs(
        self, name: str, configs: Mapping[str, str | None], validate_only: bool = False
    ) -> TopicInfo:
        """Replace the topic's whole override set. UNKNOWN_TOPIC_OR_PARTITION, INVALID_CONFIG."""
        ...

    async def alter_broker_configs(
        self, node_id: int | None, configs: Mapping[str, str | None], validate_only: bool = False
    ) -> None:
        """Replace the broker's dynamic config overrides, or with `node_id` None the cluster-wide defaults
        (KIP-226). INVALID_REQUEST (a static key, a bad value, an unknown broker)."""
        ...

    async def alter_group_configs(
        self, group_id: str, configs: Mapping[str, str | None], validate_only: bool = False
    ) -> None:
        """Replace the group's whole config override set (GROUP resources, strom.group_config), checked
        against this node's broker config. INVALID_CONFIG (an unknown key, a bad value, out of bounds)."""
        ...

    def add_listener(self, callback: MetadataListener) -> None: ...
