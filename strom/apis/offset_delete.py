"""OffsetDelete (api key 47), version 0: delete a group's committed offsets (KIP-496).

Allowed for an Empty group, and for a consumer group only on topics none of its members subscribes to.
Deleted offsets get tombstones in __consumer_offsets.

Errors: top-level NOT_COORDINATOR, COORDINATOR_LOAD_IN_PROGRESS, INVALID_GROUP_ID, GROUP_ID_NOT_FOUND,
NON_EMPTY_GROUP (a non-consumer group with members); per partition GROUP_SUBSCRIBED_TO_TOPIC,
GROUP_AUTHORIZATION_FAILED (top level: no DELETE on the group), TOPIC_AUTHORIZATION_FAILED (no READ on the
topic).
"""

from __future__ import annotations

from typing import Any

from strom.apis._authz import allowed
from strom.apis._build import build, entry_type, no_throttle
from strom.protocol.errors import ErrorCode
from strom.protocol.registry import ApiSpec, response_type
from strom.security.authorizer import AclOperation, ResourceType

API_KEY = 47


async def handle(ctx: Any, request: Any) -> Any:
    coordinator = ctx.broker.group_coordinator
    # DELETE on the group is checked before the handler (strom.apis._authz); each topic needs READ
    readable = allowed(ctx, AclOperation.READ, ResourceType.TOPIC, (t.name for t in request.topics))
    every = [(t.name, p.partition_index) for t in request.topics for p in t.partitions]
    wanted = [tp for tp in every if tp[0] in readable]
    core, now = coordinator.core, coordinator.now_ms()
    top, served = await coordinator.call(
        lambda cb: core.delete_offsets(request.group_id, wanted, now, lambda t, e: cb((t, e)))
    )
    by_key = dict(zip(wanted, served, strict=True)) if top is ErrorCode.none else {}
    errors = [by_key.get(tp, ErrorCode.topic_authorization_failed) for tp in every]
    wanted = every
    cls = response_type(API_KEY, ctx.api_version)
    topic_cls = entry_type(cls, "topics")
    part_cls = entry_type(topic_cls, "partitions")
    topics: tuple[Any, ...] = ()
    if top is ErrorCode.none:
        by_topic: dict[str, list[Any]] = {}
        for (topic, partition), error in zip(wanted, errors, strict=True):
            by_topic.setdefault(topic, []).append(
                build(part_cls, partition_index=partition, error_code=error)
            )
        topics = tuple(build(topic_cls, name=n, partitions=tuple(ps)) for n, ps in by_topic.items())
    return build(cls, error_code=top, throttle_time=no_throttle(), topics=topics)


SPEC = ApiSpec(api_key=API_KEY, min_version=0, max_version=0, handler=handle, name="OffsetDelete")
