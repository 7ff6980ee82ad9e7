"""ReadShareGroupStateSummary (api key 87), versions 0-1: the group coordinator reads a share-partition's
state epoch, leader epoch and start offset from the share coordinator (KIP-932), for
DescribeShareGroupOffsets. v1 adds delivery_complete_count (-1: not tracked).

Errors per partition: NOT_COORDINATOR, COORDINATOR_LOAD_IN_PROGRESS, UNKNOWN_TOPIC_OR_PARTITION (never
initialized).
"""

from __future__ import annotations

from typing import Any

from kio.static.primitive import i32, i64

from strom.apis._build import build, entry_type
from strom.coordinator.share.state_records import StateKey
from strom.protocol.registry import ApiSpec, response_type

API_KEY = 87


async def handle(ctx: Any, request: Any) -> Any:
    coordinator = ctx.broker.share_coordinator
    cls = response_type(API_KEY, ctx.api_version)
    topic_cls = entry_type(cls, "results")
    part_cls = entry_type(topic_cls, "partitions")
    results = []
    for topic in request.topics:
        parts = []
        for p in topic.partitions:
            key = StateKey(request.group_id, topic.topic_id, int(p.partition))
            error, state = await coordinator.read_summary(key)
            parts.append(
                build(
                    part_cls,
                    partition=i32(int(p.partition)),
                    error_code=error,
                    error_message=None,
                    state_epoch=i32(state.state_epoch if state else 0),
                    leader_epoch=i32(state.leader_epoch if state else -1),
                    start_offset=i64(state.start_offset if state else -1),
                    delivery_complete_count=i32(state.delivery_complete_count if state else -1),
                )
            )
        results.append(topic_cls(topic_id=topic.topic_id, partitions=tuple(parts)))
    return build(cls, results=tuple(results))


SPEC = ApiSpec(
    api_key=API_KEY, min_version=0, max_version=1, handler=handle, name="ReadShareGroupStateSummary"
)
