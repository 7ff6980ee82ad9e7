"""DeleteShareGroupOffsets (api key 92), version 0: drop the share state of whole topics from an Empty share
group (KIP-932; kafka-share-groups --delete-offsets): DeleteShareGroupState for each partition the group
has state for, then the topics leave the group's initialized partitions (a later member starts them
again from share.auto.offset.reset).

Errors: top level NOT_COORDINATOR, COORDINATOR_LOAD_IN_PROGRESS, INVALID_GROUP_ID, GROUP_ID_NOT_FOUND,
NON_EMPTY_GROUP; per topic UNKNOWN_TOPIC_OR_PARTITION and the share coordinator's errors.
"""

from __future__ import annotations

import asyncio
from typing import Any

from strom.apis._authz import allowed
from strom.apis._build import build, entry_type, no_throttle
from strom.coordinator.share.state_records import StateKey
from strom.protocol.errors import ErrorCode
from strom.protocol.registry import ApiSpec, response_type
from strom.security.authorizer import AclOperation, ResourceType

API_KEY = 92


async def handle(ctx: Any, request: Any) -> Any:
    coordinator = ctx.broker.group_coordinator
    core = coordinator.core
    persister = ctx.broker.share_partitions.persister
    cls = response_type(API_KEY, ctx.api_version)
    topic_cls = entry_type(cls, "responses")
    error, message = core.share_alterable(request.group_id, False, coordinator.now_ms())
    if error is not ErrorCode.none:
        return build(cls, throttle_time=no_throttle(), error_code=error, error_message=message, responses=())
    _error, _message, initialized = core.share_partitions(request.group_id)
    image = ctx.broker.metadata.image
    deleted = []
    topics = []
    readable = allowed(ctx, AclOperation.READ, ResourceType.TOPIC, (t.topic_name for t in request.topics))
    for t in request.topics:
        info = image.topic(t.topic_name)
        if t.topic_name not in readable:
            code = ErrorCode.topic_authorization_failed
        elif info is None:
            code = ErrorCode.unknown_topic_or_partition
        else:
            parts = sorted(initialized.get(info.topic_id, (t.topic_name, frozenset()))[1])
            errors = await asyncio.gather(
                *(persister.delete(StateKey(request.group_id, info.topic_id, p)) for p in parts)
            )
            code = next((e for e in errors if e is not ErrorCode.none), ErrorCode.none)
            if code is ErrorCode.none:
                deleted.append(info.topic_id)
        topics.append(
            build(
                topic_cls,
                topic_name=t.topic_name,
                topic_id=None if info is None else info.topic_id,
                error_code=code,
                error_message=None,
            )
        )
    if deleted:
        await coordinator.call(lambda cb: core.share_topics_deleted(request.group_id, deleted, cb))
    ctx.broker.share_partitions.invalidate(request.group_id)
    return build(
        cls,
        throttle_time=no_throttle(),
        error_code=ErrorCode.none,
        error_message=None,
        responses=tuple(topics),
    )


SPEC = ApiSpec(api_key=API_KEY, min_version=0, max_version=0, handler=handle, name="DeleteShareGroupOffsets")
