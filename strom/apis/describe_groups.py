"""DescribeGroups (api key 15), versions 0-6: state, protocol and members of classic groups.

Member metadata and assignments, and the protocol name, are given only for a Stable group (as Kafka
does). A group that does not exist is described as Dead with no members: with NONE below v6, with
GROUP_ID_NOT_FOUND and an error message from v6 (KIP-1043). v3 adds authorized operations (KIP-430; all
operations, as there is no authorizer), v4 group.instance.id.

A consumer group (KIP-848) is not described here: GROUP_ID_NOT_FOUND "Group X is not a classic group." (a
Dead group below v6), as Kafka 4.4 answers; ConsumerGroupDescribe describes it.

Errors per group: NOT_COORDINATOR, COORDINATOR_LOAD_IN_PROGRESS, GROUP_ID_NOT_FOUND (v6+).
"""

from __future__ import annotations

from typing import Any

from strom.apis._build import build, entry_type, no_throttle
from strom.protocol.errors import ErrorCode
from strom.protocol.registry import ApiSpec, response_type

API_KEY = 15
# READ, DELETE, DESCRIBE: the operations Kafka reports on a group (bits of AclOperation codes).
_GROUP_OPERATIONS = (1 << 3) | (1 << 6) | (1 << 8)
_NOT_REQUESTED = -(2**31)


async def handle(ctx: Any, request: Any) -> Any:
    core = ctx.broker.group_coordinator.core
    cls = response_type(API_KEY, ctx.api_version)
    group_cls = entry_type(cls, "groups")
    member_cls = entry_type(group_cls, "members")
    ops = _GROUP_OPERATIONS if getattr(request, "include_authorized_operations", False) else _NOT_REQUESTED
    groups = []
    for group_id in request.groups:
        error, summary = core.describe(group_id)
        message = None
        if error == ErrorCode.group_id_not_found:
            if ctx.api_version < 6:
                error = ErrorCode.none
            else:
                message = core.describe_message(group_id)
        groups.append(
            build(
                group_cls,
                error_code=error,
                error_message=message,
                group_id=group_id,
                group_state=summary.state,
                protocol_type=summary.protocol_type,
                protocol_data=summary.protocol,
                members=tuple(
                    build(
                        member_cls,
                        member_id=m.member_id,
                        group_instance_id=m.group_instance_id,
                        client_id=m.client_id,
                        client_host=m.client_host,
                        member_metadata=m.metadata,
                        member_assignment=m.assignment,
                    )
                    for m in summary.members
                ),
                authorized_operations=ops,
            )
        )
    return build(cls, throttle_time=no_throttle(), groups=tuple(groups))


SPEC = ApiSpec(api_key=API_KEY, min_version=0, max_version=6, handler=handle, name="DescribeGroups")
