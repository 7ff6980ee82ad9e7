"""OffsetCommit v10 and OffsetFetch v10 (topics by id, KIP-516 in the KIP-848 era), on the wire and
through Kafka 4.4's tools. The same tests run against Apache Kafka 4.4 (`--kafka-reference`), which is what
the expectations are taken from.

- A commit by id is read back by id and by name (v9); an unknown id answers UNKNOWN_TOPIC_ID for its
  partitions, listed before the known topics, in both APIs.
- A fetch of every committed offset (null topics) names the topics by id.
- Kafka's console consumer commits its group's offsets and kafka-consumer-groups --describe reads them.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import pytest
from compat_support import JavaTools
from confluent_kafka import Producer
from kio.schema.find_coordinator.v4.request import FindCoordinatorRequest
from kio.schema.metadata.v12.request import MetadataRequest, MetadataRequestTopic
from kio.schema.offset_commit.v10 import request as oc10
from kio.schema.offset_fetch.v9 import request as of9
from kio.schema.offset_fetch.v10 import request as of10
from kio.static.primitive import i8, i32, i64

from strom.client.connection import BrokerConnection
from strom.protocol.errors import ErrorCode

pytestmark = pytest.mark.compat

_RETRIABLE = {
    ErrorCode.not_coordinator,
    ErrorCode.coordinator_not_available,
    ErrorCode.coordinator_load_in_progress,
}


def _call(broker: str, request: Any) -> Any:
    async def go() -> Any:
        host, port = broker.rsplit(":", 1)
        conn = await BrokerConnection.open(host, int(port))
        try:
            return await conn.request(request)
        finally:
            await conn.close()

    return asyncio.run(go())


def _topic_id(broker: str, topic: str) -> uuid.UUID:
    response = _call(
        broker,
        MetadataRequest(
            topics=(MetadataRequestTopic(topic_id=None, name=topic),),  # type: ignore[arg-type]
            allow_auto_topic_creation=False,
            include_topic_authorized_operations=False,
        ),
    )
    return response.topics[0].topic_id


def _coordinator(broker: str, group: str) -> None:
    deadline = time.monotonic() + 30
    while True:
        found = _call(broker, FindCoordinatorRequest(key_type=i8(0), coordinator_keys=(group,)))
        if found.coordinators[0].error_code not in _RETRIABLE or time.monotonic() > deadline:
            assert found.coordinators[0].error_code == ErrorCode.none
            return
        time.sleep(0.2)


def _commit(broker: str, group: str, offsets: list[tuple[uuid.UUID, int]]) -> list[tuple[uuid.UUID, int]]:
    request = oc10.OffsetCommitRequest(
        group_id=group,  # type: ignore[arg-type]
        generation_id_or_member_epoch=i32(-1),
        member_id="",
        group_instance_id=None,
        topics=tuple(
            oc10.OffsetCommitRequestTopic(
                topic_id=topic_id,
                partitions=(
                    oc10.OffsetCommitRequestPartition(
                        partition_index=i32(0),
                        committed_offset=i64(offset),
                        committed_leader_epoch=i32(-1),
                        committed_metadata="meta",
                    ),
                ),
            )
            for topic_id, offset in offsets
        ),
    )
    deadline = time.monotonic() + 30
    while True:
        response = _call(broker, request)
        codes = [(t.topic_id, int(t.partitions[0].error_code)) for t in response.topics]
        if not any(c in _RETRIABLE for _, c in codes) or time.monotonic() > deadline:
            return codes
        time.sleep(0.2)


def test_offset_commit_and_fetch_v10_by_topic_id(broker: str, topic: str) -> None:
    group = f"ids-{uuid.uuid4().hex[:8]}"
    _coordinator(broker, group)
    topic_id, unknown = _topic_id(broker, topic), uuid.uuid4()
    assert _commit(broker, group, [(topic_id, 42), (unknown, 7)]) == [
        (unknown, ErrorCode.unknown_topic_id),
        (topic_id, ErrorCode.none),
    ]

    fetched = _call(
        broker,
        of10.OffsetFetchRequest(
            groups=(
                of10.OffsetFetchRequestGroup(
                    group_id=group,  # type: ignore[arg-type]
                    member_id=None,
                    member_epoch=i32(-1),
                    topics=(
                        of10.OffsetFetchRequestTopics(topic_id=topic_id, partition_indexes=(i32(0),)),
                        of10.OffsetFetchRequestTopics(topic_id=unknown, partition_indexes=(i32(0),)),
                    ),
                ),
            ),
            require_stable=True,
        ),
    )
    (g,) = fetched.groups
    assert g.error_code == ErrorCode.none
    by_id = {t.topic_id: t.partitions[0] for t in g.topics}
    assert (int(by_id[topic_id].committed_offset), by_id[topic_id].metadata) == (42, "meta")
    assert by_id[topic_id].error_code == ErrorCode.none
    assert int(by_id[unknown].committed_offset) == -1
    assert by_id[unknown].error_code == ErrorCode.unknown_topic_id

    # every committed offset of the group, by id
    everything = _call(
        broker,
        of10.OffsetFetchRequest(
            groups=(
                of10.OffsetFetchRequestGroup(
                    group_id=group,  # type: ignore[arg-type]
                    member_id=None,
                    member_epoch=i32(-1),
                    topics=None,
                ),
            ),
            require_stable=False,
        ),
    )
    assert [(t.topic_id, int(t.partitions[0].committed_offset)) for t in everything.groups[0].topics] == [
        (topic_id, 42)
    ]

    # the same offset by name (v9)
    named = _call(
        broker,
        of9.OffsetFetchRequest(
            groups=(
                of9.OffsetFetchRequestGroup(
                    group_id=group,  # type: ignore[arg-type]
                    member_id=None,
                    member_epoch=i32(-1),
                    topics=(of9.OffsetFetchRequestTopics(name=topic, partition_indexes=(i32(0),)),),  # type: ignore[arg-type]
                ),
            ),
            require_stable=False,
        ),
    )
    assert int(named.groups[0].topics[0].partitions[0].committed_offset) == 42


def test_java_console_consumer_group_offsets(java_tools: JavaTools, broker: str, topic: str) -> None:
    """Kafka 4.4's consumer commits its group's offsets (at the newest OffsetCommit version it can use) and
    kafka-consumer-groups --describe reads them back."""
    producer = Producer({"bootstrap.servers": broker})
    for i in range(5):
        producer.produce(topic, value=f"v{i}".encode())
    assert producer.flush(15) == 0
    group = f"console-{uuid.uuid4().hex[:8]}"
    java_tools.run(
        "org.apache.kafka.tools.consumer.ConsoleConsumer",
        "--bootstrap-server", broker,
        "--topic", topic,
        "--group", group,
        "--from-beginning",
        "--max-messages", "5",
        "--timeout-ms", "20000",
    )  # fmt: skip
    described = java_tools.run(
        "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand",
        "--bootstrap-server", broker,
        "--describe",
        "--group", group,
    ).stdout  # fmt: skip
    rows = [line.split() for line in described.splitlines() if line.startswith(group)]
    assert [(r[1], r[2], r[3]) for r in rows] == [(topic, "0", "5")], described
