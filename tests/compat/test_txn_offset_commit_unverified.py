"""TxnOffsetCommit from a producer its transaction coordinator does not know, as Kafka 4.4 answers it (each
test starts a fresh broker of the kind under test, Strom or Kafka with `--kafka-reference`):

- before any group has looked up its coordinator, __consumer_offsets does not exist: Kafka verifies the
  transaction first (KIP-890), finds no such partition, and its group coordinator answers
  COORDINATOR_NOT_AVAILABLE (not NOT_COORDINATOR);
- once the offsets and transaction topics exist, an unknown transactional id is INVALID_PRODUCER_ID_MAPPING.
  kafkajs's own TxnOffsetCommit test ("ignores invalid transaction fields", written against Kafka 2.4)
  expects success there; Kafka 4.4 and Strom both refuse.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from compat_support import BrokerUnderTest, TopicMaker
from kio.schema.find_coordinator.v1.request import FindCoordinatorRequest
from kio.schema.txn_offset_commit.v0 import request as toc0
from kio.static.primitive import i8, i16, i32, i64

from benchmarks.peers import brokers
from strom.client.connection import BrokerConnection
from strom.protocol.errors import ErrorCode

pytestmark = pytest.mark.compat


@pytest.fixture
def fresh(broker_under_test: BrokerUnderTest) -> Iterator[str]:
    """A new single-node broker of the kind under test, with no internal topic created yet."""
    proc = brokers.start_kafka(heap="512m") if broker_under_test.kind == "kafka" else brokers.start_strom()
    try:
        yield proc.bootstrap
    finally:
        proc.stop()


def _send(broker: str, request: Any) -> Any:
    host, port = broker.rsplit(":", 1)

    async def go() -> Any:
        conn = await BrokerConnection.open(host, int(port))
        try:
            return await conn.request(request)
        finally:
            await conn.close()

    return asyncio.run(go())


def _commit(broker: str, group: str, topic: str) -> list[int]:
    response = _send(
        broker,
        toc0.TxnOffsetCommitRequest(
            transactional_id="foo",  # type: ignore[arg-type]
            group_id=group,  # type: ignore[arg-type]
            producer_id=i64(999),  # type: ignore[arg-type]
            producer_epoch=i16(999),
            topics=(
                toc0.TxnOffsetCommitRequestTopic(
                    name=topic,  # type: ignore[arg-type]
                    partitions=tuple(
                        toc0.TxnOffsetCommitRequestPartition(
                            partition_index=i32(p), committed_offset=i64(0), committed_metadata=None
                        )
                        for p in (0, 1)
                    ),
                ),
            ),
        ),
    )
    return [int(p.error_code) for t in response.topics for p in t.partitions]


def _find_coordinator(broker: str, key: str, key_type: int) -> None:
    deadline = time.monotonic() + 60
    while True:
        response = _send(broker, FindCoordinatorRequest(key=key, key_type=i8(key_type)))
        if response.error_code == ErrorCode.none or time.monotonic() > deadline:
            assert response.error_code == ErrorCode.none
            return
        time.sleep(0.2)


def test_txn_offset_commit_of_an_unknown_producer(fresh: str) -> None:
    topic, group = f"toc-{uuid.uuid4().hex[:8]}", f"toc-group-{uuid.uuid4().hex[:8]}"
    TopicMaker(fresh)(partitions=2, name=topic)
    assert _commit(fresh, group, topic) == [ErrorCode.coordinator_not_available] * 2
    _find_coordinator(fresh, group, 0)  # creates __consumer_offsets
    _find_coordinator(fresh, "foo", 1)  # creates __transaction_state
    retriable = {ErrorCode.coordinator_not_available, ErrorCode.not_coordinator,
                 ErrorCode.coordinator_load_in_progress}  # fmt: skip
    deadline = time.monotonic() + 60
    while (errors := _commit(fresh, group, topic))[0] in retriable and time.monotonic() < deadline:
        time.sleep(0.2)
    assert errors == [ErrorCode.invalid_producer_id_mapping] * 2
