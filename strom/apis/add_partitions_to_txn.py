"""AddPartitionsToTxn (api key 24), versions 0-5: add partitions to a transaction (KIP-98, KIP-890).

v0-3 come from producers: the transaction coordinator of the transactional id records the partitions
(written to __transaction_state) before the producer may write to them; the first one starts the
transaction timer. Unknown topics or partitions fail the whole request: those partitions answer
UNKNOWN_TOPIC_OR_PARTITION and the others OPERATION_NOT_ATTEMPTED, as Kafka does.

v4+ come from partition leaders (KIP-890 part 1) and batch several transactions, each answered on its
own (a top-level error code besides): with `verify_only` the coordinator only says whether the ongoing
transaction holds each partition (TRANSACTION_ABORTABLE when not; nothing written), without it the
partitions are added on the producer's behalf as for a transaction version 2 client (KIP-890 part 2: a
Produce v12+ or TxnOffsetCommit v5+ that opened a transaction on a partition). v5 only tells that the
sender understands TRANSACTION_ABORTABLE.

Errors per partition: NONE, NOT_COORDINATOR, COORDINATOR_LOAD_IN_PROGRESS, COORDINATOR_NOT_AVAILABLE,
INVALID_PRODUCER_ID_MAPPING, PRODUCER_FENCED (INVALID_PRODUCER_EPOCH below v2, KIP-588),
CONCURRENT_TRANSACTIONS, INVALID_TXN_STATE, UNKNOWN_TOPIC_OR_PARTITION, OPERATION_NOT_ATTEMPTED,
TRANSACTION_ABORTABLE (v4+ verify_only).
"""

from __future__ import annotations

from typing import Any

from strom.apis._build import build, entry_type, no_throttle
from strom.apis._txn_util import coordinator_of, fenced_for_version
from strom.protocol.errors import ErrorCode
from strom.protocol.registry import ApiSpec, response_type

API_KEY = 24
BATCHED_FROM = 4

TopicPartition = tuple[str, int]


async def _one_transaction(
    ctx: Any,
    transactional_id: str,
    producer_id: int,
    producer_epoch: int,
    wanted: list[TopicPartition],
    verify_only: bool,
) -> dict[TopicPartition, ErrorCode]:
    version = ctx.api_version
    image = ctx.broker.metadata.image
    unknown = {tp for tp in wanted if image.partition(*tp) is None}
    coordinator = coordinator_of(ctx)
    if unknown:
        return {
            tp: ErrorCode.unknown_topic_or_partition if tp in unknown else ErrorCode.operation_not_attempted
            for tp in wanted
        }
    if coordinator is None:
        return dict.fromkeys(wanted, ErrorCode.coordinator_not_available)
    if verify_only:
        return coordinator.core.verify_partitions(transactional_id, producer_id, producer_epoch, wanted)
    error = await coordinator.add_partitions(
        transactional_id,
        producer_id,
        producer_epoch,
        wanted,
        # a broker adds partitions only for transaction version 2 clients
        client_transaction_version=2 if version >= BATCHED_FROM else 0,
    )
    return dict.fromkeys(wanted, fenced_for_version(error, version, 2))


def _topic_results(topic_cls: type, errors: dict[TopicPartition, ErrorCode]) -> tuple[Any, ...]:
    part_cls = entry_type(topic_cls, "results_by_partition")
    by_topic: dict[str, list[Any]] = {}
    for (topic, partition), error in errors.items():
        by_topic.setdefault(topic, []).append(
            build(part_cls, partition_index=partition, partition_error_code=error)
        )
    return tuple(
        build(topic_cls, name=name, results_by_partition=tuple(parts)) for name, parts in by_topic.items()
    )


async def handle(ctx: Any, request: Any) -> Any:
    version = ctx.api_version
    cls = response_type(API_KEY, version)
    if version < BATCHED_FROM:
        wanted = [(t.name, int(p)) for t in request.v3_and_below_topics for p in t.partitions]
        errors = await _one_transaction(
            ctx,
            request.v3_and_below_transactional_id,
            int(request.v3_and_below_producer_id),
            int(request.v3_and_below_producer_epoch),
            wanted,
            verify_only=False,
        )
        return build(
            cls,
            throttle_time=no_throttle(),
            results_by_topic_v3_and_below=_topic_results(
                entry_type(cls, "results_by_topic_v3_and_below"), errors
            ),
        )
    result_cls = entry_type(cls, "results_by_transaction")
    topic_cls = entry_type(result_cls, "topic_results")
    results = []
    for txn in request.transactions:
        wanted = [(t.name, int(p)) for t in txn.topics for p in t.partitions]
        errors = await _one_transaction(
            ctx,
            txn.transactional_id,
            int(txn.producer_id),
            int(txn.producer_epoch),
            wanted,
            verify_only=bool(txn.verify_only),
        )
        results.append(
            build(
                result_cls,
                transactional_id=txn.transactional_id,
                topic_results=_topic_results(topic_cls, errors),
            )
        )
    return build(
        cls, throttle_time=no_throttle(), error_code=ErrorCode.none, results_by_transaction=tuple(results)
    )


SPEC = ApiSpec(api_key=API_KEY, min_version=0, max_version=5, handler=handle, name="AddPartitionsToTxn")
