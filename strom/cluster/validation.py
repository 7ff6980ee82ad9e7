"""Checks every cluster backend applies to admin requests before it changes metadata.

- CreateTopics: -1 partitions or replication factor take the broker defaults (KIP-464); a manual replica
  assignment excludes both and must number its partitions 0..n-1.
- CreatePartitions: a topic only grows; manual assignments list exactly the added partitions.
- DeleteTopics: only with delete.topic.enable, never an internal topic.
- Topic config overrides (CreateTopics, AlterConfigs, IncrementalAlterConfigs) must be known topic keys
  with valid values (INVALID_CONFIG). Dynamic broker configs (KIP-226), of one broker or the cluster-wide
  defaults, are checked as Kafka 4.4 checks them: a key Strom does not know is kept as given (Kafka
  stores unknown keys too), a key that cannot change dynamically or an invalid value is INVALID_REQUEST.

Which brokers a replica list may name is the backend's own rule, passed in as `check(replicas, partition)`.
Errors are KafkaErrors carrying the code the admin APIs answer with.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence

from strom.cluster.errors import (
    InvalidPartitionsError,
    InvalidReplicaAssignmentError,
    InvalidReplicationFactorError,
    InvalidTopicError,
    TopicDeletionDisabledError,
)
from strom.cluster.metadata import MetadataImage, TopicInfo
from strom.config import BROKER_CONFIGS, BrokerConfig, ConfigError, parse_topic_overrides
from strom.protocol.errors import InvalidConfigError, InvalidRequestError, UnknownTopicOrPartitionError

__all__ = [
    "AssignmentCheck",
    "check_partition_growth",
    "check_topic_deletable",
    "existing_topic",
    "manual_topic_layout",
    "new_partitions_layout",
    "partition_count_and_replication",
    "validate_broker_configs",
    "validate_topic_configs",
]

AssignmentCheck = Callable[[list[int], int], None]
"""check(replicas, partition): raises InvalidReplicaAssignmentError for a replica list the cluster rejects."""


def manual_topic_layout(
    assignments: Mapping[int, Sequence[int]],
    num_partitions: int,
    replication_factor: int,
    check: AssignmentCheck,
) -> dict[int, list[int]]:
    """The layout of a new topic created with replicas given per partition."""
    if num_partitions != -1 or replication_factor != -1:
        raise InvalidRequestError(
            "Both numPartitions or replicationFactor and replicasAssignments were set. "
            "Both cannot be used at the same time."
        )
    layout: dict[int, list[int]] = {}
    for index in range(len(assignments)):
        if index not in assignments:
            raise InvalidReplicaAssignmentError("Partitions should be a consecutive 0-based integer sequence")
        replicas = list(assignments[index])
        check(replicas, index)
        layout[index] = replicas
    return layout


def partition_count_and_replication(
    num_partitions: int, replication_factor: int, config: BrokerConfig
) -> tuple[int, int]:
    """(partitions, replication factor) of a new topic, -1 standing for the broker default (KIP-464)."""
    if num_partitions == -1:
        num_partitions = int(config.get("num.partitions"))
    if replication_factor == -1:
        replication_factor = int(config.get("default.replication.factor"))
    if num_partitions <= 0:
        raise InvalidPartitionsError("Number of partitions was set to an invalid non-positive value.")
    if replication_factor <= 0:
        raise InvalidReplicationFactorError(
            "Replication factor must be larger than 0, or -1 to use the default value."
        )
    return num_partitions, replication_factor


def check_collision(name: str, existing: Iterable[str]) -> None:
    """Kafka refuses a topic whose name equals an existing one once '.' and '_' are treated alike, since
    both map to the same metric names (INVALID_TOPIC_EXCEPTION)."""
    normalized = name.replace(".", "_")
    for other in existing:
        if other != name and other.replace(".", "_") == normalized:
            raise InvalidTopicError(f"Topic '{name}' collides with existing topic: {other}")


def existing_topic(image: MetadataImage, name: str) -> TopicInfo:
    """The topic an admin request names; UNKNOWN_TOPIC_OR_PARTITION if the image does not have it."""
    info = image.topics.get(name)
    if info is None:
        raise UnknownTopicOrPartitionError("This server does not host this topic-partition.")
    return info


def check_topic_deletable(info: TopicInfo, config: BrokerConfig) -> None:
    if not config.get("delete.topic.enable"):
        raise TopicDeletionDisabledError("Topic deletion is disabled.")
    if info.internal:
        raise InvalidRequestError(f"Topic {info.name} is an internal topic and cannot be deleted.")


def check_partition_growth(current: int, total: int) -> None:
    """CreatePartitions may only add partitions."""
    if total < current:
        raise InvalidPartitionsError(
            f"Topic currently has {current} partitions, which is higher than the requested {total}."
        )
    if total == current:
        raise InvalidPartitionsError(f"Topic already has {current} partitions.")


def new_partitions_layout(
    assignments: Sequence[Sequence[int]], current: int, added: int, check: AssignmentCheck
) -> dict[int, list[int]]:
    """The replicas of partitions current..current+added-1 as CreatePartitions assigned them by hand."""
    if len(assignments) != added:
        raise InvalidReplicaAssignmentError(
            f"Attempted to add {added} additional partition(s), but only {len(assignments)} "
            "assignment(s) were specified."
        )
    layout: dict[int, list[int]] = {}
    for offset, replicas in enumerate(assignments):
        partition = current + offset
        layout[partition] = list(replicas)
        check(layout[partition], partition)
    return layout


def validate_topic_configs(configs: Mapping[str, str | None]) -> dict[str, str]:
    """Topic overrides as stored: every key known and every value valid, else INVALID_CONFIG."""
    try:
        parse_topic_overrides(configs)
    except ConfigError as exc:
        raise InvalidConfigError(str(exc)) from None
    # parse_topic_overrides refuses null values, so every value here is a string
    return {k: str(v) for k, v in configs.items() if v is not None}


def validate_broker_configs(configs: Mapping[str, str | None]) -> dict[str, str]:
    """Dynamic broker overrides as stored (KIP-226); a null value deletes the key so it is left out."""
    read_only = [
        key
        for key, raw in configs.items()
        if raw is not None and key in BROKER_CONFIGS and BROKER_CONFIGS[key].read_only
    ]
    if read_only:
        raise InvalidRequestError(f"Cannot update these configs dynamically: [{', '.join(read_only)}]")
    result: dict[str, str] = {}
    for key, raw in configs.items():
        if raw is None:
            continue
        definition = BROKER_CONFIGS.get(key)
        if definition is not None:
            try:
                definition.parse(raw)
            except ConfigError as exc:
                raise InvalidRequestError(str(exc)) from None
        result[key] = raw
    return result
