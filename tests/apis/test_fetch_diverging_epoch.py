"""Truncation through Fetch (v12+, KIP-595; Kafka's UnifiedLog.read with lastFetchedEpoch): a fetch whose
last fetched epoch ends earlier in the leader's log than its fetch offset is answered with the leader's
`diverging_epoch` and no records, as a Kafka 4.4 follower (which sends no OffsetForLeaderEpoch) needs
after an unclean election; a consistent one reads on; an epoch the leader cannot place is
OFFSET_OUT_OF_RANGE."""

from __future__ import annotations

from typing import Any

from kio.schema.fetch.v18 import request as fetch18
from kio.static.primitive import i8, i32, i64
from test_fetch_topic_ids import topic_id
from test_leader_epoch_checks import elect_again
from wire_helpers import MAX_BYTES, connect, create_topic, ms, produce_request, records

from strom.protocol.errors import ErrorCode
from strom.protocol.records import build_batch
from strom.testing.embedded import EmbeddedBroker

TOPIC = "diverging"


def _fetch(topic: Any, fetch_offset: int, last_fetched_epoch: int, current_epoch: int) -> Any:
    return fetch18.FetchRequest(
        replica_state=fetch18.ReplicaState(replica_id=i32(2), replica_epoch=i64(-1)),
        max_wait=ms(0), min_bytes=i32(0), max_bytes=i32(MAX_BYTES), isolation_level=i8(0),
        topics=(fetch18.FetchTopic(topic_id=topic, partitions=(fetch18.FetchPartition(
            partition=i32(0), current_leader_epoch=i32(current_epoch), fetch_offset=i64(fetch_offset),
            last_fetched_epoch=i32(last_fetched_epoch), partition_max_bytes=i32(MAX_BYTES)),)),),
        forgotten_topics_data=(), rack_id="",
    )  # fmt: skip


async def test_a_diverged_fetch_is_told_where_to_truncate(broker: EmbeddedBroker) -> None:
    conn = await connect(broker)
    try:
        await create_topic(conn, TOPIC)
        tid = await topic_id(conn, TOPIC)
        produced = await conn.request(produce_request(TOPIC, {0: build_batch(records(3))}))
        assert produced.responses[0].partition_responses[0].error_code == ErrorCode.none
        await elect_again(broker, TOPIC, 3)  # epoch 3 starts at offset 3
        produced = await conn.request(produce_request(TOPIC, {0: build_batch(records(2, 3))}))
        assert produced.responses[0].partition_responses[0].error_code == ErrorCode.none

        async def answer(fetch_offset: int, last_epoch: int) -> Any:
            response = await conn.request(_fetch(tid, fetch_offset, last_epoch, 3))
            return response.responses[0].partitions[0]

        # the follower holds epoch-0 records up to offset 5 that the leader's epoch 0 never had
        diverged = await answer(5, 0)
        assert diverged.error_code == ErrorCode.none
        assert (diverged.diverging_epoch.epoch, diverged.diverging_epoch.end_offset) == (0, 3)
        assert not diverged.records and diverged.high_watermark == 5
        # an epoch the leader never led: the greatest one below it, with its end
        between = await answer(3, 1)
        assert (between.diverging_epoch.epoch, between.diverging_epoch.end_offset) == (0, 3)
        # consistent: epoch 0 ends at 3 on both sides, the fetch reads epoch 3's records
        consistent = await answer(3, 0)
        assert consistent.error_code == ErrorCode.none and consistent.diverging_epoch.epoch == -1
        assert consistent.records
        # an epoch beyond the leader's
        future = await answer(5, 4)
        assert future.error_code == ErrorCode.offset_out_of_range
    finally:
        await conn.close()
