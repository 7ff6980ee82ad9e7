"""EndTxn (api key 26), versions 0-5: commit or abort a producer's transaction (KIP-98, KIP-890).

The coordinator writes PrepareCommit/PrepareAbort to __transaction_state and answers; the markers then
go to every partition of the transaction and CompleteCommit/CompleteAbort is written. Repeating a
finished end answers NONE; a repeat while the markers are still going out CONCURRENT_TRANSACTIONS.
v4 tells that the client understands TRANSACTION_ABORTABLE. v5 is transaction version 2 (KIP-890 part 2):
the coordinator bumps the producer epoch with every end (the markers carry the new epoch, fencing the
transaction's batches), and the answer carries the producer id and epoch the producer continues with (a
new producer id at epoch 0 once the epoch is exhausted; -1/-1 with an error). Kafka's v2 rules apply:
an abort at the current epoch of an Empty or finished transaction is written (and bumps the epoch), a
retry with the epoch before the bump answers NONE, other epochs PRODUCER_FENCED
(`strom.coordinator.txn.core`).

Errors: NONE, NOT_COORDINATOR, COORDINATOR_LOAD_IN_PROGRESS, COORDINATOR_NOT_AVAILABLE,
INVALID_PRODUCER_ID_MAPPING, PRODUCER_FENCED (INVALID_PRODUCER_EPOCH below v2, KIP-588),
CONCURRENT_TRANSACTIONS, INVALID_TXN_STATE.
"""

from __future__ import annotations

from typing import Any

from kio.static.primitive import i16, i64

from strom.apis._build import build, no_throttle
from strom.apis._txn_util import coordinator_of, fenced_for_version
from strom.protocol.errors import ErrorCode
from strom.protocol.registry import ApiSpec, response_type

API_KEY = 26
EPOCH_BUMP_FROM = 5  # transaction version 2 (KIP-890 part 2)


async def handle(ctx: Any, request: Any) -> Any:
    version = ctx.api_version
    coordinator = coordinator_of(ctx)
    error, producer_id, producer_epoch = ErrorCode.coordinator_not_available, -1, -1
    if coordinator is not None:
        error, producer_id, producer_epoch = await coordinator.end_txn(
            request.transactional_id,
            int(request.producer_id),
            int(request.producer_epoch),
            bool(request.committed),
            epoch_bump=version >= EPOCH_BUMP_FROM,
        )
    cls = response_type(API_KEY, version)
    fields: dict[str, Any] = {}
    if version >= EPOCH_BUMP_FROM:
        fields = {"producer_id": i64(producer_id), "producer_epoch": i16(producer_epoch)}
    return build(
        cls, throttle_time=no_throttle(), error_code=fenced_for_version(error, version, 2), **fields
    )


SPEC = ApiSpec(api_key=API_KEY, min_version=0, max_version=5, handler=handle, name="EndTxn")
