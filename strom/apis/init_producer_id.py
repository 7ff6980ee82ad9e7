"""InitProducerId (api key 22), versions 0-5: producer ids for idempotent producers (KIP-98, KIP-360).

Without a transactional id every call gets a fresh producer id with epoch 0 (as Kafka's coordinator does
for idempotent producers; KIP-360's epoch bump by a non-transactional producer also gets a fresh id).
Ids come in persisted blocks (`strom.server.producer_ids`), so they are never reused after a restart, and
in a cluster the blocks are claimed from ZooKeeper, so no two brokers hand out the same id.
With a transactional id the request belongs to the transaction coordinator: when the broker has one
(`broker.txn_coordinator.init_producer_id`) it answers; otherwise COORDINATOR_NOT_AVAILABLE. v4 may
answer PRODUCER_FENCED (KIP-588), v5 TRANSACTION_ABORTABLE (KIP-890); neither changes the layout. (v6,
KIP-939's two-phase commit, is not stable in Kafka 4.4 and not served.)

Errors: NONE, INVALID_TRANSACTION_TIMEOUT (idempotent only: timeout must be positive below
transaction.max.timeout.ms when transactional), COORDINATOR_NOT_AVAILABLE, COORDINATOR_LOAD_IN_PROGRESS
(no id block could be claimed from the cluster; retriable, as Kafka's RPCProducerIdManager answers).
"""

from __future__ import annotations

from typing import Any

from kio.static.primitive import i16, i64

from strom.apis._build import build, no_throttle
from strom.protocol.errors import ErrorCode, KafkaError
from strom.protocol.registry import ApiSpec, response_type
from strom.server.context import RequestContext

API_KEY = 22


async def handle(ctx: RequestContext, request: Any) -> Any:
    cls = response_type(API_KEY, ctx.api_version)
    assert cls is not None
    if request.transactional_id:
        coordinator = getattr(ctx.broker, "txn_coordinator", None)
        if coordinator is not None:
            return await coordinator.init_producer_id(ctx, request)
        return build(
            cls,
            throttle_time=no_throttle(),
            error_code=ErrorCode.coordinator_not_available,
            producer_id=i64(-1),
            producer_epoch=i16(-1),
        )
    try:
        producer_id = await ctx.broker.producer_ids.allocate_async()
    except KafkaError:
        # a cluster could not give this broker a new block of ids (ZooKeeper unreachable): retriable
        return build(
            cls,
            throttle_time=no_throttle(),
            error_code=ErrorCode.coordinator_load_in_progress,
            producer_id=i64(-1),
            producer_epoch=i16(-1),
        )
    return build(
        cls,
        throttle_time=no_throttle(),
        error_code=ErrorCode.none,
        producer_id=i64(producer_id),
        producer_epoch=i16(0),
    )


SPEC = ApiSpec(api_key=API_KEY, min_version=0, max_version=5, handler=handle, name="InitProducerId")
