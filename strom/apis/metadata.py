"""Metadata (api key 3), versions 0-13: brokers, controller, cluster id, topics and partition leaders.

Behaviour (Kafka's `KafkaApis.handleTopicMetadataRequest`):
- `topics` null (v1+) or empty (v0) asks for every topic; internal topics are flagged `is_internal`.
- A requested topic that does not exist is created when `auto.create.topics.enable` is on and the request
  allows it (`allow_auto_topic_creation`, v4+; always allowed below), with `num.partitions` and
  `default.replication.factor`. The request that created it answers LEADER_NOT_AVAILABLE for it while
  a partition it leads here is not open yet, so clients retry.
- Brokers are listed with their endpoints on the listener the client connected through; a broker without
  that listener is left out (Kafka's metadata cache by listener name).
- Topic ids (KIP-516) from v10; v10+ requests by topic id alone are answered by id.
- Authorization (Kafka's rules): a topic needs DESCRIBE; when every topic is asked for, the others are
  left out, a topic asked for by name answers TOPIC_AUTHORIZATION_FAILED (by id: the id without the
  name). Auto-creation needs CREATE on the cluster or on the topic, else TOPIC_AUTHORIZATION_FAILED.
- v8+ `topic_authorized_operations` (and v8-10 `cluster_authorized_operations`) are filled from the
  authorizer when the request asks, else -2147483648.
- v13 (KIP-1102) adds a top-level error code, REBOOTSTRAP_REQUIRED when a client should look the cluster
  up again; a broker answers NONE there, as Kafka 4.4's do.
- The response is encoded by hand (`encode_response`, every version checked byte for byte against kio's
  writer in the tests): kio's pure-Python writer is several times slower on large clusters. Flexible
  (KIP-482) from v9. A topic without a name (answered by id) is written as null from v12, where the field
  became nullable, and as an empty string below.
- `throttle_time_ms` (v3+) is the request_percentage throttle (KIP-124), for which the connection is
  muted, as Kafka's sendResponseMaybeThrottle does.

- A partition without a live leader (none elected yet: a topic just created in a cluster, whose partition
  states the controller has not written; or its leader's broker is gone) answers LEADER_NOT_AVAILABLE and
  leader -1, as Kafka's metadata cache does, so clients wait instead of taking the topic as ready.
- A partition is named with its leader as soon as the metadata names one, also when that leader is this
  broker and its log is still being opened (a topic just created, a leadership just moved): Kafka's
  metadata cache is updated before its ReplicaManager applies the change, and a Produce or Fetch that
  comes first is answered NOT_LEADER_OR_FOLLOWER, which clients retry.

Errors per topic: NONE, UNKNOWN_TOPIC_OR_PARTITION, LEADER_NOT_AVAILABLE (a topic auto-created by this
request, not open here yet), INVALID_TOPIC_EXCEPTION, UNKNOWN_TOPIC_ID, TOPIC_AUTHORIZATION_FAILED. Per
partition: NONE, LEADER_NOT_AVAILABLE (no live leader).
"""

from __future__ import annotations

import logging
import struct
import uuid
from collections.abc import Sequence
from typing import Any, NamedTuple

from strom.apis._authz import CLUSTER_NAME, authorized_operations, may
from strom.cluster.metadata import INTERNAL_TOPICS, TopicInfo
from strom.protocol.errors import ErrorCode, KafkaError
from strom.protocol.frames import RawResponse
from strom.protocol.registry import ApiSpec
from strom.protocol.wire import EMPTY_TAGS, I16, I32, array_len, int32_array, nullable_string, string
from strom.security.authorizer import AclOperation, ResourceType
from strom.security.quotas.throttling import request_throttle_ms
from strom.server.context import RequestContext

log = logging.getLogger("strom.apis.metadata")

API_KEY = 3
NO_AUTHORIZED_OPERATIONS = -2147483648
ZERO_UUID = uuid.UUID(int=0)
FLEXIBLE_FROM = 9

_BROKER_HEAD = struct.Struct(">i")
_BOOL = (b"\x00", b"\x01")


class MetadataBroker(NamedTuple):
    node_id: int
    host: str
    port: int
    rack: str | None = None


class MetadataPartition(NamedTuple):
    error_code: int
    partition_index: int
    leader_id: int
    leader_epoch: int
    replica_nodes: tuple[int, ...]
    isr_nodes: tuple[int, ...]
    offline_replicas: tuple[int, ...] = ()


class MetadataTopic(NamedTuple):
    error_code: int
    name: str | None
    topic_id: uuid.UUID | None
    is_internal: bool
    partitions: tuple[MetadataPartition, ...]
    topic_authorized_operations: int = NO_AUTHORIZED_OPERATIONS


def _partition_struct(version: int, flexible: bool, shape: tuple[int, int, int]) -> struct.Struct:
    """One Struct for a whole partition entry whose replica, ISR and offline arrays have these lengths.

    Flexible lengths are one-byte varints here, so the caller uses this only below 127 entries."""
    n_replicas, n_isr, n_offline = shape
    length = "B" if flexible else "i"
    fmt = ">hiii" if version >= 7 else ">hii"
    fmt += f"{length}{n_replicas}i{length}{n_isr}i"
    if version >= 5:
        fmt += f"{length}{n_offline}i"
    if flexible:
        fmt += "B"  # empty tagged-field section
    return struct.Struct(fmt)


def _encode_partition_generic(version: int, p: MetadataPartition, flexible: bool) -> bytes:
    out = I16.pack(p.error_code) + I32.pack(p.partition_index) + I32.pack(p.leader_id)
    if version >= 7:
        out += I32.pack(p.leader_epoch)
    out += int32_array(p.replica_nodes, flexible) + int32_array(p.isr_nodes, flexible)
    if version >= 5:
        out += int32_array(p.offline_replicas, flexible)
    return out + EMPTY_TAGS if flexible else out


def _encode_partitions(version: int, partitions: Sequence[MetadataPartition], flexible: bool) -> bytes:
    # The hot loop of a large Metadata response: one struct.pack per partition, with the Struct chosen by
    # the shape of its arrays (nearly always the same shape across a topic, so the cache stays tiny).
    out = bytearray(array_len(len(partitions), flexible))
    structs: dict[tuple[int, int, int], struct.Struct] = {}
    for p in partitions:
        r, s, o = p.replica_nodes, p.isr_nodes, p.offline_replicas
        shape = (len(r), len(s), len(o))
        if flexible and max(shape) >= 127:
            out += _encode_partition_generic(version, p, flexible)
            continue
        st = structs.get(shape)
        if st is None:
            st = structs[shape] = _partition_struct(version, flexible, shape)
        if flexible:  # v9+: leader epoch and offline replicas present
            out += st.pack(
                p.error_code, p.partition_index, p.leader_id, p.leader_epoch,
                shape[0] + 1, *r, shape[1] + 1, *s, shape[2] + 1, *o, 0,
            )  # fmt: skip
        elif version >= 7:
            out += st.pack(
                p.error_code, p.partition_index, p.leader_id, p.leader_epoch,
                shape[0], *r, shape[1], *s, shape[2], *o,
            )  # fmt: skip
        elif version >= 5:
            out += st.pack(
                p.error_code, p.partition_index, p.leader_id, shape[0], *r, shape[1], *s, shape[2], *o
            )
        else:
            out += st.pack(p.error_code, p.partition_index, p.leader_id, shape[0], *r, shape[1], *s)
    return bytes(out)


def encode_response(
    version: int,
    brokers: Sequence[MetadataBroker],
    cluster_id: str | None,
    controller_id: int,
    topics: Sequence[MetadataTopic],
    throttle_ms: int = 0,
    cluster_authorized_operations: int = NO_AUTHORIZED_OPERATIONS,
    error_code: int = ErrorCode.none,
) -> bytes:
    """Metadata response body (after the response header) of `version` 0-13, fields as in Kafka's
    MetadataResponse.json: rack v1+, cluster_id v2+, controller_id v1+, throttle v3+, is_internal v1+,
    offline_replicas v5+, leader_epoch v7+, authorized operations v8+ (cluster's up to v10), topic_id v10+,
    top-level error code v13+."""
    flexible = version >= FLEXIBLE_FROM
    out = bytearray()
    if version >= 3:
        out += I32.pack(throttle_ms)
    out += array_len(len(brokers), flexible)
    for b in brokers:
        out += _BROKER_HEAD.pack(b.node_id)
        out += string(b.host, flexible)
        out += I32.pack(b.port)
        if version >= 1:
            out += nullable_string(b.rack, flexible)
        if flexible:
            out += EMPTY_TAGS
    if version >= 2:
        out += nullable_string(cluster_id, flexible)
    if version >= 1:
        out += I32.pack(controller_id)
    out += array_len(len(topics), flexible)
    for t in topics:
        out += I16.pack(t.error_code)
        if version >= 12:
            out += nullable_string(t.name, flexible)
        else:
            out += string(t.name or "", flexible)
        if version >= 10:
            out += (t.topic_id or ZERO_UUID).bytes
        if version >= 1:
            out += _BOOL[bool(t.is_internal)]
        out += _encode_partitions(version, t.partitions, flexible)
        if version >= 8:
            out += I32.pack(t.topic_authorized_operations)
        if flexible:
            out += EMPTY_TAGS
    if 8 <= version <= 10:
        out += I32.pack(cluster_authorized_operations)
    if version >= 13:
        out += I16.pack(error_code)
    if flexible:
        out += EMPTY_TAGS
    return bytes(out)


def _opening_here(ctx: RequestContext, info: TopicInfo) -> bool:
    """Whether a partition of the topic is led by this broker but not open yet (just created or moved)."""
    rm, node = ctx.broker.replica_manager, ctx.broker.node_id
    return any(
        state.leader == node and rm.get_partition(info.name, index) is None
        for index, state in info.partitions.items()
    )


def _partitions(ctx: RequestContext, info: TopicInfo) -> tuple[MetadataPartition, ...]:
    live = ctx.broker.metadata.image.brokers
    out = []
    for index in sorted(info.partitions):
        state = info.partitions[index]
        # no live leader (none elected yet, or its broker is gone); a partition this broker leads but has
        # not opened yet is named as Kafka's metadata cache names it (its Produce and Fetch answer
        # NOT_LEADER_OR_FOLLOWER until the log is open, as Kafka's ReplicaManager does)
        ready = state.leader in live
        out.append(
            MetadataPartition(
                error_code=ErrorCode.none if ready else ErrorCode.leader_not_available,
                partition_index=index,
                leader_id=state.leader if ready else -1,
                leader_epoch=state.leader_epoch,
                replica_nodes=state.replicas,
                isr_nodes=state.isr,
                offline_replicas=(),
            )
        )
    return tuple(out)


def _topic(ctx: RequestContext, info: TopicInfo) -> MetadataTopic:
    return MetadataTopic(
        error_code=ErrorCode.none,
        name=info.name,
        topic_id=info.topic_id,
        is_internal=info.internal,
        partitions=_partitions(ctx, info),
        topic_authorized_operations=NO_AUTHORIZED_OPERATIONS,
    )


def _error_topic(
    name: str | None, code: ErrorCode, topic_id: uuid.UUID = ZERO_UUID, *, internal: bool = False
) -> MetadataTopic:
    return MetadataTopic(
        error_code=code,
        name=name,
        topic_id=topic_id,
        is_internal=internal,
        partitions=(),
        topic_authorized_operations=NO_AUTHORIZED_OPERATIONS,
    )


async def _auto_create(ctx: RequestContext, name: str) -> ErrorCode:
    try:
        await ctx.broker.metadata.create_topic(name, -1, -1, {})
    except KafkaError as exc:
        if exc.code == ErrorCode.topic_already_exists:
            return ErrorCode.none
        if exc.code in (ErrorCode.invalid_topic_exception, ErrorCode.invalid_replication_factor):
            return (
                ErrorCode.invalid_topic_exception
                if exc.code == ErrorCode.invalid_topic_exception
                else exc.code
            )
        log.warning("auto-creating topic %s failed: %s", name, exc)
        return ErrorCode.leader_not_available
    return ErrorCode.none


async def handle(ctx: RequestContext, request: Any) -> RawResponse:
    version = ctx.api_version
    backend = ctx.broker.metadata
    image = backend.image

    requested = request.topics
    all_topics = requested is None or (version == 0 and len(requested) == 0)
    describable: dict[str, bool] = {}

    def may_describe(name: str) -> bool:
        if name not in describable:
            describable[name] = may(ctx, AclOperation.DESCRIBE, ResourceType.TOPIC, name)
        return describable[name]

    topics: list[MetadataTopic] = []
    if all_topics:
        # asked for everything: topics the principal may not DESCRIBE are simply left out, as in Kafka
        for name in sorted(image.topics):
            if may_describe(name):
                topics.append(_topic(ctx, image.topics[name]))
    else:
        allow_create = bool(getattr(request, "allow_auto_topic_creation", True)) and bool(
            ctx.broker.config.get("auto.create.topics.enable")
        )
        for item in requested:
            name = item.name
            topic_id = getattr(item, "topic_id", None)
            if not name and topic_id is not None and topic_id != ZERO_UUID:
                info = image.topic_by_id(topic_id)
                if info is None:
                    topics.append(_error_topic(None, ErrorCode.unknown_topic_id, topic_id))
                elif not may_describe(info.name):
                    # topic ids are not secret (Kafka answers the id, without the name)
                    topics.append(_error_topic(None, ErrorCode.topic_authorization_failed, topic_id))
                else:
                    topics.append(_topic(ctx, info))
                continue
            if name and not may_describe(name):
                topics.append(_error_topic(name, ErrorCode.topic_authorization_failed))
                continue
            info = image.topic(name) if name else None
            if info is None and name and allow_create and not _may_create(ctx, name):
                topics.append(
                    _error_topic(name, ErrorCode.topic_authorization_failed, internal=name in INTERNAL_TOPICS)
                )
                continue
            created = False
            if info is None and name and allow_create:
                code = await _auto_create(ctx, name)
                image = backend.image
                info = image.topic(name)
                if info is None:
                    topics.append(
                        _error_topic(
                            name,
                            code if code != ErrorCode.none else ErrorCode.leader_not_available,
                        )
                    )
                    continue
                created = True
            if info is None:
                topics.append(_error_topic(name, ErrorCode.unknown_topic_or_partition))
                continue
            if created and _opening_here(ctx, info):
                # the request that auto-created the topic: LEADER_NOT_AVAILABLE while it is being set
                # up, as Kafka answers it
                topics.append(_error_topic(name, ErrorCode.leader_not_available, info.topic_id))
            else:
                topics.append(_topic(ctx, info))

    # the endpoints of the listener this client connected through; brokers without it are left out
    listener = ctx.listener_name
    brokers = [
        MetadataBroker(b.node_id, ep.host, ep.port, b.rack)
        for b in sorted(image.brokers.values(), key=lambda b: b.node_id)
        if (ep := b.endpoint(listener)) is not None
    ]
    cluster_ops = NO_AUTHORIZED_OPERATIONS
    if getattr(request, "include_topic_authorized_operations", False):
        topics = [_with_operations(ctx, t) for t in topics]
    if getattr(request, "include_cluster_authorized_operations", False):
        cluster_ops = authorized_operations(ctx, ResourceType.CLUSTER, CLUSTER_NAME)
    return RawResponse(
        [
            encode_response(
                version,
                brokers,
                image.cluster_id,
                image.controller_id,
                topics,
                cluster_authorized_operations=cluster_ops,
                throttle_ms=request_throttle_ms(ctx),
            )
        ]
    )


def _may_create(ctx: RequestContext, name: str) -> bool:
    """Auto-creation needs CREATE on the cluster or on the topic."""
    return may(ctx, AclOperation.CREATE, ResourceType.CLUSTER) or may(
        ctx, AclOperation.CREATE, ResourceType.TOPIC, name
    )


def _with_operations(ctx: RequestContext, topic: MetadataTopic) -> MetadataTopic:
    """v8+ asked for authorized operations: filled for every topic the principal may describe (Kafka
    leaves refused ones at the "not provided" value)."""
    if topic.error_code == ErrorCode.topic_authorization_failed or not topic.name:
        return topic
    return topic._replace(
        topic_authorized_operations=authorized_operations(ctx, ResourceType.TOPIC, topic.name)
    )


SPEC = ApiSpec(api_key=API_KEY, min_version=0, max_version=13, handler=handle, name="Metadata")
