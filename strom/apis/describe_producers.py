"""DescribeProducers (api key 61), version 0: the active idempotent producers of partitions (KIP-664).

For each requested partition the leader lists the producers its producer state tracks: producer id,
epoch, last sequence and last timestamp of the newest batch kept for it. Strom has no transactions, so
coordinator_epoch is -1 and current_txn_start_offset -1 for every producer. Answered by the leader only,
like Kafka; admin clients (kadm DescribeProducers, kafka-transactions.sh describe-producers) send it to
each partition's leader.

Errors per partition: NONE, UNKNOWN_TOPIC_OR_PARTITION, NOT_LEADER_OR_FOLLOWER, TOPIC_AUTHORIZATION_FAILED (no
READ on the topic).
"""

from __future__ import annotations

from typing import Any

from kio.schema.types import ProducerId
from kio.static.primitive import i32, i64

from strom.apis._authz import may
from strom.apis._build import build, entry_type, no_throttle
from strom.protocol.errors import ErrorCode
from strom.protocol.registry import ApiSpec, response_type
from strom.security.authorizer import AclOperation, ResourceType
from strom.server.context import RequestContext

API_KEY = 61


def _partition(ctx: RequestContext, part_cls: type, state_cls: type, topic: str, index: int) -> Any:
    broker = ctx.broker
    code = ErrorCode.none
    producers: tuple[Any, ...] = ()
    part = broker.replica_manager.get_partition(topic, index)
    if not may(ctx, AclOperation.READ, ResourceType.TOPIC, topic):
        code = ErrorCode.topic_authorization_failed
    elif broker.metadata.image.partition(topic, index) is None:
        code = ErrorCode.unknown_topic_or_partition
    elif part is None or not part.is_leader:
        code = ErrorCode.not_leader_or_follower
    else:
        producers = tuple(
            build(
                state_cls,
                producer_id=ProducerId(entry.producer_id),
                producer_epoch=i32(entry.epoch),
                last_sequence=i32(entry.last_seq),
                last_timestamp=i64(entry.last_timestamp),
                coordinator_epoch=i32(entry.coordinator_epoch),
                current_txn_start_offset=i64(entry.current_txn_first_offset),
            )
            for entry in part.producer_state.producers.values()
        )
    return build(
        part_cls,
        partition_index=i32(index),
        error_code=ErrorCode(code),
        error_message=None,
        active_producers=producers,
    )


async def handle(ctx: RequestContext, request: Any) -> Any:
    cls = response_type(API_KEY, ctx.api_version)
    assert cls is not None
    topic_cls = entry_type(cls, "topics")
    part_cls = entry_type(topic_cls, "partitions")
    state_cls = entry_type(part_cls, "active_producers")
    topics = tuple(
        build(
            topic_cls,
            name=topic.name,
            partitions=tuple(
                _partition(ctx, part_cls, state_cls, topic.name, int(p)) for p in topic.partition_indexes
            ),
        )
        for topic in request.topics
    )
    return build(cls, throttle_time=no_throttle(), topics=topics)


SPEC = ApiSpec(api_key=API_KEY, min_version=0, max_version=0, handler=handle, name="DescribeProducers")
