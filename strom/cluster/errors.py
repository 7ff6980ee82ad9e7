"""Named errors of topic and cluster administration (CreateTopics, DeleteTopics, CreatePartitions)."""

from __future__ import annotations

from strom.protocol.errors import ErrorCode, KafkaError


class InvalidTopicError(KafkaError):
    """A topic name Kafka's Topic.validate rejects, or an operation on a topic that forbids it."""

    code = ErrorCode.invalid_topic_exception


class TopicAlreadyExistsError(KafkaError):
    code = ErrorCode.topic_already_exists


class InvalidPartitionsError(KafkaError):
    code = ErrorCode.invalid_partitions


class InvalidReplicationFactorError(KafkaError):
    code = ErrorCode.invalid_replication_factor


class InvalidReplicaAssignmentError(KafkaError):
    code = ErrorCode.invalid_replica_assignment


class UnknownTopicIdError(KafkaError):
    code = ErrorCode.unknown_topic_id


class TopicDeletionDisabledError(KafkaError):
    """delete.topic.enable=false."""

    code = ErrorCode.topic_deletion_disabled
