"""LeaveGroup (api key 13), versions 0-5: members leave a classic group, which then rebalances.

v0-2 carry one member id and answer one error; v3+ carry a batch of member identities (member id and/or
group.instance.id, KIP-345) and answer one error each, the top-level error being only for the group.
A static member may be removed by instance id alone (empty member id).

Errors: NOT_COORDINATOR, COORDINATOR_LOAD_IN_PROGRESS, COORDINATOR_NOT_AVAILABLE, INVALID_GROUP_ID; per member
UNKNOWN_MEMBER_ID, FENCED_INSTANCE_ID, GROUP_AUTHORIZATION_FAILED (no READ on the group).
"""

from __future__ import annotations

from typing import Any

from strom.apis._build import build, entry_type, no_throttle
from strom.protocol.errors import ErrorCode
from strom.protocol.registry import ApiSpec, response_type

API_KEY = 13


async def handle(ctx: Any, request: Any) -> Any:
    version = ctx.api_version
    coordinator = ctx.broker.group_coordinator
    if version <= 2:
        members = [(request.member_id, None)]
    else:
        members = [(m.member_id, m.group_instance_id) for m in request.members]
    top, results = coordinator.core.leave(request.group_id, members, coordinator.now_ms())
    coordinator.poke()
    cls = response_type(API_KEY, version)
    if version <= 2:
        if top is ErrorCode.none:
            top = next((e for _m, _i, e in results if e is not ErrorCode.none), ErrorCode.none)
        return build(cls, throttle_time=no_throttle(), error_code=top)
    member_cls = entry_type(cls, "members")
    return build(
        cls,
        throttle_time=no_throttle(),
        error_code=top,
        members=tuple(
            build(member_cls, member_id=m, group_instance_id=i, error_code=e) for m, i, e in results
        ),
    )


SPEC = ApiSpec(api_key=API_KEY, min_version=0, max_version=5, handler=handle, name="LeaveGroup")
