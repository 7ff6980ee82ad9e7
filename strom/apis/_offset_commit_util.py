"""Shared pieces of OffsetCommit and TxnOffsetCommit: reading the requested partitions (unknown ones
answer UNKNOWN_TOPIC_OR_PARTITION without reaching the coordinator) and building the per-partition
response in request order, which both APIs lay out the same way (topics -> partitions -> error_code)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from strom.apis._build import build, entry_type, no_throttle
from strom.cluster.metadata import MetadataImage
from strom.coordinator.group.results import OffsetToCommit
from strom.protocol.errors import ErrorCode

TopicPartition = tuple[str, int]


def requested_offsets(
    image: MetadataImage, topics: Iterable[Any]
) -> tuple[list[TopicPartition], dict[TopicPartition, ErrorCode], list[OffsetToCommit]]:
    """(every requested partition in request order, errors decided already, offsets for the coordinator)."""
    order: list[TopicPartition] = []
    errors: dict[TopicPartition, ErrorCode] = {}
    offsets: list[OffsetToCommit] = []
    for topic in topics:
        info = image.topic(topic.name)
        for p in topic.partitions:
            tp = (topic.name, int(p.partition_index))
            order.append(tp)
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
