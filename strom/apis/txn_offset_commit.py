"""TxnOffsetCommit (api key 28), versions 0-6: commit consumer offsets inside a transaction (KIP-98).

The group coordinator writes the offsets to __consumer_offsets as a transactional batch of the producer;
they become the group's committed offsets when the transaction's COMMIT marker reaches the group's
partition and are dropped on ABORT. v3 (KIP-447) carries the consumer's generation, member id and
group instance id, which are checked against the group when a generation is given.

Before the producer's first transactional write to the group's partition, the transaction coordinator is
asked about it, as for a Produce (KIP-890, `strom.coordinator.txn.partition_adder`): v4 and below verify
that AddOffsetsToTxn added it (INVALID_TXN_STATE when not; v4 answers TRANSACTION_ABORTABLE), v5+
(transaction version 2, KIP-890 part 2: the client sends no AddOffsetsToTxn) adds it. Before
__consumer_offsets exists, that check answers COORDINATOR_NOT_AVAILABLE (Kafka's order: verification, then
the group coordinator, which would say NOT_COORDINATOR). v6 names topics
by id (KIP-516), answered by id; an id this broker does not know answers UNKNOWN_TOPIC_ID. kio has no v6
schema: `decode` reads it and the response is encoded here.

Errors per partition: NONE, UNKNOWN_TOPIC_OR_PARTITION, UNKNOWN_TOPIC_ID (v6), NOT_COORDINATOR,
COORDINATOR_LOAD_IN_PROGRESS, COORDINATOR_NOT_AVAILABLE, OFFSET_METADATA_TOO_LARGE, PRODUCER_FENCED
(INVALID_PRODUCER_EPOCH below v3, KIP-588), INVALID_PRODUCER_EPOCH, INVALID_TXN_STATE,
TRANSACTION_ABORTABLE (v4+), CONCURRENT_TRANSACTIONS, UNKNOWN_MEMBER_ID, ILLEGAL_GENERATION,
FENCED_INSTANCE_ID.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from strom.apis._offset_commit_util import commit_refusals, commit_response, requested_offsets
from strom.apis._txn_util import fenced_for_version
from strom.coordinator.group.results import CommitRequest
from strom.coordinator.txn.partition_adder import produce_error
from strom.protocol.errors import ErrorCode
from strom.protocol.frames import RawResponse
from strom.protocol.registry import ApiSpec, decode_with_kio, request_type, response_type
from strom.protocol.wire import (
    EMPTY_TAGS,
    I16,
    I32,
    I64,
    WireFormatError,
    array_len,
    read_compact_string,
    read_uvarint,
    skip_tagged_fields,
)

API_KEY = 28
ABORTABLE_FROM = 4  # TRANSACTION_ABORTABLE (KIP-890)
ADD_PARTITION_FROM = 5  # transaction version 2: the offsets partition joins the transaction implicitly
TOPIC_IDS_FROM = 6
OFFSETS_TOPIC = "__consumer_offsets"


@dataclass(frozen=True, slots=True)
class _Partition:
    partition_index: int
    committed_offset: int
    committed_leader_epoch: int
    committed_metadata: str | None


@dataclass(frozen=True, slots=True)
class _Topic:
    topic_id: uuid.UUID
    partitions: tuple[_Partition, ...]
    name: str = ""


@dataclass(frozen=True, slots=True)
class TxnOffsetCommitV6:
    """A v6 request (v5's fields, topics by id)."""

    transactional_id: str
    group_id: str
    producer_id: int
    producer_epoch: int
    generation_id: int
    member_id: str
    group_instance_id: str | None
    topics: tuple[_Topic, ...]


def _take(fmt: Any, body: memoryview, pos: int) -> tuple[int, int]:
    if pos + fmt.size > len(body):
        raise WireFormatError("TxnOffsetCommit v6 ends early")
    return int(fmt.unpack_from(body, pos)[0]), pos + fmt.size


def _string(body: memoryview, pos: int) -> tuple[str, int]:
    value, pos = read_compact_string(body, pos)
    if value is None:
        raise WireFormatError("TxnOffsetCommit v6: null where a string is required")
    return value, pos


def decode(version: int, body: memoryview) -> Any:
    if version < TOPIC_IDS_FROM:
        return decode_with_kio(request_type(API_KEY, version), body)  # type: ignore[arg-type]
    transactional_id, pos = _string(body, 0)
    group_id, pos = _string(body, pos)
    producer_id, pos = _take(I64, body, pos)
    producer_epoch, pos = _take(I16, body, pos)
    generation_id, pos = _take(I32, body, pos)
    member_id, pos = _string(body, pos)
    group_instance_id, pos = read_compact_string(body, pos)
    count, pos = read_uvarint(body, pos)
    topics = []
    for _ in range(max(count - 1, 0)):
        if pos + 16 > len(body):
            raise WireFormatError("TxnOffsetCommit v6 ends inside a topic id")
        topic_id = uuid.UUID(bytes=bytes(body[pos : pos + 16]))
        pos += 16
        n, pos = read_uvarint(body, pos)
        partitions = []
        for _ in range(max(n - 1, 0)):
            index, pos = _take(I32, body, pos)
            offset, pos = _take(I64, body, pos)
            leader_epoch, pos = _take(I32, body, pos)
            metadata, pos = read_compact_string(body, pos)
            pos = skip_tagged_fields(body, pos)
            partitions.append(_Partition(index, offset, leader_epoch, metadata))
        pos = skip_tagged_fields(body, pos)
        topics.append(_Topic(topic_id, tuple(partitions)))
    skip_tagged_fields(body, pos)
    return TxnOffsetCommitV6(
        transactional_id,
        group_id,
        producer_id,
        producer_epoch,
        generation_id,
        member_id,
        group_instance_id,
        tuple(topics),
    )


def encode_v6_response(topics: list[tuple[uuid.UUID, list[tuple[int, int]]]]) -> bytes:
    """The v6 response body: throttle time, topics by id with (partition, error) pairs."""
    out = bytearray(I32.pack(0))
    out += array_len(len(topics), True)
    for topic_id, partitions in topics:
        out += topic_id.bytes
        out += array_len(len(partitions), True)
        for index, error in partitions:
            out += I32.pack(index) + I16.pack(error) + EMPTY_TAGS
        out += EMPTY_TAGS
    out += EMPTY_TAGS
    return bytes(out)


async def _join_transaction(ctx: Any, request: Any, pid: int, epoch: int) -> ErrorCode:
    """KIP-890: the transaction coordinator's word on the group's offsets partition (NONE when this
    producer's transaction is already open there)."""
    broker = ctx.broker
    coordinator = getattr(broker, "txn_coordinator", None)
    if coordinator is None:
        return ErrorCode.none
    groups = broker.group_coordinator
    partition = groups.core.partition_for(request.group_id)
    part = broker.replica_manager.get_partition(OFFSETS_TOPIC, partition)
    if part is None:
        # Kafka verifies before the group coordinator looks (ReplicaManager.getPartitionOrError): a partition
        # the metadata does not have (no group has found its coordinator yet, so __consumer_offsets does not
        # exist) is UNKNOWN_TOPIC_OR_PARTITION, which the group coordinator answers COORDINATOR_NOT_AVAILABLE
        offsets_topic = broker.metadata.image.topic(OFFSETS_TOPIC)
        if offsets_topic is None or partition not in offsets_topic.partitions:
            return ErrorCode.coordinator_not_available
        return ErrorCode.none  # led elsewhere: the group coordinator answers NOT_COORDINATOR
    if not part.is_leader:
        return ErrorCode.none
    if part.producer_state.has_ongoing_txn(pid, epoch):
        return ErrorCode.none
    version = ctx.api_version
    errors = await coordinator.adder.add_or_verify(
        request.transactional_id, pid, epoch, [(OFFSETS_TOPIC, partition)], add=version >= ADD_PARTITION_FROM
    )
    error = errors[(OFFSETS_TOPIC, partition)]
    if error == ErrorCode.none:
        return error
    code, _message = produce_error(error, abortable_supported=version >= ABORTABLE_FROM)
    if code == ErrorCode.not_enough_replicas:
        # the transaction coordinator is busy (the last transaction's markers are still going out) or
        # out of reach: Kafka's group coordinator answers such write failures COORDINATOR_NOT_AVAILABLE,
        # which producers retry (CONCURRENT_TRANSACTIONS here makes some give up on the transaction)
        return ErrorCode.coordinator_not_available
    return code


async def handle(ctx: Any, request: Any) -> Any:
    version = ctx.api_version
    coordinator = ctx.broker.group_coordinator
    image = ctx.broker.metadata.image
    topics = request.topics
    if version >= TOPIC_IDS_FROM:
        named = []
        for topic in topics:
            info = image.topic_by_id(topic.topic_id)
            if info is not None:
                named.append(_Topic(topic.topic_id, topic.partitions, info.name))
        topics = named
    refused = commit_refusals(ctx, request, transactional=True, topics=topics)
    order, errors, offsets = requested_offsets(image, topics, refused)
    req = CommitRequest(
        group_id=request.group_id,
        generation_id=int(getattr(request, "generation_id", -1)),
        member_id=getattr(request, "member_id", ""),
        group_instance_id=getattr(request, "group_instance_id", None),
        offsets=offsets,
    )
    if offsets:
        pid, epoch = int(request.producer_id), int(request.producer_epoch)
        joined = await _join_transaction(ctx, request, pid, epoch)
        if joined != ErrorCode.none:
            results = [joined] * len(offsets)
        else:
            core, now = coordinator.core, coordinator.now_ms()
            results = await coordinator.call(
                lambda cb: core.commit_txn_offsets(req, pid, epoch, now, cb), ctx.effects_applied
            )
        for o, error in zip(offsets, results, strict=True):
            errors[(o.topic, o.partition)] = fenced_for_version(error, version, 3)
    if version < TOPIC_IDS_FROM:
        return commit_response(response_type(API_KEY, version), order, errors)
    by_id: list[tuple[uuid.UUID, list[tuple[int, int]]]] = []
    names = {t.topic_id: t.name for t in topics}
    for topic in request.topics:
        name = names.get(topic.topic_id)
        codes = [
            (
                p.partition_index,
                int(ErrorCode.unknown_topic_id if name is None else errors[(name, p.partition_index)]),
            )
            for p in topic.partitions
        ]
        # unknown ids first, as Kafka's response builder adds the refused topics before the committed ones
        if name is None:
            by_id.insert(sum(1 for t, _ in by_id if names.get(t) is None), (topic.topic_id, codes))
        else:
            by_id.append((topic.topic_id, codes))
    return RawResponse([encode_v6_response(by_id)], leading_throttle=True)


SPEC = ApiSpec(
    api_key=API_KEY, min_version=0, max_version=6, handler=handle, decode=decode, name="TxnOffsetCommit"
)
