"""Shared pieces of OffsetCommit and TxnOffsetCommit: reading the requested partitions (unknown ones
answer UNKNOWN_TOPIC_OR_PARTITION without reaching the coordinator) and building the per-partition
response in request order, which both APIs lay out the same way (topics -> partitions -> error_code)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from strom.apis._authz import allowed, may
from strom.apis._build import build, entry_type, no_throttle
from strom.cluster.metadata import MetadataImage
from strom.coordinator.group.results import OffsetToCommit
from strom.protocol.errors import ErrorCode
from strom.security.authorizer import AclOperation, ResourceType

TopicPartition = tuple[str, int]


def commit_refusals(
    ctx: Any, request: Any, *, transactional: bool, topics: Iterable[Any] | None = None
) -> Callable[[str], ErrorCode | None]:
    """Kafka's checks of OffsetCommit and TxnOffsetCommit: WRITE on the transactional id (TxnOffsetCommit
    only), READ on the group, each refusing every partition; then READ on each topic."""
    txn_id = request.transactional_id if transactional else None
    if txn_id is not None and not may(ctx, AclOperation.WRITE, ResourceType.TRANSACTIONAL_ID, txn_id):
        return lambda _t: ErrorCode.transactional_id_authorization_failed
    if not may(ctx, AclOperation.READ, ResourceType.GROUP, request.group_id):
        return lambda _t: ErrorCode.group_authorization_failed
    named = request.topics if topics is None else topics
    readable = allowed(ctx, AclOperation.READ, ResourceType.TOPIC, (t.name for t in named))
    return lambda t: None if t in readable else ErrorCode.topic_authorization_failed


def requested_offsets(
    image: MetadataImage, topics: Iterable[Any], refused: Callable[[str], ErrorCode | None] = lambda _t: None
) -> tuple[list[TopicPartition], dict[TopicPartition, ErrorCode], list[OffsetToCommit]]:
    """(every requested partition in request order, errors decided already, offsets for the coordinator).
    `refused(topic)` names the authorization error of a topic's partitions, if any (checked first)."""
    order: list[TopicPartition] = []
    errors: dict[TopicPartition, ErrorCode] = {}
    offsets: list[OffsetToCommit] = []
    for topic in topics:
        info = image.topic(topic.name)
        refusal = refused(topic.name)
        for p in topic.partitions:
            tp = (topic.name, int(p.partition_index))
            order.append(tp)
            if refusal is not None:
                errors[tp] = refusal
                continue
            if info is None or tp[1] not in info.partitions:
                errors[tp] = ErrorCode.unknown_topic_or_partition
                continue
            offsets.append(
                OffsetToCommit(
                    topic.name,
                    tp[1],
                    int(p.committed_offset),
                    int(getattr(p, "committed_leader_epoch", -1)),
                    p.committed_metadata,
                )
            )
    return order, errors, offsets


def commit_response(cls: Any, order: list[TopicPartition], errors: dict[TopicPartition, ErrorCode]) -> Any:
    topic_cls = entry_type(cls, "topics")
    part_cls = entry_type(topic_cls, "partitions")
    by_topic: dict[str, list[Any]] = {}
    for tp in order:
        by_topic.setdefault(tp[0], []).append(build(part_cls, partition_index=tp[1], error_code=errors[tp]))
    return build(
        cls,
        throttle_time=no_throttle(),
        topics=tuple(
            build(topic_cls, name=name, partitions=tuple(parts)) for name, parts in by_topic.items()
        ),
    )
