"""AddOffsetsToTxn (api key 25), versions 0-4: add a group's offsets to a transaction (KIP-98).

The coordinator adds the group's partition of __consumer_offsets (abs(javaHashCode(group)) %
offsets.topic.num.partitions) to the transaction, so the transaction's markers reach the offsets the
producer then sends with TxnOffsetCommit. v4 only tells that the client understands TRANSACTION_ABORTABLE
(KIP-890); transaction version 2 clients skip this request, their TxnOffsetCommit v5+ adds the partition.

Errors: NONE, NOT_COORDINATOR, COORDINATOR_LOAD_IN_PROGRESS, COORDINATOR_NOT_AVAILABLE,
INVALID_PRODUCER_ID_MAPPING, PRODUCER_FENCED (INVALID_PRODUCER_EPOCH below v2, KIP-588),
CONCURRENT_TRANSACTIONS, INVALID_TXN_STATE.
"""

from __future__ import annotations

from typing import Any

from strom.apis._build import build, no_throttle
from strom.apis._txn_util import coordinator_of, fenced_for_version
from strom.coordinator.group.coordinator import CoordinatorNotAvailableError
from strom.protocol.errors import ErrorCode
from strom.protocol.registry import ApiSpec, response_type

API_KEY = 25


async def handle(ctx: Any, request: Any) -> Any:
    coordinator = coordinator_of(ctx)
    error = ErrorCode.coordinator_not_available
    if coordinator is not None:
        groups = ctx.broker.group_coordinator
        try:
            await groups.ensure_offsets_topic()
            partition = groups.core.partition_for(request.group_id)
            error = await coordinator.add_partitions(
                request.transactional_id,
                int(request.producer_id),
                int(request.producer_epoch),
                [("__consumer_offsets", partition)],
            )
        except CoordinatorNotAvailableError:
            error = ErrorCode.coordinator_not_available
    cls = response_type(API_KEY, ctx.api_version)
    return build(cls, throttle_time=no_throttle(), error_code=fenced_for_version(error, ctx.api_version, 2))


SPEC = ApiSpec(api_key=API_KEY, min_version=0, max_version=4, handler=handle, name="AddOffsetsToTxn")
