"""InitializeShareGroupState (api key 83), version 0: the group coordinator asks the share coordinator to
start (or restart, with a higher state epoch) the state of share-partitions (KIP-932): a ShareSnapshot
with the state epoch and start offset (-1: the leader picks it by share.auto.offset.reset).

Errors per partition: NOT_COORDINATOR, COORDINATOR_LOAD_IN_PROGRESS, COORDINATOR_NOT_AVAILABLE (the
write failed), FENCED_STATE_EPOCH (a state epoch below the stored one).
"""

from __future__ import annotations

from typing import Any

from kio.static.primitive import i32

from strom.apis._build import build, entry_type
from strom.coordinator.share.state_records import StateKey
from strom.protocol.registry import ApiSpec, response_type

API_KEY = 83


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
            error = await coordinator.initialize_state(key, int(p.state_epoch), int(p.start_offset))
            parts.append(
                build(part_cls, partition=i32(int(p.partition)), error_code=error, error_message=None)
            )
        results.append(topic_cls(topic_id=topic.topic_id, partitions=tuple(parts)))
    return build(cls, results=tuple(results))


SPEC = ApiSpec(
    api_key=API_KEY, min_version=0, max_version=0, handler=handle, name="InitializeShareGroupState"
)
