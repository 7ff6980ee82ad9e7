"""DeleteGroups (api key 42), versions 0-2: delete Empty groups with their committed offsets.

Tombstones for the group's offsets and metadata are written to __consumer_offsets before answering.

Errors per group: NOT_COORDINATOR, COORDINATOR_LOAD_IN_PROGRESS, INVALID_GROUP_ID, GROUP_ID_NOT_FOUND,
NON_EMPTY_GROUP.
"""

from __future__ import annotations

from typing import Any

from strom.apis._build import build, entry_type, no_throttle
from strom.protocol.registry import ApiSpec, response_type

API_KEY = 42


async def handle(ctx: Any, request: Any) -> Any:
    coordinator = ctx.broker.group_coordinator
    names = list(dict.fromkeys(request.groups_names))
    core, now = coordinator.core, coordinator.now_ms()
    results = await coordinator.call(lambda cb: core.delete_groups(names, now, cb))
    cls = response_type(API_KEY, ctx.api_version)
    result_cls = entry_type(cls, "results")
    return build(
        cls,
        throttle_time=no_throttle(),
        results=tuple(build(result_cls, group_id=g, error_code=results[g]) for g in names),
    )


SPEC = ApiSpec(api_key=API_KEY, min_version=0, max_version=2, handler=handle, name="DeleteGroups")
