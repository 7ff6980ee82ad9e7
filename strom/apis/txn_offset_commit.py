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

from strom.apis._offset_commit_util import commit_refusals, commit_response, requested_offsets
from strom.apis._txn_util import fenced_for_version
from strom.coordinator.group.results import CommitRequest
from strom.protocol.errors import ErrorCode
from strom.protocol.registry import ApiSpec, response_type

API_KEY = 28


async def handle(ctx: Any, request: Any) -> Any:
    version = ctx.api_version
    coordinator = ctx.broker.group_coordinator
    refused = commit_refusals(ctx, request, transactional=True)
    order, errors, offsets = requested_offsets(ctx.broker.metadata.image, request.topics, refused)
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
            lambda cb: core.commit_txn_offsets(req, pid, epoch, now, cb), ctx.effects_applied
        )
        for o, error in zip(offsets, results, strict=True):
            errors[(o.topic, o.partition)] = fenced_for_version(error, version, 3)
    return commit_response(response_type(API_KEY, version), order, errors)


SPEC = ApiSpec(api_key=API_KEY, min_version=0, max_version=3, handler=handle, name="TxnOffsetCommit")
