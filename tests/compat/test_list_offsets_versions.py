"""ListOffsets v1-v11 and every special timestamp, as Kafka 4.4 answers them for a broker without tiered
storage (run with `--kafka-reference` to check the expectations against Apache Kafka itself):
-1 latest, -2 earliest, -3 max timestamp (v7+, KIP-734), -4 earliest local (v8+, KIP-1005: the log start
offset without tiered storage), -5 latest tiered (v9+, KIP-1005) and -6 earliest pending upload (v11+,
KIP-1023), both offset -1 with nothing in remote storage. A special timestamp below its version, or an
unknown negative one, answers UNSUPPORTED_VERSION. Kafka's GetOffsetShell sends the newest version for
`--time -4/-5/-6` and their names.
"""

from __future__ import annotations

import asyncio
import datetime
import time
from typing import Any

import pytest
from compat_support import JavaTools, TopicMaker
from kio.schema.delete_records.v2.request import (
    DeleteRecordsPartition,
    DeleteRecordsRequest,
    DeleteRecordsTopic,
)
from kio.static.primitive import i8, i32, i32Timedelta, i64
from wire_helpers import produce_request

from strom.client.connection import BrokerConnection
from strom.protocol.errors import ErrorCode
from strom.protocol.records import Record, build_batch
from strom.protocol.registry import request_type

pytestmark = pytest.mark.compat

UNSUPPORTED = ErrorCode.unsupported_version
# the first version that may ask each special timestamp, as Kafka 4.4's broker checks it
MIN_VERSION = {-1: 1, -2: 1, -3: 7, -4: 8, -5: 9, -6: 11}


def list_offsets(version: int, topic: str, timestamp: int) -> Any:
    """ListOffsets `version` asking partition 0 of `topic` for one timestamp."""
    cls = request_type(2, version)
    assert cls is not None
    module = __import__(cls.__module__, fromlist=["ListOffsetsTopic"])
    extra: dict[str, Any] = {}
    if version >= 2:
        extra["isolation_level"] = i8(0)
    if version >= 10:
        extra["timeout"] = i32Timedelta.parse(datetime.timedelta(seconds=5))
    return cls(
        replica_id=i32(-1),
        topics=(
            module.ListOffsetsTopic(
                name=topic,
                partitions=(module.ListOffsetsPartition(partition_index=i32(0), timestamp=i64(timestamp)),),
            ),
        ),
        **extra,
    )


async def ask(broker: str, version: int, topic: str, timestamp: int) -> tuple[int, int, int, int]:
    """(error, timestamp, offset, leader epoch) of partition 0 for one timestamp."""
    host, port = broker.rsplit(":", 1)
    conn = await BrokerConnection.open(host, int(port))
    try:
        resp = await conn.request(list_offsets(version, topic, timestamp))
    finally:
        await conn.close()
    part = resp.topics[0].partitions[0]
    return int(part.error_code), int(part.timestamp), int(part.offset), int(getattr(part, "leader_epoch", -1))


@pytest.fixture
def topic_with_records(broker: str, make_topic: TopicMaker) -> tuple[str, int]:
    """A topic whose partition 0 holds offsets 0-2 (timestamps base, base+10, base+20), the first deleted:
    log start 1, high watermark 3. Returns (topic, base timestamp)."""
    topic = make_topic(partitions=1)
    base = int(time.time() * 1000) - 60_000

    async def fill() -> None:
        host, port = broker.rsplit(":", 1)
        conn = await BrokerConnection.open(host, int(port))
        try:
            for i in range(3):
                batch = build_batch([Record(0, 0, None, f"v{i}".encode())], base_timestamp=base + 10 * i)
                deadline = time.monotonic() + 15
                while True:
                    resp = await conn.request(produce_request(topic, {0: batch}, acks=1))
                    error = resp.responses[0].partition_responses[0].error_code
                    if error != ErrorCode.not_leader_or_follower or time.monotonic() > deadline:
                        break
                    await asyncio.sleep(0.05)
                assert error == ErrorCode.none
            deleted = await conn.request(
                DeleteRecordsRequest(
                    topics=(
                        DeleteRecordsTopic(
                            name=topic,
                            partitions=(DeleteRecordsPartition(partition_index=i32(0), offset=i64(1)),),
                        ),
                    ),
                    timeout=i32Timedelta.parse(datetime.timedelta(seconds=10)),
                )
            )
            assert deleted.topics[0].partitions[0].error_code == ErrorCode.none
        finally:
            await conn.close()

    asyncio.run(fill())
    return topic, base


@pytest.mark.parametrize("version", range(1, 12))
def test_special_timestamps_by_version(
    broker: str, topic_with_records: tuple[str, int], version: int
) -> None:
    topic, base = topic_with_records
    epoch = 0 if version >= 4 else -1
    expected = {
        -1: (ErrorCode.none, -1, 3, epoch),
        -2: (ErrorCode.none, -1, 1, epoch),
        -3: (ErrorCode.none, base + 20, 2, epoch),
        -4: (ErrorCode.none, -1, 1, epoch),
        -5: (ErrorCode.none, -1, -1, -1),
        -6: (ErrorCode.none, -1, -1, -1),
        -7: (UNSUPPORTED, -1, -1, -1),
        base + 5: (ErrorCode.none, base + 10, 1, epoch),
    }
    for timestamp, answer in expected.items():
        if timestamp < 0 and version < MIN_VERSION.get(timestamp, 99):
            answer = (UNSUPPORTED, -1, -1, -1)
        got = asyncio.run(ask(broker, version, topic, timestamp))
        assert got == answer, (version, timestamp)


def test_get_offset_shell_special_times(java_tools: JavaTools, broker: str,
                                        topic_with_records: tuple[str, int]) -> None:
    """Kafka's GetOffsetShell asks with ListOffsets v11 for the KIP-1005/KIP-1023 timestamps."""
    topic, _ = topic_with_records

    def offsets(time_arg: str) -> list[str]:
        out = java_tools.run("org.apache.kafka.tools.GetOffsetShell", "--bootstrap-server", broker,
                             "--topic", topic, "--time", time_arg).stdout
        return out.split()

    assert offsets("-4") == offsets("earliest-local") == [f"{topic}:0:1"]
    assert offsets("-2") == [f"{topic}:0:1"]
    assert offsets("max-timestamp") == [f"{topic}:0:2"]
    assert offsets("-5") == offsets("latest-tiered") == offsets("-6") == offsets("earliest-pending-upload")
