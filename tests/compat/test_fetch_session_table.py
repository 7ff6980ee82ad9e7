"""Incremental fetch sessions (KIP-227) on the wire, one test per row of the session table, against the broker
under test (run with `--kafka-reference` to check the expectations against Apache Kafka itself).

Rows: (0, -1) sessionless; (0, 0) new session; (id, -1) close, known or not; (id, 0) close and reopen, known
or not; (id, n) incremental, with FETCH_SESSION_ID_NOT_FOUND / INVALID_FETCH_SESSION_EPOCH. Also: a full fetch
ignores forgotten topics; forgetting every partition ends the session; a forgotten partition that comes
back is fetched again; what makes a partition "news" in an incremental response (records, errors, high
watermark, log start offset; not a fetch offset change alone); cached partition max bytes; a duplicate
request whose epoch was used up while it waited.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import pytest
from compat_support import BrokerUnderTest, TopicMaker
from kio.schema.delete_records.v2.request import (
    DeleteRecordsPartition,
    DeleteRecordsRequest,
    DeleteRecordsTopic,
)
from kio.schema.fetch.v12.request import FetchPartition, FetchRequest, FetchTopic, ForgottenTopic
from kio.static.primitive import i8, i32, i64
from wire_helpers import ms, produce_request

from strom.client.connection import BrokerConnection
from strom.protocol.errors import ErrorCode
from strom.protocol.record_batch import iter_batches
from strom.protocol.records import Record, build_batch

pytestmark = pytest.mark.compat

MAX_BYTES = 1 << 20
NONE = ErrorCode.none
NOT_FOUND = ErrorCode.fetch_session_id_not_found
BAD_EPOCH = ErrorCode.invalid_fetch_session_epoch


@dataclass
class Wire:
    """One connection to the broker under test and the two-partition topic the test uses."""

    conn: BrokerConnection
    topic: str
    bootstrap: str

    async def fetch(
        self,
        session_id: int,
        epoch: int,
        parts: Mapping[int, int] | None = None,
        *,
        forget: Iterable[int] = (),
        max_wait_ms: int = 0,
        min_bytes: int = 0,
        partition_max_bytes: int = MAX_BYTES,
        conn: BrokerConnection | None = None,
    ) -> Any:
        """Fetch v12 of `parts` (partition -> fetch offset) with the given session id and epoch."""
        forgotten = tuple(forget)
        request = FetchRequest(
            replica_id=i32(-1),
            max_wait=ms(max_wait_ms),
            min_bytes=i32(min_bytes),
            max_bytes=i32(MAX_BYTES),
            isolation_level=i8(0),
            session_id=i32(session_id),
            session_epoch=i32(epoch),
            topics=(
                FetchTopic(
                    topic=self.topic,
                    partitions=tuple(
                        FetchPartition(
                            partition=i32(p),
                            fetch_offset=i64(offset),
                            partition_max_bytes=i32(partition_max_bytes),
                        )
                        for p, offset in parts.items()
                    ),
                ),
            )
            if parts
            else (),
            forgotten_topics_data=(
                (ForgottenTopic(topic=self.topic, partitions=tuple(i32(p) for p in forgotten)),)
                if forgotten
                else ()
            ),
            rack_id="",
        )
        return await (conn or self.conn).request(request, timeout=30.0)

    async def produce(self, partition: int, count: int = 1) -> None:
        """`count` records to `partition`, one batch (and one request) each so every offset starts a batch."""
        for i in range(count):
            batch = build_batch([Record(0, 0, None, f"v{i}".encode())])
            # a new topic's leader may not have taken over yet (Kafka answers NOT_LEADER_OR_FOLLOWER)
            deadline = time.monotonic() + 15
            while True:
                resp = await self.conn.request(produce_request(self.topic, {partition: batch}, acks=1))
                error = resp.responses[0].partition_responses[0].error_code
                if error != ErrorCode.not_leader_or_follower or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.05)
            assert error == NONE

    async def delete_records(self, partition: int, before: int) -> None:
        resp = await self.conn.request(
            DeleteRecordsRequest(
                topics=(
                    DeleteRecordsTopic(
                        name=self.topic,
                        partitions=(
                            DeleteRecordsPartition(partition_index=i32(partition), offset=i64(before)),
                        ),
                    ),
                ),
                timeout=ms(10_000),
            )
        )
        assert resp.topics[0].partitions[0].error_code == NONE


def listed(resp: Any) -> dict[int, Any]:
    """The partitions a Fetch response lists, by partition index."""
    return {int(p.partition_index): p for t in resp.responses for p in t.partitions}


def base_offsets(partition: Any) -> list[int]:
    data = bytes(partition.records or b"")
    return [header.base_offset for _, header in iter_batches(data)]


async def opened(wire: Wire, parts: Mapping[int, int], **kw: Any) -> int:
    """Open a session over `parts`; its id."""
    resp = await wire.fetch(0, 0, parts, **kw)
    assert resp.error_code == NONE and resp.session_id != 0
    return int(resp.session_id)


@pytest.fixture
async def wire(broker_under_test: BrokerUnderTest, make_topic: TopicMaker) -> AsyncIterator[Wire]:
    topic = make_topic(partitions=2)
    host, port = broker_under_test.bootstrap.rsplit(":", 1)
    conn = await BrokerConnection.open(host, int(port))
    try:
        wire = Wire(conn, topic, broker_under_test.bootstrap)
        # Kafka's leader may take over a new topic's partitions a moment after Metadata shows them
        deadline = time.monotonic() + 15
        while True:
            resp = await wire.fetch(0, -1, {0: 0, 1: 0})
            errors = {int(p.error_code) for p in listed(resp).values()}
            if errors == {0} or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.05)
        assert errors == {0}, f"{topic} not ready: {errors}"
        yield wire
    finally:
        await conn.close()


# --- the rows of the session table -----------------------------------------------------------------------


async def test_sessionless_full_fetch(wire: Wire) -> None:
    """(0, -1): no session; every partition is answered every time, session id 0."""
    await wire.produce(1)
    for _ in range(2):
        resp = await wire.fetch(0, -1, {0: 0, 1: 0})
        assert (resp.error_code, resp.session_id) == (NONE, 0)
        parts = listed(resp)
        assert sorted(parts) == [0, 1]
        assert base_offsets(parts[1]) == [0] and parts[1].high_watermark == 1


async def test_new_session_then_incremental(wire: Wire) -> None:
    """(0, 0) opens a session answering every partition; (id, 1) lists only partitions with news."""
    resp = await wire.fetch(0, 0, {0: 0, 1: 0})
    assert resp.error_code == NONE and resp.session_id != 0
    sid = int(resp.session_id)
    assert sorted(listed(resp)) == [0, 1]
    quiet = await wire.fetch(sid, 1)
    assert (quiet.error_code, quiet.session_id, listed(quiet)) == (NONE, sid, {})
    await wire.produce(1)
    news = await wire.fetch(sid, 2)
    assert news.session_id == sid
    assert list(listed(news)) == [1]
    assert base_offsets(listed(news)[1]) == [0] and listed(news)[1].high_watermark == 1


async def test_close_session_with_final_epoch(wire: Wire) -> None:
    """(id, -1) closes the session and is answered as a sessionless full fetch (session id 0)."""
    sid = await opened(wire, {0: 0, 1: 0})
    closing = await wire.fetch(sid, -1, {0: 0})
    assert (closing.error_code, closing.session_id) == (NONE, 0)
    assert list(listed(closing)) == [0]
    gone = await wire.fetch(sid, 1)
    assert (gone.error_code, gone.session_id, listed(gone)) == (NOT_FOUND, 0, {})


async def test_close_unknown_session_is_not_an_error(wire: Wire) -> None:
    """(unknown id, -1): nothing to close, still a sessionless full fetch without error."""
    resp = await wire.fetch(123_456_789, -1, {0: 0, 1: 0})
    assert (resp.error_code, resp.session_id) == (NONE, 0)
    assert sorted(listed(resp)) == [0, 1]


async def test_epoch_zero_on_existing_session_reopens_it(wire: Wire) -> None:
    """(id, 0) closes the old session and opens a new one from this request's partitions (franz-go resets a
    session this way, keeping the id), whatever epoch the old session had reached."""
    sid = await opened(wire, {0: 0, 1: 0})
    for epoch in (1, 2, 3):
        assert (await wire.fetch(sid, epoch)).error_code == NONE
    reopened = await wire.fetch(sid, 0, {1: 0})
    assert reopened.error_code == NONE and reopened.session_id not in (0, sid)
    new = int(reopened.session_id)
    assert list(listed(reopened)) == [1]
    assert (await wire.fetch(sid, 4)).error_code == NOT_FOUND
    # the new session holds only partition 1
    await wire.produce(0)
    await wire.produce(1)
    news = await wire.fetch(new, 1)
    assert (news.error_code, news.session_id, list(listed(news))) == (NONE, new, [1])


async def test_epoch_zero_on_unknown_session_opens_one(wire: Wire) -> None:
    resp = await wire.fetch(123_456_789, 0, {0: 0})
    assert resp.error_code == NONE and resp.session_id not in (0, 123_456_789)
    assert list(listed(resp)) == [0]


async def test_incremental_session_errors(wire: Wire) -> None:
    """Unknown session: FETCH_SESSION_ID_NOT_FOUND; wrong epoch: INVALID_FETCH_SESSION_EPOCH. Both answer
    session id 0 and no partitions, and leave the session's epoch where it was."""
    sid = await opened(wire, {0: 0, 1: 0})
    for session_id, epoch, error in [
        (sid, 2, BAD_EPOCH),
        (sid, 7, BAD_EPOCH),
        (sid, -2, BAD_EPOCH),
        (123_456_789, 1, NOT_FOUND),
        (0, 1, NOT_FOUND),
        (-5, 1, NOT_FOUND),
    ]:
        resp = await wire.fetch(session_id, epoch, {0: 0})
        assert (resp.error_code, resp.session_id, listed(resp)) == (error, 0, {}), (session_id, epoch)
    ok = await wire.fetch(sid, 1)
    assert (ok.error_code, ok.session_id) == (NONE, sid)
    assert (await wire.fetch(sid, 1)).error_code == BAD_EPOCH  # epoch 1 is used up
    assert (await wire.fetch(sid, 2)).error_code == NONE


@pytest.mark.parametrize("session_id", [-(2**31), -268_435_455, 2**31 - 1])
@pytest.mark.parametrize("epoch", [-1, 0, 1])
async def test_session_id_outside_every_cache_shard(wire: Wire, session_id: int, epoch: int) -> None:
    """Kafka finds a session's cache shard from its id; for an id beyond every shard the whole request fails:
    UNKNOWN_SERVER_ERROR at the top and on each partition, and the request's session id echoed."""
    resp = await wire.fetch(session_id, epoch, {0: 0, 1: 0})
    assert (resp.error_code, resp.session_id) == (ErrorCode.unknown_server_error, session_id)
    parts = listed(resp)
    assert sorted(parts) == [0, 1]
    for part in parts.values():
        assert (part.error_code, part.high_watermark) == (ErrorCode.unknown_server_error, -1)


# --- what a session holds ---------------------------------------------------------------------------------


async def test_full_fetch_ignores_forgotten_topics(wire: Wire) -> None:
    resp = await wire.fetch(0, 0, {0: 0, 1: 0}, forget=[1])
    assert resp.error_code == NONE and resp.session_id != 0
    sid = int(resp.session_id)
    assert sorted(listed(resp)) == [0, 1]
    await wire.produce(1)
    news = await wire.fetch(sid, 1)
    assert list(listed(news)) == [1]


async def test_forgotten_partition_added_back_is_fetched_again(wire: Wire) -> None:
    """A partition forgotten by an incremental fetch is no longer fetched; named again, it is answered with
    its records (franz-go's pause/resume and remove/add consume partitions)."""
    sid = await opened(wire, {0: 0, 1: 0})
    forgot = await wire.fetch(sid, 1, forget=[1])
    assert (forgot.error_code, forgot.session_id, listed(forgot)) == (NONE, sid, {})
    await wire.produce(1, 2)
    quiet = await wire.fetch(sid, 2)
    assert listed(quiet) == {}  # partition 1 is not in the session
    back = await wire.fetch(sid, 3, {1: 0})
    assert list(listed(back)) == [1]
    assert base_offsets(listed(back)[1]) == [0, 1] and listed(back)[1].high_watermark == 2
    await wire.produce(1)
    more = await wire.fetch(sid, 4, {1: 2})
    assert list(listed(more)) == [1] and base_offsets(listed(more)[1]) == [2]


async def test_forgetting_every_partition_ends_the_session(wire: Wire) -> None:
    sid = await opened(wire, {0: 0, 1: 0})
    resp = await wire.fetch(sid, 1, forget=[0, 1])
    assert (resp.error_code, resp.session_id, listed(resp)) == (NONE, 0, {})
    assert (await wire.fetch(sid, 2)).error_code == NOT_FOUND


async def test_emptied_session_answers_the_request_sessionless(wire: Wire) -> None:
    """Naming a partition and forgetting every one empties the session: it closes and the request's own
    partitions are answered as a sessionless fetch."""
    await wire.produce(0)
    sid = await opened(wire, {0: 1, 1: 0})
    resp = await wire.fetch(sid, 1, {0: 0}, forget=[0, 1])
    assert (resp.error_code, resp.session_id) == (NONE, 0)
    assert list(listed(resp)) == [0] and base_offsets(listed(resp)[0]) == [0]
    assert (await wire.fetch(sid, 2)).error_code == NOT_FOUND


# --- what is news ---------------------------------------------------------------------------------------


async def test_changed_fetch_offset_is_news_only_with_records(wire: Wire) -> None:
    """Moving a partition's fetch offset back lists it (it has records there); moving it to the high
    watermark does not (no records, nothing else changed)."""
    await wire.produce(0, 3)
    sid = await opened(wire, {0: 3, 1: 0})
    assert listed(await wire.fetch(sid, 1)) == {}
    back = await wire.fetch(sid, 2, {0: 1})
    assert list(listed(back)) == [0] and base_offsets(listed(back)[0]) == [1, 2]
    again = await wire.fetch(sid, 3)  # the session keeps fetching from offset 1
    assert base_offsets(listed(again)[0]) == [1, 2]
    forward = await wire.fetch(sid, 4, {0: 3})
    assert listed(forward) == {}


async def test_session_keeps_partition_max_bytes(wire: Wire) -> None:
    """An incremental request's partition max bytes replace the cached ones; later requests use them."""
    await wire.produce(0, 3)
    sid = await opened(wire, {0: 0, 1: 0})
    small = await wire.fetch(sid, 1, {0: 0}, partition_max_bytes=1)
    assert base_offsets(listed(small)[0]) == [0]  # the first batch whole (KIP-74), nothing more
    again = await wire.fetch(sid, 2)
    assert base_offsets(listed(again)[0]) == [0]
    big = await wire.fetch(sid, 3, {0: 0})
    assert base_offsets(listed(big)[0]) == [0, 1, 2]


async def test_error_is_always_news_and_clearing_it_is_too(wire: Wire) -> None:
    """A partition with an error is listed every time; once the error clears it is listed again even
    with no records and an unchanged high watermark (the error reset the cached one). The epoch advances
    through requests that fail per partition."""
    await wire.produce(0, 2)
    sid = await opened(wire, {0: 2, 1: 0})
    for epoch in (1, 2):
        resp = await wire.fetch(sid, epoch, {0: 100} if epoch == 1 else None)
        assert resp.error_code == NONE
        assert list(listed(resp)) == [0]
        assert listed(resp)[0].error_code == ErrorCode.offset_out_of_range
    cleared = await wire.fetch(sid, 3, {0: 2})
    assert list(listed(cleared)) == [0]
    part = listed(cleared)[0]
    assert (part.error_code, part.high_watermark, base_offsets(part)) == (NONE, 2, [])
    assert listed(await wire.fetch(sid, 4)) == {}


async def test_log_start_offset_move_is_news(wire: Wire) -> None:
    await wire.produce(0, 3)
    sid = await opened(wire, {0: 3, 1: 0})
    assert listed(await wire.fetch(sid, 1)) == {}
    await wire.delete_records(0, 2)
    resp = await wire.fetch(sid, 2)
    assert list(listed(resp)) == [0]
    part = listed(resp)[0]
    assert (part.log_start_offset, part.high_watermark, base_offsets(part)) == (2, 3, [])
    assert listed(await wire.fetch(sid, 3)) == {}


async def test_request_whose_epoch_was_used_while_it_waited(wire: Wire) -> None:
    """A parked incremental fetch answers INVALID_FETCH_SESSION_EPOCH, with the session's id, when another
    request of the session (on another connection) used the next epoch meanwhile."""
    sid = await opened(wire, {0: 0, 1: 0})
    host, port = wire.bootstrap.rsplit(":", 1)
    other = await BrokerConnection.open(host, int(port))
    try:
        parked = asyncio.ensure_future(wire.fetch(sid, 1, max_wait_ms=3000, min_bytes=1))
        # epoch 2 becomes valid once the parked request has taken epoch 1
        deadline = time.monotonic() + 10
        while True:
            second = await wire.fetch(sid, 2, conn=other)
            if second.error_code == NONE or time.monotonic() > deadline:
                break
            assert second.error_code == BAD_EPOCH
            await asyncio.sleep(0.01)
        assert (second.error_code, second.session_id) == (NONE, sid)
        first = await parked
        assert (first.error_code, first.session_id, listed(first)) == (BAD_EPOCH, sid, {})
        assert (await wire.fetch(sid, 3, conn=other)).error_code == NONE
    finally:
        await other.close()
