"""StreamsGroupHeartbeat (api key 88), versions 0-1: membership of streams groups (KIP-1071).

A Kafka Streams member (one per stream thread) joins with member epoch 0, its own member id, its process
id and the application's topology; it then heartbeats every heartbeat interval with its epoch and the
tasks it owns. The answer carries its member epoch, its active, standby and warm-up tasks when they
changed, statuses (0 STALE_TOPOLOGY, 1 MISSING_SOURCE_TOPICS, 2 INCORRECTLY_PARTITIONED_TOPICS,
3 MISSING_INTERNAL_TOPICS, 4 SHUTDOWN_APPLICATION), group.streams.acceptable.recovery.lag,
group.streams.task.offset.interval.ms and, for interactive queries, the partitions of every member with a
user endpoint when the member's endpoint information epoch is behind. Epoch -1 leaves; -2 leaves for a
while (static members). v1 drops v0's int32 AcceptableRecoveryLagLegacy for an int64 AcceptableRecoveryLag
and adds TopologyDescriptionRequired (always false: no topology description plugin is configured, as in a
default Kafka 4.4).

Internal topics the topology needs (repartition and changelog topics) are created here, as Kafka 4.4's
broker does on the member's behalf: with the partition counts the coordinator decided, the topology's
replication factor (the broker default for -1/0) and the client's topic configs, before the answer that
tells the member MISSING_INTERNAL_TOPICS; its next heartbeat finds them and gets its tasks. The work happens
in `strom.coordinator.streams`.

Errors: NONE, GROUP_AUTHORIZATION_FAILED (no READ on the group), TOPIC_AUTHORIZATION_FAILED (a topic of
the topology, source, repartition or changelog, the principal may not DESCRIBE), NOT_COORDINATOR,
COORDINATOR_NOT_AVAILABLE, COORDINATOR_LOAD_IN_PROGRESS, INVALID_REQUEST (Kafka's messages),
UNKNOWN_MEMBER_ID, FENCED_MEMBER_EPOCH, UNRELEASED_INSTANCE_ID, FENCED_INSTANCE_ID,
GROUP_MAX_SIZE_REACHED, GROUP_ID_NOT_FOUND (a group of another type).
"""

from __future__ import annotations

import logging
from typing import Any

from strom.apis._authz import denied_topics, enforcing, may
from strom.apis._streams_wire import Writer
from strom.coordinator.streams.heartbeat import StreamsHeartbeatRequest, StreamsHeartbeatResult
from strom.coordinator.streams.records import (
    CopartitionGroup,
    Subtopology,
    Tasks,
    TopicInfo,
    TopologyValue,
)
from strom.protocol.errors import ErrorCode, KafkaError
from strom.protocol.frames import RawResponse
from strom.protocol.registry import ApiSpec, decode_with_kio, request_type
from strom.security.authorizer import AclOperation, ResourceType

API_KEY = 88
log = logging.getLogger("strom.streams_groups")


def decode(version: int, body: memoryview) -> Any:
    # v1 changed only the response: the request layout is v0's
    return decode_with_kio(request_type(API_KEY, 0), body)  # type: ignore[arg-type]


def _topic_info(t: Any) -> TopicInfo:
    return TopicInfo(
        t.name, int(t.partitions), int(t.replication_factor), tuple((c.key, c.value) for c in t.topic_configs)
    )


def _topology(t: Any) -> TopologyValue | None:
    if t is None:
        return None
    return TopologyValue(
        int(t.epoch),
        tuple(
            Subtopology(
                s.subtopology_id,
                tuple(s.source_topics),
                tuple(s.source_topic_regex),
                tuple(_topic_info(c) for c in s.state_changelog_topics),
                tuple(s.repartition_sink_topics),
                tuple(_topic_info(r) for r in s.repartition_source_topics),
                tuple(
                    CopartitionGroup(
                        tuple(int(i) for i in g.source_topics),
                        tuple(int(i) for i in g.source_topic_regex),
                        tuple(int(i) for i in g.repartition_source_topics),
                    )
                    for g in s.copartition_groups
                ),
            )
            for s in t.subtopologies
        ),
    )


def _tasks(entries: Any) -> dict[str, set[int]] | None:
    if entries is None:
        return None
    out: dict[str, set[int]] = {}
    for e in entries:
        out.setdefault(e.subtopology_id, set()).update(int(p) for p in e.partitions)
    return out


def _offsets(entries: Any) -> tuple[tuple[str, int, int], ...] | None:
    if entries is None:
        return None
    return tuple((e.subtopology_id, int(e.partition), int(e.offset)) for e in entries)


def to_request(ctx: Any, request: Any) -> StreamsHeartbeatRequest:
    kinds = (_tasks(request.active_tasks), _tasks(request.standby_tasks), _tasks(request.warmup_tasks))
    owned = None if kinds[0] is None else (kinds[0], kinds[1] or {}, kinds[2] or {})
    host = ctx.client_host
    endpoint = request.user_endpoint
    return StreamsHeartbeatRequest(
        group_id=request.group_id,
        member_id=request.member_id,
        member_epoch=int(request.member_epoch),
        endpoint_information_epoch=int(request.endpoint_information_epoch),
        instance_id=request.instance_id,
        rack_id=request.rack_id,
        rebalance_timeout_ms=int(request.rebalance_timeout.total_seconds() * 1000),
        topology=_topology(request.topology),
        owned=owned,
        process_id=request.process_id,
        user_endpoint=None if endpoint is None else (endpoint.host, int(endpoint.port)),
        client_tags=None
        if request.client_tags is None
        else tuple((c.key, c.value) for c in request.client_tags),
        task_offsets=_offsets(request.task_offsets),
        task_end_offsets=_offsets(request.task_end_offsets),
        shutdown_application=bool(request.shutdown_application),
        client_id=ctx.client_id or "",
        client_host=host if host.startswith("/") else f"/{host}",
    )


def _write_tasks(w: Writer, tasks: Tasks | None) -> None:
    if tasks is None:
        w.count(None)
        return
    entries = [(s, sorted(p)) for s, p in sorted(tasks.items()) if p]
    w.count(len(entries))
    for s, parts in entries:
        w.str(s).i32s(parts).tags()


def encode(version: int, result: StreamsHeartbeatResult) -> bytes:
    w = Writer().i32(0).i16(int(result.error)).nstr(result.message)
    w.str(result.member_id).i32(result.member_epoch).i32(result.heartbeat_interval_ms)
    if version == 0:
        w.i32(min(result.acceptable_recovery_lag, 2**31 - 1))
    w.i32(result.task_offset_interval_ms)
    if version >= 1:
        w.i64(result.acceptable_recovery_lag if result.error is ErrorCode.none else -1)
    if result.error is not ErrorCode.none or not result.statuses:
        w.count(None if result.error is not ErrorCode.none else 0)
    else:
        w.count(len(result.statuses))
        for code, detail in result.statuses:
            w.i8(code).str(detail).tags()
    tasks = result.tasks
    for kind in (None, None, None) if tasks is None else tasks.kinds():
        _write_tasks(w, kind)
    if version >= 1:
        w.bool(False)  # TopologyDescriptionRequired
    w.i32(result.endpoint_information_epoch)
    parts = result.partitions_by_endpoint
    w.count(None if parts is None else len(parts))
    for e in parts or []:
        w.str(e.endpoint[0]).u16(e.endpoint[1]).tags()
        for listed in (e.active, e.standby):
            w.count(len(listed))
            for topic, ps in listed:
                w.str(topic).i32s(ps).tags()
        w.tags()
    return w.tags().bytes()


async def _create_internal_topics(
    ctx: Any, topics: list[tuple[str, int, int, tuple[tuple[str, str], ...]]]
) -> None:
    """Create the internal topics a streams group is missing (another member may be creating them too)."""
    backend = ctx.broker.metadata
    for name, partitions, replication, configs in topics:
        if backend.image.topic(name) is not None:
            continue
        try:
            await backend.create_topic(
                name, partitions, replication if replication > 0 else -1, dict(configs)
            )
        except KafkaError as exc:
            if exc.code is not ErrorCode.topic_already_exists:
                log.warning("creating internal topic %s failed: %s", name, exc)


async def handle(ctx: Any, request: Any) -> Any:
    version = ctx.api_version
    if not may(ctx, AclOperation.READ, ResourceType.GROUP, request.group_id):
        denied = StreamsHeartbeatResult(ErrorCode.group_authorization_failed)
        return RawResponse([encode(version, denied)], leading_throttle=True)
    if request.topology is not None and enforcing(ctx):
        required = {
            *(name for s in request.topology.subtopologies for name in s.source_topics),
            *(name for s in request.topology.subtopologies for name in s.repartition_sink_topics),
            *(t.name for s in request.topology.subtopologies for t in s.repartition_source_topics),
            *(t.name for s in request.topology.subtopologies for t in s.state_changelog_topics),
        }
        if denied_topics(ctx, AclOperation.DESCRIBE, required):
            hidden = StreamsHeartbeatResult(ErrorCode.topic_authorization_failed)
            return RawResponse([encode(version, hidden)], leading_throttle=True)
    coordinator = ctx.broker.group_coordinator
    req = to_request(ctx, request)
    result: StreamsHeartbeatResult = await coordinator.call(
        lambda cb: coordinator.core.streams_heartbeat(req, coordinator.now_ms(), cb), ctx.effects_applied
    )
    if result.error is ErrorCode.none and result.to_create:
        # created before the answer (which still says MISSING_INTERNAL_TOPICS), so the member's next
        # heartbeat finds them and gets its tasks
        await _create_internal_topics(ctx, result.to_create)
    return RawResponse([encode(version, result)], leading_throttle=True)


SPEC = ApiSpec(
    api_key=API_KEY, min_version=0, max_version=1, handler=handle, decode=decode, name="StreamsGroupHeartbeat"
)
