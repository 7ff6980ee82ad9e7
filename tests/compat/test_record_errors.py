"""Per-record produce errors (KIP-467) through librdkafka (confluent-kafka), against the broker under test.

A broker refuses a batch holding records that break a topic rule and names the bad ones in Produce v8+
`record_errors`. librdkafka (as its test 0011 "produce_batch" checks against Apache Kafka) then fails the
named records with the broker's error (INVALID_RECORD when several are named) and the other records of
the same batch with its local _INVALID_DIFFERENT_RECORD; records sent in batches of their own succeed.
confluent-kafka's delivery reports do not carry the broker's per-record messages, so a raw Produce v9
(kio on a plain socket; the batch from Strom's record encoder, which Kafka accepts as any producer's)
checks the indexes and Kafka's messages.
"""

from __future__ import annotations

import datetime
import io
import socket
import struct
import time
from collections import Counter
from typing import Any

import pytest
from compat_support import TopicMaker, consume_partition
from confluent_kafka import KafkaError, Message, Producer
from kio.schema.errors import ErrorCode
from kio.schema.produce.v9.request import PartitionProduceData, ProduceRequest, TopicProduceData
from kio.schema.produce.v9.response import ProduceResponse
from kio.serial import entity_reader, entity_writer
from kio.static.primitive import i16, i32, i32Timedelta

from strom.protocol.records import Record, build_batch

pytestmark = pytest.mark.compat

COUNT = 100


def _produce(broker: str, topic: str, messages: list[dict[str, object]],
             extra: dict[str, object] | None = None) -> list[tuple[KafkaError | None, Message]]:
    """Produce `messages` to partition 0 with one produce_batch call; every delivery report, in order."""
    reports: list[tuple[KafkaError | None, Message]] = []
    producer = Producer({"bootstrap.servers": broker, "linger.ms": 100, "retries": 0, **(extra or {})})
    queued = producer.produce_batch(topic, messages, partition=0,
                                    on_delivery=lambda err, msg: reports.append((err, msg)))
    assert queued == len(messages)
    deadline = time.monotonic() + 30
    while len(reports) < len(messages) and time.monotonic() < deadline:
        producer.poll(0.1)
    assert len(reports) == len(messages), f"{len(reports)} of {len(messages)} delivery reports in 30 s"
    return reports


def _keyless_every_tenth() -> list[dict[str, object]]:
    messages: list[dict[str, object]] = []
    for i in range(COUNT):
        message: dict[str, object] = {"value": f"message {i}".encode()}
        if i % 10:
            message["key"] = f"key {i}".encode()
        messages.append(message)
    return messages


def _outcome(err: KafkaError | None) -> int:
    return KafkaError.NO_ERROR if err is None else err.code()


def test_keyless_records_fail_and_the_rest_of_their_batch_too(broker: str, make_topic: TopicMaker) -> None:
    topic = make_topic(configs={"cleanup.policy": "compact"})
    reports = _produce(broker, topic, _keyless_every_tenth())
    outcomes = Counter(_outcome(err) for err, _msg in reports)
    assert outcomes == {KafkaError.INVALID_RECORD: 10, KafkaError._INVALID_DIFFERENT_RECORD: 90}
    for i, (err, msg) in enumerate(reports):
        assert msg.value() == f"message {i}".encode()
        if i % 10 == 0:
            assert err is not None and err.code() == KafkaError.INVALID_RECORD
    # the whole batch was refused: nothing of it is in the log
    producer = Producer({"bootstrap.servers": broker})
    producer.produce(topic, key=b"after", value=b"after", partition=0)
    assert producer.flush(15) == 0
    [after] = consume_partition(broker, topic, count=1)
    assert (after.offset(), after.key()) == (0, b"after")


def test_keyless_records_in_batches_of_their_own_fail_alone(broker: str, make_topic: TopicMaker) -> None:
    topic = make_topic(configs={"cleanup.policy": "compact"})
    reports = _produce(broker, topic, _keyless_every_tenth(), {"batch.size": 1})
    outcomes = Counter(_outcome(err) for err, _msg in reports)
    assert outcomes == {KafkaError.INVALID_RECORD: 10, KafkaError.NO_ERROR: 90}
    stored = consume_partition(broker, topic, count=90)
    assert [m.key() for m in stored] == [f"key {i}".encode() for i in range(COUNT) if i % 10]


def _produce_with_timestamps(broker: str, topic: str, timestamps: list[int]) -> list[int]:
    """One record per timestamp, in one batch (produce_batch cannot set timestamps); their outcomes."""
    producer = Producer({"bootstrap.servers": broker, "linger.ms": 100, "retries": 0})
    reports: list[int] = []
    for timestamp in timestamps:
        producer.produce(topic, key=b"k", value=b"v", partition=0, timestamp=timestamp,
                         on_delivery=lambda err, _msg: reports.append(_outcome(err)))
    assert producer.flush(30) == 0
    return reports


def test_stale_timestamps_fail_their_batch(broker: str, make_topic: TopicMaker) -> None:
    """Several bad records each get INVALID_RECORD from librdkafka; with a single one, this librdkafka
    fails the whole batch with the partition's error, INVALID_TIMESTAMP (as against Apache Kafka)."""
    topic = make_topic(configs={"message.timestamp.before.max.ms": "3600000"})
    now = int(time.time() * 1000)
    day = 86_400_000
    outcomes = _produce_with_timestamps(broker, topic, [now, now - day, now, now - day, now])
    different, invalid = KafkaError._INVALID_DIFFERENT_RECORD, KafkaError.INVALID_RECORD
    assert outcomes == [different, invalid, different, invalid, different]
    outcomes = _produce_with_timestamps(broker, topic, [now, now, now - day, now, now])
    assert outcomes == [KafkaError.INVALID_TIMESTAMP] * 5
    assert _produce_with_timestamps(broker, topic, [now]) == [KafkaError.NO_ERROR]
    [only] = consume_partition(broker, topic, count=1)
    assert only.offset() == 0  # nothing of the refused batches was appended


# The same refusals on the wire, Produce v9 written and read with kio: indexes and Kafka's messages --------
def _produce_v9(broker: str, topic: str, batch: bytes) -> Any:
    request = ProduceRequest(
        transactional_id=None,
        acks=i16(-1),
        timeout=i32Timedelta.parse(datetime.timedelta(seconds=10)),
        topic_data=(
            TopicProduceData(name=topic, partition_data=(PartitionProduceData(index=i32(0), records=batch),)),
        ),
    )
    body = io.BytesIO()
    entity_writer(ProduceRequest)(body, request)
    client_id = b"record-errors"
    # request header v2: api key, version, correlation id, client id, no tagged fields
    frame = struct.pack(">hhih", 0, 9, 7, len(client_id)) + client_id + b"\x00" + body.getvalue()
    host, port = broker.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=15) as sock:
        sock.sendall(struct.pack(">i", len(frame)) + frame)
        size = struct.unpack(">i", _recv_exactly(sock, 4))[0]
        answer = _recv_exactly(sock, size)
    assert struct.unpack(">i", answer[:4])[0] == 7
    response, _ = entity_reader(ProduceResponse)(memoryview(answer), 5)  # after the v1 header's tags
    return response.responses[0].partition_responses[0]


def _recv_exactly(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        assert chunk, "the broker closed the connection"
        data += chunk
    return data


def test_record_errors_on_the_wire(broker: str, make_topic: TopicMaker) -> None:
    topic = make_topic(configs={"cleanup.policy": "compact"})
    keyless = f"Compacted topic cannot accept message without key in topic partition {topic}-0"
    now = int(time.time() * 1000)
    keys = [b"k", None, b"k", None]
    batch = build_batch([Record(i, 0, key, b"v") for i, key in enumerate(keys)], base_timestamp=now)
    part = _produce_v9(broker, topic, batch)
    assert part.error_code == ErrorCode.invalid_record
    assert [(e.batch_index, e.batch_index_error_message) for e in part.record_errors] == [
        (1, keyless),
        (3, keyless),
    ]
    assert part.error_message == (
        "One or more records have been rejected due to 2 record errors in total, and only showing the first "
        f"three errors at most: [RecordError(batchIndex=1, message='{keyless}'), "
        f"RecordError(batchIndex=3, message='{keyless}')]"
    )
    assert (part.base_offset, part.log_start_offset) == (-1, 0)

    hour = 3_600_000
    records = [Record(0, 0, b"k", b"v"), Record(1, 3 * hour, b"k", b"v"), Record(2, 3 * hour, None, b"v")]
    part = _produce_v9(broker, topic, build_batch(records, base_timestamp=now, codec=1))
    assert part.error_code == ErrorCode.invalid_timestamp
    assert part.error_message == "One or more records have been rejected due to invalid timestamp"
    [stale, missing_key] = part.record_errors
    assert stale.batch_index == 1
    assert stale.batch_index_error_message.startswith(
        f"Timestamp {now + 3 * hour} of message with offset 1 is out of range. "
        "The timestamp should be within ["
    )
    assert (missing_key.batch_index, missing_key.batch_index_error_message) == (2, keyless)
