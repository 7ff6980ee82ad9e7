"""ListOffsets (api key 2), versions 1-11: offsets by timestamp.

Behaviour per partition (Kafka 4.4's `fetchOffsetForTimestamp`, for a broker without tiered storage):
- -1 LATEST: the high watermark (what a read_uncommitted consumer can read up to), or under
  read_committed (isolation_level 1, v2+) the last stable offset (KIP-98), timestamp -1.
- -2 EARLIEST: the log start offset, timestamp -1.
- -3 MAX_TIMESTAMP (KIP-734, v7+): the offset and timestamp of the record with the largest timestamp.
- -4 EARLIEST_LOCAL (KIP-1005, v8+): the log start offset of the local log, which without tiered storage is
  the log start offset: answered as -2.
- -5 LATEST_TIERED (KIP-1005, v9+) and -6 EARLIEST_PENDING_UPLOAD (KIP-1023, v11+): the highest offset in
  remote storage, and the first offset not uploaded yet; with no tiered storage Kafka answers offset -1,
  timestamp -1, leader epoch -1 (after the leader and epoch checks), and so does Strom.
- a timestamp >= 0: the first offset whose timestamp is at or after it, with that timestamp (from the time
  index); none: offset -1, timestamp -1. Only offsets below the high watermark (the LSO under
  read_committed) answer.
- A special timestamp below the version that brings it, and any other negative timestamp, answers
  UNSUPPORTED_VERSION before the partition is looked up (Kafka's timestampMinSupportedVersion).
- v4+ carry the leader epoch of the answered offset; `current_leader_epoch` is checked (KIP-320).
- v10 adds `timeout_ms`, the bound on a remote-storage lookup; nothing here waits, so it is not used.
- A partition asked twice in one request answers INVALID_REQUEST for both, as Kafka does.

Errors per partition: NONE, UNKNOWN_TOPIC_OR_PARTITION, NOT_LEADER_OR_FOLLOWER, FENCED_LEADER_EPOCH,
UNKNOWN_LEADER_EPOCH, INVALID_REQUEST, UNSUPPORTED_VERSION, TOPIC_AUTHORIZATION_FAILED (no DESCRIBE on the
topic).
"""

from __future__ import annotations

from typing import Any

from kio.static.primitive import i32, i64

from strom.apis._authz import allowed
from strom.apis._build import build, entry_type, no_throttle
from strom.protocol.errors import ErrorCode, KafkaError
from strom.protocol.registry import ApiSpec, response_type
from strom.security.authorizer import AclOperation, ResourceType
from strom.server.context import RequestContext

API_KEY = 2
LATEST = -1
EARLIEST = -2
MAX_TIMESTAMP = -3
EARLIEST_LOCAL = -4
LATEST_TIERED = -5
EARLIEST_PENDING_UPLOAD = -6
# the first version that may ask each special timestamp (Kafka's ReplicaManager.timestampMinSupportedVersion)
MIN_VERSION_OF = {
    EARLIEST: 1,
    LATEST: 1,
    MAX_TIMESTAMP: 7,
    EARLIEST_LOCAL: 8,
    LATEST_TIERED: 9,
    EARLIEST_PENDING_UPLOAD: 11,
}


def lookup(
    ctx: RequestContext,
    topic: str,
    partition: int,
    timestamp: int,
    current_epoch: int,
    read_committed: bool = False,
) -> tuple[ErrorCode, int, int, int]:
    """(error_code, timestamp, offset, leader_epoch) for one partition."""
    if timestamp < 0 and ctx.api_version < MIN_VERSION_OF.get(timestamp, 2**15):
        return ErrorCode.unsupported_version, -1, -1, -1
    broker = ctx.broker
    if broker.metadata.image.partition(topic, partition) is None:
        return ErrorCode.unknown_topic_or_partition, -1, -1, -1
    part = broker.replica_manager.get_partition(topic, partition)
    if part is None or not part.is_leader:
        return ErrorCode.not_leader_or_follower, -1, -1, -1
    if current_epoch >= 0 and current_epoch != part.leader_epoch:
        code = (
            ErrorCode.fenced_leader_epoch
            if current_epoch < part.leader_epoch
            else ErrorCode.unknown_leader_epoch
        )
        return code, -1, -1, -1
    epoch = part.leader_epoch
    visible = part.last_stable_offset if read_committed else part.high_watermark
    if timestamp == LATEST:
        return ErrorCode.none, -1, visible, epoch
    if timestamp in (LATEST_TIERED, EARLIEST_PENDING_UPLOAD):
        return ErrorCode.none, -1, -1, -1  # nothing is in remote storage
    if timestamp in (EARLIEST, EARLIEST_LOCAL):
        found = None
        try:
            found = part.log.fetch_offset_by_timestamp(EARLIEST)
        except KafkaError:
            found = None
        found_epoch = found[2] if found is not None and found[2] is not None else epoch
        return ErrorCode.none, -1, part.log_start_offset, found_epoch
    try:
        found = part.log.fetch_offset_by_timestamp(timestamp)
    except KafkaError as exc:
        return exc.code, -1, -1, -1
    if found is None:
        return ErrorCode.none, -1, -1, -1
    offset, ts, found_epoch = found
    if offset >= visible:
        return ErrorCode.none, -1, -1, -1
    return ErrorCode.none, ts, offset, found_epoch if found_epoch is not None else -1


async def handle(ctx: RequestContext, request: Any) -> Any:
    cls = response_type(API_KEY, ctx.api_version)
    assert cls is not None
    topic_cls = entry_type(cls, "topics")
    part_cls = entry_type(topic_cls, "partitions")
    read_committed = int(getattr(request, "isolation_level", 0)) == 1
    seen: dict[tuple[str, int], int] = {}
    for topic in request.topics:
        for p in topic.partitions:
            key = (topic.name, int(p.partition_index))
            seen[key] = seen.get(key, 0) + 1
    describable = allowed(ctx, AclOperation.DESCRIBE, ResourceType.TOPIC, (t.name for t in request.topics))
    topics = []
    for topic in request.topics:
        parts = []
        for p in topic.partitions:
            index = int(p.partition_index)
            if topic.name not in describable:
                code, ts, offset, epoch = ErrorCode.topic_authorization_failed, -1, -1, -1
            elif seen[(topic.name, index)] > 1:
                code, ts, offset, epoch = ErrorCode.invalid_request, -1, -1, -1
            else:
                code, ts, offset, epoch = lookup(
                    ctx,
                    topic.name,
                    index,
                    int(p.timestamp),
                    int(getattr(p, "current_leader_epoch", -1)),
                    read_committed,
                )
            parts.append(
                build(
                    part_cls,
                    partition_index=i32(index),
                    error_code=ErrorCode(code),
                    timestamp=i64(ts),
                    offset=i64(offset),
                    leader_epoch=i32(epoch),
                )
            )
        topics.append(build(topic_cls, name=topic.name, partitions=tuple(parts)))
    return build(cls, throttle_time=no_throttle(), topics=tuple(topics))


SPEC = ApiSpec(api_key=API_KEY, min_version=1, max_version=11, handler=handle, name="ListOffsets")
