"""DescribeShareGroupOffsets (api key 90), versions 0-1: the start offset of each share-partition of share
groups (KIP-932), read from the share coordinator (ReadShareGroupStateSummary through the persister),
for kafka-share-groups --describe. Topics null means every partition the group has state for. v1 adds
the lag: the high watermark minus the start offset, when this broker leads the partition (else -1). A
partition without state answers start offset -1.

Errors per group: NOT_COORDINATOR, COORDINATOR_LOAD_IN_PROGRESS, INVALID_GROUP_ID, GROUP_ID_NOT_FOUND,
GROUP_AUTHORIZATION_FAILED (no DESCRIBE on the group); per partition UNKNOWN_TOPIC_OR_PARTITION,
TOPIC_AUTHORIZATION_FAILED (no DESCRIBE on the topic) and the share coordinator's errors.
"""

from __future__ import annotations

import asyncio
from typing import Any

from kio.static.primitive import i32, i64

from strom.apis._authz import allowed, may
from strom.apis._build import build, entry_type, no_throttle
from strom.coordinator.share.state_records import StateKey
from strom.protocol.errors import ErrorCode
from strom.protocol.registry import ApiSpec, response_type
from strom.security.authorizer import AclOperation, ResourceType

API_KEY = 90


def _lag(ctx: Any, topic: str, partition: int, start: int) -> int:
    part = ctx.broker.replica_manager.get_partition(topic, partition)
    if part is None or start < 0:
        return -1
    return max(int(part.high_watermark) - start, 0)


async def _describe_group(ctx: Any, cls: Any, group: Any) -> Any:
    core = ctx.broker.group_coordinator.core
    persister = ctx.broker.share_partitions.persister
    topic_cls = entry_type(cls, "topics")
    part_cls = entry_type(topic_cls, "partitions")
    if not may(ctx, AclOperation.DESCRIBE, ResourceType.GROUP, group.group_id):
        return build(cls, group_id=group.group_id, topics=(), error_code=ErrorCode.group_authorization_failed,
                     error_message=None)
    error, message, initialized = core.share_partitions(group.group_id)
    if error is not ErrorCode.none:
        return build(cls, group_id=group.group_id, topics=(), error_code=error, error_message=message)
    image = ctx.broker.metadata.image
    wanted: list[tuple[str, Any, list[int]]] = []
    if group.topics is None:
        for topic_id, (name, parts) in sorted(initialized.items(), key=lambda x: x[1][0]):
            wanted.append((name, topic_id, sorted(parts)))
    else:
        for t in group.topics:
            info = image.topic(t.topic_name)
            wanted.append(
                (t.topic_name, None if info is None else info.topic_id, [int(p) for p in t.partitions])
            )
    describable = allowed(ctx, AclOperation.DESCRIBE, ResourceType.TOPIC, (w[0] for w in wanted))
    topics = []
    for name, topic_id, parts in wanted:
        if topic_id is None or name not in describable:
            entries = [
                build(
                    part_cls,
                    partition_index=i32(p),
                    start_offset=i64(-1),
                    leader_epoch=i32(-1),
                    lag=i64(-1),
                    error_code=ErrorCode.unknown_topic_or_partition
                    if name in describable
                    else ErrorCode.topic_authorization_failed,
                    error_message=None,
                )
                for p in parts
            ]
            topics.append(build(topic_cls, topic_name=name, topic_id=None, partitions=tuple(entries)))
            continue
        done = initialized.get(topic_id, (name, frozenset()))[1]
        summaries = await asyncio.gather(
            *(persister.summary(StateKey(group.group_id, topic_id, p)) for p in parts if p in done)
        )
        by_partition = dict(zip([p for p in parts if p in done], summaries, strict=True))
        entries = []
        for p in parts:
            s = by_partition.get(p)
            start = s.start_offset if s is not None and s.error is ErrorCode.none else -1
            code = ErrorCode.none
            if s is not None and s.error not in (ErrorCode.none, ErrorCode.unknown_topic_or_partition):
                code = s.error
            entries.append(
                build(
                    part_cls,
                    partition_index=i32(p),
                    start_offset=i64(start),
                    leader_epoch=i32(s.leader_epoch if s is not None else -1),
                    lag=i64(_lag(ctx, name, p, start)),
                    error_code=code,
                    error_message=None,
                )
            )
        topics.append(build(topic_cls, topic_name=name, topic_id=topic_id, partitions=tuple(entries)))
    return build(
        cls, group_id=group.group_id, topics=tuple(topics), error_code=ErrorCode.none, error_message=None
    )


async def handle(ctx: Any, request: Any) -> Any:
    cls = response_type(API_KEY, ctx.api_version)
    group_cls = entry_type(cls, "groups")
    groups = [await _describe_group(ctx, group_cls, g) for g in request.groups]
    return build(cls, throttle_time=no_throttle(), groups=tuple(groups))


SPEC = ApiSpec(
    api_key=API_KEY, min_version=0, max_version=1, handler=handle, name="DescribeShareGroupOffsets"
)
