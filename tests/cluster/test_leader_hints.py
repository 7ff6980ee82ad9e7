"""Leader hints (KIP-951) on a three-broker cluster: a Produce v10+, Fetch v16+ or ShareFetch sent to a
broker that does not lead the partition answers NOT_LEADER_OR_FOLLOWER with the current leader's id and
epoch and that leader's endpoint, so a client can go straight to it. Produce v13 names topics by id."""

from __future__ import annotations

import asyncio
import datetime
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from kio.schema.metadata.v12.request import MetadataRequest, MetadataRequestTopic
from kio.schema.produce.v10.request import PartitionProduceData, ProduceRequest, TopicProduceData
from kio.schema.produce.v13 import request as produce13
from kio.static.primitive import i16, i32, i32Timedelta

from strom.client.connection import BrokerConnection
from strom.protocol.errors import ErrorCode
from strom.protocol.records import Record, build_batch
from strom.testing.cluster import ProcessCluster, create_assigned, layout, wait_until
from strom.testing.zookeeper import ZooKeeperServer

pytestmark = [pytest.mark.cluster]
TOPIC = "hinted"


@pytest.fixture(scope="module")
def cluster(zookeeper: ZooKeeperServer) -> Iterator[ProcessCluster]:
    with ProcessCluster(3, f"{zookeeper.connect}/leader-hints") as running:
        yield running


def _request(cluster: ProcessCluster, node_id: int, request: Any) -> Any:
    async def go() -> Any:
        host, port = cluster.address(node_id).rsplit(":", 1)
        conn = await BrokerConnection.open(host, int(port))
        try:
            return await conn.request(request)
        finally:
            await conn.close()

    return asyncio.run(go())


def _timeout() -> i32Timedelta:
    return i32Timedelta.parse(datetime.timedelta(seconds=10))


def test_produce_to_a_follower_names_the_leader(cluster: ProcessCluster) -> None:
    ids = sorted(cluster.node_ids)
    create_assigned(cluster, TOPIC, [[ids[0], ids[1]]])
    wait_until(lambda: layout(cluster, TOPIC)[0][0] == ids[0], what="leader elected")
    leader, follower, outsider = ids[0], ids[1], ids[2]
    records = build_batch([Record(0, 0, b"k", b"v")])
    request = ProduceRequest(
        transactional_id=None,
        acks=i16(-1),
        timeout=_timeout(),
        topic_data=(
            TopicProduceData(
                name=TOPIC, partition_data=(PartitionProduceData(index=i32(0), records=records),)
            ),
        ),
    )
    for node in (follower, outsider):
        response = _request(cluster, node, request)
        part = response.responses[0].partition_responses[0]
        assert part.error_code == ErrorCode.not_leader_or_follower
        assert part.current_leader.leader_id == leader and part.current_leader.leader_epoch >= 0
        endpoints = {int(e.node_id): f"{e.host}:{e.port}" for e in response.node_endpoints}
        assert endpoints == {leader: cluster.address(leader)}
    accepted = _request(cluster, leader, request).responses[0].partition_responses[0]
    assert accepted.error_code == ErrorCode.none and accepted.base_offset == 0
    assert accepted.current_leader.leader_id == -1  # no hint without the error
    # v13 names the topic by id; an unknown id is UNKNOWN_TOPIC_ID
    metadata_id = _topic_id(cluster, leader)
    cases = ((metadata_id, ErrorCode.none), (_other_id(metadata_id), ErrorCode.unknown_topic_id))
    for topic_id, code in cases:
        response = _request(
            cluster,
            leader,
            produce13.ProduceRequest(
                transactional_id=None,
                acks=i16(1),
                timeout=_timeout(),
                topic_data=(
                    produce13.TopicProduceData(
                        topic_id=topic_id,
                        partition_data=(produce13.PartitionProduceData(index=i32(0), records=records),),
                    ),
                ),
            ),
        )
        assert response.responses[0].topic_id == topic_id
        assert response.responses[0].partition_responses[0].error_code == code


def _topic_id(cluster: ProcessCluster, node: int) -> Any:
    response = _request(
        cluster,
        node,
        MetadataRequest(
            topics=(MetadataRequestTopic(name=TOPIC, topic_id=None),),
            allow_auto_topic_creation=False,
            include_topic_authorized_operations=False,
        ),
    )
    return response.topics[0].topic_id


def _other_id(topic_id: Any) -> Any:
    return uuid.UUID(int=(topic_id.int + 1) % (1 << 128))


def test_share_fetch_from_a_follower_names_the_leader(cluster: ProcessCluster) -> None:
    from kio.schema.share_fetch.v1 import request as share_fetch

    ids = sorted(cluster.node_ids)
    topic = "hinted-share"
    create_assigned(cluster, topic, [[ids[0], ids[1]]])
    wait_until(lambda: layout(cluster, topic)[0][0] == ids[0], what="leader elected")
    leader, follower = ids[0], ids[1]
    metadata = MetadataRequest(
        topics=(MetadataRequestTopic(name=topic, topic_id=None),),
        allow_auto_topic_creation=False,
        include_topic_authorized_operations=False,
    )
    topic_id = _request(cluster, leader, metadata).topics[0].topic_id
    request = share_fetch.ShareFetchRequest(
        group_id="hinted-share", member_id=str(uuid.uuid4()), share_session_epoch=i32(0),
        max_wait=i32Timedelta.parse(datetime.timedelta(0)), min_bytes=i32(1), max_bytes=i32(1 << 20),
        max_records=i32(10), batch_size=i32(10),
        topics=(share_fetch.FetchTopic(topic_id=topic_id, partitions=(
            share_fetch.FetchPartition(partition_index=i32(0), acknowledgement_batches=()),)),),
        forgotten_topics_data=(),
    )  # fmt: skip
    response = _request(cluster, follower, request)
    part = response.responses[0].partitions[0]
    assert part.error_code == ErrorCode.not_leader_or_follower, response
    assert part.current_leader.leader_id == leader and part.current_leader.leader_epoch >= 0
    endpoints = {int(e.node_id): f"{e.host}:{e.port}" for e in response.node_endpoints}
    assert endpoints == {leader: cluster.address(leader)}
