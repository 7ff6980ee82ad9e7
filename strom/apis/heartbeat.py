"""Heartbeat (api key 12), versions 0-4: a member says it is alive and learns of rebalances.

Answers NONE in Stable and CompletingRebalance, REBALANCE_IN_PROGRESS while the group prepares a
rebalance (the member must rejoin). v3 adds group.instance.id (KIP-345).

Errors: NOT_COORDINATOR, COORDINATOR_LOAD_IN_PROGRESS, COORDINATOR_NOT_AVAILABLE, INVALID_GROUP_ID,
UNKNOWN_MEMBER_ID, ILLEGAL_GENERATION, REBALANCE_IN_PROGRESS, FENCED_INSTANCE_ID, GROUP_AUTHORIZATION_FAILED
(no READ on the group).
"""

from __future__ import annotations

from typing import Any

from strom.apis._build import build, no_throttle
from strom.protocol.registry import ApiSpec, response_type

API_KEY = 12


async def handle(ctx: Any, request: Any) -> Any:
    coordinator = ctx.broker.group_coordinator
    error = coordinator.core.heartbeat(
        request.group_id,
        request.generation_id,
        request.member_id,
        getattr(request, "group_instance_id", None),
        coordinator.now_ms(),
    )
    coordinator.poke()
    return build(response_type(API_KEY, ctx.api_version), throttle_time=no_throttle(), error_code=error)


SPEC = ApiSpec(api_key=API_KEY, min_version=0, max_version=4, handler=handle, name="Heartbeat")
