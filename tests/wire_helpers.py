"""Raw Kafka requests for tests that talk to a broker over one BrokerConnection: open a connection,
auto-create a topic through Metadata v1, build Produce v9, Fetch v4 and Fetch v12 (session) requests, make
simple records, and wait for the broker to close a connection. Importable as `wire_helpers` because
pytest puts tests/ (the directory of the root conftest) on sys.path."""

from __future__ import annotations

import asyncio
import datetime
from collections.abc import Mapping
from typing import Any

from kio.schema.fetch.v4.request import FetchPartition, FetchRequest, FetchTopic
from kio.schema.fetch.v12 import request as fetch12
from kio.schema.metadata.v1.request import MetadataRequest, MetadataRequestTopic
from kio.schema.produce.v9.request import PartitionProduceData, ProduceRequest, TopicProduceData
from kio.static.primitive import i8, i16, i32, i32Timedelta, i64

from strom.client.connection import BrokerConnection
from strom.protocol.errors import ErrorCode
from strom.protocol.records import Record
from strom.testing.embedded import EmbeddedBroker

MAX_BYTES = 1 << 20


def ms(value: int) -> i32Timedelta:
    """A kio millisecond duration (timeouts, max wait)."""
    return i32Timedelta.parse(datetime.timedelta(milliseconds=value))


async def connect(broker: EmbeddedBroker) -> BrokerConnection:
    """A fresh connection to the broker's bootstrap address."""
    host, port = broker.bootstrap_servers.split(":")
    return await BrokerConnection.open(host, int(port))


async def create_topic(conn: BrokerConnection, topic: str) -> None:
    """Auto-create `topic` by asking Metadata v1 for it (a fresh topic may answer LEADER_NOT_AVAILABLE)."""
    resp = await conn.request(MetadataRequest(topics=(MetadataRequestTopic(name=topic),)))
    assert resp.topics[0].error_code in (ErrorCode.none, ErrorCode.leader_not_available)


def produce_request(
    topic: str, parts: Mapping[int, bytes], acks: int = -1, timeout_ms: int = 5000
) -> ProduceRequest:
    """Produce v9 for one topic: `parts` maps a partition to its records (one or more batches, joined)."""
    return ProduceRequest(
        transactional_id=None,
        acks=i16(acks),
        timeout=ms(timeout_ms),
        topic_data=(
            TopicProduceData(
                name=topic,
                partition_data=tuple(
                    PartitionProduceData(index=i32(p), records=records) for p, records in parts.items()
                ),
            ),
        ),
    )


def fetch_request(
    topic: str,
    parts: Mapping[int, int],
    *,
    max_wait_ms: int = 0,
    min_bytes: int = 1,
    replica_id: int = -1,
    partition_max_bytes: int = MAX_BYTES,
) -> FetchRequest:
    """Fetch v4 (read_uncommitted) for one topic: `parts` maps a partition to its fetch offset."""
    return FetchRequest(
        replica_id=i32(replica_id),
        max_wait=ms(max_wait_ms),
        min_bytes=i32(min_bytes),
        max_bytes=i32(MAX_BYTES),
        isolation_level=i8(0),
        topics=(
            FetchTopic(
                topic=topic,
                partitions=tuple(
                    FetchPartition(
                        partition=i32(p),
                        fetch_offset=i64(offset),
                        partition_max_bytes=i32(partition_max_bytes),
                    )
                    for p, offset in parts.items()
                ),
            ),
        ),
    )


def records(n: int, start: int = 0) -> list[Record]:
    """`n` records keyed k<start+i> with values v<start+i>, offset and timestamp deltas 0..n-1."""
    return [Record(i, i, f"k{start + i}".encode(), f"v{start + i}".encode()) for i in range(n)]


async def wait_closed(conn: BrokerConnection, timeout: float = 5.0) -> bool:
    """Whether the broker closed `conn` within `timeout` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not conn.closed and loop.time() < deadline:
        await asyncio.sleep(0.02)
    return conn.closed


def session_fetch(topic: str, offset: int, session_id: int, epoch: int, max_bytes: int = MAX_BYTES) -> Any:
    """Fetch v12 of partition 0 of `topic` from `offset` in fetch session (`session_id`, `epoch`): a
    consumer's, max_wait 0, min_bytes 1, `max_bytes` for the request and the partition."""
    return fetch12.FetchRequest(
        replica_id=i32(-1),  # type: ignore[arg-type]
        max_wait=ms(0), min_bytes=i32(1), max_bytes=i32(max_bytes), isolation_level=i8(0),
        session_id=i32(session_id), session_epoch=i32(epoch),
        topics=(fetch12.FetchTopic(topic=topic, partitions=(fetch12.FetchPartition(
            partition=i32(0), current_leader_epoch=i32(-1), fetch_offset=i64(offset),
            last_fetched_epoch=i32(-1), log_start_offset=i64(-1), partition_max_bytes=i32(max_bytes)),)),),
        forgotten_topics_data=(), rack_id="",
    )  # fmt: skip
