"""OffsetForLeaderEpoch (api key 23), versions 2-4: the end offset of a leader epoch (KIP-101, KIP-279).

For a requested epoch the leader answers the largest epoch <= it that it knows and that epoch's end
offset (the start offset of the next epoch, or the log end offset for the current epoch), from the
leader-epoch checkpoint. Followers truncate with it before fetching; consumers use it to detect log
truncation after a leader change (KIP-320). Unknown epochs answer (-1, -1).

Errors per partition: NONE, UNKNOWN_TOPIC_OR_PARTITION, NOT_LEADER_OR_FOLLOWER, FENCED_LEADER_EPOCH,
UNKNOWN_LEADER_EPOCH, TOPIC_AUTHORIZATION_FAILED (neither CLUSTER_ACTION on the cluster nor DESCRIBE on the
topic).
"""

from __future__ import annotations

from typing import Any

from kio.static.primitive import i32, i64

from strom.apis._authz import allowed, may
from strom.apis._build import build, entry_type, no_throttle
from strom.protocol.errors import ErrorCode, KafkaError
from strom.protocol.registry import ApiSpec, response_type
from strom.security.authorizer import AclOperation, ResourceType
from strom.server.context import RequestContext

API_KEY = 23


def end_offset(
    ctx: RequestContext, topic: str, partition: int, current_epoch: int, epoch: int
) -> tuple[int, int, int]:
    """(error_code, leader_epoch, end_offset)."""
    broker = ctx.broker
    if broker.metadata.image.partition(topic, partition) is None:
        return ErrorCode.unknown_topic_or_partition, -1, -1
    part = broker.replica_manager.get_partition(topic, partition)
    if part is None or not part.is_leader:
        return ErrorCode.not_leader_or_follower, -1, -1
    if current_epoch >= 0 and current_epoch != part.leader_epoch:
        code = (
            ErrorCode.fenced_leader_epoch
            if current_epoch < part.leader_epoch
            else ErrorCode.unknown_leader_epoch
        )
        return code, -1, -1
    try:
        found_epoch, offset = part.log.end_offset_for_epoch(epoch)
    except KafkaError as exc:
        return exc.code, -1, -1
    return ErrorCode.none, found_epoch, offset


async def handle(ctx: RequestContext, request: Any) -> Any:
    cls = response_type(API_KEY, ctx.api_version)
    assert cls is not None
    topic_cls = entry_type(cls, "topics")
    part_cls = entry_type(topic_cls, "partitions")
    # KIP-320: brokers ask with CLUSTER_ACTION on the cluster, consumers with DESCRIBE on the topic
    names = [t.topic for t in request.topics]
    if may(ctx, AclOperation.CLUSTER_ACTION, ResourceType.CLUSTER):
        describable = set(names)
    else:
        describable = allowed(ctx, AclOperation.DESCRIBE, ResourceType.TOPIC, names)
    topics = []
    for topic in request.topics:
        parts = []
        for p in topic.partitions:
            if topic.topic not in describable:
                code, epoch, offset = ErrorCode.topic_authorization_failed, -1, -1
            else:
                code, epoch, offset = end_offset(
                    ctx, topic.topic, int(p.partition), int(p.current_leader_epoch), int(p.leader_epoch)
                )
            parts.append(
                build(
                    part_cls,
                    error_code=ErrorCode(code),
                    partition=i32(p.partition),
                    leader_epoch=i32(epoch),
                    end_offset=i64(offset),
                )
            )
        topics.append(build(topic_cls, topic=topic.topic, partitions=tuple(parts)))
    return build(cls, throttle_time=no_throttle(), topics=tuple(topics))


SPEC = ApiSpec(api_key=API_KEY, min_version=2, max_version=4, handler=handle, name="OffsetForLeaderEpoch")
