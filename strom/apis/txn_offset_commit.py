"""TxnOffsetCommit (api key 28), versions 0-3: commit consumer offsets inside a transaction (KIP-98).

The group coordinator writes the offsets to __consumer_offsets as a transactional batch of the producer;
they become the group's committed offsets when the transaction's COMMIT marker reaches the group's
partition and are dropped on ABORT. v3 (KIP-447) carries the consumer's generation, member id and
group instance id, which are checked against the group when a generation is given.

Errors per partition: NONE, UNKNOWN_TOPIC_OR_PARTITION, NOT_COORDINATOR, COORDINATOR_LOAD_IN_PROGRESS,
COORDINATOR_NOT_AVAILABLE, OFFSET_METADATA_TOO_LARGE, PRODUCER_FENCED (INVALID_PRODUCER_EPOCH below v3,
KIP-588), UNKNOWN_MEMBER_ID, ILLEGAL_GENERATION, FENCED_INSTANCE_ID.
"""

from __future__ import annotations

from typing import Any

from strom.apis._build import build, entry_type, no_throttle
from strom.apis._txn_util import fenced_for_version
from strom.coordinator.group.results import CommitRequest, OffsetToCommit
from strom.protocol.errors import ErrorCode
from strom.protocol.registry import ApiSpec, response_type

API_KEY = 28


async def handle(ctx: Any, request: Any) -> Any:
    version = ctx.api_version
    coordinator = ctx.broker.group_coordinator
    image = ctx.broker.metadata.image
    order: list[tuple[str, int]] = []
    errors: dict[tuple[str, int], ErrorCode] = {}
    offsets: list[OffsetToCommit] = []
    for topic in request.topics:
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
    req = CommitRequest(
        group_id=request.group_id,
        generation_id=int(getattr(request, "generation_id", -1)),
        member_id=getattr(request, "member_id", ""),
        group_instance_id=getattr(request, "group_instance_id", None),
        offsets=offsets,
    )
    if offsets:
        core, now = coordinator.core, coordinator.now_ms()
        pid, epoch = int(request.producer_id), int(request.producer_epoch)
        results: list[ErrorCode] = await coordinator.call(
            lambda cb: core.commit_txn_offsets(req, pid, epoch, now, cb)
        )
        for o, error in zip(offsets, results, strict=True):
            errors[(o.topic, o.partition)] = fenced_for_version(error, version, 3)
    cls = response_type(API_KEY, version)
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


SPEC = ApiSpec(api_key=API_KEY, min_version=0, max_version=3, handler=handle, name="TxnOffsetCommit")
