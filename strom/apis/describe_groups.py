"""DescribeGroups (api key 15), versions 0-6: state, protocol and members of classic groups.

Member metadata and assignments, and the protocol name, are given only for a Stable group (as Kafka
does). A group that does not exist is described as Dead with no members: with NONE below v6, with
GROUP_ID_NOT_FOUND and an error message from v6 (KIP-1043). v3 adds authorized operations (KIP-430: of
READ, DELETE and DESCRIBE, those the principal may do), v4 group.instance.id. A group the principal may
not DESCRIBE answers GROUP_AUTHORIZATION_FAILED.

A consumer group (KIP-848) is not described here: GROUP_ID_NOT_FOUND "Group X is not a classic group." (a
Dead group below v6), as Kafka 4.4 answers; ConsumerGroupDescribe describes it.

Errors per group: NOT_COORDINATOR, COORDINATOR_LOAD_IN_PROGRESS, GROUP_ID_NOT_FOUND (v6+).
"""

from __future__ import annotations

from typing import Any

from strom.apis._authz import authorized_operations, may
from strom.apis._build import build, entry_type, no_throttle
from strom.protocol.errors import ErrorCode
from strom.protocol.registry import ApiSpec, response_type
from strom.security.authorizer import AclOperation, ResourceType

API_KEY = 15
# READ, DELETE, DESCRIBE: the operations Kafka 4.4's DescribeGroups reports on a group, of those the
# principal may do
_GROUP_OPERATIONS = (AclOperation.READ, AclOperation.DELETE, AclOperation.DESCRIBE)
_NOT_REQUESTED = -(2**31)


async def handle(ctx: Any, request: Any) -> Any:
    core = ctx.broker.group_coordinator.core
    cls = response_type(API_KEY, ctx.api_version)
    group_cls = entry_type(cls, "groups")
    member_cls = entry_type(group_cls, "members")
    with_ops = bool(getattr(request, "include_authorized_operations", False))
    groups = []
    for group_id in request.groups:
        if not may(ctx, AclOperation.DESCRIBE, ResourceType.GROUP, group_id):
            denied = build(group_cls, error_code=ErrorCode.group_authorization_failed, error_message=None,
                           group_id=group_id, group_state="", protocol_type="", protocol_data="",
                           members=(), authorized_operations=_NOT_REQUESTED)  # fmt: skip
            groups.append(denied)
            continue
        ops = _NOT_REQUESTED
        if with_ops:
            ops = authorized_operations(ctx, ResourceType.GROUP, group_id, _GROUP_OPERATIONS)
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
