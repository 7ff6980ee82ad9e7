"""AddPartitionsToTxn (api key 24), versions 0-3: add partitions to a producer's transaction (KIP-98).

The transaction coordinator of the transactional id records the partitions (written to
__transaction_state) before the producer may write to them; the first one starts the transaction timer.
Unknown topics or partitions fail the whole request: those partitions answer UNKNOWN_TOPIC_OR_PARTITION
and the others OPERATION_NOT_ATTEMPTED, as Kafka does. v4+ (KIP-890 batched verify-only) is not served.

Errors per partition: NONE, NOT_COORDINATOR, COORDINATOR_LOAD_IN_PROGRESS, COORDINATOR_NOT_AVAILABLE,
INVALID_PRODUCER_ID_MAPPING, PRODUCER_FENCED (INVALID_PRODUCER_EPOCH below v2, KIP-588),
CONCURRENT_TRANSACTIONS, INVALID_TXN_STATE, UNKNOWN_TOPIC_OR_PARTITION, OPERATION_NOT_ATTEMPTED.
"""

from __future__ import annotations

from typing import Any

from strom.apis._build import build, entry_type, no_throttle
from strom.apis._txn_util import coordinator_of, fenced_for_version
from strom.protocol.errors import ErrorCode
from strom.protocol.registry import ApiSpec, response_type

API_KEY = 24


async def handle(ctx: Any, request: Any) -> Any:
    version = ctx.api_version
    wanted = [(t.name, int(p)) for t in request.v3_and_below_topics for p in t.partitions]
    image = ctx.broker.metadata.image
    unknown = {tp for tp in wanted if image.partition(*tp) is None}
    errors: dict[tuple[str, int], ErrorCode]
    coordinator = coordinator_of(ctx)
    if unknown:
        errors = {
            tp: ErrorCode.unknown_topic_or_partition if tp in unknown else ErrorCode.operation_not_attempted
            for tp in wanted
        }
    elif coordinator is None:
        errors = dict.fromkeys(wanted, ErrorCode.coordinator_not_available)
    else:
        error = await coordinator.add_partitions(
            request.v3_and_below_transactional_id,
            int(request.v3_and_below_producer_id),
            int(request.v3_and_below_producer_epoch),
            wanted,
        )
        errors = dict.fromkeys(wanted, fenced_for_version(error, version, 2))
    cls = response_type(API_KEY, version)
    topic_cls = entry_type(cls, "results_by_topic_v3_and_below")
    part_cls = entry_type(topic_cls, "results_by_partition")
    by_topic: dict[str, list[Any]] = {}
    for (topic, partition), error in errors.items():
        by_topic.setdefault(topic, []).append(
            build(part_cls, partition_index=partition, partition_error_code=error)
        )
    return build(
        cls,
        throttle_time=no_throttle(),
        results_by_topic_v3_and_below=tuple(
            build(topic_cls, name=name, results_by_partition=tuple(parts)) for name, parts in by_topic.items()
        ),
    )


SPEC = ApiSpec(api_key=API_KEY, min_version=0, max_version=3, handler=handle, name="AddPartitionsToTxn")
