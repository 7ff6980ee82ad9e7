"""ListGroups (api key 16), versions 0-5: the groups this broker coordinates.

v4 filters by state (KIP-518, case-insensitive) and answers each group's state; v5 filters by type
(KIP-848: "classic" or "consumer", case-insensitive) and answers the type. Consumer groups have protocol
type "consumer" and their own states (Empty, Assigning, Reconciling, Stable).

Errors: COORDINATOR_LOAD_IN_PROGRESS while a __consumer_offsets partition is still loading (with the
groups already known).
"""

from __future__ import annotations

from typing import Any

from strom.apis._authz import allowed, may
from strom.apis._build import build, entry_type, no_throttle
from strom.protocol.registry import ApiSpec, response_type
from strom.security.authorizer import AclOperation, ResourceType

API_KEY = 16


async def handle(ctx: Any, request: Any) -> Any:
    states = set(getattr(request, "states_filter", ()) or ()) or None
    types = set(getattr(request, "types_filter", ()) or ()) or None
    error, listed = ctx.broker.group_coordinator.core.list_groups(states, types)
    # DESCRIBE on the cluster lists every group; otherwise only the groups the principal may describe
    if not may(ctx, AclOperation.DESCRIBE, ResourceType.CLUSTER):
        visible = allowed(ctx, AclOperation.DESCRIBE, ResourceType.GROUP, (g.group_id for g in listed))
        listed = [g for g in listed if g.group_id in visible]
    cls = response_type(API_KEY, ctx.api_version)
    group_cls = entry_type(cls, "groups")
    return build(
        cls,
        throttle_time=no_throttle(),
        error_code=error,
        groups=tuple(
            build(
                group_cls,
                group_id=g.group_id,
                protocol_type=g.protocol_type,
                group_state=g.state,
                group_type=g.group_type,
            )
            for g in listed
        ),
    )


SPEC = ApiSpec(api_key=API_KEY, min_version=0, max_version=5, handler=handle, name="ListGroups")
