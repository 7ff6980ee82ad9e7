"""ConsumerGroupDescribe (api key 69), versions 0-1: consumer groups (KIP-848) as their coordinator sees
them: state (Empty, Assigning, Reconciling, Stable), group epoch, target assignment epoch, the assignor,
and per member its epoch, subscription, current assignment and target assignment. v1 adds each member's
type (1: a member of the consumer protocol; Strom has no classic members in consumer groups). Authorized
operations (KIP-430), when asked for, are those of READ, DELETE, DESCRIBE, DESCRIBE_CONFIGS, ALTER_CONFIGS
(what Kafka 4.4 reports) the principal may do on the group.

Errors per group: GROUP_AUTHORIZATION_FAILED (no DESCRIBE on the group; the entry's other fields are the
schema's defaults, epochs 0, as Kafka builds it), NOT_COORDINATOR,
COORDINATOR_LOAD_IN_PROGRESS, INVALID_GROUP_ID, GROUP_ID_NOT_FOUND ("Group X not found.", or "Group X is not a
consumer group." for a classic group, after which the admin client asks DescribeGroups).
"""

from __future__ import annotations

from typing import Any

from kio.static.primitive import i8, i32

from strom.apis._authz import authorized_operations, may, refused_group
from strom.apis._build import build, entry_type, no_throttle
from strom.coordinator.consumer.results import DescribedGroup
from strom.protocol.errors import ErrorCode
from strom.protocol.registry import ApiSpec, response_type
from strom.security.authorizer import AclOperation, ResourceType

API_KEY = 69
# READ, DELETE, DESCRIBE, DESCRIBE_CONFIGS, ALTER_CONFIGS (bits of AclOperation codes), Kafka 4.4's answer
_GROUP_OPERATIONS = tuple(AclOperation(op) for op in (3, 6, 8, 10, 11))
_NOT_REQUESTED = -(2**31)


def _assignment(cls: type, parts: list[tuple[Any, str, list[int]]]) -> Any:
    tp_cls = entry_type(cls, "topic_partitions")
    return cls(
        topic_partitions=tuple(
            tp_cls(topic_id=topic_id, topic_name=name, partitions=tuple(i32(p) for p in ps))
            for topic_id, name, ps in parts
        )
    )


async def handle(ctx: Any, request: Any) -> Any:
    core = ctx.broker.group_coordinator.core
    cls = response_type(API_KEY, ctx.api_version)
    group_cls = entry_type(cls, "groups")
    member_cls = entry_type(group_cls, "members")
    assignment_cls = member_cls.__dataclass_fields__["assignment"].type
    groups = []
    for group_id in request.group_ids:
        if not may(ctx, AclOperation.DESCRIBE, ResourceType.GROUP, group_id):
            groups.append(refused_group(group_cls, group_id))
            continue
        ops = _NOT_REQUESTED
        if request.include_authorized_operations:
            ops = authorized_operations(ctx, ResourceType.GROUP, group_id, _GROUP_OPERATIONS)
        described: DescribedGroup = core.consumer_describe(group_id)
        ok = described.error is ErrorCode.none
        groups.append(
            build(
                group_cls,
                error_code=described.error,
                error_message=described.message,
                group_id=group_id,
                group_state=described.state,
                group_epoch=i32(described.group_epoch),
                assignment_epoch=i32(described.assignment_epoch),
                assignor_name=described.assignor,
                members=tuple(
                    build(
                        member_cls,
                        member_id=m.member_id,
                        instance_id=m.instance_id,
                        rack_id=m.rack_id,
                        member_epoch=i32(m.member_epoch),
                        client_id=m.client_id,
                        client_host=m.client_host,
                        subscribed_topic_names=m.subscribed_topic_names,
                        subscribed_topic_regex=m.subscribed_topic_regex,
                        assignment=_assignment(assignment_cls, m.assignment),
                        target_assignment=_assignment(assignment_cls, m.target_assignment),
                        member_type=i8(m.member_type),
                    )
                    for m in described.members
                ),
                authorized_operations=i32(ops if ok else _NOT_REQUESTED),
            )
        )
    return build(cls, throttle_time=no_throttle(), groups=tuple(groups))


SPEC = ApiSpec(api_key=API_KEY, min_version=0, max_version=1, handler=handle, name="ConsumerGroupDescribe")
