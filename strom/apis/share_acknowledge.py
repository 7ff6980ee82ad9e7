"""ShareAcknowledge (api key 79), versions 1-2: a share-group consumer (KIP-932) acknowledges records it
acquired with ShareFetch without fetching more (ACCEPT 1, RELEASE 2, REJECT 3, GAP 0; RENEW 4 in v2,
KIP-1222). It works in the member's share session, which it must not open: epoch 0 is
INVALID_SHARE_SESSION_EPOCH; epoch -1 acknowledges, then closes the session and releases what the member
still holds (a consumer closing). Each partition's acknowledgements are applied (all or nothing per
batch) and persisted through the share coordinator before the answer.

Errors: top level SHARE_SESSION_NOT_FOUND, INVALID_SHARE_SESSION_EPOCH, INVALID_REQUEST,
INVALID_GROUP_ID, GROUP_AUTHORIZATION_FAILED (no READ on the group); per partition INVALID_RECORD_STATE,
INVALID_REQUEST, UNKNOWN_TOPIC_ID, NOT_LEADER_OR_FOLLOWER, COORDINATOR_NOT_AVAILABLE,
TOPIC_AUTHORIZATION_FAILED (no READ on the topic: its acknowledgements are not applied).
"""

from __future__ import annotations

import datetime
from typing import Any

from kio.static.primitive import i32, i32Timedelta

from strom.apis._build import build, entry_type, no_throttle
from strom.apis._share_acks import (
    PartitionKey,
    ack_batches,
    acknowledge_all,
    close_if_final,
    hinted_endpoints,
    leader_hint,
    open_session,
    unreadable,
)
from strom.coordinator.share.sessions import INITIAL_EPOCH
from strom.protocol.errors import ErrorCode
from strom.protocol.registry import ApiSpec, response_type

API_KEY = 79


def _response(ctx: Any, code: ErrorCode, message: str | None, errors: dict[PartitionKey, ErrorCode]) -> Any:
    cls = response_type(API_KEY, ctx.api_version)
    topic_cls = entry_type(cls, "responses")
    part_cls = entry_type(topic_cls, "partitions")
    leader_cls = part_cls.__dataclass_fields__["current_leader"].type
    by_topic: dict[Any, list[Any]] = {}
    leaders: set[int] = set()
    for (tid, p), error in errors.items():
        leader_id, leader_epoch = leader_hint(ctx, (tid, p), error)
        leaders.add(leader_id)
        by_topic.setdefault(tid, []).append(
            build(
                part_cls,
                partition_index=i32(p),
                error_code=error,
                error_message=None,
                current_leader=leader_cls(leader_id=i32(leader_id), leader_epoch=i32(leader_epoch)),
            )
        )
    lock_ms = ctx.broker.share_partitions.config.record_lock_duration_ms if code is ErrorCode.none else 0
    return build(
        cls,
        throttle_time=no_throttle(),
        error_code=code,
        error_message=message,
        acquisition_lock_timeout=i32Timedelta.parse(datetime.timedelta(milliseconds=lock_ms)),
        responses=tuple(topic_cls(topic_id=tid, partitions=tuple(parts)) for tid, parts in by_topic.items()),
        node_endpoints=hinted_endpoints(ctx, entry_type(cls, "node_endpoints"), leaders),
    )


async def handle(ctx: Any, request: Any) -> Any:
    group_id = request.group_id or ""
    member_id = request.member_id or ""
    epoch = int(request.share_session_epoch)
    if not group_id:
        return _response(ctx, ErrorCode.invalid_group_id, "The group id is empty.", {})
    if not member_id:
        return _response(ctx, ErrorCode.invalid_request, "The member id is empty.", {})
    if epoch == INITIAL_EPOCH:
        return _response(
            ctx,
            ErrorCode.invalid_share_session_epoch,
            "A share session cannot be opened by ShareAcknowledge.",
            {},
        )
    acks = {
        (topic.topic_id, int(partition.partition_index)): ack_batches(partition)
        for topic in request.topics
        for partition in topic.partitions
    }
    denied = unreadable(ctx, acks)
    session, error, message = open_session(ctx, group_id, member_id, epoch, [], [])
    if session is None:
        return _response(ctx, error, message, {})
    ctx.effects_applied()
    readable = {k: v for k, v in acks.items() if k not in denied}
    errors = await acknowledge_all(ctx, group_id, member_id, readable)
    errors.update(dict.fromkeys(denied, ErrorCode.topic_authorization_failed))
    await close_if_final(ctx, session, epoch)
    return _response(ctx, ErrorCode.none, None, errors)


SPEC = ApiSpec(api_key=API_KEY, min_version=1, max_version=2, handler=handle, name="ShareAcknowledge")
