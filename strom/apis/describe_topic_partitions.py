"""DescribeTopicPartitions (api key 75), version 0: topics and their partitions, paginated (KIP-966).

Kafka 4's admin client describes topics with this API when the broker serves it (kafka-topics --describe
does), so large topics come back in pages instead of one huge Metadata response.

Behaviour, as Kafka 4.4's broker answers:
- `topics` empty asks for every topic; otherwise the named ones. Either way topics come back sorted by
  name; a named topic that does not exist answers UNKNOWN_TOPIC_OR_PARTITION with the zero topic id.
- At most `response_partition_limit` partitions are returned (at least 1, at most 2000: Kafka's
  `max.request.partition.size.limit` default), counted across topics; when partitions are left,
  `next_cursor` names the first one not returned, and a request with that cursor resumes there. Topics
  sorted before the cursor's topic are skipped. A cursor naming a topic that is not among those asked
  for fails every topic with INVALID_REQUEST; a cursor partition past the topic's last one returns the
  topic with no partitions and goes on with the next topic.
- Per partition: leader (-1 with LEADER_NOT_AVAILABLE while the leader's replica is not open yet, as
  Metadata answers), leader epoch, replicas, ISR, offline replicas (those on brokers not registered), and
  the eligible leader replicas and last known ELR of KIP-966 from the metadata image (a KRaft cluster's;
  the ZooKeeper and local backends have none, so empty lists).
- A topic needs DESCRIBE: asked for by name, it answers TOPIC_AUTHORIZATION_FAILED; when every topic is
  asked for, it is left out. `topic_authorized_operations` are the topic operations the principal may do
  (3576, every one, without an authorizer: READ, WRITE, CREATE, DELETE, ALTER, DESCRIBE,
  DESCRIBE_CONFIGS, ALTER_CONFIGS).

Errors per topic: NONE, UNKNOWN_TOPIC_OR_PARTITION, INVALID_REQUEST (bad cursor), TOPIC_AUTHORIZATION_FAILED.
Per partition: NONE, LEADER_NOT_AVAILABLE.
"""

from __future__ import annotations

import uuid
from typing import Any

from kio.schema.describe_topic_partitions.v0 import response as schema
from kio.static.primitive import i32

from strom.apis._authz import allowed, authorized_operations
from strom.apis._build import no_throttle
from strom.apis.metadata import _partitions
from strom.cluster.metadata import TopicInfo
from strom.protocol.errors import ErrorCode
from strom.protocol.registry import ApiSpec
from strom.security.authorizer import AclOperation, ResourceType
from strom.server.context import RequestContext

API_KEY = 75
MAX_PARTITIONS = 2000  # Kafka's max.request.partition.size.limit default
ALL_TOPIC_OPERATIONS = 3576
NOT_PROVIDED = -(2**31)
ZERO_UUID = uuid.UUID(int=0)


def _error_topic(name: str, code: ErrorCode, operations: int) -> schema.DescribeTopicPartitionsResponseTopic:
    return schema.DescribeTopicPartitionsResponseTopic(
        error_code=code,
        name=name,
        topic_id=ZERO_UUID,
        is_internal=False,
        partitions=(),
        topic_authorized_operations=i32(operations),
    )


def _partitions_of(
    ctx: RequestContext, info: TopicInfo, start: int, budget: int
) -> list[schema.DescribeTopicPartitionsResponsePartition]:
    live = ctx.broker.metadata.image.brokers
    out = []
    for p in _partitions(ctx, info):
        if p.partition_index < start:
            continue
        if len(out) == budget:
            break
        state = info.partitions.get(p.partition_index)
        elr = state.elr if state is not None else ()
        last_known = state.last_known_elr if state is not None else ()
        out.append(
            schema.DescribeTopicPartitionsResponsePartition(
                error_code=ErrorCode(p.error_code),
                partition_index=i32(p.partition_index),
                leader_id=i32(p.leader_id),
                leader_epoch=i32(p.leader_epoch),
                replica_nodes=tuple(i32(r) for r in p.replica_nodes),
                isr_nodes=tuple(i32(r) for r in p.isr_nodes),
                eligible_leader_replicas=tuple(i32(r) for r in elr),
                last_known_elr=tuple(i32(r) for r in last_known),
                offline_replicas=tuple(i32(r) for r in p.replica_nodes if r not in live),
            )
        )
    return out


async def handle(ctx: RequestContext, request: Any) -> schema.DescribeTopicPartitionsResponse:
    image = ctx.broker.metadata.image
    names = sorted({t.name for t in request.topics}) if request.topics else sorted(image.topics)
    # topics need DESCRIBE: asked-for ones answer TOPIC_AUTHORIZATION_FAILED, and when every topic is
    # asked for the others are left out (Kafka)
    describable = allowed(ctx, AclOperation.DESCRIBE, ResourceType.TOPIC, names)
    if not request.topics:
        names = [n for n in names if n in describable]
    budget = max(1, min(int(request.response_partition_limit), MAX_PARTITIONS))
    cursor = request.cursor
    if cursor is not None and cursor.topic_name not in names:
        topics = tuple(_error_topic(name, ErrorCode.invalid_request, NOT_PROVIDED) for name in names)
        return schema.DescribeTopicPartitionsResponse(throttle_time=no_throttle(), topics=topics)
    if cursor is not None:
        names = names[names.index(cursor.topic_name) :]
    topics: list[schema.DescribeTopicPartitionsResponseTopic] = []
    next_cursor = None
    for position, name in enumerate(names):
        info = image.topic(name)
        if name not in describable:
            topics.append(_error_topic(name, ErrorCode.topic_authorization_failed, NOT_PROVIDED))
            continue
        operations = authorized_operations(ctx, ResourceType.TOPIC, name)
        if info is None:
            topics.append(_error_topic(name, ErrorCode.unknown_topic_or_partition, operations))
            continue
        if budget == 0:
            next_cursor = schema.Cursor(topic_name=name, partition_index=i32(0))
            break
        start = int(cursor.partition_index) if cursor is not None and position == 0 else 0
        partitions = _partitions_of(ctx, info, start, budget)
        budget -= len(partitions)
        topics.append(
            schema.DescribeTopicPartitionsResponseTopic(
                error_code=ErrorCode.none,
                name=name,
                topic_id=info.topic_id,
                is_internal=info.internal,
                partitions=tuple(partitions),
                topic_authorized_operations=i32(operations),
            )
        )
        left = [p for p in sorted(info.partitions) if p >= start][len(partitions) :]
        if left:
            next_cursor = schema.Cursor(topic_name=name, partition_index=i32(left[0]))
            break
    return schema.DescribeTopicPartitionsResponse(
        throttle_time=no_throttle(), topics=tuple(topics), next_cursor=next_cursor
    )


SPEC = ApiSpec(api_key=API_KEY, min_version=0, max_version=0, handler=handle, name="DescribeTopicPartitions")
