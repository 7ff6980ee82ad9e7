"""DeleteRecords (api key 21), versions 0-2.

Behaviour: moves each partition's log start offset up to the requested offset (Kafka's
`deleteRecordsOnLocalLog`); whole segments below it are deleted, records below it become invisible at
once. Offset -1 means the high watermark. An offset at or below the current log start changes nothing.
Answers the partition's low watermark (its log start offset) afterwards. Single node: the leader's log
start is the low watermark, so `timeout` is not waited on.

Errors per partition: NONE; UNKNOWN_TOPIC_OR_PARTITION; INVALID_TOPIC_EXCEPTION (internal topics such as
`__consumer_offsets`, whose records only their coordinator may remove); NOT_LEADER_OR_FOLLOWER (partition not
hosted here); OFFSET_OUT_OF_RANGE (above the high watermark, or negative other than -1); POLICY_VIOLATION
(cleanup.policy without `delete`, i.e. compact-only topics), TOPIC_AUTHORIZATION_FAILED (no DELETE on the
topic).
"""

from __future__ import annotations

from typing import Any

from strom.apis._admin_util import NO_THROTTLE, error_of, kio_module
from strom.apis._authz import allowed
from strom.cluster.errors import InvalidTopicError
from strom.protocol.errors import (
    ErrorCode,
    NotLeaderOrFollowerError,
    OffsetOutOfRangeError,
    PolicyViolationError,
    UnknownTopicOrPartitionError,
)
from strom.protocol.registry import ApiSpec
from strom.security.authorizer import AclOperation, ResourceType

API_KEY = 21
MIN_VERSION = 0
MAX_VERSION = 2

HIGH_WATERMARK = -1


def delete_before(ctx: Any, topic: str, partition: int, offset: int) -> int:
    """Move the log start of one partition; returns the low watermark. Raises KafkaError."""
    info = ctx.broker.metadata.image.topic(topic)
    if info is None or partition not in info.partitions:
        raise UnknownTopicOrPartitionError("This server does not host this topic-partition.")
    if info.internal:
        raise InvalidTopicError(f"Cannot delete records of internal topic {topic}")
    part = ctx.broker.replica_manager.get_partition(topic, partition)
    if part is None or not part.is_leader:
        raise NotLeaderOrFollowerError("This server is not the leader for that topic-partition.")
    if not part.log.config.delete:
        raise PolicyViolationError(
            f"Records of partition {topic}-{partition} can not be deleted due to the configured policy"
        )
    high_watermark = int(part.high_watermark)
    target = high_watermark if offset == HIGH_WATERMARK else offset
    if target < 0 or target > high_watermark:
        raise OffsetOutOfRangeError(
            f"Cannot increment the log start offset to {offset} of partition {topic}-{partition} "
            f"since it is larger than the high watermark {high_watermark}"
        )
    if target > part.log_start_offset:
        part.log.delete_records_before(target)
        part.on_log_start_moved()
    return int(part.log_start_offset)


async def handle(ctx: Any, request: Any) -> Any:
    mod = kio_module("delete_records", ctx.api_version, "response")
    topics: list[Any] = []
    deletable = allowed(ctx, AclOperation.DELETE, ResourceType.TOPIC, (t.name for t in request.topics))
    for topic in request.topics:
        partitions: list[Any] = []
        for p in topic.partitions:
            code, low = ErrorCode.none, -1
            if topic.name not in deletable:
                code = ErrorCode.topic_authorization_failed
            else:
                try:
                    low = delete_before(ctx, topic.name, int(p.partition_index), int(p.offset))
                except Exception as exc:
                    code, _message = error_of(exc)
            partitions.append(
                mod.DeleteRecordsPartitionResult(
                    partition_index=p.partition_index, low_watermark=low, error_code=code
                )
            )
        topics.append(mod.DeleteRecordsTopicResult(name=topic.name, partitions=tuple(partitions)))
    return mod.DeleteRecordsResponse(throttle_time=NO_THROTTLE, topics=tuple(topics))


SPEC = ApiSpec(API_KEY, MIN_VERSION, MAX_VERSION, handle, name="DeleteRecords")
