"""Fetch (api key 1), versions 0-18: read record batches from partition leaders.

Behaviour:
- Consumers (replica_id -1) see records below the high watermark only. Each partition answers at most
  `partition_max_bytes`, the whole response at most `max_bytes` (v3+), except that the first batch found
  is returned whole even when larger (KIP-74), so consumers always make progress.
- `min_bytes`/`max_wait_ms`: when less than `min_bytes` is available the request waits (the fetch
  purgatory: an event registered on each partition, set by every append) until enough arrives or
  `max_wait_ms` passes; an error reading a partition answers at once.
- Fetch sessions (KIP-227, v7+, consumers and followers alike): `strom.server.fetch_sessions` decides from
  the session id and epoch whether a request is sessionless, opens a session, or is incremental, and which
  partitions an incremental response lists (records, an error, or a high watermark or log start offset
  other than the one last sent).
- Partitions the metadata does not know are answered UNKNOWN_TOPIC_OR_PARTITION after all the others and
  do not end a `min_bytes` wait early (Kafka's "erroneous" partitions); a topic's partitions share one
  topic entry only when they are neighbours in the response.
- v9+ `current_leader_epoch` (KIP-320): older than ours FENCED_LEADER_EPOCH, newer UNKNOWN_LEADER_EPOCH.
- read_committed (isolation_level 1, KIP-98): consumers read below the last stable offset only, and each
  partition answers the aborted transactions (producer id, first offset) overlapping the range from the
  fetch offset to the LSO, from the log's aborted-transaction index; read_uncommitted answers null there.
- Followers (replica_id >= 0) read up to the log end offset; their fetch offset is their log end offset,
  which the leader records (`Partition.update_follower_fetch`) to move the ISR and the high watermark.
- Client quotas (KIP-13, KIP-124, KIP-219; Kafka's handleFetchRequest): a consumer's fetch reads at most
  what one consumer_byte_rate window allows (`max_bytes`, and `min_bytes` no more than that). The
  response's size counts against consumer_byte_rate and the handler's time against request_percentage;
  when either throttles, the size is taken back and the fetch is answered empty (error NONE, no
  partitions, the session's id for an incremental fetch, none for a full one, which opens no session)
  with `throttle_time_ms` the longer throttle, and the connection is muted for it. The session keeps what
  it last told the client, so the records are answered again once the client may fetch. Followers are
  never throttled so.
- v12+ truncation through Fetch (KIP-595): a `last_fetched_epoch` that ends earlier in this log than the
  fetch offset is answered with `diverging_epoch` and no records, and is not the follower's progress, as
  Kafka 4.4's followers expect (Strom's own followers truncate with OffsetForLeaderEpoch first).
- Record bytes are never copied into Python: the response header and per-partition fields are encoded
  here and the records go out as `FileSlice`s (sendfile). An empty record set is encoded as zero length,
  never null (librdkafka rejects null).
- kio has no Fetch v0-3 schema; `decode` parses those versions itself. All versions are normalised into
  `FetchParams`.

What the newer versions add, as Kafka 4.4 serves them:
- v13 (KIP-516): topics are named by topic id in the request (fetched and forgotten topics) and in the
  response. An id the metadata does not know answers UNKNOWN_TOPIC_ID for each of its partitions, after
  the others (an "erroneous" partition, like an unknown partition of a known topic). Sessions opened by a
  v13+ request are keyed by topic id (see `strom.server.fetch_sessions`); an incremental request of the
  other kind answers FETCH_SESSION_TOPIC_ID_ERROR. A partition whose log belongs to another id than the one
  asked for (the topic was deleted and re-created under the same name while a session still held the
  old id and name) answers INCONSISTENT_TOPIC_ID; the log's id is the one in its `partition.metadata`.
- v14 (KIP-405): OFFSET_MOVED_TO_TIERED_STORAGE may be answered; never here (no tiered storage), so the
  local log start offset is the log start offset (KIP-1005) and out-of-range fetches answer
  OFFSET_OUT_OF_RANGE as before.
- v15 (KIP-903): the replica id moves into the tagged `replica_state` (replica id, broker epoch); the
  broker epoch is not checked (it fences stale brokers in KRaft ISR changes).
- v16 (KIP-951): a partition answered NOT_LEADER_OR_FOLLOWER or FENCED_LEADER_EPOCH carries the current
  leader's id and epoch (tagged `current_leader`, as this broker knows them: its partition, else the
  metadata), and the response lists the endpoints of those leaders (tagged `node_endpoints`), so the
  client can move without a Metadata round trip.
- v17 (KIP-853): `replica_directory_id`, and v18 (KIP-1166): the follower's `high_watermark`, are read for
  KRaft's own quorum fetches; a broker's Fetch ignores both, as Kafka's does.

Errors: top level (v7+) NONE, FETCH_SESSION_ID_NOT_FOUND, INVALID_FETCH_SESSION_EPOCH,
FETCH_SESSION_TOPIC_ID_ERROR (v13+); per partition NONE, OFFSET_OUT_OF_RANGE, UNKNOWN_TOPIC_OR_PARTITION,
UNKNOWN_TOPIC_ID (v13+), INCONSISTENT_TOPIC_ID (v13+), NOT_LEADER_OR_FOLLOWER, FENCED_LEADER_EPOCH,
UNKNOWN_LEADER_EPOCH, KAFKA_STORAGE_ERROR, TOPIC_AUTHORIZATION_FAILED (a consumer without READ on the
topic; every partition of a follower without CLUSTER_ACTION on the cluster).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Container, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from strom.apis._authz import EVERY_NAME, allowed, enforcing, may
from strom.apis._leader_hints import (
    HINTED_ERRORS,
    NodeEndpoint,
    current_leader,
    encode_node_endpoints,
    leader_endpoints,
    tagged,
)
from strom.protocol.errors import ErrorCode, InvalidRequestError, KafkaError
from strom.protocol.frames import FileSlice, RawResponse
from strom.protocol.registry import ApiSpec, decode_with_kio, request_type
from strom.protocol.wire import (
    EMPTY_TAGS,
    I16,
    I32,
    I64,
    array_len,
    bytes_len,
    string,
)
from strom.security.authorizer import AclOperation, ResourceType
from strom.security.quotas.throttling import consumer_fetch_throttle_ms, fetch_max_bytes, measures_fetch_bytes
from strom.server.context import RequestContext
from strom.server.fetch_sessions import FINAL_EPOCH, FetchManager, PartitionKey, UnownedSessionIdError

log = logging.getLogger("strom.apis.fetch")

API_KEY = 1
MIN_VERSION = 0
MAX_VERSION = 18
FLEXIBLE_FROM = 12
TOPIC_IDS_FROM = 13  # KIP-516
LEADER_HINTS_FROM = 16  # KIP-951

TopicKey = str | uuid.UUID  # a topic name below v13, its id from v13


# --- request ---------------------------------------------------------------------------------------
@dataclass(slots=True)
class FetchPartitionReq:
    partition: int
    fetch_offset: int
    partition_max_bytes: int
    current_leader_epoch: int = -1
    log_start_offset: int = -1
    # the topic's name: the request's below v13; from v13 what its id resolves to (None: unknown id)
    topic: str | None = None
    last_fetched_epoch: int = -1  # v12+: the epoch of the follower's last batch (diverging-epoch check)


@dataclass(slots=True)
class FetchParams:
    replica_id: int
    max_wait_ms: int
    min_bytes: int
    max_bytes: int = 2**31 - 1
    isolation_level: int = 0
    session_id: int = 0
    session_epoch: int = FINAL_EPOCH
    # topics by name below v13, by topic id from v13 (KIP-516)
    topics: list[tuple[TopicKey, list[FetchPartitionReq]]] = field(default_factory=list)
    forgotten: list[tuple[TopicKey, list[int]]] = field(default_factory=list)


class _Reader:
    """Bounds-checked big-endian reader for the legacy (v0-3) request layout."""

    def __init__(self, buf: memoryview) -> None:
        self.buf = buf
        self.pos = 0

    def _take(self, size: int) -> int:
        pos = self.pos
        if pos + size > len(self.buf):
            raise InvalidRequestError("truncated fetch request")
        self.pos = pos + size
        return pos

    def i32(self) -> int:
        return I32.unpack_from(self.buf, self._take(4))[0]

    def i64(self) -> int:
        return I64.unpack_from(self.buf, self._take(8))[0]

    def string(self) -> str:
        (length,) = I16.unpack_from(self.buf, self._take(2))
        if length < 0:
            raise InvalidRequestError("null topic name")
        return bytes(self.buf[self._take(length) : self.pos]).decode("utf-8", errors="replace")

    def count(self, min_item_size: int) -> int:
        n = self.i32()
        # an array can never hold more items than the bytes left allow
        if n < 0 or n * min_item_size > len(self.buf) - self.pos:
            raise InvalidRequestError(f"impossible array length {n}")
        return n


def decode_legacy(version: int, body: memoryview) -> FetchParams:
    r = _Reader(body)
    params = FetchParams(replica_id=r.i32(), max_wait_ms=r.i32(), min_bytes=r.i32())
    if version >= 3:
        params.max_bytes = r.i32()
    for _ in range(r.count(6)):
        name = r.string()
        parts = [FetchPartitionReq(r.i32(), r.i64(), r.i32(), topic=name) for _ in range(r.count(16))]
        params.topics.append((name, parts))
    return params


def from_kio(request: Any) -> FetchParams:
    # v15+ (KIP-903): the replica id is in the tagged replica_state
    state = getattr(request, "replica_state", None)
    params = FetchParams(
        replica_id=int(state.replica_id if state is not None else request.replica_id),
        max_wait_ms=int(request.max_wait.total_seconds() * 1000),
        min_bytes=int(request.min_bytes),
        max_bytes=int(request.max_bytes),
        isolation_level=int(request.isolation_level),
        session_id=int(getattr(request, "session_id", 0)),
        session_epoch=int(getattr(request, "session_epoch", FINAL_EPOCH)),
    )
    by_id = int(request.__version__) >= TOPIC_IDS_FROM
    for topic in request.topics:
        name = None if by_id else topic.topic
        params.topics.append(
            (
                topic.topic_id if by_id else topic.topic,
                [
                    FetchPartitionReq(
                        int(p.partition),
                        int(p.fetch_offset),
                        int(p.partition_max_bytes),
                        int(getattr(p, "current_leader_epoch", -1)),
                        int(getattr(p, "log_start_offset", -1)),
                        name,
                        int(getattr(p, "last_fetched_epoch", -1)),
                    )
                    for p in topic.partitions
                ],
            )
        )
    for forgotten in getattr(request, "forgotten_topics_data", ()) or ():
        key = forgotten.topic_id if by_id else forgotten.topic
        params.forgotten.append((key, [int(p) for p in forgotten.partitions]))
    return params


def decode(version: int, body: memoryview) -> FetchParams:
    if version < 4:
        return decode_legacy(version, body)
    cls = request_type(API_KEY, version)
    assert cls is not None
    return from_kio(decode_with_kio(cls, body))


# --- response --------------------------------------------------------------------------------------
@dataclass(slots=True)
class PartitionResponse:
    partition: int
    error_code: int = 0
    high_watermark: int = -1
    last_stable_offset: int = -1
    log_start_offset: int = -1
    records: FileSlice | bytes | None = None
    aborted_transactions: list[tuple[int, int]] | None = None  # (producer id, first offset)
    preferred_read_replica: int = -1  # KIP-392; never chosen here (no rack-aware replica selector)
    current_leader: tuple[int, int] | None = None  # KIP-951 (v16+): (leader id, leader epoch)
    diverging_epoch: tuple[int, int] | None = None  # v12+: (epoch, end offset) where a follower diverged

    @property
    def size(self) -> int:
        if self.records is None:
            return 0
        return self.records.length if isinstance(self.records, FileSlice) else len(self.records)


def encode_response(
    version: int,
    topics: list[tuple[TopicKey, list[PartitionResponse]]],
    *,
    error_code: int = 0,
    session_id: int = 0,
    throttle_ms: int = 0,
    node_endpoints: Iterable[NodeEndpoint] = (),
) -> list[bytes | FileSlice]:
    """Fetch response body as chunks: encoded fields, with record payloads as they are (FileSlices).
    Topics are keyed by name below v13 and by topic id (a UUID) from v13."""
    flexible = version >= FLEXIBLE_FROM
    by_id = version >= TOPIC_IDS_FROM
    hints = version >= LEADER_HINTS_FROM
    chunks: list[bytes | FileSlice] = []
    out = bytearray()
    if version >= 1:
        out += I32.pack(throttle_ms)
    if version >= 7:
        out += I16.pack(error_code)
        out += I32.pack(session_id)
    out += array_len(len(topics), flexible)
    for key, partitions in topics:
        if by_id:
            out += key.bytes  # type: ignore[union-attr]
        else:
            out += string(key, flexible)  # type: ignore[arg-type]
        out += array_len(len(partitions), flexible)
        for p in partitions:
            out += I32.pack(p.partition)
            out += I16.pack(p.error_code)
            out += I64.pack(p.high_watermark)
            if version >= 4:
                out += I64.pack(p.last_stable_offset)
                if version >= 5:
                    out += I64.pack(p.log_start_offset)
                aborted = p.aborted_transactions
                out += array_len(None if aborted is None else len(aborted), flexible)
                for producer_id, first_offset in aborted or ():
                    out += I64.pack(producer_id)
                    out += I64.pack(first_offset)
                    if flexible:
                        out += EMPTY_TAGS
            if version >= 11:
                out += I32.pack(p.preferred_read_replica)
            size = p.size
            out += bytes_len(size, flexible)
            if size:
                if isinstance(p.records, FileSlice):
                    chunks.append(bytes(out))
                    chunks.append(p.records)
                    out = bytearray()
                else:
                    out += p.records  # type: ignore[operator]
            if flexible:
                # tagged fields, in tag order, each written only when it differs from its default
                fields = []
                diverging = p.diverging_epoch
                if diverging is not None and diverging != (-1, -1):
                    fields.append(tagged(0, I32.pack(diverging[0]) + I64.pack(diverging[1]) + EMPTY_TAGS))
                leader = p.current_leader
                if hints and leader is not None and leader != (-1, -1):
                    fields.append(tagged(1, I32.pack(leader[0]) + I32.pack(leader[1]) + EMPTY_TAGS))
                out += bytes((len(fields),)) + b"".join(fields) if fields else EMPTY_TAGS
        if flexible:
            out += EMPTY_TAGS
    if flexible:
        endpoints = list(node_endpoints) if hints else []
        if endpoints:
            out += b"\x01" + tagged(0, encode_node_endpoints(endpoints))
        else:
            out += EMPTY_TAGS
    chunks.append(bytes(out))
    return chunks


# --- reading ---------------------------------------------------------------------------------------
def _diverged(part: Any, req: FetchPartitionReq, resp: PartitionResponse) -> bool:
    """Truncation through Fetch (v12+, KIP-595, Kafka's UnifiedLog.read with lastFetchedEpoch): when the
    leader's log ends the follower's last fetched epoch before the fetch offset (or holds no such epoch),
    the follower's tail diverged. The answer then carries `diverging_epoch` (the leader's epoch and its
    end offset) and no records, and the fetch offset does not count as the follower's progress: a
    follower restarted with a tail an unclean election discarded must truncate before it may join the
    ISR. An epoch the leader cannot place at all answers OFFSET_OUT_OF_RANGE. True when answered here."""
    epoch, end = part.log.end_offset_for_epoch(req.last_fetched_epoch)
    if epoch < 0 or end < 0 or req.fetch_offset < part.log_start_offset:
        resp.error_code = ErrorCode.offset_out_of_range
        return True
    if epoch >= req.last_fetched_epoch and end >= req.fetch_offset:
        return False
    resp.diverging_epoch = (epoch, end)
    resp.high_watermark = part.high_watermark
    resp.last_stable_offset = part.last_stable_offset
    resp.log_start_offset = part.log_start_offset
    resp.records = b""
    return True


def _read_partition(
    ctx: RequestContext,
    topic: str,
    req: FetchPartitionReq,
    max_bytes: int,
    min_one: bool,
    consumer: bool,
    replica_id: int = -1,
    read_committed: bool = False,
    topic_id: uuid.UUID | None = None,
) -> PartitionResponse:
    resp = PartitionResponse(req.partition)
    broker = ctx.broker
    if broker.metadata.image.partition(topic, req.partition) is None:
        resp.error_code = ErrorCode.unknown_topic_or_partition
        return resp
    part = broker.replica_manager.get_partition(topic, req.partition)
    if part is None:
        # a partition whose log dir failed (KIP-112) is offline here, not led elsewhere
        offline = broker.replica_manager.is_offline(topic, req.partition)
        resp.error_code = ErrorCode.kafka_storage_error if offline else ErrorCode.not_leader_or_follower
        return resp
    if topic_id is not None:
        # Kafka's hasConsistentTopicId: the id asked for must be the log's, when the log records one
        log_id = broker.log_manager.topic_id(topic, req.partition)
        if log_id is not None and log_id != topic_id:
            resp.error_code = ErrorCode.inconsistent_topic_id
            return resp
    if not part.is_leader:
        resp.error_code = ErrorCode.not_leader_or_follower
        return resp
    if req.current_leader_epoch >= 0:
        if req.current_leader_epoch < part.leader_epoch:
            resp.error_code = ErrorCode.fenced_leader_epoch
            return resp
        if req.current_leader_epoch > part.leader_epoch:
            resp.error_code = ErrorCode.unknown_leader_epoch
            return resp
    if req.last_fetched_epoch >= 0 and _diverged(part, req, resp):
        return resp
    if not consumer and 0 <= req.fetch_offset <= part.log_end_offset:
        # a follower's fetch offset is its log end offset: the ISR and high watermark move on it
        part.update_follower_fetch(replica_id, req.fetch_offset, ctx.now_ms())
    hw = part.high_watermark
    lso = part.last_stable_offset
    resp.high_watermark = hw
    resp.last_stable_offset = lso
    resp.log_start_offset = part.log_start_offset
    read_committed = read_committed and consumer
    if read_committed:
        resp.aborted_transactions = []
    limit = (lso if read_committed else hw) if consumer else part.log_end_offset
    if req.fetch_offset < part.log_start_offset or req.fetch_offset > part.log_end_offset:
        resp.error_code = ErrorCode.offset_out_of_range
        return resp
    if req.fetch_offset >= limit or (max_bytes <= 0 and not min_one):
        resp.records = b""
        return resp
    try:
        piece = part.read(
            req.fetch_offset,
            max(max_bytes, 0),
            min_one_batch=min_one,
            committed_only=consumer,
            stable_only=read_committed,
        )
    except KafkaError as exc:
        resp.error_code = exc.code
        return resp
    if read_committed and piece.length:
        resp.aborted_transactions = [
            (e.producer_id, e.first_offset) for e in part.log.collect_aborted_txns(req.fetch_offset, limit)
        ]
    resp.records = FileSlice(piece.file, piece.position, piece.length) if piece.length else b""
    return resp


@dataclass(slots=True)
class _Wanted:
    key: TopicKey  # as the request named the topic: its name below v13, its id from v13
    topic: str  # the topic's name
    req: FetchPartitionReq


def _collect(
    ctx: RequestContext, params: FetchParams, wanted: list[_Wanted]
) -> tuple[list[PartitionResponse], bool]:
    """Read every wanted partition within the byte limits; returns (responses, any error)."""
    consumer = params.replica_id < 0
    remaining = params.max_bytes  # below v3 the request has none: 2**31 - 1, or a quota's cap
    by_id = ctx.api_version >= TOPIC_IDS_FROM
    got_any = False
    any_error = False
    out: list[PartitionResponse] = []
    for item in wanted:
        limit = min(item.req.partition_max_bytes, remaining)
        resp = _read_partition(
            ctx,
            item.topic,
            item.req,
            limit,
            not got_any,
            consumer,
            params.replica_id,
            params.isolation_level == 1,
            item.key if by_id else None,  # type: ignore[arg-type]
        )
        if resp.error_code:
            any_error = True
        size = resp.size
        if size:
            got_any = True
            remaining -= size
        out.append(resp)
    return out, any_error


async def _wait_for_data(ctx: RequestContext, wanted: list[_Wanted], timeout_s: float) -> None:
    """The fetch purgatory: park until an append on any wanted partition, or the timeout."""
    event = asyncio.Event()
    parts = []
    for item in wanted:
        part = ctx.broker.replica_manager.get_partition(item.topic, item.req.partition)
        if part is not None:
            part.add_waiter(event)
            parts.append(part)
    try:
        await asyncio.wait_for(event.wait(), timeout_s)
    except TimeoutError:
        pass
    finally:
        for part in parts:
            part.remove_waiter(event)


def _leader_hints(
    ctx: RequestContext, wanted: list[_Wanted], responses: list[PartitionResponse]
) -> list[NodeEndpoint]:
    """KIP-951 (v16+): each partition answered NOT_LEADER_OR_FOLLOWER or FENCED_LEADER_EPOCH gets the
    current leader's id and epoch; returns the endpoints of those leaders on the client's listener."""
    leaders = []
    for item, resp in zip(wanted, responses, strict=True):
        if resp.error_code in HINTED_ERRORS:
            resp.current_leader = current_leader(ctx, item.topic, item.req.partition)
            leaders.append(resp.current_leader[0])
    return leader_endpoints(ctx, leaders) if leaders else []


def _group(
    results: list[tuple[PartitionKey, PartitionResponse]],
) -> list[tuple[TopicKey, list[PartitionResponse]]]:
    """Partitions under their topics, in order. As in Kafka, only neighbours share a topic entry: a topic
    whose partitions are apart in a session's order appears more than once."""
    topics: list[tuple[TopicKey, list[PartitionResponse]]] = []
    for (topic, _), resp in results:
        if topics and topics[-1][0] == topic:
            topics[-1][1].append(resp)
        else:
            topics.append((topic, [resp]))
    return topics


def _as_request(key: PartitionKey, req: Any) -> FetchPartitionReq:
    if isinstance(req, FetchPartitionReq):
        return req
    # a session's cached partition: the client's last request for it
    return FetchPartitionReq(
        key[1],
        req.fetch_offset,
        req.partition_max_bytes,
        req.current_leader_epoch,
        req.log_start_offset,
        req.topic,
    )


def _topic_names(ctx: RequestContext) -> Mapping[uuid.UUID, str]:
    return ctx.broker.fetch_sessions.topic_names(ctx.broker.metadata.image.topics)


def _readable(
    ctx: RequestContext, params: FetchParams, partitions: Iterable[tuple[Any, Any]]
) -> Container[str]:
    """The topics this fetch may read, as Kafka checks: a follower needs CLUSTER_ACTION on the cluster
    (or gets TOPIC_AUTHORIZATION_FAILED everywhere), a consumer READ on each topic."""
    if not enforcing(ctx):
        return EVERY_NAME
    if params.replica_id >= 0:
        return EVERY_NAME if may(ctx, AclOperation.CLUSTER_ACTION, ResourceType.CLUSTER) else frozenset()
    names = {req.topic for _key, req in partitions if req.topic}
    return allowed(ctx, AclOperation.READ, ResourceType.TOPIC, names)


async def handle(ctx: RequestContext, params: FetchParams) -> RawResponse:
    version = ctx.api_version
    by_id = version >= TOPIC_IDS_FROM
    # v13+: ids resolve to names in the image this request is served with (unknown ids to None)
    names = _topic_names(ctx) if by_id else None
    # KIP-227: the session id and epoch pick the context (below v7 they are always 0 / -1: sessionless)
    fetch_data: dict[PartitionKey, FetchPartitionReq] = {}
    for topic, parts in params.topics:
        name = names.get(topic) if names is not None else topic  # type: ignore[call-overload]
        for p in parts:
            p.topic = name
            fetch_data[(topic, p.partition)] = p  # a repeated partition keeps its first place, last values
    to_forget = [(topic, p) for topic, partitions in params.forgotten for p in partitions]
    try:
        context = FetchManager(ctx.broker.fetch_sessions).new_context(
            params.session_id,
            params.session_epoch,
            params.replica_id >= 0,
            fetch_data,
            to_forget,
            uses_topic_ids=by_id,
            topic_names=names,
        )
    except UnownedSessionIdError as exc:
        # Kafka's answer to a request that failed as a whole: the error at the top and on every partition
        failed = [
            (topic, [PartitionResponse(p.partition, exc.code) for p in parts])
            for topic, parts in params.topics
        ]
        return RawResponse(
            encode_response(version, failed, error_code=exc.code, session_id=params.session_id)
        )

    # Partitions the metadata does not know (an unknown topic id, or an unknown partition of a known
    # topic) are answered without a read, after the others (Kafka's "erroneous" partitions): they neither
    # end the wait early nor take a place in the read order.
    image = ctx.broker.metadata.image
    interesting: list[_Wanted] = []
    erroneous: list[tuple[PartitionKey, PartitionResponse]] = []
    readable = _readable(ctx, params, context.partitions())
    for key, req in context.partitions():
        name = req.topic
        if name is None:
            erroneous.append((key, PartitionResponse(key[1], ErrorCode.unknown_topic_id)))
        elif name not in readable:
            erroneous.append((key, PartitionResponse(key[1], ErrorCode.topic_authorization_failed)))
        elif image.partition(name, key[1]) is None:
            erroneous.append((key, PartitionResponse(key[1], ErrorCode.unknown_topic_or_partition)))
        else:
            interesting.append(_Wanted(key[0], name, _as_request(key, req)))

    consumer = params.replica_id < 0
    if consumer:
        # consumer_byte_rate: one response never holds more than the quota's window, nor waits for more
        params.max_bytes = fetch_max_bytes(ctx, params.max_bytes)
        params.min_bytes = min(params.min_bytes, params.max_bytes)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + max(params.max_wait_ms, 0) / 1000
    while True:
        responses, any_error = _collect(ctx, params, interesting)
        total = sum(r.size for r in responses)
        remaining = deadline - loop.time()
        if total >= params.min_bytes or any_error or remaining <= 0 or not interesting:
            break
        ctx.effects_applied()  # only waiting now: the connection's next request may run
        await _wait_for_data(ctx, interesting, remaining)

    hints = version >= LEADER_HINTS_FROM and any_error
    endpoints = _leader_hints(ctx, interesting, responses) if hints else []
    results = [((w.key, w.req.partition), r) for w, r in zip(interesting, responses, strict=True)]
    results += erroneous
    throttle_ms = 0
    if consumer:
        # KIP-219: the response's size as the session would answer it (4 for the correlation id, as
        # Kafka's FetchContext.getResponseSize counts), changing nothing yet
        size = 0
        if measures_fetch_bytes(ctx):
            error_code, session_id, kept = context.preview(results)
            preview = encode_response(version, _group(kept), error_code=error_code, session_id=session_id)
            size = 4 + RawResponse(preview).size
        throttle_ms = consumer_fetch_throttle_ms(ctx, size)
    if throttle_ms > 0:
        # throttled: answered empty, nothing delivered (Kafka's FetchContext.getThrottledResponse)
        error_code, session_id = context.throttled()
        kept = []
    else:
        error_code, session_id, kept = context.respond(results)
        traffic = ctx.broker.metrics.traffic
        if traffic is not None:
            name_of = {w.key: w.topic for w in interesting}
            for (topic, _), resp in kept:
                if resp.size:
                    traffic.record_fetch(name_of.get(topic, str(topic)), resp.size, not consumer)
    return RawResponse(
        encode_response(
            version,
            _group(kept),
            error_code=error_code,
            session_id=session_id,
            node_endpoints=endpoints,
            throttle_ms=throttle_ms,
        )
    )


SPEC = ApiSpec(
    api_key=API_KEY,
    min_version=MIN_VERSION,
    max_version=MAX_VERSION,
    handler=handle,
    decode=decode,
    name="Fetch",
)
