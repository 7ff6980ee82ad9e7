"""ShareFetch (KIP-932) on the wire with a request `max_bytes` of 0 (a share consumer with
fetch.max.bytes=0, librdkafka's 0180 test_fetch_max_bytes_zero_returns_no_records): the member is assigned
the partition and records wait in it, yet the answer carries no records; the same fetch with a normal
max_bytes gets them. Passes on Strom and on Kafka 4.4 (--kafka-reference)."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import timedelta
from typing import Any

import pytest
from compat_support import JavaTools, TopicMaker
from confluent_kafka import Producer
from kio.schema.share_fetch.v1 import request as share_fetch
from kio.schema.share_group_heartbeat.v1 import request as share_heartbeat
from kio.static.primitive import i32, i32Timedelta

from strom.client.connection import BrokerConnection
from strom.protocol.record_batch import iter_batches

pytestmark = pytest.mark.compat

SHARE_GROUPS = "org.apache.kafka.tools.consumer.group.ShareGroupCommand"


def _ms(value: int) -> i32Timedelta:
    return i32Timedelta.parse(timedelta(milliseconds=value))


async def _joined(conn: BrokerConnection, group: str, topic: str) -> str:
    """The member id of a share member once the group assigned it `topic`'s partition."""
    member = uuid.uuid4().hex
    epoch = 0
    deadline = time.monotonic() + 60
    while True:
        response: Any = await conn.request(
            share_heartbeat.ShareGroupHeartbeatRequest(
                group_id=group, member_id=member, member_epoch=i32(epoch), rack_id=None,
                subscribed_topic_names=(topic,) if epoch == 0 else None,
            )
        )  # fmt: skip
        if response.error_code == 0:
            epoch = int(response.member_epoch)
            assignment = response.assignment
            if assignment is not None and any(t.partitions for t in assignment.topic_partitions):
                return member
        assert time.monotonic() < deadline, f"never assigned: {response}"
        await asyncio.sleep(0.3)


def _fetch(member: str, group: str, topic_id: uuid.UUID, max_bytes: int, epoch: int) -> Any:
    return share_fetch.ShareFetchRequest(
        group_id=group, member_id=member, share_session_epoch=i32(epoch), max_wait=_ms(500),
        min_bytes=i32(1), max_bytes=i32(max_bytes), max_records=i32(100), batch_size=i32(100),
        topics=(share_fetch.FetchTopic(topic_id=topic_id, partitions=(
            share_fetch.FetchPartition(partition_index=i32(0), acknowledgement_batches=()),)),),
        forgotten_topics_data=(),
    )  # fmt: skip


def _records(response: Any) -> int:
    count = 0
    for topic in response.responses:
        for part in topic.partitions:
            data = part.records
            if data:
                count += sum(header.last_offset_delta + 1 for _, header in iter_batches(bytes(data)))
    return count


def test_share_fetch_with_max_bytes_zero_returns_no_records(
    broker: str, java_tools: JavaTools, make_topic: TopicMaker, fetched_tools: None
) -> None:
    topic = make_topic(partitions=1)
    group = f"share-mb0-{uuid.uuid4().hex[:8]}"
    java_tools.run(SHARE_GROUPS, "--bootstrap-server", java_tools.bootstrap, "--reset-offsets",
                   "--to-earliest", "--group", group, "--topic", topic, "--execute", timeout=60)  # fmt: skip
    producer = Producer({"bootstrap.servers": broker})
    for i in range(10):
        producer.produce(topic, value=f"v{i}".encode(), partition=0)
    assert producer.flush(20) == 0

    async def probe() -> tuple[Any, Any]:
        host, port = broker.rsplit(":", 1)
        conn = await BrokerConnection.open(host, int(port), client_id="share-mb0")
        try:
            from kio.schema.metadata.v12 import request as metadata

            meta: Any = await conn.request(
                metadata.MetadataRequest(
                    topics=(metadata.MetadataRequestTopic(topic_id=None, name=topic),),
                    allow_auto_topic_creation=False, include_topic_authorized_operations=False,
                )
            )  # fmt: skip
            topic_id = meta.topics[0].topic_id
            member = await _joined(conn, group, topic)
            zero = await conn.request(_fetch(member, group, topic_id, 0, 0))
            normal = await conn.request(_fetch(member, group, topic_id, 1 << 20, 1))
            return zero, normal
        finally:
            await conn.close()

    zero, normal = asyncio.run(probe())
    assert zero.error_code == 0, zero
    assert _records(zero) == 0, zero
    assert _records(normal) > 0, normal
