"""The admin-request checks both cluster backends share (strom.cluster.validation)."""

from __future__ import annotations

import uuid

import pytest

from strom.cluster.errors import (
    InvalidPartitionsError,
    InvalidReplicaAssignmentError,
    InvalidReplicationFactorError,
    TopicDeletionDisabledError,
)
from strom.cluster.metadata import MetadataImage, TopicInfo
from strom.cluster.validation import (
    check_partition_growth,
    check_topic_deletable,
    existing_topic,
    manual_topic_layout,
    new_partitions_layout,
    partition_count_and_replication,
    validate_broker_configs,
    validate_topic_configs,
)
from strom.config import BrokerConfig
from strom.protocol.errors import InvalidConfigError, InvalidRequestError, UnknownTopicOrPartitionError


def _no_broker_9(replicas: list[int], partition: int) -> None:
    if 9 in replicas:
        raise InvalidReplicaAssignmentError(f"broker 9 in partition {partition}")


def test_manual_topic_layout() -> None:
    assert manual_topic_layout({1: (2, 1), 0: [1, 2]}, -1, -1, _no_broker_9) == {0: [1, 2], 1: [2, 1]}
    with pytest.raises(InvalidRequestError):
        manual_topic_layout({0: [1]}, 1, -1, _no_broker_9)
    with pytest.raises(InvalidReplicaAssignmentError, match="consecutive"):
        manual_topic_layout({0: [1], 2: [1]}, -1, -1, _no_broker_9)
    with pytest.raises(InvalidReplicaAssignmentError, match="partition 1"):
        manual_topic_layout({0: [1], 1: [9]}, -1, -1, _no_broker_9)


def test_partition_count_and_replication_defaults() -> None:
    config = BrokerConfig({"num.partitions": "3", "default.replication.factor": "2"})
    assert partition_count_and_replication(-1, -1, config) == (3, 2)
    assert partition_count_and_replication(5, 1, config) == (5, 1)
    with pytest.raises(InvalidPartitionsError):
        partition_count_and_replication(0, 1, config)
    with pytest.raises(InvalidReplicationFactorError):
        partition_count_and_replication(1, 0, config)


def test_partition_growth_and_new_layout() -> None:
    check_partition_growth(2, 3)
    with pytest.raises(InvalidPartitionsError, match="higher than"):
        check_partition_growth(3, 2)
    with pytest.raises(InvalidPartitionsError, match="already has 3"):
        check_partition_growth(3, 3)
    assert new_partitions_layout([(1,), (2, 1)], 2, 2, _no_broker_9) == {2: [1], 3: [2, 1]}
    with pytest.raises(InvalidReplicaAssignmentError, match="only 1"):
        new_partitions_layout([(1,)], 2, 2, _no_broker_9)
    with pytest.raises(InvalidReplicaAssignmentError, match="partition 3"):
        new_partitions_layout([(1,), (9,)], 2, 2, _no_broker_9)


def test_config_validation() -> None:
    assert validate_topic_configs({"retention.ms": "1000"}) == {"retention.ms": "1000"}
    for bad in ({"no.such.key": "1"}, {"retention.ms": "soon"}, {"retention.ms": None}):
        with pytest.raises(InvalidConfigError):
            validate_topic_configs(bad)
    assert validate_broker_configs({"log.retention.ms": "5", "log.retention.bytes": None}) == {
        "log.retention.ms": "5"
    }
    # as Kafka 4.4: a key the broker does not know is kept as given; a static key or a bad value is
    # INVALID_REQUEST, with Kafka's messages
    assert validate_broker_configs({"no.such.key": "1"}) == {"no.such.key": "1"}
    with pytest.raises(InvalidRequestError, match=r"^Cannot update these configs dynamically: \[node.id\]$"):
        validate_broker_configs({"node.id": "2"})
    with pytest.raises(InvalidRequestError, match="Not a number of type LONG"):
        validate_broker_configs({"log.retention.ms": "soon"})


def test_topic_lookup_and_deletion_rules() -> None:
    plain = TopicInfo("t", uuid.uuid4(), {})
    internal = TopicInfo("__consumer_offsets", uuid.uuid4(), {}, internal=True)
    image = MetadataImage(
        cluster_id="c", controller_id=1, brokers={}, topics={"t": plain, internal.name: internal}
    )
    assert existing_topic(image, "t") is plain
    with pytest.raises(UnknownTopicOrPartitionError):
        existing_topic(image, "other")
    check_topic_deletable(plain, BrokerConfig())
    with pytest.raises(InvalidRequestError, match="internal"):
        check_topic_deletable(internal, BrokerConfig())
    with pytest.raises(TopicDeletionDisabledError):
        check_topic_deletable(plain, BrokerConfig({"delete.topic.enable": "false"}))
