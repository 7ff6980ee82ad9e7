"""AlterShareGroupOffsets (api key 91), version 0: set the start offset of share-partitions of an Empty
share group (KIP-932; kafka-share-groups --reset-offsets --execute). A group that does not exist yet is
created, as Kafka 4.4 does, so offsets can be set before the first consumer joins. Each partition's state
is initialized again at the share coordinator with the new start offset and a higher state epoch (which
fences the share-partition's leader: it reads the new state), and the partitions become the group's.

Errors: top level NOT_COORDINATOR, COORDINATOR_LOAD_IN_PROGRESS, INVALID_GROUP_ID, GROUP_ID_NOT_FOUND (a
group of another type), NON_EMPTY_GROUP; per partition UNKNOWN_TOPIC_OR_PARTITION and the share
coordinator's errors.
"""

from __future__ import annotations

from typing import Any

from kio.static.primitive import i32

from strom.apis._authz import allowed
from strom.apis._build import build, entry_type, no_throttle
from strom.coordinator.share.state_records import StateKey
from strom.protocol.errors import ErrorCode
from strom.protocol.registry import ApiSpec, response_type
from strom.security.authorizer import AclOperation, ResourceType

API_KEY = 91


async def _reset(ctx: Any, key: StateKey, start_offset: int) -> ErrorCode:
    persister = ctx.broker.share_partitions.persister
    summary = await persister.summary(key)
    epoch = summary.state_epoch + 1 if summary.error is ErrorCode.none else 0
    if summary.error not in (ErrorCode.none, ErrorCode.unknown_topic_or_partition):
        return summary.error
    return await persister.initialize(key, epoch, start_offset)  # type: ignore[no-any-return]


async def handle(ctx: Any, request: Any) -> Any:
    coordinator = ctx.broker.group_coordinator
    core = coordinator.core
    cls = response_type(API_KEY, ctx.api_version)
    topic_cls = entry_type(cls, "responses")
    part_cls = entry_type(topic_cls, "partitions")
    error, message = core.share_alterable(request.group_id, True, coordinator.now_ms())
    if error is not ErrorCode.none:
        return build(cls, throttle_time=no_throttle(), error_code=error, error_message=message, responses=())
    image = ctx.broker.metadata.image
    done: dict[Any, tuple[str, frozenset[int]]] = {}
    topics = []
    readable = allowed(ctx, AclOperation.READ, ResourceType.TOPIC, (t.topic_name for t in request.topics))
    for t in request.topics:
        info = image.topic(t.topic_name)
        parts = []
        for p in t.partitions:
            index = int(p.partition_index)
            if t.topic_name not in readable:
                code = ErrorCode.topic_authorization_failed
            elif info is None or index not in info.partitions:
                code = ErrorCode.unknown_topic_or_partition
            else:
                code = await _reset(
                    ctx, StateKey(request.group_id, info.topic_id, index), int(p.start_offset)
                )
                if code is ErrorCode.none:
                    done[info.topic_id] = (
                        t.topic_name,
                        done.get(info.topic_id, (t.topic_name, frozenset()))[1] | {index},
                    )
            parts.append(build(part_cls, partition_index=i32(index), error_code=code, error_message=None))
        topics.append(
            build(
                topic_cls,
                topic_name=t.topic_name,
                topic_id=None if info is None else info.topic_id,
                partitions=tuple(parts),
            )
        )
    if done:
        await coordinator.call(
            lambda cb: core.share_initialized(request.group_id, done, coordinator.now_ms(), cb)
        )
    ctx.broker.share_partitions.invalidate(request.group_id)
    return build(
        cls,
        throttle_time=no_throttle(),
        error_code=ErrorCode.none,
        error_message=None,
        responses=tuple(topics),
    )


SPEC = ApiSpec(api_key=API_KEY, min_version=0, max_version=0, handler=handle, name="AlterShareGroupOffsets")
