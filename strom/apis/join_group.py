"""JoinGroup (api key 11), versions 0-9: a member joins a classic group or rejoins for a rebalance.

The request parks until the rebalance completes (all known members rejoined, the rebalance timeout
passed, or group.initial.rebalance.delay.ms for a new group). The leader's answer lists every member
with its metadata for the selected protocol; followers get an empty list.

Versions: v1 adds rebalance_timeout (v0 uses the session timeout); v4 answers a first join without member
id with MEMBER_ID_REQUIRED and a new id (KIP-394; never below v4, which kafka-go relies on); v5 adds
group.instance.id (KIP-345 static membership); v7 protocol_type in the answer; v9 skip_assignment for a
rejoining static leader (KIP-814).

Errors: NOT_COORDINATOR, COORDINATOR_LOAD_IN_PROGRESS, COORDINATOR_NOT_AVAILABLE, INVALID_GROUP_ID,
INVALID_SESSION_TIMEOUT (outside group.min/max.session.timeout.ms), INCONSISTENT_GROUP_PROTOCOL,
UNKNOWN_MEMBER_ID, MEMBER_ID_REQUIRED, FENCED_INSTANCE_ID, GROUP_MAX_SIZE_REACHED, REBALANCE_IN_PROGRESS (an
earlier JoinGroup of the same member superseded by a newer one), GROUP_AUTHORIZATION_FAILED (no READ on the
group).
"""

from __future__ import annotations

from typing import Any

from strom.apis._build import build, entry_type, no_throttle
from strom.coordinator.group.results import JoinRequest, JoinResult
from strom.protocol.registry import ApiSpec, response_type

API_KEY = 11


def _ms(value: Any) -> int:
    return int(value.total_seconds() * 1000)


async def handle(ctx: Any, request: Any) -> Any:
    version = ctx.api_version
    coordinator = ctx.broker.group_coordinator
    session_ms = _ms(request.session_timeout)
    rebalance_ms = _ms(request.rebalance_timeout) if version >= 1 else session_ms
    host = ctx.client_host
    req = JoinRequest(
        group_id=request.group_id,
        member_id=request.member_id,
        group_instance_id=getattr(request, "group_instance_id", None),
        client_id=ctx.client_id or "",
        client_host=host if host.startswith("/") else f"/{host}",
        session_timeout_ms=session_ms,
        rebalance_timeout_ms=rebalance_ms if rebalance_ms > 0 else session_ms,
        protocol_type=request.protocol_type,
        protocols=[(p.name, p.metadata) for p in request.protocols],
        require_known_member_id=version >= 4,
        supports_skip_assignment=version >= 9,
    )
    result: JoinResult = await coordinator.call(
        lambda cb: coordinator.core.join(req, coordinator.now_ms(), cb), ctx.effects_applied
    )
    cls = response_type(API_KEY, version)
    member_cls = entry_type(cls, "members")
    protocol_name = result.protocol_name
    if protocol_name is None and version < 7:
        protocol_name = ""  # non-nullable before v7
    return build(
        cls,
        throttle_time=no_throttle(),
        error_code=result.error,
        generation_id=result.generation_id,
        protocol_type=result.protocol_type,
        protocol_name=protocol_name,
        leader=result.leader_id,
        skip_assignment=result.skip_assignment,
        member_id=result.member_id,
        members=tuple(
            build(
                member_cls, member_id=m.member_id, group_instance_id=m.group_instance_id, metadata=m.metadata
            )
            for m in result.members
        ),
    )


SPEC = ApiSpec(api_key=API_KEY, min_version=0, max_version=9, handler=handle, name="JoinGroup")
