"""ShareFetch (api key 78), versions 1-2: consumers of a share group (KIP-932) acquire records here, the
partitions' leader, and acknowledge those they processed.

- The request works in the member's share session (`strom.coordinator.share.sessions`): epoch 0 opens it
  with the request's partitions and may not carry acknowledgements (INVALID_REQUEST); later epochs add
  partitions and forget others; -1 only acknowledges and closes the session, releasing what the member
  still holds.
- Acknowledgements (ACCEPT, RELEASE, REJECT, GAP; RENEW in v2, KIP-1222) are applied and persisted first;
  each partition's outcome is its acknowledge_error_code (INVALID_RECORD_STATE for records the member does
  not hold, INVALID_REQUEST for a malformed batch).
- Then records are acquired from the session's partitions, up to max_records (whole batches), AVAILABLE
  ones first and then new ones below the high watermark; each partition answers its acquired ranges
  (first, last, delivery count) with the batches holding them. With nothing acquired the request waits
  up to max_wait_ms for new records or released ones. acquisition_lock_timeout_ms is
  group.share.record.lock.duration.ms. A max_bytes of 0 acquires nothing and answers no partition
  (only acknowledgement outcomes and refusals), as Kafka 4.4 does.
- v2 adds share_acquire_mode (0 batch-optimized; 1 record limit, which stops at max_records within a
  batch only as far as whole batches allow here) and is_renew_ack.

Errors: top level SHARE_SESSION_NOT_FOUND, INVALID_SHARE_SESSION_EPOCH, SHARE_SESSION_LIMIT_REACHED,
INVALID_REQUEST, INVALID_GROUP_ID, GROUP_AUTHORIZATION_FAILED (no READ on the group); per partition
UNKNOWN_TOPIC_ID, NOT_LEADER_OR_FOLLOWER, UNKNOWN_TOPIC_OR_PARTITION, COORDINATOR_NOT_AVAILABLE (share
state unreachable), TOPIC_AUTHORIZATION_FAILED (no READ on the topic: neither fetched nor acknowledged)
and the acknowledgement errors above.
"""

from __future__ import annotations

import datetime
import time
from typing import Any

from kio.static.primitive import Records, i16, i32, i32Timedelta, i64

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
from strom.coordinator.share.manager import FetchResult, SharePartitionError
from strom.coordinator.share.sessions import FINAL_EPOCH, INITIAL_EPOCH
from strom.coordinator.share.state_records import StateKey
from strom.protocol.errors import ErrorCode, KafkaError
from strom.protocol.registry import ApiSpec, response_type

API_KEY = 78


def _ms(value: Any) -> int:
    return round(value / datetime.timedelta(milliseconds=1))


def _top_error(ctx: Any, code: ErrorCode, message: str | None) -> Any:
    cls = response_type(API_KEY, ctx.api_version)
    return build(
        cls,
        throttle_time=no_throttle(),
        error_code=code,
        error_message=message,
        acquisition_lock_timeout=i32Timedelta.parse(datetime.timedelta(0)),
        responses=(),
        node_endpoints=(),
    )


async def _acquire(
    ctx: Any, group_id: str, member_id: str, keys: list[PartitionKey], max_records: int, max_bytes: int
) -> dict[PartitionKey, FetchResult]:
    manager = ctx.broker.share_partitions
    out: dict[PartitionKey, FetchResult] = {}
    remaining = max_records
    for tid, p in keys:
        key = StateKey(group_id, tid, p)
        try:
            loaded = await manager.get(key)
            if remaining <= 0:
                continue
            result = manager.try_acquire(key, loaded, member_id, remaining, max_bytes)
        except KafkaError as exc:
            out[(tid, p)] = FetchResult(exc.code, exc.message)
            continue
        if result.acquired:
            out[(tid, p)] = result
            remaining -= sum(a.last_offset - a.first_offset + 1 for a in result.acquired)
    return out


async def handle(ctx: Any, request: Any) -> Any:
    group_id = request.group_id or ""
    member_id = request.member_id or ""
    epoch = int(request.share_session_epoch)
    if not group_id:
        return _top_error(ctx, ErrorCode.invalid_group_id, "The group id is empty.")
    if not member_id:
        return _top_error(ctx, ErrorCode.invalid_request, "The member id is empty.")
    acks: dict[PartitionKey, list[tuple[int, int, list[int]]]] = {}
    wanted: list[PartitionKey] = []
    for topic in request.topics:
        for partition in topic.partitions:
            key = (topic.topic_id, int(partition.partition_index))
            wanted.append(key)
            batches = ack_batches(partition)
            if batches:
                acks[key] = batches
    if epoch == INITIAL_EPOCH and acks:
        return _top_error(ctx, ErrorCode.invalid_request, "Acknowledge data present in Initial Fetch Request")
    denied = unreadable(ctx, wanted)
    acks = {k: v for k, v in acks.items() if k not in denied}
    forgotten = [(t.topic_id, int(p)) for t in request.forgotten_topics_data for p in t.partitions]
    added = [] if epoch == FINAL_EPOCH else [k for k in wanted if k not in denied]
    session, error, message = open_session(ctx, group_id, member_id, epoch, added, forgotten)
    if session is None:
        return _top_error(ctx, error, message)
    ctx.effects_applied()
    ack_errors = await acknowledge_all(ctx, group_id, member_id, acks) if acks else {}
    results: dict[PartitionKey, FetchResult] = {}
    if epoch == FINAL_EPOCH:
        await close_if_final(ctx, session, epoch)
    elif int(request.max_bytes) <= 0:
        # Kafka 4.4's fetch refuses to divide a max bytes of 0 among the partitions and answers none of
        # them, acquiring nothing (a share consumer with fetch.max.bytes=0 gets no records)
        wanted = []
    else:
        keys = list(session.partitions)
        max_records = max(int(request.max_records), 1) if ctx.api_version >= 1 else 500
        max_bytes = int(request.max_bytes)
        deadline = time.monotonic() + max(_ms(request.max_wait), 0) / 1000
        while True:
            results = await _acquire(ctx, group_id, member_id, keys, max_records, max_bytes)
            remaining = deadline - time.monotonic()
            if results or remaining <= 0 or not keys:
                break
            await ctx.broker.share_partitions.wait_for_records(
                [StateKey(group_id, t, p) for t, p in keys], remaining
            )
    results.update({k: FetchResult(ErrorCode.topic_authorization_failed, None) for k in denied})
    return _respond(ctx, wanted, results, ack_errors)


def _respond(
    ctx: Any,
    wanted: list[PartitionKey],
    results: dict[PartitionKey, FetchResult],
    ack_errors: dict[PartitionKey, ErrorCode],
) -> Any:
    cls = response_type(API_KEY, ctx.api_version)
    topic_cls = entry_type(cls, "responses")
    part_cls = entry_type(topic_cls, "partitions")
    leader_cls = part_cls.__dataclass_fields__["current_leader"].type
    acquired_cls = entry_type(part_cls, "acquired_records")
    listed = list(dict.fromkeys([*wanted, *results, *ack_errors]))
    by_topic: dict[Any, list[Any]] = {}
    leaders: set[int] = set()
    for tid, p in listed:
        result = results.get((tid, p))
        ack = ack_errors.get((tid, p))
        if result is None and ack is None and (tid, p) not in wanted:
            continue
        result = result or FetchResult()
        leader_id, leader_epoch = leader_hint(ctx, (tid, p), result.error, ack)
        leaders.add(leader_id)
        by_topic.setdefault(tid, []).append(
            build(
                part_cls,
                partition_index=i32(p),
                error_code=result.error,
                error_message=result.message,
                acknowledge_error_code=i16(int(ack or ErrorCode.none)),
                acknowledge_error_message=None,
                current_leader=leader_cls(leader_id=i32(leader_id), leader_epoch=i32(leader_epoch)),
                records=Records(result.records),
                acquired_records=tuple(
                    acquired_cls(
                        first_offset=i64(a.first_offset),
                        last_offset=i64(a.last_offset),
                        delivery_count=i16(a.delivery_count),
                    )
                    for a in result.acquired
                ),
            )
        )
    lock_ms = ctx.broker.share_partitions.config.record_lock_duration_ms
    return build(
        cls,
        throttle_time=no_throttle(),
        error_code=ErrorCode.none,
        error_message=None,
        acquisition_lock_timeout=i32Timedelta.parse(datetime.timedelta(milliseconds=lock_ms)),
        responses=tuple(topic_cls(topic_id=tid, partitions=tuple(parts)) for tid, parts in by_topic.items()),
        node_endpoints=hinted_endpoints(ctx, entry_type(cls, "node_endpoints"), leaders),
    )


SPEC = ApiSpec(api_key=API_KEY, min_version=1, max_version=2, handler=handle, name="ShareFetch")
__all__ = ["SharePartitionError"]
