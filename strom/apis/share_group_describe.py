"""ShareGroupDescribe (api key 77), version 1: share groups (KIP-932) as their coordinator sees them:
state (Empty, Stable), group epoch, assignment epoch, the assignor ("simple") and per member its epoch,
rack, client, subscription and assignment. Authorized operations (KIP-430), when asked for, are those of
the group's operations the principal may do.

Errors per group: GROUP_AUTHORIZATION_FAILED (no DESCRIBE on the group; the entry otherwise carries the
schema's defaults, as Kafka's does), NOT_COORDINATOR, COORDINATOR_LOAD_IN_PROGRESS, INVALID_GROUP_ID,
GROUP_ID_NOT_FOUND ("Group X not found.", or "Group X is not a share group." for a group of another type).
"""

from __future__ import annotations

from typing import Any

from kio.static.primitive import i32

from strom.apis._authz import authorized_operations, may, refused_group
from strom.apis._build import build, entry_type, no_throttle
from strom.coordinator.share.admin import DescribedShareGroup
from strom.protocol.errors import ErrorCode
from strom.protocol.registry import ApiSpec, response_type
from strom.security.authorizer import AclOperation, ResourceType

API_KEY = 77
# READ, DELETE, DESCRIBE, DESCRIBE_CONFIGS, ALTER_CONFIGS (AclOperation codes), as for other groups
_GROUP_OPERATIONS = tuple(AclOperation(op) for op in (3, 6, 8, 10, 11))
_NOT_REQUESTED = -(2**31)


async def handle(ctx: Any, request: Any) -> Any:
    core = ctx.broker.group_coordinator.core
    cls = response_type(API_KEY, ctx.api_version)
    group_cls = entry_type(cls, "groups")
    member_cls = entry_type(group_cls, "members")
    assignment_cls = member_cls.__dataclass_fields__["assignment"].type
    tp_cls = entry_type(assignment_cls, "topic_partitions")
    groups = []
    for group_id in request.group_ids:
        if not may(ctx, AclOperation.DESCRIBE, ResourceType.GROUP, group_id):
            groups.append(refused_group(group_cls, group_id))
            continue
        ops = _NOT_REQUESTED
        if request.include_authorized_operations:
            ops = authorized_operations(ctx, ResourceType.GROUP, group_id, _GROUP_OPERATIONS)
        d: DescribedShareGroup = core.share_describe(group_id)
        ok = d.error is ErrorCode.none
        groups.append(
            build(
                group_cls,
                error_code=d.error,
                error_message=d.message,
                group_id=group_id,
                group_state=d.state,
                group_epoch=i32(d.group_epoch),
                assignment_epoch=i32(d.assignment_epoch),
                assignor_name=d.assignor if ok else "",
                members=tuple(
                    build(
                        member_cls,
                        member_id=m.member_id,
                        rack_id=m.rack_id,
                        member_epoch=i32(m.member_epoch),
                        client_id=m.client_id,
                        client_host=m.client_host,
                        subscribed_topic_names=m.subscribed_topic_names,
                        assignment=assignment_cls(
                            topic_partitions=tuple(
                                tp_cls(topic_id=tid, topic_name=name, partitions=tuple(i32(p) for p in ps))
                                for tid, name, ps in m.assignment
                            )
                        ),
                    )
                    for m in d.members
                ),
                authorized_operations=i32(ops if ok else _NOT_REQUESTED),
            )
        )
    return build(cls, throttle_time=no_throttle(), groups=tuple(groups))


SPEC = ApiSpec(api_key=API_KEY, min_version=1, max_version=1, handler=handle, name="ShareGroupDescribe")
