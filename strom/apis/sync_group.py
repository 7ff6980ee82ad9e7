"""SyncGroup (api key 14), versions 0-5: members fetch their assignment; the leader sends everyone's.

In CompletingRebalance the request parks until the leader's assignment is written to __consumer_offsets,
then every member gets its own (Stable). In Stable it answers the member's current assignment at once.
v3 adds group.instance.id (KIP-345); v5 adds protocol type and name, checked against the group's.

Errors: NOT_COORDINATOR, COORDINATOR_LOAD_IN_PROGRESS, COORDINATOR_NOT_AVAILABLE, INVALID_GROUP_ID,
UNKNOWN_MEMBER_ID, ILLEGAL_GENERATION, REBALANCE_IN_PROGRESS, FENCED_INSTANCE_ID, INCONSISTENT_GROUP_PROTOCOL,
GROUP_AUTHORIZATION_FAILED (no READ on the group).
"""

from __future__ import annotations

from typing import Any

from strom.apis._build import build, no_throttle
from strom.coordinator.group.results import SyncRequest, SyncResult
from strom.protocol.registry import ApiSpec, response_type

API_KEY = 14


async def handle(ctx: Any, request: Any) -> Any:
    version = ctx.api_version
    coordinator = ctx.broker.group_coordinator
    req = SyncRequest(
        group_id=request.group_id,
        generation_id=request.generation_id,
        member_id=request.member_id,
        group_instance_id=getattr(request, "group_instance_id", None),
        protocol_type=getattr(request, "protocol_type", None),
        protocol_name=getattr(request, "protocol_name", None),
        assignments={a.member_id: a.assignment for a in request.assignments},
    )
    result: SyncResult = await coordinator.call(
        lambda cb: coordinator.core.sync(req, coordinator.now_ms(), cb), ctx.effects_applied
    )
    return build(
        response_type(API_KEY, version),
        throttle_time=no_throttle(),
        error_code=result.error,
        protocol_type=result.protocol_type,
        protocol_name=result.protocol_name,
        assignment=result.assignment,
    )


SPEC = ApiSpec(api_key=API_KEY, min_version=0, max_version=5, handler=handle, name="SyncGroup")
