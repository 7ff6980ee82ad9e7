"""ConsumerGroupHeartbeat (api key 68), versions 0-1: the consumer rebalance protocol (KIP-848).

A member joins with member epoch 0 and its subscription (topic names, or a regex the broker resolves,
KIP-848's SubscribedTopicRegex), then heartbeats every heartbeat interval with its epoch and, when they
changed, the partitions it owns; the answer carries its member epoch and, when it changed, the
partitions it may own now. Epoch -1 leaves; -2 is a static member (instance id) leaving for a while.
v1 (KIP-1082) has the client choose its member id, so the member id must be set from the first request;
v0 members get one from the broker. Fields left null keep their previous value. The work happens in
`strom.coordinator.consumer`.

Errors: NONE, NOT_COORDINATOR, COORDINATOR_NOT_AVAILABLE, COORDINATOR_LOAD_IN_PROGRESS, INVALID_REQUEST (with
Kafka's messages), UNKNOWN_MEMBER_ID, FENCED_MEMBER_EPOCH, UNRELEASED_INSTANCE_ID, FENCED_INSTANCE_ID,
UNSUPPORTED_ASSIGNOR, GROUP_MAX_SIZE_REACHED, GROUP_ID_NOT_FOUND (a classic group),
INVALID_REGULAR_EXPRESSION, GROUP_AUTHORIZATION_FAILED (no READ on the group), TOPIC_AUTHORIZATION_FAILED
(a subscribed topic name the principal may not DESCRIBE; the whole heartbeat is refused, as Kafka 4.4's
handler refuses it before the coordinator sees it).
"""

from __future__ import annotations

import datetime
from typing import Any

from kio.static.primitive import i32, i32Timedelta

from strom.apis._authz import denied_topics, enforcing
from strom.apis._build import build, entry_type, no_throttle
from strom.coordinator.consumer.results import HeartbeatRequest, HeartbeatResult
from strom.protocol.errors import ErrorCode
from strom.protocol.registry import ApiSpec, response_type
from strom.security.authorizer import AclOperation
from strom.server.error_response import empty_response

API_KEY = 68


def _ms(value: Any) -> int:
    return round(value / datetime.timedelta(milliseconds=1))


async def handle(ctx: Any, request: Any) -> Any:
    # (READ on the group is checked before: REQUEST_RULES) clients may not learn of topics they may not see
    names = request.subscribed_topic_names
    if names and enforcing(ctx) and denied_topics(ctx, AclOperation.DESCRIBE, names):
        return empty_response(response_type(API_KEY, ctx.api_version), ErrorCode.topic_authorization_failed)
    coordinator = ctx.broker.group_coordinator
    host = ctx.client_host
    owned = None
    if request.topic_partitions is not None:
        owned = {}
        for tp in request.topic_partitions:
            owned.setdefault(tp.topic_id, set()).update(int(p) for p in tp.partitions)
    req = HeartbeatRequest(
        group_id=request.group_id,
        member_id=request.member_id,
        member_epoch=int(request.member_epoch),
        instance_id=request.instance_id,
        rack_id=request.rack_id,
        rebalance_timeout_ms=_ms(request.rebalance_timeout),
        subscribed_topic_names=(
            None if request.subscribed_topic_names is None else tuple(request.subscribed_topic_names)
        ),
        subscribed_topic_regex=getattr(request, "subscribed_topic_regex", None),
        server_assignor=request.server_assignor,
        owned=owned,
        client_id=ctx.client_id or "",
        client_host=host if host.startswith("/") else f"/{host}",
        version=ctx.api_version,
    )
    result: HeartbeatResult = await coordinator.call(
        lambda cb: coordinator.core.consumer_heartbeat(req, coordinator.now_ms(), cb), ctx.effects_applied
    )
    cls = response_type(API_KEY, ctx.api_version)
    assignment = None
    if result.assignment is not None:
        assignment_cls = entry_type(cls, "assignment")
        tp_cls = entry_type(assignment_cls, "topic_partitions")
        assignment = assignment_cls(
            topic_partitions=tuple(
                tp_cls(topic_id=topic_id, partitions=tuple(i32(p) for p in sorted(parts)))
                for topic_id, parts in sorted(result.assignment.items(), key=lambda x: str(x[0]))
                if parts
            )
        )
    return build(
        cls,
        throttle_time=no_throttle(),
        error_code=result.error,
        error_message=result.message,
        member_id=result.member_id,
        member_epoch=i32(result.member_epoch),
        heartbeat_interval=i32Timedelta.parse(datetime.timedelta(milliseconds=result.heartbeat_interval_ms)),
        assignment=assignment,
    )


SPEC = ApiSpec(api_key=API_KEY, min_version=0, max_version=1, handler=handle, name="ConsumerGroupHeartbeat")
