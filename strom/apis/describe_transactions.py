"""DescribeTransactions (api key 65), version 0: the state of transactional ids (KIP-664).

Answered by the ids' coordinator: state name (Kafka's: Empty, Ongoing, PrepareCommit, PrepareAbort,
CompleteCommit, CompleteAbort, Dead, PrepareEpochFence), timeout, start time (-1 when none), producer
id and epoch, and the partitions of the open transaction, only those of topics the principal may
DESCRIBE (as Kafka's handler filters them). An id answered with an error carries the schema's zeros
(empty state, timeout, start time, producer id and epoch 0), as Kafka leaves them.

Errors per id: NONE, NOT_COORDINATOR, COORDINATOR_LOAD_IN_PROGRESS, TRANSACTIONAL_ID_NOT_FOUND,
COORDINATOR_NOT_AVAILABLE, TRANSACTIONAL_ID_AUTHORIZATION_FAILED (no DESCRIBE on the id).
"""

from __future__ import annotations

import datetime
from typing import Any

from kio.static.primitive import i32Timedelta

from strom.apis._authz import allowed, enforcing, may
from strom.apis._build import build, entry_type, no_throttle
from strom.apis._txn_util import coordinator_of
from strom.protocol.errors import ErrorCode
from strom.protocol.registry import ApiSpec, response_type
from strom.security.authorizer import AclOperation, ResourceType

API_KEY = 65
_EPOCH = datetime.datetime.fromtimestamp(0, datetime.UTC)


def _time(ms: int) -> datetime.datetime:
    return _EPOCH + datetime.timedelta(milliseconds=ms)


async def handle(ctx: Any, request: Any) -> Any:
    cls = response_type(API_KEY, ctx.api_version)
    state_cls = entry_type(cls, "transaction_states")
    topic_cls = entry_type(state_cls, "topics")
    coordinator = coordinator_of(ctx)
    states = []
    for tid in request.transactional_ids:
        if not may(ctx, AclOperation.DESCRIBE, ResourceType.TRANSACTIONAL_ID, tid):
            error, meta = ErrorCode.transactional_id_authorization_failed, None
        elif coordinator is None:
            error, meta = ErrorCode.coordinator_not_available, None
        else:
            error, meta = coordinator.core.describe(tid)
        by_topic: dict[str, list[int]] = {}
        if meta is not None:
            for topic, partition in sorted(meta.partitions):
                by_topic.setdefault(topic, []).append(partition)
            if enforcing(ctx):
                visible = allowed(ctx, AclOperation.DESCRIBE, ResourceType.TOPIC, by_topic)
                by_topic = {t: ps for t, ps in by_topic.items() if t in visible}
        states.append(
            build(
                state_cls,
                error_code=error,
                transactional_id=tid,
                transaction_state=meta.state.kafka_name if meta else "",
                transaction_timeout=i32Timedelta.parse(
                    datetime.timedelta(milliseconds=meta.timeout_ms if meta else 0)
                ),
                transaction_start_time=_time(meta.start_ms if meta else 0),
                producer_id=meta.producer_id if meta else 0,
                producer_epoch=meta.producer_epoch if meta else 0,
                topics=tuple(build(topic_cls, topic=t, partitions=tuple(ps)) for t, ps in by_topic.items()),
            )
        )
    return build(cls, throttle_time=no_throttle(), transaction_states=tuple(states))


SPEC = ApiSpec(api_key=API_KEY, min_version=0, max_version=0, handler=handle, name="DescribeTransactions")
