"""StreamsGroupDescribe (api key 89), versions 0-1: streams groups (KIP-1071) as their coordinator sees
them: state (Empty, NotReady, Assigning, Reconciling, Stable), group epoch, target assignment epoch, the
topology (subtopologies with their source, repartition and changelog topics, internal topics with the
partition counts decided for them), and per member its epochs, process id, user endpoint, client tags,
task offsets, current and target tasks (IsClassic is always false: no classic members in streams groups).
v1 adds IncludeTopologyDescription to the request and TopologyDescription (null: no topology description
plugin is configured, as in a default Kafka 4.4), TopologyDescriptionStatus (0) and AssignorName
("sticky") to each group. Authorized operations (KIP-430), when asked for, are those of READ, DELETE,
DESCRIBE, DESCRIBE_CONFIGS, ALTER_CONFIGS the principal may do on the group.

Errors per group: GROUP_AUTHORIZATION_FAILED (no DESCRIBE on the group; epochs 0 and no topology, as
Kafka builds it), NOT_COORDINATOR,
COORDINATOR_LOAD_IN_PROGRESS, INVALID_GROUP_ID, GROUP_ID_NOT_FOUND ("Group X not found." or "Group X is not
a streams group.").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from strom.apis._authz import authorized_operations, may
from strom.apis._streams_wire import Reader, Writer
from strom.coordinator.streams.admin import DescribedStreamsGroup
from strom.coordinator.streams.config import ASSIGNOR
from strom.coordinator.streams.records import TaskSet, TopicInfo
from strom.protocol.errors import ErrorCode
from strom.protocol.frames import RawResponse
from strom.protocol.registry import ApiSpec
from strom.security.authorizer import AclOperation, ResourceType

API_KEY = 89
_GROUP_OPERATIONS = tuple(AclOperation(op) for op in (3, 6, 8, 10, 11))
_NOT_REQUESTED = -(2**31)


@dataclass(frozen=True, slots=True)
class DescribeRequest:
    group_ids: tuple[str, ...]
    include_authorized_operations: bool
    include_topology_description: bool = False


def decode(version: int, body: memoryview) -> DescribeRequest:
    r = Reader(body)
    ids = tuple(r.str() for _ in range(r.count()))
    with_ops = r.bool()
    with_description = r.bool() if version >= 1 else False
    r.skip_tags()
    return DescribeRequest(ids, with_ops, with_description)


def _topic_infos(w: Writer, infos: tuple[TopicInfo, ...]) -> None:
    w.count(len(infos))
    for t in infos:
        w.str(t.name).i32(t.partitions).i16(t.replication_factor)
        w.count(len(t.configs))
        for k, v in t.configs:
            w.str(k).str(v).tags()
        w.tags()


def _assignment(w: Writer, tasks: TaskSet) -> None:
    for kind in tasks.kinds():
        entries = [(s, sorted(p)) for s, p in sorted(kind.items()) if p]
        w.count(len(entries))
        for s, parts in entries:
            w.str(s).i32s(parts).tags()
    w.tags()


def _group(w: Writer, version: int, g: DescribedStreamsGroup, ops: int) -> None:
    w.i16(int(g.error)).nstr(g.message).str(g.group_id).str(g.state)
    # a group refused by the authorizer carries the schema's zeros, as Kafka builds it; other errors -1
    epochs = g.error in (ErrorCode.none, ErrorCode.group_authorization_failed)
    w.i32(g.group_epoch if epochs else -1)
    w.i32(g.assignment_epoch if epochs else -1)
    if g.subtopologies is None and g.topology_epoch < 0:
        w.i8(-1)
    else:
        w.i8(1).i32(g.topology_epoch)
        subs = g.subtopologies
        w.count(None if subs is None else len(subs))
        for s in subs or []:
            w.str(s.subtopology_id).strs(s.source_topics).strs(s.repartition_sink_topics)
            _topic_infos(w, s.state_changelog_topics)
            _topic_infos(w, s.repartition_source_topics)
            w.tags()
        w.tags()
    w.count(len(g.members))
    for m, target in g.members:
        w.str(m.member_id).i32(m.member_epoch).nstr(m.instance_id).nstr(m.rack_id)
        w.str(m.client_id).str(m.client_host).i32(m.topology_epoch).str(m.process_id)
        if m.user_endpoint is None:
            w.i8(-1)
        else:
            w.i8(1).str(m.user_endpoint[0]).u16(m.user_endpoint[1]).tags()
        w.count(len(m.client_tags))
        for k, v in m.client_tags:
            w.str(k).str(v).tags()
        for offsets in (m.task_offsets, m.task_end_offsets):
            w.count(len(offsets))
            for s, p, o in offsets:
                w.str(s).i32(p).i64(o).tags()
        _assignment(w, m.assigned)
        _assignment(w, target)
        w.bool(False)  # IsClassic
        w.tags()
    w.i32(ops)
    if version >= 1:
        w.i8(-1)  # TopologyDescription: none without a topology description plugin
        w.i8(0)  # TopologyDescriptionStatus
        w.nstr(ASSIGNOR if g.error is ErrorCode.none else None)
    w.tags()


async def handle(ctx: Any, request: DescribeRequest) -> Any:
    core = ctx.broker.group_coordinator.core
    w = Writer().i32(0).count(len(request.group_ids))
    for group_id in request.group_ids:
        if not may(ctx, AclOperation.DESCRIBE, ResourceType.GROUP, group_id):
            denied = DescribedStreamsGroup(group_id, ErrorCode.group_authorization_failed)
            _group(w, ctx.api_version, denied, _NOT_REQUESTED)
            continue
        ops = _NOT_REQUESTED
        if request.include_authorized_operations:
            ops = authorized_operations(ctx, ResourceType.GROUP, group_id, _GROUP_OPERATIONS)
        _group(w, ctx.api_version, core.streams_describe(group_id), ops)
    return RawResponse([w.tags().bytes()], leading_throttle=True)


SPEC = ApiSpec(
    api_key=API_KEY, min_version=0, max_version=1, handler=handle, decode=decode, name="StreamsGroupDescribe"
)
