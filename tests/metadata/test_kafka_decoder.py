"""Strom's metadata codecs against Apache Kafka 4.4's: a `__cluster_metadata-0` segment written by Strom,
holding every version of every metadata record and every KRaft control record, is decoded by Kafka's
`kafka-dump-log --cluster-metadata-decoder` to the same fields; and the segment a real Kafka 4.4 node
writes is decoded by Strom, every record re-encoding to Kafka's exact bytes."""

from __future__ import annotations

import dataclasses
import shutil
import time
import uuid
from pathlib import Path

import pytest

from strom.metadata.batches import build_control_batch, build_metadata_batch, read_metadata_batches
from strom.metadata.records import PartitionRecord, RegisterBrokerRecord, TopicRecord
from strom.metadata.schema import Message
from strom.metadata.serde import (
    ApiMessageAndVersion,
    decode_metadata_record,
    encode_control_record,
    encode_metadata_record,
)
from strom.protocol.records import decode_records

from .kafka_jars import dump_cluster_metadata
from .samples import every_record_version, sample

# kafka-dump-log's label of each KRaft control record type
CONTROL_LABELS = {2: "LeaderChange", 3: "SnapshotHeader", 4: "SnapshotFooter", 5: "KRaftVersion",
                  6: "KRaftVoters"}


def _control_sample(cls: type[Message]) -> Message:
    # Kafka prints a control record at the version its own "version" field names, so keep that real.
    return dataclasses.replace(sample(cls, cls.CURRENT_VERSION), version=cls.CURRENT_VERSION)  # type: ignore[attr-defined]


def test_kafka_decodes_every_record_strom_writes(tmp_path: Path) -> None:
    segment = tmp_path / "__cluster_metadata-0" / "00000000000000000000.log"
    segment.parent.mkdir()
    expected: dict[int, tuple[str, dict[str, object]]] = {}
    data = bytearray()
    offset = 0
    for cls, version in every_record_version():
        if hasattr(cls, "API_KEY"):
            message = sample(cls, version)
            data += build_metadata_batch([ApiMessageAndVersion(message, version)], base_offset=offset,
                                         timestamp_ms=1_700_000_000_000, leader_epoch=3)
            expected[offset] = (cls.TYPE_NAME, {"version": version, **message.to_json(version)})  # type: ignore[attr-defined]
        elif version == cls.CURRENT_VERSION:  # type: ignore[attr-defined]
            message = _control_sample(cls)
            data += build_control_batch([message], base_offset=offset, timestamp_ms=1_700_000_000_000,
                                        leader_epoch=3)
            expected[offset] = (CONTROL_LABELS[cls.CONTROL_TYPE], message.to_json(version))  # type: ignore[attr-defined]
        else:
            continue
        offset += 1
    segment.write_bytes(bytes(data))

    decoded = dump_cluster_metadata(segment)
    assert decoded.keys() == expected.keys()
    for off, want in expected.items():
        assert decoded[off] == want, f"offset {off}"
    # and Strom reads its own segment back
    ours = [r for batch in read_metadata_batches(bytes(data)) for r in batch.records]
    assert [off for off, _ in ours] == sorted(expected)


@pytest.mark.slow
def test_strom_decodes_the_log_kafka_writes(tmp_path: Path) -> None:
    from benchmarks.peers.brokers import start_kafka
    from benchmarks.peers.tools import ToolUnavailable, ensure_tools

    try:
        ensure_tools()
    except ToolUnavailable as exc:
        pytest.skip(str(exc))
    from confluent_kafka.admin import AdminClient, NewTopic

    topic = f"strom-kraft-{uuid.uuid4().hex[:8]}"
    with start_kafka(heap="512m") as kafka:
        admin = AdminClient({"bootstrap.servers": kafka.bootstrap})
        futures = admin.create_topics([NewTopic(topic, num_partitions=3, replication_factor=1,
                                                config={"retention.ms": "86400000"})])
        futures[topic].result(30)
        log = kafka.workdir / "data" / "__cluster_metadata-0" / "00000000000000000000.log"
        # The controller appends the topic's records before answering; wait (bounded) for them to reach
        # the file, then copy it before the broker stops and its directory is removed.
        copy = tmp_path / "00000000000000000000.log"
        deadline = time.monotonic() + 30
        while True:
            shutil.copyfile(log, copy)
            raw = copy.read_bytes()
            if topic.encode() in raw or time.monotonic() > deadline:
                break
            time.sleep(0.2)
    records = []
    for batch in read_metadata_batches(raw):
        records.extend(batch.records)
        if batch.is_control:
            continue
        # byte for byte: every value Kafka wrote re-encodes identically
        for kafka_record in decode_records(_batch_bytes(raw, batch.header.base_offset)):
            again = decode_metadata_record(kafka_record.value or b"")
            assert encode_metadata_record(again.message, again.version) == kafka_record.value

    messages = [r.message for _, r in records]
    topics = [m for m in messages if isinstance(m, TopicRecord) and m.name == topic]
    assert len(topics) == 1
    partitions = sorted(m.partition_id for m in messages
                        if isinstance(m, PartitionRecord) and m.topic_id == topics[0].topic_id)
    assert partitions == [0, 1, 2]
    assert any(isinstance(m, RegisterBrokerRecord) and m.broker_id == 1 for m in messages)
    # control batches too (the leader's LeaderChange), re-encoded to Kafka's bytes
    for batch in read_metadata_batches(raw):
        if batch.is_control:
            for (_, rec), kafka_record in zip(batch.records, decode_records(
                    _batch_bytes(raw, batch.header.base_offset)), strict=True):
                assert encode_control_record(rec.message) == (kafka_record.key, kafka_record.value)


def _batch_bytes(raw: bytes, base_offset: int) -> bytes:
    from strom.protocol.record_batch import iter_batches

    for position, header in iter_batches(raw):
        if header.base_offset == base_offset:
            return raw[position : position + header.size]
    raise AssertionError(f"no batch at {base_offset}")
