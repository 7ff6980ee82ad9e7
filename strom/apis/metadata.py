"""Metadata (api key 3), versions 0-12: brokers, controller, cluster id, topics and partition leaders.

Behaviour (Kafka's `KafkaApis.handleTopicMetadataRequest`):
- `topics` null (v1+) or empty (v0) asks for every topic; internal topics are flagged `is_internal`.
- A requested topic that does not exist is created when `auto.create.topics.enable` is on and the request
  allows it (`allow_auto_topic_creation`, v4+; always allowed below), with `num.partitions` and
  `default.replication.factor`. Until the new topic's partitions are open on this broker it answers
  LEADER_NOT_AVAILABLE, so clients retry.
- Topic ids (KIP-516) from v10; v10+ requests by topic id alone are answered by id.
- v8+ `topic_authorized_operations` is -2147483648 (not requested / no authorizer).

Errors per topic: NONE, UNKNOWN_TOPIC_OR_PARTITION, LEADER_NOT_AVAILABLE, INVALID_TOPIC_EXCEPTION,
UNKNOWN_TOPIC_ID. Per partition: NONE, LEADER_NOT_AVAILABLE (not open yet).
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from kio.static.primitive import i32

from strom.apis._build import build, entry_type, no_throttle
from strom.cluster.metadata import TopicInfo
from strom.protocol.errors import ErrorCode, KafkaError
from strom.protocol.registry import ApiSpec, response_type
from strom.server.context import RequestContext

log = logging.getLogger("strom.apis.metadata")

API_KEY = 3
NO_AUTHORIZED_OPERATIONS = -2147483648
ZERO_UUID = uuid.UUID(int=0)


def _partitions(ctx: RequestContext, topic_cls: type, info: TopicInfo) -> tuple[Any, ...]:
    part_cls = entry_type(topic_cls, "partitions")
    rm = ctx.broker.replica_manager
    out = []
    for index in sorted(info.partitions):
        state = info.partitions[index]
        ready = rm.get_partition(info.name, index) is not None or state.leader != ctx.broker.node_id
        out.append(
            build(
                part_cls,
                error_code=ErrorCode.none if ready else ErrorCode.leader_not_available,
                partition_index=i32(index),
                leader_id=i32(state.leader if ready else -1),
                leader_epoch=i32(state.leader_epoch),
                replica_nodes=tuple(i32(r) for r in state.replicas),
                isr_nodes=tuple(i32(r) for r in state.isr),
                offline_replicas=(),
            )
        )
    return tuple(out)


def _topic(ctx: RequestContext, topic_cls: type, info: TopicInfo) -> Any:
    return build(
        topic_cls,
        error_code=ErrorCode.none,
        name=info.name,
        topic_id=info.topic_id,
        is_internal=info.internal,
        partitions=_partitions(ctx, topic_cls, info),
        topic_authorized_operations=i32(NO_AUTHORIZED_OPERATIONS),
    )


def _error_topic(topic_cls: type, name: str | None, code: ErrorCode, topic_id: uuid.UUID = ZERO_UUID) -> Any:
    return build(
        topic_cls,
        error_code=code,
        name=name,
        topic_id=topic_id,
        is_internal=False,
        partitions=(),
        topic_authorized_operations=i32(NO_AUTHORIZED_OPERATIONS),
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


async def handle(ctx: RequestContext, request: Any) -> Any:
    version = ctx.api_version
    cls = response_type(API_KEY, version)
    assert cls is not None
    topic_cls = entry_type(cls, "topics")
    broker_cls = entry_type(cls, "brokers")
    backend = ctx.broker.metadata
    image = backend.image

    requested = request.topics
    all_topics = requested is None or (version == 0 and len(requested) == 0)
    topics: list[Any] = []
    if all_topics:
        for name in sorted(image.topics):
            topics.append(_topic(ctx, topic_cls, image.topics[name]))
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
                    topics.append(_error_topic(topic_cls, None, ErrorCode.unknown_topic_id, topic_id))
                else:
                    topics.append(_topic(ctx, topic_cls, info))
                continue
            info = image.topic(name) if name else None
            if info is None and name and allow_create:
                code = await _auto_create(ctx, name)
                image = backend.image
                info = image.topic(name)
                if info is None:
                    topics.append(
                        _error_topic(
                            topic_cls,
                            name,
                            code if code != ErrorCode.none else ErrorCode.leader_not_available,
                        )
                    )
                    continue
            if info is None:
                topics.append(_error_topic(topic_cls, name, ErrorCode.unknown_topic_or_partition))
                continue
            topic = _topic(ctx, topic_cls, info)
            if any(p.error_code != ErrorCode.none for p in topic.partitions):
                topic = _error_topic(topic_cls, name, ErrorCode.leader_not_available, info.topic_id)
            topics.append(topic)

    brokers = tuple(
        build(broker_cls, node_id=i32(b.node_id), host=b.host, port=i32(b.port), rack=b.rack)
        for b in sorted(image.brokers.values(), key=lambda b: b.node_id)
    )
    return build(
        cls,
        throttle_time=no_throttle(),
        brokers=brokers,
        cluster_id=image.cluster_id,
        controller_id=i32(image.controller_id),
        topics=tuple(topics),
        cluster_authorized_operations=i32(NO_AUTHORIZED_OPERATIONS),
    )


SPEC = ApiSpec(api_key=API_KEY, min_version=0, max_version=12, handler=handle, name="Metadata")
