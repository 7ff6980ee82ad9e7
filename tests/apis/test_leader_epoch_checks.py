"""KIP-320 current_leader_epoch checks over the wire: Fetch (v9+), ListOffsets (v4+) and OffsetForLeaderEpoch
(v2+) answer FENCED_LEADER_EPOCH when the client's epoch is older than the leader's, UNKNOWN_LEADER_EPOCH
when it is newer, and serve the request when it matches or is -1 (no check)."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest
from kio.schema.fetch.v12.request import FetchPartition, FetchRequest, FetchTopic
from kio.schema.list_offsets.v7.request import ListOffsetsPartition, ListOffsetsRequest, ListOffsetsTopic
from kio.schema.offset_for_leader_epoch.v4.request import (
    OffsetForLeaderEpochRequest,
    OffsetForLeaderPartition,
    OffsetForLeaderTopic,
)
from kio.static.primitive import i8, i32, i64
from wire_helpers import MAX_BYTES, connect, create_topic, ms, produce_request, records

from strom.client.connection import BrokerConnection
from strom.protocol.errors import ErrorCode
from strom.protocol.records import build_batch
from strom.testing.embedded import EmbeddedBroker

TOPIC = "epochs"
LEADER_EPOCH = 2


async def elect_again(broker: EmbeddedBroker, topic: str, epoch: int) -> None:
    """Publish partition 0 of `topic` with leader epoch `epoch` through the metadata backend, as a new
    election would, and wait until the broker's partition leads in it."""
    assert broker.broker is not None
    backend = broker.broker.metadata
    async with backend._lock:
        info = backend.image.topics[topic]
        state = dataclasses.replace(info.partitions[0], leader_epoch=epoch)
        new_info = dataclasses.replace(info, partitions={**info.partitions, 0: state})
        await backend._commit(backend._replace_topic(new_info))
    part = broker.broker.replica_manager.get_partition(topic, 0)
    for _ in range(200):
        if part is not None and part.is_leader and part.leader_epoch == epoch:
            return
        await asyncio.sleep(0.01)
        part = broker.broker.replica_manager.get_partition(topic, 0)
    raise AssertionError(f"partition never led in epoch {epoch}")


@pytest.fixture
async def conn(broker: EmbeddedBroker) -> BrokerConnection:
    """A connection to a broker whose partition `epochs-0` holds 3 records of epoch 0 and 2 of epoch 2."""
    connection = await connect(broker)
    try:
        await create_topic(connection, TOPIC)
        resp = await connection.request(produce_request(TOPIC, {0: build_batch(records(3))}))
        assert resp.responses[0].partition_responses[0].error_code == ErrorCode.none
        await elect_again(broker, TOPIC, LEADER_EPOCH)
        resp = await connection.request(produce_request(TOPIC, {0: build_batch(records(2, 3))}))
        assert resp.responses[0].partition_responses[0].base_offset == 3
        yield connection
    finally:
        await connection.close()


async def fetch(conn: BrokerConnection, current_epoch: int) -> object:
    req = FetchRequest(
        replica_id=i32(-1),
        max_wait=ms(0),
        min_bytes=i32(1),
        max_bytes=i32(MAX_BYTES),
        isolation_level=i8(0),
        session_id=i32(0),
        session_epoch=i32(-1),
        topics=(
            FetchTopic(
                topic=TOPIC,
                partitions=(
                    FetchPartition(
                        partition=i32(0),
                        current_leader_epoch=i32(current_epoch),
                        fetch_offset=i64(0),
                        partition_max_bytes=i32(MAX_BYTES),
                    ),
                ),
            ),
        ),
        forgotten_topics_data=(),
        rack_id="",
    )
    return (await conn.request(req)).responses[0].partitions[0]


async def list_latest(conn: BrokerConnection, current_epoch: int) -> object:
    req = ListOffsetsRequest(
        replica_id=i32(-1),
        isolation_level=i8(0),
        topics=(
            ListOffsetsTopic(
                name=TOPIC,
                partitions=(
                    ListOffsetsPartition(
                        partition_index=i32(0), current_leader_epoch=i32(current_epoch), timestamp=i64(-1)
                    ),
                ),
            ),
        ),
    )
    return (await conn.request(req)).topics[0].partitions[0]


async def epoch_end(conn: BrokerConnection, current_epoch: int, epoch: int) -> object:
    req = OffsetForLeaderEpochRequest(
        replica_id=i32(-1),
        topics=(
            OffsetForLeaderTopic(
                topic=TOPIC,
                partitions=(
                    OffsetForLeaderPartition(
                        partition=i32(0), current_leader_epoch=i32(current_epoch), leader_epoch=i32(epoch)
                    ),
                ),
            ),
        ),
    )
    return (await conn.request(req)).topics[0].partitions[0]


@pytest.mark.parametrize(
    ("current", "expected"),
    [
        (LEADER_EPOCH - 1, ErrorCode.fenced_leader_epoch),
        (0, ErrorCode.fenced_leader_epoch),
        (LEADER_EPOCH + 1, ErrorCode.unknown_leader_epoch),
    ],
)
async def test_stale_or_future_current_leader_epoch_is_refused(
    conn: BrokerConnection, current: int, expected: ErrorCode
) -> None:
    fetched = await fetch(conn, current)
    assert fetched.error_code == expected
    assert fetched.records in (None, b"")
    listed = await list_latest(conn, current)
    assert listed.error_code == expected and listed.offset == -1
    ended = await epoch_end(conn, current, 0)
    assert ended.error_code == expected and ended.end_offset == -1


@pytest.mark.parametrize("current", [LEADER_EPOCH, -1])
async def test_matching_or_absent_current_leader_epoch_is_served(
    conn: BrokerConnection, current: int
) -> None:
    fetched = await fetch(conn, current)
    assert fetched.error_code == ErrorCode.none and fetched.high_watermark == 5
    assert len(fetched.records) > 0
    listed = await list_latest(conn, current)
    assert (listed.error_code, listed.offset, listed.leader_epoch) == (ErrorCode.none, 5, LEADER_EPOCH)
    ended = await epoch_end(conn, current, 0)
    assert (ended.error_code, ended.leader_epoch, ended.end_offset) == (ErrorCode.none, 0, 3)
    ended = await epoch_end(conn, current, 1)  # never used: the largest epoch below it, epoch 0
    assert (ended.error_code, ended.leader_epoch, ended.end_offset) == (ErrorCode.none, 0, 3)
