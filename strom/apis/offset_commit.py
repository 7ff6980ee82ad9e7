"""OffsetCommit (api key 8), versions 2-9: store consumer positions in __consumer_offsets.

A commit from a member of the current generation (or with generation -1 for a group that only stores
offsets) is written as OffsetCommitKey v1 / OffsetCommitValue v3 records and answered once the write is
acknowledged. v6 adds the committed leader epoch (KIP-320), v7 group.instance.id (KIP-345). The
retention_time of v2-4 is ignored: offsets.retention.minutes applies (KIP-211). For a consumer group
(KIP-848) the generation field carries the member epoch: STALE_MEMBER_EPOCH unless it is the member's
current one (or an older one under which the committed partitions were already assigned, KIP-1251).

Errors per partition: NONE, UNKNOWN_TOPIC_OR_PARTITION, OFFSET_METADATA_TOO_LARGE
(offset.metadata.max.bytes), NOT_COORDINATOR, COORDINATOR_LOAD_IN_PROGRESS, COORDINATOR_NOT_AVAILABLE,
INVALID_GROUP_ID, UNKNOWN_MEMBER_ID, ILLEGAL_GENERATION, REBALANCE_IN_PROGRESS, FENCED_INSTANCE_ID,
STALE_MEMBER_EPOCH, GROUP_AUTHORIZATION_FAILED (no READ on the group, every partition),
TOPIC_AUTHORIZATION_FAILED (no READ on the topic).
"""

from __future__ import annotations

from typing import Any

from strom.apis._offset_commit_util import commit_refusals, commit_response, requested_offsets
from strom.coordinator.group.results import CommitRequest
from strom.protocol.errors import ErrorCode
from strom.protocol.registry import ApiSpec, response_type

API_KEY = 8


async def handle(ctx: Any, request: Any) -> Any:
    version = ctx.api_version
    coordinator = ctx.broker.group_coordinator
    refused = commit_refusals(ctx, request, transactional=False)
    order, errors, offsets = requested_offsets(ctx.broker.metadata.image, request.topics, refused)
    req = CommitRequest(
        group_id=request.group_id,
        generation_id=request.generation_id_or_member_epoch,
        member_id=request.member_id,
        group_instance_id=getattr(request, "group_instance_id", None),
        offsets=offsets,
    )
    if offsets:
        core, now = coordinator.core, coordinator.now_ms()
        results: list[ErrorCode] = await coordinator.call(
            lambda cb: core.commit_offsets(req, now, cb), ctx.effects_applied
        )
        for o, error in zip(offsets, results, strict=True):
            errors[(o.topic, o.partition)] = error
    return commit_response(response_type(API_KEY, version), order, errors)


SPEC = ApiSpec(api_key=API_KEY, min_version=2, max_version=9, handler=handle, name="OffsetCommit")
