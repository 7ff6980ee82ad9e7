"""OffsetCommit (api key 8), versions 2-9: store consumer positions in __consumer_offsets.

A commit from a member of the current generation (or with generation -1 for a group that only stores
offsets) is written as OffsetCommitKey v1 / OffsetCommitValue v3 records and answered once the write is
acknowledged. v6 adds the committed leader epoch (KIP-320), v7 group.instance.id (KIP-345). The
retention_time of v2-4 is ignored: offsets.retention.minutes applies (KIP-211).

Errors per partition: NONE, UNKNOWN_TOPIC_OR_PARTITION, OFFSET_METADATA_TOO_LARGE
(offset.metadata.max.bytes), NOT_COORDINATOR, COORDINATOR_LOAD_IN_PROGRESS, COORDINATOR_NOT_AVAILABLE,
INVALID_GROUP_ID, UNKNOWN_MEMBER_ID, ILLEGAL_GENERATION, REBALANCE_IN_PROGRESS, FENCED_INSTANCE_ID.
"""

from __future__ import annotations

from typing import Any

from strom.apis._build import build, entry_type, no_throttle
from strom.coordinator.group.results import CommitRequest, OffsetToCommit
from strom.protocol.errors import ErrorCode
from strom.protocol.registry import ApiSpec, response_type

API_KEY = 8


async def handle(ctx: Any, request: Any) -> Any:
    version = ctx.api_version
    coordinator = ctx.broker.group_coordinator
    image = ctx.broker.metadata.image
    order: list[tuple[str, int]] = []
    errors: dict[tuple[str, int], ErrorCode] = {}
    offsets: list[OffsetToCommit] = []
    for topic in request.topics:
        info = image.topic(topic.name)
        for p in topic.partitions:
            tp = (topic.name, p.partition_index)
            order.append(tp)
            if info is None or p.partition_index not in info.partitions:
                errors[tp] = ErrorCode.unknown_topic_or_partition
                continue
            offsets.append(
                OffsetToCommit(
                    topic.name,
                    p.partition_index,
                    p.committed_offset,
                    getattr(p, "committed_leader_epoch", -1),
                    p.committed_metadata,
                )
            )
    req = CommitRequest(
        group_id=request.group_id,
        generation_id=request.generation_id_or_member_epoch,
        member_id=request.member_id,
        group_instance_id=getattr(request, "group_instance_id", None),
        offsets=offsets,
    )
    if offsets:
        core, now = coordinator.core, coordinator.now_ms()
        results: list[ErrorCode] = await coordinator.call(lambda cb: core.commit_offsets(req, now, cb))
        for o, error in zip(offsets, results, strict=True):
            errors[(o.topic, o.partition)] = error
    cls = response_type(API_KEY, version)
    topic_cls = entry_type(cls, "topics")
    part_cls = entry_type(topic_cls, "partitions")
    by_topic: dict[str, list[Any]] = {}
    for tp in order:
        by_topic.setdefault(tp[0], []).append(build(part_cls, partition_index=tp[1], error_code=errors[tp]))
    return build(
        cls,
        throttle_time=no_throttle(),
        topics=tuple(
            build(topic_cls, name=name, partitions=tuple(parts)) for name, parts in by_topic.items()
        ),
    )


SPEC = ApiSpec(api_key=API_KEY, min_version=2, max_version=9, handler=handle, name="OffsetCommit")
