"""OffsetCommit (api key 8), versions 2-10: store consumer positions in __consumer_offsets.

A commit from a member of the current generation (or with generation -1 for a group that only stores
offsets) is written as OffsetCommitKey v1 / OffsetCommitValue v3 records and answered once the write is
acknowledged. v6 adds the committed leader epoch (KIP-320), v7 group.instance.id (KIP-345). The
retention_time of v2-4 is ignored: offsets.retention.minutes applies (KIP-211). For a consumer group
(KIP-848) the generation field carries the member epoch: STALE_MEMBER_EPOCH unless it is the member's
current one (or an older one under which the committed partitions were already assigned, KIP-1251).
v10 names topics by id (KIP-516, KIP-848): the response names them by id too, and an id this broker does
not know answers UNKNOWN_TOPIC_ID for its partitions (listed first, as Kafka's response builder does).

Errors per partition: NONE, UNKNOWN_TOPIC_OR_PARTITION, OFFSET_METADATA_TOO_LARGE
(offset.metadata.max.bytes), NOT_COORDINATOR, COORDINATOR_LOAD_IN_PROGRESS, COORDINATOR_NOT_AVAILABLE,
INVALID_GROUP_ID, UNKNOWN_MEMBER_ID, ILLEGAL_GENERATION, REBALANCE_IN_PROGRESS, FENCED_INSTANCE_ID,
STALE_MEMBER_EPOCH, GROUP_AUTHORIZATION_FAILED (no READ on the group, every partition),
TOPIC_AUTHORIZATION_FAILED (no READ on the topic), UNKNOWN_TOPIC_ID (v10).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from strom.apis._build import build, entry_type, no_throttle
from strom.apis._offset_commit_util import commit_refusals, commit_response, requested_offsets
from strom.coordinator.group.results import CommitRequest
from strom.protocol.errors import ErrorCode
from strom.protocol.registry import ApiSpec, response_type

API_KEY = 8


TOPIC_IDS_FROM = 10


@dataclass(frozen=True, slots=True)
class _NamedTopic:
    """A v10 topic resolved to its name, for the name-keyed helpers."""

    name: str
    topic_id: uuid.UUID
    partitions: Any


def by_id_response(
    cls: Any, request_topics: Any, names: dict[uuid.UUID, str], errors: dict[tuple[str, int], ErrorCode]
) -> Any:
    """The response of a by-id version (v10): topics by id, unknown ids first with UNKNOWN_TOPIC_ID, the
    others in request order."""
    topic_cls = entry_type(cls, "topics")
    part_cls = entry_type(topic_cls, "partitions")
    unknown, known = [], []
    for topic in request_topics:
        name = names.get(topic.topic_id)
        parts = tuple(
            build(
                part_cls,
                partition_index=p.partition_index,
                error_code=(
                    ErrorCode.unknown_topic_id if name is None else errors[(name, int(p.partition_index))]
                ),
            )
            for p in topic.partitions
        )
        entry = build(topic_cls, topic_id=topic.topic_id, partitions=parts)
        (unknown if name is None else known).append(entry)
    return build(cls, throttle_time=no_throttle(), topics=tuple(unknown + known))


async def handle(ctx: Any, request: Any) -> Any:
    version = ctx.api_version
    coordinator = ctx.broker.group_coordinator
    image = ctx.broker.metadata.image
    topics = request.topics
    names: dict[uuid.UUID, str] = {}
    if version >= TOPIC_IDS_FROM:
        for topic in topics:
            info = image.topic_by_id(topic.topic_id)
            if info is not None:
                names[topic.topic_id] = info.name
        topics = [
            _NamedTopic(names[t.topic_id], t.topic_id, t.partitions) for t in topics if t.topic_id in names
        ]
    refused = commit_refusals(ctx, request, transactional=False, topics=topics)
    order, errors, offsets = requested_offsets(image, topics, refused)
    req = CommitRequest(
        group_id=request.group_id,
        generation_id=request.generation_id_or_member_epoch,
        member_id=request.member_id,
        group_instance_id=getattr(request, "group_instance_id", None),
        offsets=offsets,
        api_version=ctx.api_version,
    )
    if offsets:
        core, now = coordinator.core, coordinator.now_ms()
        results: list[ErrorCode] = await coordinator.call(
            lambda cb: core.commit_offsets(req, now, cb), ctx.effects_applied
        )
        for o, error in zip(offsets, results, strict=True):
            errors[(o.topic, o.partition)] = error
    if version >= TOPIC_IDS_FROM:
        return by_id_response(response_type(API_KEY, version), request.topics, names, errors)
    return commit_response(response_type(API_KEY, version), order, errors)


SPEC = ApiSpec(api_key=API_KEY, min_version=2, max_version=10, handler=handle, name="OffsetCommit")
