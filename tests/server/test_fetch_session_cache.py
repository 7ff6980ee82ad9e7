"""The fetch session cache and contexts (KIP-227), as Kafka's FetchManager / FetchSessionCacheShard: the
session table, the epoch rules, what makes a partition news, the shards and their eviction rules, and a
full cache seen through a broker."""

from __future__ import annotations

import random

import pytest
from kio.schema.fetch.v12.request import FetchPartition, FetchRequest, FetchTopic
from kio.static.primitive import i8, i32, i64
from wire_helpers import connect, create_topic, ms

from strom.apis.fetch import FetchPartitionReq, PartitionResponse
from strom.protocol.errors import ErrorCode
from strom.server.fetch_sessions import (
    EVICTION_MS,
    FetchManager,
    FetchSessionCache,
    FullContext,
    IncrementalContext,
    PartitionKey,
    SessionErrorContext,
    SessionlessContext,
    UnownedSessionIdError,
    next_epoch,
)
from strom.testing.embedded import EmbeddedBroker

A: PartitionKey = ("t", 0)
B: PartitionKey = ("t", 1)
C: PartitionKey = ("u", 0)


class Clock:
    def __init__(self) -> None:
        self.ms = 1_000_000

    def __call__(self) -> float:
        return self.ms / 1000


def req(offset: int = 0, max_bytes: int = 1000, leader_epoch: int = -1) -> FetchPartitionReq:
    return FetchPartitionReq(0, offset, max_bytes, leader_epoch)


def res(hw: int = 0, log_start: int = 0, size: int = 0, error: int = 0, lso: int = 0) -> PartitionResponse:
    return PartitionResponse(0, error, hw, lso, log_start, records=b"x" * size if size else b"")


def make(slots: int = 8000, num_shards: int = 8) -> tuple[FetchManager, FetchSessionCache, Clock]:
    clock = Clock()
    cache = FetchSessionCache(slots, clock=clock, rng=random.Random(7), num_shards=num_shards)
    return FetchManager(cache), cache, clock


def open_session(
    manager: FetchManager, parts: dict[PartitionKey, FetchPartitionReq], privileged: bool = False
) -> int:
    context = manager.new_context(0, 0, privileged, parts, [])
    assert isinstance(context, FullContext)
    error, session_id, _ = context.respond([(key, res()) for key in parts])
    assert error == ErrorCode.none
    return session_id


def test_next_epoch() -> None:
    assert [next_epoch(e) for e in (-1, 0, 1, 2**31 - 2, 2**31 - 1)] == [-1, 1, 2, 2**31 - 1, 1]


# --- the session table --------------------------------------------------------------------------------


def test_session_table_rows() -> None:
    manager, cache, _ = make()
    parts = {A: req(), B: req()}
    assert isinstance(manager.new_context(0, -1, False, parts, []), SessionlessContext)
    sid = open_session(manager, parts)
    assert sid != 0 and cache.get(sid) is not None and cache.get(sid).epoch == 1  # type: ignore[union-attr]
    # (id, -1): closed, sessionless
    assert isinstance(manager.new_context(sid, -1, False, parts, []), SessionlessContext)
    assert cache.get(sid) is None
    # (unknown id, -1) and (unknown id, 0) are no errors
    assert isinstance(manager.new_context(sid, -1, False, parts, []), SessionlessContext)
    assert isinstance(manager.new_context(sid, 0, False, parts, []), FullContext)
    # (id, 0) on a live session closes it; the new session comes with the response
    sid = open_session(manager, parts)
    context = manager.new_context(sid, 0, False, {A: req()}, [])
    assert isinstance(context, FullContext) and cache.get(sid) is None
    _, new_sid, _ = context.respond([(A, res())])
    assert list(cache.get(new_sid).partitions) == [A]  # type: ignore[union-attr]


def test_incremental_errors_leave_the_epoch() -> None:
    manager, cache, _ = make()
    sid = open_session(manager, {A: req()})
    for session_id, epoch, error in [
        (sid, 2, ErrorCode.invalid_fetch_session_epoch),
        (sid, -2, ErrorCode.invalid_fetch_session_epoch),
        (sid + 1, 1, ErrorCode.fetch_session_id_not_found),
        (0, 1, ErrorCode.fetch_session_id_not_found),
    ]:
        context = manager.new_context(session_id, epoch, False, {}, [])
        assert isinstance(context, SessionErrorContext)
        assert context.respond([]) == (error, 0, [])
    assert cache.get(sid).epoch == 1  # type: ignore[union-attr]
    context = manager.new_context(sid, 1, False, {}, [])
    assert isinstance(context, IncrementalContext) and cache.get(sid).epoch == 2  # type: ignore[union-attr]


def test_session_ids_outside_every_shard_fail_the_request() -> None:
    manager, _, _ = make()
    for session_id in (-(2**31), -((2**31 - 1) // 8), 2**31 - 1, 2**31 - 7):
        for epoch in (-1, 0, 1):
            with pytest.raises(UnownedSessionIdError):
                manager.new_context(session_id, epoch, False, {A: req()}, [])
    # small negative ids fall in shard 0: simply unknown
    assert isinstance(manager.new_context(-5, 1, False, {}, []), SessionErrorContext)


def test_full_fetch_ignores_forgotten_and_incremental_updates_the_session() -> None:
    manager, cache, _ = make()
    context = manager.new_context(0, 0, False, {A: req(), B: req()}, [B])
    _, sid, _ = context.respond([(A, res(hw=5, log_start=1)), (B, res(hw=7))])
    session = cache.get(sid)
    assert session is not None and list(session.partitions) == [A, B]
    assert (session.partitions[A].high_watermark, session.partitions[A].local_log_start_offset) == (5, 1)
    context = manager.new_context(sid, 1, False, {B: req(3, 10, 4), C: req(1)}, [A])
    assert isinstance(context, IncrementalContext)
    cached_b = session.partitions[B]
    assert (cached_b.fetch_offset, cached_b.partition_max_bytes, cached_b.current_leader_epoch) == (3, 10, 4)
    assert cached_b.high_watermark == 7  # what the client was told is kept
    assert list(session.partitions) == [B, C]
    assert [key for key, _ in context.partitions()] == [B, C]


def test_emptied_session_closes_and_runs_sessionless() -> None:
    manager, cache, _ = make()
    sid = open_session(manager, {A: req(), B: req()})
    context = manager.new_context(sid, 1, False, {A: req(4)}, [A, B])
    assert isinstance(context, SessionlessContext) and cache.get(sid) is None
    assert [(key, r.fetch_offset) for key, r in context.partitions()] == [(A, 4)]


# --- incremental responses ----------------------------------------------------------------------------


def test_what_is_news() -> None:
    manager, cache, _ = make()
    sid = open_session(manager, {A: req()})  # cached: hw 0, log start 0
    epoch = 1

    def news(result: PartitionResponse) -> bool:
        nonlocal epoch
        context = manager.new_context(sid, epoch, False, {}, [])
        epoch += 1
        assert isinstance(context, IncrementalContext)
        error, session_id, kept = context.respond([(A, result)])
        assert (error, session_id) == (ErrorCode.none, sid)
        return bool(kept)

    assert not news(res())
    assert not news(res(lso=3))  # the last stable offset alone is not news
    assert news(res(size=10))  # records
    assert news(res(hw=2)) and not news(res(hw=2))  # a new high watermark, told once
    assert news(res(hw=2, log_start=1)) and not news(res(hw=2, log_start=1))
    preferred = res(hw=2, log_start=1)
    preferred.preferred_read_replica = 3
    assert news(preferred)
    assert news(res(error=ErrorCode.offset_out_of_range)) and news(res(error=ErrorCode.offset_out_of_range))
    # the error reset the cached high watermark: the partition is re-sent once it clears
    assert cache.get(sid).partitions[A].high_watermark == -1  # type: ignore[union-attr]
    assert news(res(hw=2, log_start=1))
    assert not news(res(hw=2, log_start=1))


def test_partitions_with_records_move_to_the_end() -> None:
    manager, cache, _ = make()
    sid = open_session(manager, {A: req(), B: req(), C: req()})
    context = manager.new_context(sid, 1, False, {}, [])
    assert isinstance(context, IncrementalContext)
    _, _, kept = context.respond([(A, res(size=5)), (B, res()), (C, res(hw=1))])
    assert [key for key, _ in kept] == [A, C]
    assert list(cache.get(sid).partitions) == [B, C, A]  # type: ignore[union-attr]


def test_epoch_used_while_waiting() -> None:
    manager, _, _ = make()
    sid = open_session(manager, {A: req()})
    parked = manager.new_context(sid, 1, False, {}, [])
    second = manager.new_context(sid, 2, False, {}, [])
    assert isinstance(parked, IncrementalContext) and isinstance(second, IncrementalContext)
    assert second.respond([(A, res(size=1))])[0] == ErrorCode.none
    assert parked.respond([(A, res(size=1))]) == (ErrorCode.invalid_fetch_session_epoch, sid, [])


# --- the cache ----------------------------------------------------------------------------------------


def test_shards_split_slots_and_id_ranges() -> None:
    manager, cache, _ = make(slots=16)
    assert [shard.max_entries for shard in cache.shards] == [2] * 8
    id_range = (2**31 - 1) // 8
    ids = [open_session(manager, {A: req()}) for _ in range(16)]
    # new sessions go to the shards in turn, each id inside its shard's range
    for i, session_id in enumerate(ids):
        shard = i % 8
        assert max(1, shard * id_range) <= session_id < (shard + 1) * id_range
        assert cache.shard_for(session_id) is cache.shards[shard]
    assert len(cache) == 16
    assert cache.shard_for(0) is cache.shards[0] and cache.shard_for(-id_range + 1) is cache.shards[0]
    assert cache.shard_for(8 * id_range) is None and cache.shard_for(-id_range) is None


@pytest.mark.parametrize("slots", [0, 7])
def test_fewer_slots_than_shards_means_no_sessions(slots: int) -> None:
    manager, cache, _ = make(slots=slots)
    assert open_session(manager, {A: req()}) == 0
    assert len(cache) == 0


def one_slot_shards() -> tuple[FetchManager, FetchSessionCache, Clock]:
    """A cache of one shard holding one session: every new session competes for that slot."""
    return make(slots=1, num_shards=1)


def try_open(manager: FetchManager, cache: FetchSessionCache, n: int, privileged: bool = False) -> int:
    """Try to open a session of n partitions; its id, or 0."""
    return open_session(manager, {("t", i): req() for i in range(n)}, privileged)


def test_eviction_of_stale_sessions() -> None:
    manager, cache, clock = one_slot_shards()
    old = try_open(manager, cache, 5)
    clock.ms += EVICTION_MS  # unused for exactly the eviction time: not yet stale
    assert try_open(manager, cache, 1) == 0
    clock.ms += 1
    new = try_open(manager, cache, 1)  # stale: evicted even by a smaller session
    assert new != 0 and cache.get(old) is None


def test_eviction_by_value() -> None:
    manager, cache, clock = one_slot_shards()
    first = try_open(manager, cache, 2)
    # young consumer sessions are evictable by followers only
    assert try_open(manager, cache, 3) == 0
    follower = try_open(manager, cache, 1, privileged=True)
    assert follower != 0 and cache.get(first) is None
    # a young follower session is evictable by nobody, a used old one by bigger followers only
    assert try_open(manager, cache, 9, privileged=True) == 0
    clock.ms += EVICTION_MS + 1
    # used again: not stale, and now old enough to be ranked among the evictable
    assert isinstance(manager.new_context(follower, 1, True, {}, []), IncrementalContext)
    assert try_open(manager, cache, 9) == 0  # consumers never beat a follower
    assert try_open(manager, cache, 1, privileged=True) == 0  # same size: not more valuable
    bigger = try_open(manager, cache, 2, privileged=True)
    assert bigger != 0 and cache.get(follower) is None


def test_evictability_is_ranked_when_a_session_is_used() -> None:
    """Kafka files a session under "evictable by all" only when it is touched more than the eviction time
    after its creation; a session last used while young stays out of it until used again."""
    manager, cache, clock = one_slot_shards()
    sid = try_open(manager, cache, 1)
    clock.ms += EVICTION_MS // 2
    assert isinstance(manager.new_context(sid, 1, False, {}, []), IncrementalContext)
    clock.ms += EVICTION_MS // 2 + 10  # old now, used recently, ranked while young
    assert try_open(manager, cache, 5) == 0
    assert isinstance(manager.new_context(sid, 2, False, {}, []), IncrementalContext)
    assert try_open(manager, cache, 5) != 0 and cache.get(sid) is None


# --- through a broker ---------------------------------------------------------------------------------


def _open_request(topic: str) -> FetchRequest:
    return FetchRequest(
        replica_id=i32(-1),
        max_wait=ms(0),
        min_bytes=i32(0),
        max_bytes=i32(1 << 20),
        isolation_level=i8(0),
        session_id=i32(0),
        session_epoch=i32(0),
        topics=(
            FetchTopic(
                topic=topic,
                partitions=(
                    FetchPartition(partition=i32(0), fetch_offset=i64(0), partition_max_bytes=i32(1000)),
                ),
            ),
        ),
        forgotten_topics_data=(),
        rack_id="",
    )


@pytest.mark.parametrize("slots", [0, 8])
async def test_full_cache_answers_without_a_session(slots: int) -> None:
    async with EmbeddedBroker({"max.incremental.fetch.session.cache.slots": str(slots)}) as broker:
        conn = await connect(broker)
        try:
            await create_topic(conn, "full")
            sessions = [int((await conn.request(_open_request("full"))).session_id) for _ in range(slots)]
            assert 0 not in sessions and len(set(sessions)) == slots
            refused = await conn.request(_open_request("full"))
            assert (refused.error_code, refused.session_id) == (ErrorCode.none, 0)
            assert [int(p.partition_index) for t in refused.responses for p in t.partitions] == [0]
        finally:
            await conn.close()
