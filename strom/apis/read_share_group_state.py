"""ReadShareGroupState (api key 84), version 0: a share-partition's leader reads its state from the share
coordinator (KIP-932): state epoch, start offset and the in-flight state batches. A reader with a higher
leader epoch than the stored one records it, fencing writes of the previous leader.

Errors per partition: NOT_COORDINATOR, COORDINATOR_LOAD_IN_PROGRESS, UNKNOWN_TOPIC_OR_PARTITION (never
initialized), FENCED_LEADER_EPOCH.
"""

from __future__ import annotations

from typing import Any

from kio.static.primitive import i8, i16, i32, i64

from strom.apis._build import build, entry_type
from strom.coordinator.share.state_records import StateKey
from strom.protocol.registry import ApiSpec, response_type

API_KEY = 84


async def handle(ctx: Any, request: Any) -> Any:
    coordinator = ctx.broker.share_coordinator
    cls = response_type(API_KEY, ctx.api_version)
    topic_cls = entry_type(cls, "results")
    part_cls = entry_type(topic_cls, "partitions")
    batch_cls = entry_type(part_cls, "state_batches")
    results = []
    for topic in request.topics:
        parts = []
        for p in topic.partitions:
            key = StateKey(request.group_id, topic.topic_id, int(p.partition))
            error, state = await coordinator.read_state(key, int(p.leader_epoch))
            parts.append(
                build(
                    part_cls,
                    partition=i32(int(p.partition)),
                    error_code=error,
                    error_message=None,
                    state_epoch=i32(state.state_epoch if state else 0),
                    start_offset=i64(state.start_offset if state else -1),
                    state_batches=tuple(
                        batch_cls(
                            first_offset=i64(b.first_offset),
                            last_offset=i64(b.last_offset),
                            delivery_state=i8(b.delivery_state),
                            delivery_count=i16(b.delivery_count),
                        )
                        for b in (state.batches if state else ())
                    ),
                )
            )
        results.append(topic_cls(topic_id=topic.topic_id, partitions=tuple(parts)))
    return build(cls, results=tuple(results))


SPEC = ApiSpec(api_key=API_KEY, min_version=0, max_version=0, handler=handle, name="ReadShareGroupState")
