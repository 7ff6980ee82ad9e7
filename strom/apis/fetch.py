"""Fetch (api key 1), versions 0-12: read record batches from partition leaders.

Behaviour:
- Consumers (replica_id -1) see records below the high watermark only. Each partition answers at most
  `partition_max_bytes`, the whole response at most `max_bytes` (v3+), except that the first batch found
  is returned whole even when larger (KIP-74), so consumers always make progress.
- `min_bytes`/`max_wait_ms`: when less than `min_bytes` is available the request waits (the fetch
  purgatory: an event registered on each partition, set by every append) until enough arrives or
  `max_wait_ms` passes; errors answer at once.
- Incremental fetch sessions (KIP-227, v7+): see `strom.server.fetch_sessions`. Incremental responses list
  only partitions with records, a changed high watermark or log start offset, or an error.
- v9+ `current_leader_epoch` (KIP-320): older than ours FENCED_LEADER_EPOCH, newer UNKNOWN_LEADER_EPOCH.
- read_committed (isolation_level 1, KIP-98): consumers read below the last stable offset only, and each
  partition answers the aborted transactions (producer id, first offset) overlapping the range from the
  fetch offset to the LSO, from the log's aborted-transaction index; read_uncommitted answers null there.
- Followers (replica_id >= 0) read up to the log end offset; their fetch offset is their log end offset,
  which the leader records (`Partition.update_follower_fetch`) to move the ISR and the high watermark.
- Record bytes are never copied into Python: the response header and per-partition fields are encoded
  here and the records go out as `FileSlice`s (sendfile). An empty record set is encoded as zero length,
  never null (librdkafka rejects null).
- kio has no Fetch v0-3 schema; `decode` parses those versions itself. All versions are normalised into
  `FetchParams`.

Errors: top level (v7+) NONE, FETCH_SESSION_ID_NOT_FOUND, INVALID_FETCH_SESSION_EPOCH; per partition NONE,
OFFSET_OUT_OF_RANGE, UNKNOWN_TOPIC_OR_PARTITION, NOT_LEADER_OR_FOLLOWER, FENCED_LEADER_EPOCH,
UNKNOWN_LEADER_EPOCH, KAFKA_STORAGE_ERROR.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

from strom.protocol.errors import ErrorCode, InvalidRequestError, KafkaError
from strom.protocol.frames import FileSlice, RawResponse
from strom.protocol.registry import ApiSpec, decode_with_kio, request_type
from strom.protocol.wire import EMPTY_TAGS, I16, I32, I64, array_len, bytes_len, string
from strom.server.context import RequestContext
from strom.server.fetch_sessions import FetchSession, PartitionData, SessionError

log = logging.getLogger("strom.apis.fetch")

API_KEY = 1
MIN_VERSION = 0
MAX_VERSION = 12
FLEXIBLE_FROM = 12
FINAL_EPOCH = -1


# --- request ---------------------------------------------------------------------------------------
@dataclass(slots=True)
class FetchPartitionReq:
    partition: int
    fetch_offset: int
    partition_max_bytes: int
    current_leader_epoch: int = -1
    log_start_offset: int = -1


@dataclass(slots=True)
class FetchParams:
    replica_id: int
    max_wait_ms: int
    min_bytes: int
    max_bytes: int = 2**31 - 1
    isolation_level: int = 0
    session_id: int = 0
    session_epoch: int = FINAL_EPOCH
    topics: list[tuple[str, list[FetchPartitionReq]]] = field(default_factory=list)
    forgotten: list[tuple[str, list[int]]] = field(default_factory=list)


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
        parts = [FetchPartitionReq(r.i32(), r.i64(), r.i32()) for _ in range(r.count(16))]
        params.topics.append((name, parts))
    return params


def from_kio(request: Any) -> FetchParams:
    params = FetchParams(
        replica_id=int(request.replica_id),
        max_wait_ms=int(request.max_wait.total_seconds() * 1000),
        min_bytes=int(request.min_bytes),
        max_bytes=int(request.max_bytes),
        isolation_level=int(request.isolation_level),
        session_id=int(getattr(request, "session_id", 0)),
        session_epoch=int(getattr(request, "session_epoch", FINAL_EPOCH)),
    )
    for topic in request.topics:
        params.topics.append(
            (
                topic.topic,
                [
                    FetchPartitionReq(
                        int(p.partition),
                        int(p.fetch_offset),
                        int(p.partition_max_bytes),
                        int(getattr(p, "current_leader_epoch", -1)),
                        int(getattr(p, "log_start_offset", -1)),
                    )
                    for p in topic.partitions
                ],
            )
        )
    for forgotten in getattr(request, "forgotten_topics_data", ()) or ():
        params.forgotten.append((forgotten.topic, [int(p) for p in forgotten.partitions]))
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

    @property
    def size(self) -> int:
        if self.records is None:
            return 0
        return self.records.length if isinstance(self.records, FileSlice) else len(self.records)


def encode_response(
    version: int,
    topics: list[tuple[str, list[PartitionResponse]]],
    *,
    error_code: int = 0,
    session_id: int = 0,
    throttle_ms: int = 0,
) -> list[bytes | FileSlice]:
    """Fetch response body as chunks: encoded fields, with record payloads as they are (FileSlices)."""
    flexible = version >= FLEXIBLE_FROM
    chunks: list[bytes | FileSlice] = []
    out = bytearray()
    if version >= 1:
        out += I32.pack(throttle_ms)
    if version >= 7:
        out += I16.pack(error_code)
        out += I32.pack(session_id)
    out += array_len(len(topics), flexible)
    for name, partitions in topics:
        out += string(name, flexible)
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
                out += I32.pack(-1)  # preferred read replica
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
                out += EMPTY_TAGS
        if flexible:
            out += EMPTY_TAGS
    if flexible:
        out += EMPTY_TAGS
    chunks.append(bytes(out))
    return chunks


# --- reading ---------------------------------------------------------------------------------------
def _read_partition(
    ctx: RequestContext,
    topic: str,
    req: FetchPartitionReq,
    max_bytes: int,
    min_one: bool,
    consumer: bool,
    replica_id: int = -1,
    read_committed: bool = False,
) -> PartitionResponse:
    resp = PartitionResponse(req.partition)
    broker = ctx.broker
    if broker.metadata.image.partition(topic, req.partition) is None:
        resp.error_code = ErrorCode.unknown_topic_or_partition
        return resp
    part = broker.replica_manager.get_partition(topic, req.partition)
    if part is None or not part.is_leader:
        resp.error_code = ErrorCode.not_leader_or_follower
        return resp
    if req.current_leader_epoch >= 0:
        if req.current_leader_epoch < part.leader_epoch:
            resp.error_code = ErrorCode.fenced_leader_epoch
            return resp
        if req.current_leader_epoch > part.leader_epoch:
            resp.error_code = ErrorCode.unknown_leader_epoch
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
    topic: str
    req: FetchPartitionReq


def _collect(
    ctx: RequestContext, params: FetchParams, wanted: list[_Wanted]
) -> tuple[list[PartitionResponse], bool]:
    """Read every wanted partition within the byte limits; returns (responses, any error)."""
    consumer = params.replica_id < 0
    remaining = params.max_bytes if ctx.api_version >= 3 else 2**31 - 1
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


def _session_partitions(session: FetchSession) -> list[_Wanted]:
    return [
        _Wanted(
            topic, FetchPartitionReq(partition, data.fetch_offset, data.max_bytes, -1, data.log_start_offset)
        )
        for (topic, partition), data in session.partitions.items()
    ]


def _update_session(session: FetchSession, params: FetchParams) -> None:
    for topic, parts in params.topics:
        for p in parts:
            key = (topic, p.partition)
            data = session.partitions.get(key)
            if data is None:
                session.partitions[key] = PartitionData(
                    p.fetch_offset, p.partition_max_bytes, p.log_start_offset
                )
            else:
                data.fetch_offset = p.fetch_offset
                data.max_bytes = p.partition_max_bytes
                data.log_start_offset = p.log_start_offset
    for topic, partitions in params.forgotten:
        for partition in partitions:
            session.partitions.pop((topic, partition), None)


def _changed(session: FetchSession, wanted: _Wanted, resp: PartitionResponse) -> bool:
    """Incremental fetches answer a partition only when something about it changed (KIP-227)."""
    data = session.partitions.get((wanted.topic, wanted.req.partition))
    if data is None:
        return True
    changed = (
        resp.size > 0
        or resp.error_code != 0
        or resp.high_watermark != data.last_high_watermark
        or resp.log_start_offset != data.last_log_start_offset
    )
    data.last_high_watermark = resp.high_watermark
    data.last_log_start_offset = resp.log_start_offset
    return changed


def _group(
    wanted: list[_Wanted], responses: list[PartitionResponse]
) -> list[tuple[str, list[PartitionResponse]]]:
    topics: list[tuple[str, list[PartitionResponse]]] = []
    index: dict[str, list[PartitionResponse]] = {}
    for item, resp in zip(wanted, responses, strict=True):
        bucket = index.get(item.topic)
        if bucket is None:
            bucket = []
            index[item.topic] = bucket
            topics.append((item.topic, bucket))
        bucket.append(resp)
    return topics


async def handle(ctx: RequestContext, params: FetchParams) -> RawResponse:
    version = ctx.api_version
    sessions = ctx.broker.fetch_sessions
    session: FetchSession | None = None
    incremental = False
    response_session_id = 0
    if version >= 7 and params.replica_id < 0:
        try:
            if params.session_id == 0 and params.session_epoch == 0:
                session = sessions.create()
                if session is not None:
                    _update_session(session, params)
                    response_session_id = session.session_id
            elif params.session_id != 0 and params.session_epoch == FINAL_EPOCH:
                sessions.remove(params.session_id)
            elif params.session_id != 0:
                session = sessions.get(params.session_id, params.session_epoch)
                _update_session(session, params)
                incremental = True
                response_session_id = session.session_id
        except SessionError as exc:
            return RawResponse(encode_response(version, [], error_code=exc.code, session_id=0))

    if session is not None:
        wanted = _session_partitions(session)
    else:
        wanted = [_Wanted(topic, p) for topic, parts in params.topics for p in parts]

    loop = asyncio.get_running_loop()
    deadline = loop.time() + max(params.max_wait_ms, 0) / 1000
    while True:
        responses, any_error = _collect(ctx, params, wanted)
        total = sum(r.size for r in responses)
        remaining = deadline - loop.time()
        if total >= params.min_bytes or any_error or remaining <= 0 or not wanted:
            break
        ctx.effects_applied()  # only waiting now: the connection's next request may run
        await _wait_for_data(ctx, wanted, remaining)

    if session is not None:
        keep = [
            (w, r)
            for w, r in zip(wanted, responses, strict=True)
            if _changed(session, w, r) or not incremental
        ]
        wanted = [w for w, _ in keep]
        responses = [r for _, r in keep]
    traffic = ctx.broker.metrics.traffic
    if traffic is not None:
        follower = params.replica_id >= 0
        for item, resp in zip(wanted, responses, strict=True):
            if resp.size:
                traffic.record_fetch(item.topic, resp.size, follower)
    return RawResponse(encode_response(version, _group(wanted, responses), session_id=response_session_id))


SPEC = ApiSpec(
    api_key=API_KEY,
    min_version=MIN_VERSION,
    max_version=MAX_VERSION,
    handler=handle,
    decode=decode,
    name="Fetch",
)
