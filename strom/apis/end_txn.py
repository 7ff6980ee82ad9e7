"""EndTxn (api key 26), versions 0-3: commit or abort a producer's transaction (KIP-98).

The coordinator writes PrepareCommit/PrepareAbort to __transaction_state and answers; the markers then
go to every partition of the transaction and CompleteCommit/CompleteAbort is written. Repeating a
finished end answers NONE; a repeat while the markers are still going out CONCURRENT_TRANSACTIONS.

Errors: NONE, NOT_COORDINATOR, COORDINATOR_LOAD_IN_PROGRESS, COORDINATOR_NOT_AVAILABLE,
INVALID_PRODUCER_ID_MAPPING, PRODUCER_FENCED (INVALID_PRODUCER_EPOCH below v2, KIP-588),
CONCURRENT_TRANSACTIONS, INVALID_TXN_STATE.
"""

from __future__ import annotations

from typing import Any

from strom.apis._build import build, no_throttle
from strom.apis._txn_util import coordinator_of, fenced_for_version
from strom.protocol.errors import ErrorCode
from strom.protocol.registry import ApiSpec, response_type

API_KEY = 26


async def handle(ctx: Any, request: Any) -> Any:
    coordinator = coordinator_of(ctx)
    error = ErrorCode.coordinator_not_available
    if coordinator is not None:
        error = await coordinator.end_txn(
            request.transactional_id,
            int(request.producer_id),
            int(request.producer_epoch),
            bool(request.committed),
        )
    cls = response_type(API_KEY, ctx.api_version)
    return build(cls, throttle_time=no_throttle(), error_code=fenced_for_version(error, ctx.api_version, 2))


SPEC = ApiSpec(api_key=API_KEY, min_version=0, max_version=3, handler=handle, name="EndTxn")
