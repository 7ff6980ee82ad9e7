"""Record batch v2 header: byte layout against Kafka's documented format and kafka-python, validation,
and the in-place rewrites (base offset, leader epoch, LogAppendTime)."""

from __future__ import annotations

import struct

import pytest
from crc32c import crc32c
from hypothesis import given, settings
from hypothesis import strategies as st
from kafka.record.default_records import DefaultRecordBatch, DefaultRecordBatchBuilder

from strom.protocol.errors import CorruptRecordError
from strom.protocol.record_batch import (
    BATCH_HEADER_SIZE,
    LOG_OVERHEAD,
    iter_batches,
    parse_header,
    set_base_offset,
    set_partition_leader_epoch,
    stamp_log_append_time,
    validate_batches,
)
from strom.protocol.records import Record, build_batch


def kafka_python_batch(values: list[bytes], *, base_ts: int, producer_id: int = -1) -> bytes:
    builder = DefaultRecordBatchBuilder(2, 0, 0, producer_id, 0 if producer_id >= 0 else -1, -1, 1 << 20)
    for i, value in enumerate(values):
        builder.append(i, base_ts + i, b"key", value, [])
    return bytes(builder.build())


def test_header_fields_follow_the_documented_layout():
    raw = kafka_python_batch([b"one", b"two", b"three"], base_ts=1000, producer_id=42)
    header = parse_header(raw)
    # Kafka protocol guide: baseOffset int64, batchLength int32, partitionLeaderEpoch int32, magic int8,
    # crc uint32, attributes int16, lastOffsetDelta int32, baseTimestamp, maxTimestamp, producerId int64,
    # producerEpoch int16, baseSequence int32, recordsCount int32.
    assert header.batch_length == len(raw) - LOG_OVERHEAD == struct.unpack_from(">i", raw, 8)[0]
    assert header.magic == raw[16] == 2
    assert header.crc == struct.unpack_from(">I", raw, 17)[0] == crc32c(raw[21:])
    assert header.last_offset_delta == 2
    assert (header.base_timestamp, header.max_timestamp) == (1000, 1002)
    assert header.producer_id == 42 and header.has_producer_id
    assert header.records_count == 3
    assert header.size == len(raw)
    assert header.compression == 0 and header.timestamp_type == 0
    assert not header.is_transactional and not header.is_control


def test_build_batch_matches_kafka_python_bytes():
    records = [Record(i, i, b"key", v) for i, v in enumerate([b"one", b"two"])]
    # kafka-python writes partitionLeaderEpoch 0 where the Java producer writes -1
    ours = build_batch(records, base_timestamp=5000, partition_leader_epoch=0)
    theirs = kafka_python_batch([b"one", b"two"], base_ts=5000)
    assert ours == theirs


def test_attribute_bits():
    raw = build_batch([Record(0, 0, None, b"x")], transactional=True, control=True, codec=1, base_timestamp=1)
    header = parse_header(raw)
    assert header.is_transactional and header.is_control and header.compression == 1
    assert header.attributes == 0x31


def test_rewrites_keep_or_fix_the_crc():
    raw = bytearray(build_batch([Record(0, 0, b"k", b"v"), Record(1, 7, b"k", b"w")], base_timestamp=100))
    set_base_offset(raw, 0, 12345)
    set_partition_leader_epoch(raw, 0, 9)
    header = validate_batches(raw)[0]
    assert (header.base_offset, header.partition_leader_epoch, header.last_offset) == (12345, 9, 12346)
    stamp_log_append_time(raw, 0, 999_999)
    header = validate_batches(raw)[0]
    assert header.timestamp_type == 1 and header.max_timestamp == 999_999
    assert header.base_timestamp == 100
    stamped = DefaultRecordBatch(bytes(raw))
    assert stamped.validate_crc()
    assert [r.timestamp for r in stamped] == [999_999, 999_999]  # consumers see the append time


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda b: b.__setitem__(16, 1), "magic"),
        (lambda b: b.__setitem__(len(b) - 1, b[-1] ^ 1), "CRC"),
        (lambda b: struct.pack_into(">i", b, 8, 10), "minimum"),
        (lambda b: struct.pack_into(">i", b, 8, len(b)), "claims"),
    ],
)
def test_validate_refuses_broken_batches(mutate, message):
    raw = bytearray(build_batch([Record(0, 0, b"k", b"v")], base_timestamp=1))
    mutate(raw)
    with pytest.raises(CorruptRecordError, match=message):
        validate_batches(raw)


def test_validate_checks_count_against_last_offset_delta():
    raw = bytearray(build_batch([Record(0, 0, b"k", b"v"), Record(1, 0, b"k", b"v")], base_timestamp=1))
    struct.pack_into(">i", raw, 23, 5)  # lastOffsetDelta
    struct.pack_into(">I", raw, 17, crc32c(bytes(raw[21:])))
    with pytest.raises(CorruptRecordError, match="record count"):
        validate_batches(raw)
    # a follower copying a compacted batch skips the count rule
    assert validate_batches(raw, check_counts=False)[0].last_offset_delta == 5


def test_validate_refuses_trailing_bytes_and_empty():
    raw = build_batch([Record(0, 0, b"k", b"v")], base_timestamp=1)
    with pytest.raises(CorruptRecordError):
        validate_batches(raw + b"\x00" * 5)
    with pytest.raises(CorruptRecordError):
        validate_batches(b"")


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(1, 5), min_size=1, max_size=6), st.integers(0, 200))
def test_iter_batches_stops_quietly_at_partial_tail(counts, cut):
    batches = [
        build_batch(
            [Record(i, 0, b"k", b"v" * n) for i in range(n)], base_offset=sum(counts[:j]), base_timestamp=1
        )
        for j, n in enumerate(counts)
    ]
    buf = b"".join(batches)
    cut_at = max(0, len(buf) - cut)
    seen = list(iter_batches(buf[:cut_at]))
    expected, pos = [], 0
    for raw in batches:
        if pos + len(raw) <= cut_at:
            expected.append(pos)
        pos += len(raw)
    assert [p for p, _ in seen] == expected
    assert all(h.size >= BATCH_HEADER_SIZE for _, h in seen)
