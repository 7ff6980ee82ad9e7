"""Topic ids end to end on one broker: leader hints in Fetch v16+ (KIP-951), `partition.metadata` in each
partition directory (KIP-516) holding the id Metadata answers, and a log whose recorded id is not the
topic's (Kafka's InconsistentTopicIdException) left unserved."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
from kio.schema.fetch.v18 import request as fetch18
from kio.schema.metadata.v12.request import MetadataRequest, MetadataRequestTopic
from kio.static.primitive import i8, i32, i64
from test_leader_epoch_checks import elect_again
from wire_helpers import MAX_BYTES, connect, create_topic, ms, produce_request, records

from strom.client.connection import BrokerConnection
from strom.protocol.errors import ErrorCode
from strom.protocol.records import build_batch
from strom.storage.checkpoint import uuid_to_kafka
from strom.testing.embedded import EmbeddedBroker

TOPIC = "ids"


async def topic_id(conn: BrokerConnection, topic: str) -> uuid.UUID:
    resp = await conn.request(
        MetadataRequest(
            topics=(MetadataRequestTopic(topic_id=None, name=topic),),
            allow_auto_topic_creation=False,
            include_topic_authorized_operations=False,
        )
    )
    # also when its partition is not served here: the metadata names the leader, as Kafka's cache does
    assert resp.topics[0].error_code == ErrorCode.none
    return resp.topics[0].topic_id


def fetch(topic: uuid.UUID, current_epoch: int = -1) -> Any:
    return fetch18.FetchRequest(
        max_wait=ms(0),
        min_bytes=i32(0),
        max_bytes=i32(MAX_BYTES),
        isolation_level=i8(0),
        topics=(
            fetch18.FetchTopic(
                topic_id=topic,
                partitions=(
                    fetch18.FetchPartition(
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


async def test_fenced_leader_epoch_carries_the_current_leader(broker: EmbeddedBroker) -> None:
    """KIP-951: FENCED_LEADER_EPOCH names the leader (this broker) and its epoch, and the response lists
    the leader's endpoint; a matching epoch reads as usual, with neither."""
    conn = await connect(broker)
    try:
        await create_topic(conn, TOPIC)
        tid = await topic_id(conn, TOPIC)
        await elect_again(broker, TOPIC, 3)
        fenced = await conn.request(fetch(tid, current_epoch=1))
        part = fenced.responses[0].partitions[0]
        assert part.error_code == ErrorCode.fenced_leader_epoch
        assert (part.current_leader.leader_id, part.current_leader.leader_epoch) == (1, 3)
        host, port = broker.bootstrap_servers.split(":")
        assert [(n.node_id, n.host, int(n.port)) for n in fenced.node_endpoints] == [(1, host, int(port))]
        ok = await conn.request(fetch(tid, current_epoch=3))
        assert ok.responses[0].partitions[0].error_code == ErrorCode.none
        assert ok.node_endpoints == () and ok.responses[0].partitions[0].current_leader.leader_id == -1
    finally:
        await conn.close()


def _partition_metadata(data_dir: Path, topic: str) -> str:
    return (data_dir / f"{topic}-0" / "partition.metadata").read_text()


async def test_partition_metadata_holds_the_metadata_topic_id(tmp_path: Path) -> None:
    async with EmbeddedBroker(data_dir=tmp_path) as broker:
        conn = await connect(broker)
        try:
            await create_topic(conn, TOPIC)
            tid = await topic_id(conn, TOPIC)
        finally:
            await conn.close()
    assert _partition_metadata(tmp_path, TOPIC) == f"version: 0\ntopic_id: {uuid_to_kafka(tid)}\n"


@pytest.mark.parametrize("content", ["version: 0\ntopic_id: {other}\n", "garbage\n"])
async def test_log_of_another_topic_id_is_not_served(tmp_path: Path, content: str) -> None:
    """A partition.metadata naming another id (or unreadable) makes the log Kafka's inconsistent one: the
    partition is not served (NOT_LEADER_OR_FOLLOWER; Metadata still lists the topic, with its id and its
    leader, as Kafka's metadata cache does), and its files are left as they are."""
    async with EmbeddedBroker(data_dir=tmp_path) as broker:
        conn = await connect(broker)
        try:
            await create_topic(conn, TOPIC)
            resp = await conn.request(produce_request(TOPIC, {0: build_batch(records(2))}))
            assert resp.responses[0].partition_responses[0].error_code == ErrorCode.none
            tid = await topic_id(conn, TOPIC)
        finally:
            await conn.close()
    path = tmp_path / f"{TOPIC}-0" / "partition.metadata"
    written = content.format(other=uuid_to_kafka(uuid.uuid4()))
    path.write_text(written)
    async with EmbeddedBroker(data_dir=tmp_path) as broker:
        conn = await connect(broker)
        try:
            assert await topic_id(conn, TOPIC) == tid
            resp = await conn.request(fetch(tid))
            assert resp.responses[0].partitions[0].error_code == ErrorCode.not_leader_or_follower
            produced = await conn.request(produce_request(TOPIC, {0: build_batch(records(1))}))
            assert produced.responses[0].partition_responses[0].error_code == ErrorCode.not_leader_or_follower
        finally:
            await conn.close()
    assert path.read_text() == written
    assert (tmp_path / f"{TOPIC}-0" / "00000000000000000000.log").stat().st_size > 0
