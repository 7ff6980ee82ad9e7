"""A connection's requests take effect in request order (as Kafka, which reads a connection's next request
only after answering the last), even when an earlier request is still waiting for its acks=all
replication: pipelined Produce requests reach every partition in the order they were sent.

The slow replication of one partition is made by a fault hook on `Partition.wait_for_acks_all`; the
request bytes go over a real socket to a real broker."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from wire_helpers import connect, create_topic, produce_request, records

from strom.protocol.errors import ErrorCode
from strom.protocol.records import build_batch
from strom.replication.partition import Partition
from strom.testing.embedded import EmbeddedBroker

TOPIC = "ordered"


@pytest.fixture
async def two_partition_broker() -> AsyncIterator[EmbeddedBroker]:
    async with EmbeddedBroker({"num.partitions": 2}) as embedded:
        yield embedded


@pytest.fixture
def slow_partition_zero(monkeypatch: pytest.MonkeyPatch) -> asyncio.Event:
    """acks=all on partition 0 waits until the returned event is set (replication that lags)."""
    release = asyncio.Event()
    original = Partition.wait_for_acks_all

    async def slow(self: Partition, last_offset: int, timeout: float) -> bool:
        if self.topic == TOPIC and self.partition == 0:
            await asyncio.wait_for(release.wait(), timeout)
        return await original(self, last_offset, timeout)

    monkeypatch.setattr(Partition, "wait_for_acks_all", slow)
    return release


def _base_offsets(response: Any) -> dict[int, tuple[int, int]]:
    return {
        int(p.index): (int(p.error_code), int(p.base_offset))
        for t in response.responses
        for p in t.partition_responses
    }


async def test_pipelined_produce_appends_in_request_order(
    two_partition_broker: EmbeddedBroker, slow_partition_zero: asyncio.Event
) -> None:
    conn = await connect(two_partition_broker)
    try:
        await create_topic(conn, TOPIC)
        first = produce_request(TOPIC, {0: build_batch(records(1)), 1: build_batch(records(3))})
        second = produce_request(TOPIC, {1: build_batch(records(2, start=3))})
        # both are on the wire before the first's partition 0 has replicated
        first_reply = asyncio.ensure_future(conn.request(first))
        second_reply = asyncio.ensure_future(conn.request(second))
        done, _ = await asyncio.wait({first_reply, second_reply}, timeout=0.5)
        assert not done, "the responses left before partition 0's replication finished"
        slow_partition_zero.set()
        first_offsets = _base_offsets(await asyncio.wait_for(first_reply, 10))
        second_offsets = _base_offsets(await asyncio.wait_for(second_reply, 10))
    finally:
        await conn.close()
    assert first_offsets == {0: (ErrorCode.none, 0), 1: (ErrorCode.none, 0)}
    # the second request's batch lands after the first request's 3 records on partition 1
    assert second_offsets == {1: (ErrorCode.none, 3)}


async def test_waiting_request_does_not_hold_later_requests(
    two_partition_broker: EmbeddedBroker, slow_partition_zero: asyncio.Event
) -> None:
    """Request order is about effects, not waits: a later request is applied while an earlier one waits
    for replication; its response still leaves after the earlier one's."""
    conn = await connect(two_partition_broker)
    try:
        await create_topic(conn, TOPIC)
        waiting = asyncio.ensure_future(conn.request(produce_request(TOPIC, {0: build_batch(records(1))})))
        later = asyncio.ensure_future(
            conn.request(produce_request(TOPIC, {1: build_batch(records(1))}, acks=1))
        )
        broker = two_partition_broker.broker
        assert broker is not None
        part1 = broker.replica_manager.get_partition(TOPIC, 1)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10
        while (part1 is None or part1.log_end_offset == 0) and loop.time() < deadline:
            await asyncio.sleep(0.01)
            part1 = broker.replica_manager.get_partition(TOPIC, 1)
        assert part1 is not None and part1.log_end_offset == 1, "the later request was held back"
        assert not later.done(), "a response overtook the one before it"
        slow_partition_zero.set()
        assert _base_offsets(await asyncio.wait_for(waiting, 10)) == {0: (ErrorCode.none, 0)}
        assert _base_offsets(await asyncio.wait_for(later, 10)) == {1: (ErrorCode.none, 0)}
    finally:
        await conn.close()
