"""Incremental fetch sessions (KIP-227), as Apache Kafka's FetchManager / FetchSession / FetchSessionCache.

A Fetch request (v7+) carries a session id and an epoch. Every combination is one row of KIP-227's table,
decided by `FetchManager.new_context`:

| session_id | epoch  | meaning                                                                            |
| ---------- | ------ | ---------------------------------------------------------------------------------- |
| 0          | -1     | sessionless full fetch (also every request below v7); answers session id 0         |
| 0          | 0      | full fetch that opens a new session; answers its id (0 when the cache has no room) |
| id         | -1     | close session `id` (no error if it is unknown), then a sessionless full fetch      |
| id         | 0      | close session `id` (no error if unknown), then a full fetch opening a new session  |
| id (or 0)  | other  | incremental fetch: FETCH_SESSION_ID_NOT_FOUND if the session is unknown,           |
|            |        | INVALID_FETCH_SESSION_EPOCH if the epoch is not the one the session expects; both  |
|            |        | answer session id 0, no partitions, and leave the session as it was                |

A full fetch ignores `forgotten_topics_data`; its session caches the partitions of its response. An
incremental fetch first updates the session: partitions it names are added, or have their fetch offset,
partition max bytes, current leader epoch and log start offset replaced; forgotten ones are removed. A
session left empty is closed and the request runs sessionless (session id 0). Otherwise the epoch
advances at once (so a request that fails per partition still uses it up), and the broker reads every
partition of the session. The response lists only partitions with news: records, an error, a preferred
read replica, or a high watermark or log start offset other than the one last sent (an error also sets
the cached high watermark to -1, so the partition is re-sent once the error clears). The last stable
offset and a changed fetch offset are not news by themselves, exactly as in Kafka. Partitions that
returned records move to the end of the session so the others come first next time (fairness under
`max_bytes`). A fetch throttled by a client quota is answered by `throttled()`: no partitions, error NONE,
and the session left as the request's update made it (Kafka's getThrottledResponse): a full fetch opens no
session (session id 0), an incremental one keeps its id and the partitions' last-sent state, so what the
client was not told is news again next time. `preview()` gives the response's partitions without
changing anything, for the size a quota counts. If the session's epoch moved while the request waited
(a duplicate request on another connection), the response is INVALID_FETCH_SESSION_EPOCH with the
session's id and no partitions. A session id that no cache shard owns (see below) fails the whole request
with UNKNOWN_SERVER_ERROR, as it does in Kafka, which looks the shard up by id.

Topic ids (KIP-516, Fetch v13+): a session opened by a v13+ request uses topic ids, and its partitions are
keyed by (topic id, partition); below v13 by (topic name, partition). An incremental request of the other
kind fails with FETCH_SESSION_TOPIC_ID_ERROR (no partitions, session id 0, the session left as it was). Each
partition of an id session remembers the topic name the id had when it was added (None when the broker did
not know the id), and an unknown name is looked up again on every later request, as Kafka's
CachedPartition.maybeResolveUnknownName does. A name once known is kept: after the topic is deleted and
re-created under the same name, the session's partitions still name it, and the read finds a log of
another topic id (INCONSISTENT_TOPIC_ID), while a full fetch with the old id finds no name (UNKNOWN_TOPIC_ID).

The cache (`max.incremental.fetch.session.cache.slots`) is split into 8 shards as in Kafka (KAFKA-9401):
shard n holds slots // 8 sessions with ids in [max(1, n * R), (n + 1) * R), R = (2**31 - 1) // 8, and
new sessions go to the shards in turn. A full shard makes room only by evicting a session unused for
more than 120 s, or else the least valuable evictable one: follower (privileged) sessions beat consumer
ones, then more partitions beat fewer; a session younger than 120 s can be evicted only by a follower,
and only if it is a consumer's (age and size are as of the session's last use, as in Kafka). Followers'
sessions are "privileged", consumers' are not. When nothing can be evicted the full fetch simply gets no
session.
"""

from __future__ import annotations

import itertools
import random
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from strom.protocol.errors import ErrorCode, KafkaError

__all__ = [
    "EVICTION_MS",
    "FINAL_EPOCH",
    "INITIAL_EPOCH",
    "INVALID_SESSION_ID",
    "NUM_SHARDS",
    "CachedPartition",
    "FetchContext",
    "FetchManager",
    "FetchSession",
    "FetchSessionCache",
    "FetchSessionCacheShard",
    "FullContext",
    "IncrementalContext",
    "PartitionKey",
    "SessionErrorContext",
    "SessionlessContext",
    "UnownedSessionIdError",
    "next_epoch",
]

INVALID_SESSION_ID = 0
INITIAL_EPOCH = 0
FINAL_EPOCH = -1
# Kafka's KafkaBroker.MIN_INCREMENTAL_FETCH_SESSION_EVICTION_MS and NumFetchSessionCacheShards
EVICTION_MS = 120_000
NUM_SHARDS = 8
_INT32_MAX = 2**31 - 1

# (topic name, partition) in sessions of requests below v13; (topic id, partition) from v13 (KIP-516)
PartitionKey = tuple[str | uuid.UUID, int]
# topic id -> topic name, from the metadata image the request is served with
TopicNames = Mapping[uuid.UUID, str]


class UnownedSessionIdError(KafkaError):
    """A request named a session id outside every shard's range (below -(2**31 - 1) // 8, or one of the
    last 7 ids below 2**31). Kafka looks the shard up by id and fails such a request as a whole
    (UNKNOWN_SERVER_ERROR at the top and on every partition, the request's session id echoed); no
    session can have such an id."""

    code = ErrorCode.unknown_server_error


def next_epoch(epoch: int) -> int:
    """The epoch after `epoch`: FINAL_EPOCH stays final, and the epoch wraps from 2**31 - 1 to 1."""
    if epoch < 0:
        return FINAL_EPOCH
    return 1 if epoch == _INT32_MAX else epoch + 1


class PartitionRequest(Protocol):
    """What a Fetch request asks of one partition (the handler's per-partition request type)."""

    fetch_offset: int
    partition_max_bytes: int
    current_leader_epoch: int
    log_start_offset: int
    # the topic's name: the request's own for v0-12, the one its topic id resolved to for v13+ (None:
    # unknown id)
    topic: str | None


class PartitionResult(Protocol):
    """What the handler read for one partition: the fields a session compares."""

    error_code: int
    high_watermark: int
    log_start_offset: int
    preferred_read_replica: int

    @property
    def size(self) -> int: ...


Result = TypeVar("Result", bound=PartitionResult)


@dataclass(slots=True)
class CachedPartition:
    """One partition of a session: the client's last request for it and what we last told it.

    `log_start_offset` is the fetcher's own (a follower's), `local_log_start_offset` ours as last sent.
    `topic` is the topic's name (in an id session, the name its id resolved to; None while unknown).
    """

    fetch_offset: int
    partition_max_bytes: int
    current_leader_epoch: int = -1
    log_start_offset: int = -1
    high_watermark: int = -1
    local_log_start_offset: int = -1
    topic: str | None = None

    @classmethod
    def from_request(cls, req: PartitionRequest, result: PartitionResult | None = None) -> CachedPartition:
        cached = cls(
            req.fetch_offset,
            req.partition_max_bytes,
            req.current_leader_epoch,
            req.log_start_offset,
            topic=req.topic,
        )
        if result is not None:
            cached.high_watermark = result.high_watermark
            cached.local_log_start_offset = result.log_start_offset
        return cached

    def update_request(self, req: PartitionRequest) -> None:
        # the name stays: Kafka's updateRequestParams leaves the cached topic alone
        self.fetch_offset = req.fetch_offset
        self.partition_max_bytes = req.partition_max_bytes
        self.current_leader_epoch = req.current_leader_epoch
        self.log_start_offset = req.log_start_offset

    def would_respond(self, result: PartitionResult) -> bool:
        """Whether an incremental response would list this partition, remembering nothing (Kafka's
        maybeUpdateResponseData without updating, for the size a quota counts)."""
        return (
            result.size > 0
            or self.high_watermark != result.high_watermark
            or self.local_log_start_offset != result.log_start_offset
            or result.preferred_read_replica >= 0
            or result.error_code != ErrorCode.none
        )

    def must_respond(self, result: PartitionResult) -> bool:
        """Whether an incremental response lists this partition; remembers what it will be told."""
        respond = result.size > 0
        if self.high_watermark != result.high_watermark:
            respond = True
            self.high_watermark = result.high_watermark
        if self.local_log_start_offset != result.log_start_offset:
            respond = True
            self.local_log_start_offset = result.log_start_offset
        if result.preferred_read_replica >= 0:
            respond = True
        if result.error_code != ErrorCode.none:
            # re-sent once the error goes away, whatever the high watermark is then
            self.high_watermark = -1
            respond = True
        return respond


@dataclass(slots=True, eq=False)
class FetchSession:
    """A session: its partitions in fetch order, and the cache's bookkeeping (set by `touch`)."""

    session_id: int
    privileged: bool
    partitions: OrderedDict[PartitionKey, CachedPartition]
    creation_ms: int
    last_used_ms: int
    epoch: int
    uses_topic_ids: bool = False
    # partitions and evictability as of the last touch: Kafka's evictable sets are ordered by this size
    # and are only re-sorted when a session is used, so a quiet session keeps its old standing
    cached_size: int = -1
    evictable_by_all: bool = False
    evictable_by_privileged: bool = False

    def update(
        self, fetch_data: Mapping[PartitionKey, PartitionRequest], to_forget: Iterable[PartitionKey]
    ) -> tuple[list[PartitionKey], list[PartitionKey], list[PartitionKey]]:
        """Apply an incremental request: (added, updated, removed) partitions. Forgetting comes last, so
        a partition both named and forgotten is gone."""
        added: list[PartitionKey] = []
        updated: list[PartitionKey] = []
        removed: list[PartitionKey] = []
        for key, req in fetch_data.items():
            cached = self.partitions.get(key)
            if cached is None:
                self.partitions[key] = CachedPartition.from_request(req)
                added.append(key)
            else:
                cached.update_request(req)
                updated.append(key)
        for key in to_forget:
            if self.partitions.pop(key, None) is not None:
                removed.append(key)
        return added, updated, removed


@dataclass(slots=True)
class FetchSessionCacheShard:
    """Up to `max_entries` sessions with ids in [max(1, shard_num * id_range), (shard_num + 1) * id_range)."""

    max_entries: int
    eviction_ms: int
    id_range: int
    shard_num: int
    rng: random.Random
    sessions: dict[int, FetchSession] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.sessions)

    def get(self, session_id: int) -> FetchSession | None:
        return self.sessions.get(session_id)

    def remove(self, session_id: int) -> FetchSession | None:
        return self.sessions.pop(session_id, None)

    def new_session_id(self) -> int:
        low = max(1, self.shard_num * self.id_range)
        high = (self.shard_num + 1) * self.id_range
        while True:
            session_id = self.rng.randrange(low, high)
            if session_id not in self.sessions:
                return session_id

    def maybe_create_session(
        self,
        now_ms: int,
        privileged: bool,
        size: int,
        create_partitions: Callable[[], OrderedDict[PartitionKey, CachedPartition]],
        uses_topic_ids: bool = False,
    ) -> int:
        """The id of a new session, or INVALID_SESSION_ID when there is no room and nothing to evict."""
        if len(self.sessions) >= self.max_entries and not self._try_evict(privileged, size, now_ms):
            return INVALID_SESSION_ID
        session = FetchSession(
            self.new_session_id(),
            privileged,
            create_partitions(),
            creation_ms=now_ms,
            last_used_ms=now_ms,
            epoch=next_epoch(INITIAL_EPOCH),
            uses_topic_ids=uses_topic_ids,
        )
        self.sessions[session.session_id] = session
        self.touch(session, now_ms)
        return session.session_id

    def touch(self, session: FetchSession, now_ms: int) -> None:
        """Mark `session` used now and re-rank it for eviction."""
        session.last_used_ms = now_ms
        session.cached_size = len(session.partitions)
        old_enough = now_ms - session.creation_ms > self.eviction_ms
        session.evictable_by_privileged = not session.privileged or old_enough
        session.evictable_by_all = old_enough

    def _try_evict(self, privileged: bool, size: int, now_ms: int) -> bool:
        """Make room for a new session of `size` partitions (Kafka's FetchSessionCacheShard.tryEvict).

        The shards are small (slots / 8), so a scan is cheaper than keeping Kafka's sorted trees in step.
        """
        if not self.sessions:
            return False
        stalest = min(self.sessions.values(), key=lambda s: (s.last_used_ms, s.session_id))
        if now_ms - stalest.last_used_ms > self.eviction_ms:
            self.remove(stalest.session_id)
            return True
        candidates = [
            s
            for s in self.sessions.values()
            if (s.evictable_by_privileged if privileged else s.evictable_by_all)
        ]
        if not candidates:
            return False
        weakest = min(candidates, key=lambda s: (s.privileged, s.cached_size, s.session_id))
        # the newcomer ranks as (privileged, size, id 0): it must be strictly more valuable
        if (privileged, size) <= (weakest.privileged, weakest.cached_size):
            return False
        self.remove(weakest.session_id)
        return True


class FetchSessionCache:
    """All sessions of the broker, in NUM_SHARDS shards of max_slots // NUM_SHARDS sessions each."""

    def __init__(
        self,
        max_slots: int,
        *,
        clock: Callable[[], float],
        rng: random.Random | None = None,
        num_shards: int = NUM_SHARDS,
        eviction_ms: int = EVICTION_MS,
    ) -> None:
        self.max_slots = max_slots
        self.clock = clock
        rng = rng or random.Random()
        self.id_range = _INT32_MAX // num_shards
        self.shards = [
            FetchSessionCacheShard(max(0, max_slots) // num_shards, eviction_ms, self.id_range, n, rng)
            for n in range(num_shards)
        ]
        self._turn = itertools.cycle(self.shards)
        # topic id -> name of the last metadata image a v13+ request was served with (images never change
        # once published, so the map is rebuilt only when a new one arrives)
        self._names_of: object = None
        self._names: dict[uuid.UUID, str] = {}

    def __len__(self) -> int:
        return sum(len(shard) for shard in self.shards)

    def topic_names(self, topics: Mapping[str, Any]) -> TopicNames:
        """Topic id -> name for `topics` (a metadata image's topics by name, each with a `topic_id`)."""
        if topics is not self._names_of:
            self._names = {info.topic_id: name for name, info in topics.items()}
            self._names_of = topics
        return self._names

    def now_ms(self) -> int:
        return int(self.clock() * 1000)

    def shard_for(self, session_id: int) -> FetchSessionCacheShard | None:
        """The shard owning `session_id` (0 and small negative ids map to shard 0, as in Kafka); None
        for ids no shard owns."""
        quotient = abs(session_id) // self.id_range  # Java's integer division truncates toward zero
        index = quotient if session_id >= 0 else -quotient
        return self.shards[index] if 0 <= index < len(self.shards) else None

    def next_shard(self) -> FetchSessionCacheShard:
        return next(self._turn)

    def get(self, session_id: int) -> FetchSession | None:
        shard = self.shard_for(session_id)
        return shard.get(session_id) if shard is not None else None

    def remove(self, session_id: int) -> FetchSession | None:
        shard = self.shard_for(session_id)
        return shard.remove(session_id) if shard is not None else None


# --- contexts: what one request reads and how its response is shaped -------------------------------
class SessionErrorContext:
    """FETCH_SESSION_ID_NOT_FOUND, INVALID_FETCH_SESSION_EPOCH or FETCH_SESSION_TOPIC_ID_ERROR: nothing is
    read, session id 0."""

    def __init__(self, error: ErrorCode) -> None:
        self.error = error

    def partitions(self) -> list[tuple[PartitionKey, PartitionRequest]]:
        return []

    def respond(
        self, results: list[tuple[PartitionKey, Result]]
    ) -> tuple[ErrorCode, int, list[tuple[PartitionKey, Result]]]:
        return self.error, INVALID_SESSION_ID, []

    preview = respond

    def throttled(self) -> tuple[ErrorCode, int]:
        # Kafka's FetchContext.getThrottledResponse, which this context does not override
        return ErrorCode.none, INVALID_SESSION_ID


class SessionlessContext:
    """A full fetch that keeps no session: the request's partitions, all answered, session id 0."""

    def __init__(self, fetch_data: Mapping[PartitionKey, PartitionRequest]) -> None:
        self.fetch_data = fetch_data

    def partitions(self) -> list[tuple[PartitionKey, PartitionRequest]]:
        return list(self.fetch_data.items())

    def respond(
        self, results: list[tuple[PartitionKey, Result]]
    ) -> tuple[ErrorCode, int, list[tuple[PartitionKey, Result]]]:
        return ErrorCode.none, INVALID_SESSION_ID, results

    preview = respond

    def throttled(self) -> tuple[ErrorCode, int]:
        return ErrorCode.none, INVALID_SESSION_ID


class FullContext:
    """A full fetch that opens a session (epoch 0). The session is made when the response is, from the
    partitions of the response, so it starts out knowing what the client was told."""

    def __init__(
        self,
        cache: FetchSessionCache,
        fetch_data: Mapping[PartitionKey, PartitionRequest],
        privileged: bool,
        uses_topic_ids: bool = False,
    ) -> None:
        self.cache = cache
        self.fetch_data = fetch_data
        self.privileged = privileged
        self.uses_topic_ids = uses_topic_ids

    def partitions(self) -> list[tuple[PartitionKey, PartitionRequest]]:
        return list(self.fetch_data.items())

    def respond(
        self, results: list[tuple[PartitionKey, Result]]
    ) -> tuple[ErrorCode, int, list[tuple[PartitionKey, Result]]]:
        def cached() -> OrderedDict[PartitionKey, CachedPartition]:
            return OrderedDict(
                (key, CachedPartition.from_request(self.fetch_data[key], result)) for key, result in results
            )

        session_id = self.cache.next_shard().maybe_create_session(
            self.cache.now_ms(), self.privileged, len(results), cached, self.uses_topic_ids
        )
        return ErrorCode.none, session_id, results

    def preview(
        self, results: list[tuple[PartitionKey, Result]]
    ) -> tuple[ErrorCode, int, list[tuple[PartitionKey, Result]]]:
        """The response `respond` would give, making no session (its size is all a quota needs)."""
        return ErrorCode.none, INVALID_SESSION_ID, results

    def throttled(self) -> tuple[ErrorCode, int]:
        """A throttled full fetch opens no session: the client's next fetch is a full one again."""
        return ErrorCode.none, INVALID_SESSION_ID


class IncrementalContext:
    """An incremental fetch of an existing session (already updated, epoch already advanced)."""

    def __init__(
        self, session: FetchSession, request_epoch: int, topic_names: TopicNames | None = None
    ) -> None:
        self.session = session
        self.request_epoch = request_epoch
        self.topic_names = topic_names

    def partitions(self) -> list[tuple[PartitionKey, PartitionRequest]]:
        names = self.topic_names
        if self.session.uses_topic_ids and names is not None:
            # a partition added while its id was unknown may be known now (Kafka's maybeResolveUnknownName)
            for (topic_id, _), cached in self.session.partitions.items():
                if cached.topic is None and isinstance(topic_id, uuid.UUID):
                    cached.topic = names.get(topic_id)
        return list(self.session.partitions.items())

    def respond(
        self, results: list[tuple[PartitionKey, Result]]
    ) -> tuple[ErrorCode, int, list[tuple[PartitionKey, Result]]]:
        session = self.session
        if session.epoch != next_epoch(self.request_epoch):
            # another request of this session ran while this one waited: its answer is the valid one
            return ErrorCode.invalid_fetch_session_epoch, session.session_id, []
        kept: list[tuple[PartitionKey, Result]] = []
        for key, result in results:
            cached = session.partitions.get(key)
            if cached is None or not cached.must_respond(result):
                continue
            kept.append((key, result))
            if result.size > 0:
                session.partitions.move_to_end(key)
        return ErrorCode.none, session.session_id, kept

    def preview(
        self, results: list[tuple[PartitionKey, Result]]
    ) -> tuple[ErrorCode, int, list[tuple[PartitionKey, Result]]]:
        """The response `respond` would give, changing nothing in the session (Kafka's getResponseSize)."""
        session = self.session
        if session.epoch != next_epoch(self.request_epoch):
            return ErrorCode.invalid_fetch_session_epoch, session.session_id, []
        kept = [
            (key, result)
            for key, result in results
            if (cached := session.partitions.get(key)) is not None and cached.would_respond(result)
        ]
        return ErrorCode.none, session.session_id, kept

    def throttled(self) -> tuple[ErrorCode, int]:
        """The session keeps what it last told the client (nothing was delivered): its epoch has moved on
        as for any request, and the same partitions are news next time."""
        session = self.session
        if session.epoch != next_epoch(self.request_epoch):
            return ErrorCode.invalid_fetch_session_epoch, session.session_id
        return ErrorCode.none, session.session_id


FetchContext = SessionErrorContext | SessionlessContext | FullContext | IncrementalContext


class FetchManager:
    """Decides each Fetch request's context from its session id and epoch (KIP-227's table)."""

    def __init__(self, cache: FetchSessionCache) -> None:
        self.cache = cache

    def new_context(
        self,
        session_id: int,
        epoch: int,
        privileged: bool,
        fetch_data: Mapping[PartitionKey, PartitionRequest],
        to_forget: Iterable[PartitionKey],
        *,
        uses_topic_ids: bool = False,
        topic_names: TopicNames | None = None,
    ) -> FetchContext:
        """The context of one request; raises UnownedSessionIdError where Kafka fails the request.

        `uses_topic_ids` is true for Fetch v13+, whose keys are topic ids; `topic_names` resolves the ids
        of an id session's partitions whose name was not known when they were added."""
        cache = self.cache
        shard = cache.shard_for(session_id)
        if shard is None:
            raise UnownedSessionIdError(f"no fetch session cache shard owns session id {session_id}")
        if epoch in (INITIAL_EPOCH, FINAL_EPOCH):
            if session_id != INVALID_SESSION_ID:
                # a full fetch naming a session closes it, known or not
                shard.remove(session_id)
            if epoch == FINAL_EPOCH:
                return SessionlessContext(fetch_data)
            return FullContext(cache, fetch_data, privileged, uses_topic_ids)
        session = shard.get(session_id)
        if session is None:
            return SessionErrorContext(ErrorCode.fetch_session_id_not_found)
        if session.epoch != epoch:
            return SessionErrorContext(ErrorCode.invalid_fetch_session_epoch)
        if session.uses_topic_ids != uses_topic_ids:
            # a session keyed by topic ids cannot serve a v0-12 request, nor one keyed by names a v13+ one
            return SessionErrorContext(ErrorCode.fetch_session_topic_id_error)
        session.update(fetch_data, to_forget)
        if not session.partitions:
            # nothing left to fetch: the session ends and this request runs sessionless
            shard.remove(session_id)
            return SessionlessContext(fetch_data)
        shard.touch(session, cache.now_ms())
        session.epoch = next_epoch(session.epoch)
        return IncrementalContext(session, epoch, topic_names)
