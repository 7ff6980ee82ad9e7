"""Produce (api key 0), versions 3-13: append record batches (magic 2) to partition leaders.

Behaviour:
- acks 0: append, answer nothing; if any partition fails, close the connection instead (as Kafka does: the
  client learns of the error by the disconnect). acks 1: answer after the leader's append. acks -1: answer
  once the high watermark passes the batch (immediately on a single node, the ISR being {self}), or
  REQUEST_TIMED_OUT after `timeout_ms`; with an ISR smaller than min.insync.replicas, NOT_ENOUGH_REPLICAS
  and no append. Other acks values: INVALID_REQUIRED_ACKS. If the ISR shrank below min.insync.replicas
  while waiting, NOT_ENOUGH_REPLICAS_AFTER_APPEND; if leadership moved meanwhile, NOT_LEADER_OR_FOLLOWER.
- Batches are stored as sent (any codec); only their 61-byte headers are read (CRC-32C checked), offsets
  are assigned by rewriting the base offset, LogAppendTime is stamped when the topic asks for it (the
  response then carries it; otherwise -1).
- Idempotent producers (KIP-98): a batch already in the log (same producer id, epoch and sequences as one
  of its last 5) answers NONE with the first copy's base offset; gaps answer
  OUT_OF_ORDER_SEQUENCE_NUMBER; an older epoch INVALID_PRODUCER_EPOCH.
- Transactional batches (KIP-98, KIP-890): before the first batch of a producer's transaction reaches a
  partition, the transaction's coordinator (this broker, or the remote one through AddPartitionsToTxn v5,
  `strom.coordinator.txn.partition_adder`) is asked. v11 and below (transaction version 1 clients, which
  add partitions themselves) only verify: a partition not in the ongoing transaction answers
  INVALID_TXN_STATE (TRANSACTION_ABORTABLE from v11), a stale epoch INVALID_PRODUCER_EPOCH. v12+
  (transaction version 2, KIP-890 part 2, sent once the `transaction.version` feature is 2) adds the
  partition to the transaction implicitly. Coordinator errors a client may not retry (NOT_COORDINATOR,
  COORDINATOR_NOT_AVAILABLE, COORDINATOR_LOAD_IN_PROGRESS, CONCURRENT_TRANSACTIONS, NETWORK_EXCEPTION)
  answer NOT_ENOUGH_REPLICAS, as Kafka's do. All batches are checked before any is appended.
- All partitions of a request are appended before any acks=-1 wait, and only then may the connection's
  next request run (`ctx.effects_applied`): pipelined requests reach each partition in request order, and
  the waits of one request's partitions (and of pipelined requests) overlap.
- A batch with records that break a topic rule (no key on a compacted topic, a timestamp outside
  message.timestamp.before/after.max.ms, a LogAppendTime batch from a client) is refused whole; v8+
  answers `record_errors` (each bad record's index in its batch and Kafka's message) and Kafka's
  partition-level `error_message` (KIP-467, `strom.storage.record_validation`), so librdkafka fails the
  bad records with the error and the rest of the batch with its local _INVALID_DIFFERENT_RECORD.
- v10+ (KIP-951): a partition answered NOT_LEADER_OR_FOLLOWER carries the current leader's id and epoch
  (tagged `current_leader`) and the response lists those leaders' endpoints (tagged `node_endpoints`).
  v11 may answer TRANSACTION_ABORTABLE, v12 adds partitions to transactions (above). v13 names topics by
  id (KIP-516); an id this broker does not know answers UNKNOWN_TOPIC_ID.
- Requests are decoded by `strom.protocol.produce_request` (record sets stay views of the request frame,
  which the log rewrites in place: no copy of the payload in Python); responses are encoded by hand
  (`encode_response`, checked byte for byte against kio in the tests).
- Quotas (KIP-219, KIP-124): the request's size counts against producer_byte_rate and, except for acks=0,
  its handler time against request_percentage; `throttle_time_ms` is the longer of the two throttles,
  for which the connection is muted (Kafka's handleProduceRequest).

Errors per partition: NONE, UNKNOWN_TOPIC_OR_PARTITION, NOT_LEADER_OR_FOLLOWER, CORRUPT_MESSAGE,
MESSAGE_TOO_LARGE, RECORD_LIST_TOO_LARGE, INVALID_TIMESTAMP, INVALID_RECORD, INVALID_REQUIRED_ACKS,
NOT_ENOUGH_REPLICAS, NOT_ENOUGH_REPLICAS_AFTER_APPEND, REQUEST_TIMED_OUT, OUT_OF_ORDER_SEQUENCE_NUMBER,
INVALID_PRODUCER_EPOCH, INVALID_TXN_STATE, TRANSACTION_ABORTABLE (v11+), KAFKA_STORAGE_ERROR,
UNKNOWN_SERVER_ERROR, UNKNOWN_TOPIC_ID
(v13), TOPIC_AUTHORIZATION_FAILED (no WRITE on the topic), TRANSACTIONAL_ID_AUTHORIZATION_FAILED (every
partition, when transactional batches come without WRITE on the transactional id).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Container
from dataclasses import dataclass
from typing import Any

from strom.apis._authz import EVERY_NAME as _EVERY_NAME
from strom.apis._authz import allowed, enforcing, may
from strom.apis._leader_hints import (
    HINTED_ERRORS,
    NodeEndpoint,
    current_leader,
    encode_node_endpoints,
    leader_endpoints,
    tagged,
)
from strom.coordinator.txn.partition_adder import produce_error
from strom.protocol.errors import ErrorCode, KafkaError, RecordError
from strom.protocol.frames import CloseConnection, RawResponse
from strom.protocol.produce_request import decode_produce_request
from strom.protocol.record_batch import BATCH_HEADER_SIZE, parse_header
from strom.protocol.registry import ApiSpec
from strom.protocol.wire import EMPTY_TAGS, I16, I32, I64, array_len, nullable_string, string
from strom.security.authorizer import AclOperation, ResourceType
from strom.security.quotas.throttling import produce_throttle_ms
from strom.server.context import RequestContext

log = logging.getLogger("strom.apis.produce")

API_KEY = 0
MIN_VERSION = 3
MAX_VERSION = 13
FLEXIBLE_FROM = 9
LEADER_HINTS_FROM = 10
TOPIC_IDS_FROM = 13
ABORTABLE_FROM = 11  # TRANSACTION_ABORTABLE (KIP-890)
ADD_PARTITION_FROM = 12  # transaction version 2: partitions join transactions implicitly (KIP-890 part 2)


@dataclass(slots=True)
class PartitionResult:
    index: int
    error_code: int = 0
    base_offset: int = -1
    log_append_time: int = -1
    log_start_offset: int = -1
    error_message: str | None = None
    record_errors: tuple[RecordError, ...] = ()
    current_leader: tuple[int, int] | None = None  # KIP-951 (v10+): (leader id, leader epoch)


TopicKey = str | uuid.UUID


def encode_response(
    version: int,
    topics: list[tuple[TopicKey, list[PartitionResult]]],
    throttle_ms: int = 0,
    node_endpoints: list[NodeEndpoint] | None = None,
) -> bytes:
    """Produce response body (after the response header) of `version` 3-13. Topics are keyed by name
    below v13 and by topic id from v13."""
    flexible = version >= FLEXIBLE_FROM
    hints = version >= LEADER_HINTS_FROM
    out = bytearray(array_len(len(topics), flexible))
    for key, partitions in topics:
        if version >= TOPIC_IDS_FROM:
            out += key.bytes  # type: ignore[union-attr]
        else:
            out += string(key, flexible)  # type: ignore[arg-type]
        out += array_len(len(partitions), flexible)
        for p in partitions:
            out += I32.pack(p.index)
            out += I16.pack(p.error_code)
            out += I64.pack(p.base_offset)
            out += I64.pack(p.log_append_time)
            if version >= 5:
                out += I64.pack(p.log_start_offset)
            if version >= 8:
                out += array_len(len(p.record_errors), flexible)
                for record_error in p.record_errors:
                    out += I32.pack(record_error.batch_index)
                    out += nullable_string(record_error.message, flexible)
                    if flexible:
                        out += EMPTY_TAGS
                out += nullable_string(p.error_message, flexible)
            if flexible:
                leader = p.current_leader
                # a tagged field is written only when it differs from its default (-1, -1)
                if hints and leader is not None and leader != (-1, -1):
                    out += b"\x01" + tagged(0, I32.pack(leader[0]) + I32.pack(leader[1]) + EMPTY_TAGS)
                else:
                    out += EMPTY_TAGS
        if flexible:
            out += EMPTY_TAGS
    out += I32.pack(throttle_ms)
    if flexible:
        if hints and node_endpoints:
            out += b"\x01" + tagged(0, encode_node_endpoints(node_endpoints))
        else:
            out += EMPTY_TAGS
    return bytes(out)


def _error_code(exc: KafkaError) -> int:
    return int(exc.code)


Refusal = tuple[int, str | None]  # (error code, message) for a partition refused before its append


async def _check_transactions(
    ctx: RequestContext, request: Any, transactional_id: str | None
) -> dict[tuple[str, int], Refusal]:
    """KIP-890: ask the coordinator about every partition where a transactional batch would open the
    producer's transaction (verify below v12, add from v12); the partitions it refused."""
    coordinator = getattr(ctx.broker, "txn_coordinator", None)
    if coordinator is None or not transactional_id:
        return {}
    broker = ctx.broker
    version = ctx.api_version
    image = broker.metadata.image
    opening: list[tuple[str, int]] = []
    producer: tuple[int, int] | None = None
    for topic_data in request.topic_data:
        name = topic_data.name
        if version >= TOPIC_IDS_FROM:
            info = image.topic_by_id(topic_data.topic_id)
            name = None if info is None else info.name
        if name is None:
            continue
        for pdata in topic_data.partition_data:
            records = pdata.records
            if records is None or len(records) < BATCH_HEADER_SIZE:
                continue
            try:
                header = parse_header(records)
            except KafkaError:
                continue  # the append refuses it with the right code
            if not header.is_transactional:
                continue
            part = broker.replica_manager.get_partition(name, int(pdata.index))
            if part is None or not part.is_leader:
                continue
            if part.producer_state.has_ongoing_txn(header.producer_id, header.producer_epoch):
                continue
            opening.append((name, int(pdata.index)))
            producer = (header.producer_id, header.producer_epoch)
    if not opening or producer is None:
        return {}
    errors = await coordinator.adder.add_or_verify(
        transactional_id, producer[0], producer[1], opening, add=version >= ADD_PARTITION_FROM
    )
    refused: dict[tuple[str, int], Refusal] = {}
    for tp, error in errors.items():
        if error != ErrorCode.none:
            code, message = produce_error(error, abortable_supported=version >= ABORTABLE_FROM)
            refused[tp] = (int(code), message)
    return refused


@dataclass(slots=True)
class _Appended:
    """An acks=-1 append still waiting for the ISR."""

    result: PartitionResult
    partition: Any
    last_offset: int


def _append_partition(
    ctx: RequestContext,
    topic: str,
    index: int,
    records: Any,
    acks: int,
    refused: dict[tuple[str, int], Refusal] | None = None,
) -> tuple[PartitionResult, _Appended | None]:
    """Append one partition's records as leader (synchronously: no other request runs meanwhile), and
    what is left to wait for under acks=-1."""
    broker = ctx.broker
    result = PartitionResult(index)
    if broker.metadata.image.partition(topic, index) is None:
        result.error_code = ErrorCode.unknown_topic_or_partition
        return result, None
    part = broker.replica_manager.get_partition(topic, index)
    if part is None or not part.is_leader:
        # a partition whose log dir failed (KIP-112) is offline here, not led elsewhere
        offline = part is None and broker.replica_manager.is_offline(topic, index)
        result.error_code = ErrorCode.kafka_storage_error if offline else ErrorCode.not_leader_or_follower
        return result, None
    if records is None or len(records) == 0:
        result.error_code = ErrorCode.corrupt_message
        return result, None
    refusal = refused.get((topic, index)) if refused else None
    if refusal is not None:
        result.error_code, result.error_message = refusal
        result.log_start_offset = part.log_start_offset
        return result, None
    size = len(records)
    try:
        # the records are a view of this request's own frame, used for nothing after the append
        appended = part.append_as_leader(records, acks=acks, in_place=True)
    except KafkaError as exc:
        result.error_code = _error_code(exc)
        result.error_message = exc.message
        # the bad records of a refused batch (KIP-467): clients fail those and not the rest
        result.record_errors = exc.record_errors
        result.log_start_offset = part.log_start_offset
        return result, None
    except Exception:
        log.exception("append to %s-%d failed", topic, index)
        result.error_code = ErrorCode.unknown_server_error
        return result, None
    traffic = broker.metrics.traffic
    if traffic is not None:
        # validated batches hold one record per offset (records_count == last_offset_delta + 1)
        traffic.record_produce(topic, appended.last_offset - appended.first_offset + 1, size)
    result.base_offset = appended.first_offset
    result.log_append_time = appended.log_append_time
    result.log_start_offset = appended.log_start_offset
    if acks != -1:
        return result, None
    return result, _Appended(result, part, appended.last_offset)


async def _await_isr(pending: _Appended, timeout_s: float) -> None:
    result = pending.result
    try:
        if not await pending.partition.wait_for_acks_all(pending.last_offset, timeout_s):
            result.error_code = ErrorCode.request_timed_out
    except KafkaError as exc:
        # leadership lost, or the ISR shrank below min.insync.replicas while waiting
        result.error_code = _error_code(exc)
        result.error_message = exc.message


async def handle(ctx: RequestContext, request: Any) -> Any:
    acks = int(request.acks)
    timeout_s = max(request.timeout.total_seconds(), 0.0)
    transactional_id = getattr(request, "transactional_id", None)
    version = ctx.api_version
    topics: list[tuple[TopicKey, list[PartitionResult]]] = []
    names: list[str | None] = []
    waiting: list[_Appended] = []
    image = ctx.broker.metadata.image
    # KIP-890: the coordinator is asked (and may write) before anything is appended
    txn_refused = await _check_transactions(ctx, request, transactional_id)
    # Kafka's checks: WRITE on the transactional id when the request carries transactional records (or
    # every partition answers TRANSACTIONAL_ID_AUTHORIZATION_FAILED), then WRITE on each topic
    refused = _transactional_refusal(ctx, request, transactional_id)
    writable = _writable_topics(ctx, request, image) if refused is None else frozenset()
    # Every partition is appended before anything is awaited, so the next request on this connection
    # (released by effects_applied below) can never reach a partition before this one did.
    for topic_data in request.topic_data:
        results: list[PartitionResult] = []
        name: str | None = topic_data.name
        if version >= TOPIC_IDS_FROM:
            info = image.topic_by_id(topic_data.topic_id)
            name = None if info is None else info.name
        for pdata in topic_data.partition_data:
            if refused is not None:
                results.append(PartitionResult(int(pdata.index), refused))
                continue
            if acks not in (0, 1, -1):
                results.append(PartitionResult(int(pdata.index), ErrorCode.invalid_required_acks))
                continue
            if name is None:
                results.append(PartitionResult(int(pdata.index), ErrorCode.unknown_topic_id))
                continue
            if name not in writable:
                results.append(PartitionResult(int(pdata.index), ErrorCode.topic_authorization_failed))
                continue
            result, pending = _append_partition(ctx, name, int(pdata.index), pdata.records, acks, txn_refused)
            results.append(result)
            if pending is not None:
                waiting.append(pending)
        key = topic_data.topic_id if version >= TOPIC_IDS_FROM else topic_data.name
        topics.append((key, results))  # type: ignore[arg-type]
        names.append(name)
    ctx.effects_applied()
    if len(waiting) == 1:
        await _await_isr(waiting[0], timeout_s)
    elif waiting:
        await asyncio.gather(*(_await_isr(pending, timeout_s) for pending in waiting))
    # producer_byte_rate (KIP-219): acks=0 gets no answer but is muted all the same; the answer says the
    # longer of that throttle and request_percentage's
    throttle_ms = produce_throttle_ms(ctx, acks=acks)
    if acks == 0:
        # the client expects no answer, so Kafka reports a failure by closing the connection
        failed = [(name, p) for name, results in topics for p in results if p.error_code]
        if failed:
            name, first = failed[0]
            return CloseConnection(
                f"acks=0 produce failed for {len(failed)} partition(s), first {name}-{first.index}: "
                f"{ErrorCode(first.error_code).name}"
            )
        return None
    endpoints = _leader_hints(ctx, topics, names) if version >= LEADER_HINTS_FROM else None
    return RawResponse([encode_response(version, topics, throttle_ms=throttle_ms, node_endpoints=endpoints)])


def _transactional_refusal(
    ctx: RequestContext, request: Any, transactional_id: str | None
) -> ErrorCode | None:
    """TRANSACTIONAL_ID_AUTHORIZATION_FAILED when the request holds a transactional batch and its
    transactional id is missing or not writable by the principal (Kafka's hasTransactionalRecords)."""
    if not enforcing(ctx):
        return None
    transactional = False
    for topic_data in request.topic_data:
        for pdata in topic_data.partition_data:
            records = pdata.records
            if records is not None and len(records) >= BATCH_HEADER_SIZE:
                with contextlib.suppress(Exception):  # a corrupt batch is refused by the append
                    transactional = transactional or parse_header(records).is_transactional
    if not transactional:
        return None
    if transactional_id and may(ctx, AclOperation.WRITE, ResourceType.TRANSACTIONAL_ID, transactional_id):
        return None
    return ErrorCode.transactional_id_authorization_failed


def _writable_topics(ctx: RequestContext, request: Any, image: Any) -> Container[str]:
    if not enforcing(ctx):
        return _EVERY_NAME
    names = []
    for topic_data in request.topic_data:
        if ctx.api_version >= TOPIC_IDS_FROM:
            info = image.topic_by_id(topic_data.topic_id)
            if info is not None:
                names.append(info.name)
        else:
            names.append(topic_data.name)
    return allowed(ctx, AclOperation.WRITE, ResourceType.TOPIC, names)


def _leader_hints(
    ctx: RequestContext, topics: list[tuple[TopicKey, list[PartitionResult]]], names: list[str | None]
) -> list[NodeEndpoint]:
    """KIP-951: the current leader of each partition refused as not led here, and their endpoints."""
    leaders = []
    for (_key, results), name in zip(topics, names, strict=True):
        for result in results:
            if name is not None and result.error_code in HINTED_ERRORS:
                result.current_leader = current_leader(ctx, name, result.index)
                leaders.append(result.current_leader[0])
    return leader_endpoints(ctx, leaders) if leaders else []


SPEC = ApiSpec(
    api_key=API_KEY,
    min_version=MIN_VERSION,
    max_version=MAX_VERSION,
    handler=handle,
    decode=decode_produce_request,
    name="Produce",
    advertised_min_version=0,  # listed, never served: a v0-2 request closes the connection, as on Kafka 4
)
