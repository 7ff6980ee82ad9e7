"""WriteShareGroupState (api key 85), versions 0-1: a share-partition's leader writes its state to the
share coordinator (KIP-932): start offset and state batches, merged over the stored state (a ShareUpdate,
or a ShareSnapshot every share.coordinator.snapshot.update.records.per.snapshot updates). v1 adds
delivery_complete_count.

Errors per partition: NOT_COORDINATOR, COORDINATOR_LOAD_IN_PROGRESS, COORDINATOR_NOT_AVAILABLE,
FENCED_STATE_EPOCH, FENCED_LEADER_EPOCH.
"""

from __future__ import annotations

from typing import Any

from kio.static.primitive import i32

from strom.apis._build import build, entry_type
from strom.coordinator.share.partition import StateBatch
from strom.coordinator.share.state_records import StateKey
from strom.protocol.registry import ApiSpec, response_type

API_KEY = 85


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
            batches = tuple(
                StateBatch(
                    int(b.first_offset), int(b.last_offset), int(b.delivery_state), int(b.delivery_count)
                )
                for b in p.state_batches
            )
            error = await coordinator.write_state(
                key,
                int(p.state_epoch),
                int(p.leader_epoch),
                int(p.start_offset),
                batches,
                int(getattr(p, "delivery_complete_count", -1)),
            )
            parts.append(
                build(part_cls, partition=i32(int(p.partition)), error_code=error, error_message=None)
            )
        results.append(topic_cls(topic_id=topic.topic_id, partitions=tuple(parts)))
    return build(cls, results=tuple(results))


SPEC = ApiSpec(api_key=API_KEY, min_version=0, max_version=1, handler=handle, name="WriteShareGroupState")
