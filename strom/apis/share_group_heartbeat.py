"""ShareGroupHeartbeat (api key 76), version 1: membership of share groups (KIP-932).

A member joins with member epoch 0 and the topics it subscribes to (its member id is its own, KIP-1082),
then heartbeats every heartbeat interval with its epoch; the answer carries its member epoch and, when it
changed, the partitions it may fetch from now. Epoch -1 leaves. Every member of a share group may get every
partition of its subscribed topics (a share-partition serves many consumers). A partition joins the
assignment once its share state is initialized at the share coordinator (InitializeShareGroupState through
the persister), which this handler does before it answers, so a joining member gets its partitions in its
first answer. The work happens in `strom.coordinator.share`.

Errors: NONE, NOT_COORDINATOR, COORDINATOR_NOT_AVAILABLE, COORDINATOR_LOAD_IN_PROGRESS, INVALID_REQUEST
(with Kafka's messages), UNKNOWN_MEMBER_ID, FENCED_MEMBER_EPOCH, GROUP_MAX_SIZE_REACHED,
GROUP_ID_NOT_FOUND (a group of another type).
"""

from __future__ import annotations

import asyncio
import datetime
from dataclasses import replace
from typing import Any

from kio.static.primitive import i32, i32Timedelta

from strom.apis._build import build, entry_type, no_throttle
from strom.coordinator.consumer.results import HeartbeatResult
from strom.coordinator.share.heartbeat import ShareHeartbeatRequest, ShareHeartbeatResult
from strom.coordinator.share.state_records import StateKey
from strom.protocol.errors import ErrorCode
from strom.protocol.registry import ApiSpec, response_type

API_KEY = 76


async def _initialize(ctx: Any, group_id: str, result: ShareHeartbeatResult) -> ShareHeartbeatResult | None:
    """Initialize the share state of the partitions the group is missing, record them, and heartbeat
    again for the member's new assignment; None if nothing was initialized."""
    persister = ctx.broker.share_partitions.persister
    wanted = [(tid, name, p) for tid, (name, parts) in result.to_initialize.items() for p in sorted(parts)]
    errors = await asyncio.gather(
        *(persister.initialize(StateKey(group_id, tid, p), 0, -1) for tid, _name, p in wanted)
    )
    done: dict[Any, tuple[str, frozenset[int]]] = {}
    for (tid, name, p), error in zip(wanted, errors, strict=True):
        if error is ErrorCode.none:
            done[tid] = (name, done.get(tid, (name, frozenset()))[1] | {p})
    if not done:
        return None
    coordinator = ctx.broker.group_coordinator
    error = await coordinator.call(
        lambda cb: coordinator.core.share_initialized(group_id, done, coordinator.now_ms(), cb)
    )
    return None if error is not ErrorCode.none else result


async def handle(ctx: Any, request: Any) -> Any:
    coordinator = ctx.broker.group_coordinator
    host = ctx.client_host
    req = ShareHeartbeatRequest(
        group_id=request.group_id,
        member_id=request.member_id,
        member_epoch=int(request.member_epoch),
        rack_id=request.rack_id,
        subscribed_topic_names=(
            None if request.subscribed_topic_names is None else tuple(request.subscribed_topic_names)
        ),
        client_id=ctx.client_id or "",
        client_host=host if host.startswith("/") else f"/{host}",
    )
    outcome: ShareHeartbeatResult = await coordinator.call(
        lambda cb: coordinator.core.share_heartbeat(req, coordinator.now_ms(), cb), ctx.effects_applied
    )
    result: HeartbeatResult = outcome.result
    initialize = result.error is ErrorCode.none and outcome.to_initialize and req.member_epoch >= 0
    if initialize and await _initialize(ctx, req.group_id, outcome) is not None:
        again = replace(req, member_epoch=result.member_epoch, subscribed_topic_names=None)
        second: ShareHeartbeatResult = await coordinator.call(
            lambda cb: coordinator.core.share_heartbeat(again, coordinator.now_ms(), cb)
        )
        if second.result.error is ErrorCode.none:
            assignment = (
                second.result.assignment if second.result.assignment is not None else result.assignment
            )
            result = replace(second.result, assignment=assignment)
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


SPEC = ApiSpec(api_key=API_KEY, min_version=1, max_version=1, handler=handle, name="ShareGroupHeartbeat")
