"""Append rules, rolling, reading bounds, timestamps lookups, truncation, retention and deletion."""

from __future__ import annotations

import random
import struct

import crc32c
import pytest

from strom.config import LogConfig
from strom.protocol.errors import (
    InvalidRecordError,
    InvalidTimestampError,
    OffsetOutOfRangeError,
    RecordError,
    RecordListTooLargeError,
    RecordTooLargeError,
)
from strom.protocol.record_batch import stamp_log_append_time, validate_batches
from strom.protocol.records import Record, build_batch
from strom.storage.log import UnexpectedAppendOffsetError

HOUR = 3_600_000


def fill(log, batch, clock, n, *, values=2, size=20, step_ms=0):
    for _ in range(n):
        log.append(batch([b"v" * size] * values, timestamp=clock.ms), leader_epoch=0)
        clock.advance(step_ms)


def follower_append(log, base_offset):
    raw = build_batch([Record(0, 0, b"k", b"v")], base_offset=base_offset)
    return log.append(raw, leader_epoch=-1, assign_offsets=False)


# appending ----------------------------------------------------------------------------------------
def test_log_append_time_is_stamped(open_log, clock, batch):
    log = open_log(LogConfig(message_timestamp_type="LogAppendTime"))
    info = log.append(batch([b"a", b"b"], timestamp=5), leader_epoch=0)
    assert info.log_append_time == clock.ms
    header = validate_batches(log.read(0, 1000).read_bytes())[0]
    assert header.timestamp_type == 1 and header.max_timestamp == clock.ms


@pytest.mark.parametrize(
    ("config", "offset_ms", "ok"),
    [
        (LogConfig(), -10 * 365 * 24 * HOUR, True),  # before.max.ms defaults to unlimited
        (LogConfig(), HOUR + 1000, False),  # after.max.ms defaults to one hour (Kafka 4)
        (LogConfig(), HOUR - 1000, True),
        (LogConfig(message_timestamp_before_max_ms=1000), -2000, False),
        (LogConfig(message_timestamp_before_max_ms=500), -500, True),
        (LogConfig(message_timestamp_after_max_ms=500), 600, False),
        (LogConfig(message_timestamp_after_max_ms=500), 500, True),
    ],
)
def test_timestamp_bounds(open_log, clock, batch, config, offset_ms, ok):
    log = open_log(config)
    raw = batch([b"a"], timestamp=clock.ms + offset_ms)
    if ok:
        log.append(raw, leader_epoch=0)
        assert log.log_end_offset == 1
    else:
        with pytest.raises(InvalidTimestampError):
            log.append(raw, leader_epoch=0)
        assert log.log_end_offset == 0 and log.size_in_bytes == 0


def test_max_timestamp_of_a_later_record_is_checked(open_log, clock, batch):
    log = open_log()
    with pytest.raises(InvalidTimestampError):
        log.append(batch([b"a", b"b"], timestamp=clock.ms, deltas=[0, 2 * HOUR]), leader_epoch=0)


def test_compacted_topic_needs_keys(open_log, clock, batch):
    log = open_log(LogConfig(cleanup_policy=("compact",)))
    log.append(batch([b"a"], timestamp=clock.ms, key=b"key", codec=4), leader_epoch=0)
    with pytest.raises(InvalidRecordError):
        log.append(batch([b"a"], timestamp=clock.ms, key=None, codec=4), leader_epoch=0)
    assert log.log_end_offset == 1


# per-record errors (KIP-467): Kafka 4.4's indexes and messages, as a Kafka broker answered them ---------
KEYLESS = "Compacted topic cannot accept message without key in topic partition topic-0"


@pytest.mark.parametrize("codec", [0, 1])
def test_every_keyless_record_of_a_compacted_batch_is_named(open_log, clock, codec):
    log = open_log(LogConfig(cleanup_policy=("compact",)))
    keys = [b"k", None, b"k", None, b"k"]
    raw = build_batch(
        [Record(i, 0, key, b"v") for i, key in enumerate(keys)], base_timestamp=clock.ms, codec=codec
    )
    with pytest.raises(InvalidRecordError) as refused:
        log.append(raw, leader_epoch=0)
    assert refused.value.record_errors == (RecordError(1, KEYLESS), RecordError(3, KEYLESS))
    assert refused.value.message == (
        "One or more records have been rejected due to 2 record errors in total, and only showing the first "
        f"three errors at most: [RecordError(batchIndex=1, message='{KEYLESS}'), "
        f"RecordError(batchIndex=3, message='{KEYLESS}')]"
    )
    assert log.log_end_offset == 0 and log.size_in_bytes == 0


def test_only_three_record_errors_are_spelled_out(open_log, clock):
    log = open_log(LogConfig(cleanup_policy=("compact",)))
    raw = build_batch([Record(i, 0, None, b"v") for i in range(5)], base_timestamp=clock.ms)
    with pytest.raises(InvalidRecordError) as refused:
        log.append(raw, leader_epoch=0)
    assert [e.batch_index for e in refused.value.record_errors] == [0, 1, 2, 3, 4]
    assert "due to 5 record errors in total" in refused.value.message
    assert refused.value.message.count("RecordError(") == 3


def test_old_middle_record_is_found_when_before_max_ms_is_set(open_log, clock):
    """The header bounds the newest record only; a finite before.max.ms reads every record."""
    log = open_log(LogConfig(message_timestamp_before_max_ms=60_000))
    now = clock.ms
    raw = build_batch([Record(0, 0, b"k", b"v"), Record(1, -HOUR, b"k", b"v")], base_timestamp=now)
    with pytest.raises(InvalidTimestampError) as refused:
        log.append(raw, leader_epoch=0)
    assert refused.value.message == "One or more records have been rejected due to invalid timestamp"
    assert refused.value.record_errors == (
        RecordError(
            1,
            f"Timestamp {now - HOUR} of message with offset 1 is out of range. "
            f"The timestamp should be within [{now - 60_000}, {now + HOUR}]",
        ),
    )


def test_timestamp_and_key_errors_together_answer_invalid_timestamp(open_log, clock):
    """A keyless record is reported for its key (checked first); any timestamp error makes the partition
    error INVALID_TIMESTAMP, and Kafka's bounds print as Java longs (now + Long.MAX_VALUE wraps)."""
    log = open_log(
        LogConfig(
            cleanup_policy=("compact",),
            message_timestamp_after_max_ms=2**63 - 1,
            message_timestamp_before_max_ms=1000,
        )
    )
    now = clock.ms
    records = [Record(0, 0, b"k", b"v"), Record(1, -5000, b"k", b"v"), Record(2, -5000, None, b"v")]
    with pytest.raises(InvalidTimestampError) as refused:
        log.append(build_batch(records, base_timestamp=now), leader_epoch=0)
    wrapped = now + 2**63 - 1 - 2**64
    assert refused.value.record_errors == (
        RecordError(
            1,
            f"Timestamp {now - 5000} of message with offset 1 is out of range. "
            f"The timestamp should be within [{now - 1000}, {wrapped}]",
        ),
        RecordError(2, KEYLESS),
    )


def test_future_record_found_through_the_header(open_log, clock):
    log = open_log()
    now = clock.ms
    raw = build_batch(
        [Record(0, 0, b"k", b"v"), Record(1, 2 * HOUR, b"k", b"v")], base_timestamp=now, codec=4
    )
    with pytest.raises(InvalidTimestampError) as refused:
        log.append(raw, leader_epoch=0)
    assert [e.batch_index for e in refused.value.record_errors] == [1]
    assert log.log_end_offset == 0


def test_log_append_time_batch_from_a_client_is_refused_per_record(open_log, clock):
    log = open_log(LogConfig(message_timestamp_type="LogAppendTime"))
    raw = bytearray(build_batch([Record(0, 0, b"key", b"value"), Record(1, 0, None, b"v")], base_timestamp=5))
    stamp_log_append_time(raw, 0, 7)
    with pytest.raises(InvalidTimestampError) as refused:
        log.append(bytes(raw), leader_epoch=0)
    assert refused.value.record_errors == (
        RecordError(
            0,
            "Invalid timestamp type in message "
            "DefaultRecord(offset=0, timestamp=7, key=3 bytes, value=5 bytes). "
            "Producer should not set timestamp type to LogAppendTime.",
        ),
        RecordError(
            1,
            "Invalid timestamp type in message "
            "DefaultRecord(offset=1, timestamp=7, key=0 bytes, value=1 bytes). "
            "Producer should not set timestamp type to LogAppendTime.",
        ),
    )


def test_header_claiming_a_future_max_timestamp_no_record_has_is_refused(open_log, clock):
    log = open_log()
    raw = bytearray(build_batch([Record(0, 0, b"k", b"v")], base_timestamp=clock.ms))
    struct.pack_into(">q", raw, 35, clock.ms + 2 * HOUR)  # max timestamp, CRC recomputed below
    raw[17:21] = struct.pack(">I", crc32c.crc32c(bytes(raw[21:])))
    with pytest.raises(InvalidTimestampError) as refused:
        log.append(bytes(raw), leader_epoch=0)
    assert refused.value.record_errors == ()


def test_size_limits(open_log, clock, batch):
    log = open_log(LogConfig(max_message_bytes=200, segment_bytes=1000))
    with pytest.raises(RecordTooLargeError):
        log.append(batch([b"x" * 300], timestamp=clock.ms), leader_epoch=0)
    with pytest.raises(RecordListTooLargeError):
        log.append(b"".join(batch([b"x" * 50], timestamp=clock.ms) for _ in range(12)), leader_epoch=0)
    assert log.log_end_offset == 0


def test_follower_append_keeps_offsets_and_epochs(open_log, clock):
    log = open_log()
    raw = build_batch(
        [Record(0, 0, b"k", b"v"), Record(3, 0, b"k", b"w")], base_offset=10, partition_leader_epoch=4
    )
    # a compacted batch: 2 records over 4 offsets
    raw = bytearray(raw)
    info = log.append(
        bytes(raw), leader_epoch=-1, assign_offsets=False, headers=validate_batches(raw, check_counts=False)
    )
    assert (info.first_offset, info.last_offset, log.log_end_offset) == (10, 13, 14)
    assert log.leader_epoch_cache.entries() == [(4, 10)]
    with pytest.raises(UnexpectedAppendOffsetError):
        log.append(
            build_batch([Record(0, 0, b"k", b"v")], base_offset=12), leader_epoch=-1, assign_offsets=False
        )


def test_leader_epochs_and_end_offset_for_epoch(open_log, clock, batch):
    log = open_log()
    log.append(batch([b"a", b"b"], timestamp=clock.ms), leader_epoch=1)
    log.append(batch([b"c"], timestamp=clock.ms), leader_epoch=1)
    log.append(batch([b"d"], timestamp=clock.ms), leader_epoch=3)
    assert log.leader_epoch_cache.entries() == [(1, 0), (3, 3)]
    assert log.end_offset_for_epoch(1) == (1, 3)
    assert log.end_offset_for_epoch(2) == (1, 3)
    assert log.end_offset_for_epoch(3) == (3, 4)
    assert log.end_offset_for_epoch(0) == (0, 0)
    assert log.end_offset_for_epoch(4) == (-1, -1)
    log.truncate_to(3)
    assert log.leader_epoch_cache.entries() == [(1, 0)]
    assert log.end_offset_for_epoch(1) == (1, 3)


# rolling ------------------------------------------------------------------------------------------
def test_roll_on_segment_bytes(open_log, clock, batch):
    log = open_log(LogConfig(segment_bytes=1000))
    fill(log, batch, clock, 30)
    sizes = [s.size for s in log.segments()]
    assert len(sizes) > 3 and all(size <= 1000 for size in sizes)
    bases = [s.base_offset for s in log.segments()]
    assert bases == sorted(bases) and bases[0] == 0


def test_roll_on_segment_ms_with_jitter(tmp_path, clock, batch):
    from strom.storage.log import Log

    config = LogConfig(segment_ms=10_000, segment_jitter_ms=4_000)
    log = Log.open(tmp_path / "t-0", config, clock=clock, rng=random.Random(7))
    jitter = log.active_segment.rolling_jitter_ms
    assert 0 <= jitter < 4000
    log.append(batch([b"a"], timestamp=clock.ms), leader_epoch=0)
    clock.advance(10_000 - jitter)
    log.append(batch([b"b"], timestamp=clock.ms), leader_epoch=0)
    assert log.segment_count == 1
    clock.advance(1)
    log.append(batch([b"c"], timestamp=clock.ms), leader_epoch=0)
    assert log.segment_count == 2 and log.active_segment.base_offset == 2
    log.close()


def test_roll_when_index_full(open_log, clock, batch):
    log = open_log(LogConfig(index_interval_bytes=1, segment_index_bytes=40))  # 5 offset entries
    fill(log, batch, clock, 20, step_ms=1)
    assert log.segment_count >= 3
    assert all(s.offset_index.entries <= 5 for s in log.segments())


def test_roll_when_relative_offset_overflows(open_log):
    log = open_log()
    log.append(build_batch([Record(0, 0, b"k", b"v")], base_offset=0), leader_epoch=-1, assign_offsets=False)
    far = 2**31 + 10
    log.append(
        build_batch([Record(0, 0, b"k", b"v")], base_offset=far), leader_epoch=-1, assign_offsets=False
    )
    assert [s.base_offset for s in log.segments()] == [0, far]
    assert log.read(far, 1000).first_offset == far


# reading ------------------------------------------------------------------------------------------
def test_read_bounds(open_log, clock, batch):
    log = open_log()
    sizes = []
    for _ in range(10):
        sizes.append(log.append(batch([b"x" * 30] * 2, timestamp=clock.ms), leader_epoch=0).valid_bytes)
    whole = sizes[0]
    assert log.read(0, whole * 3).length == whole * 3
    assert log.read(0, whole * 3 - 1).length == whole * 2  # whole batches only
    assert log.read(1, whole // 2).length == whole  # min one batch
    assert log.read(0, whole // 2, min_one_batch=False).length == 0
    assert log.read(0, 10**6, max_offset=6).length == whole * 3
    assert log.read(6, 10**6, max_offset=6).length == 0
    assert log.read(5, 10**6, max_offset=6).first_offset == 4


def test_slice_survives_segment_deletion(open_log, clock, batch):
    log = open_log(LogConfig(segment_bytes=500, file_delete_delay_ms=1000, retention_bytes=0))
    fill(log, batch, clock, 20)
    sl = log.read(0, 10**6)
    expected = sl.read_bytes()
    assert log.delete_old_segments(clock.ms) > 0
    assert list(log.dir.glob("*.deleted"))
    assert sl.read_bytes() == expected
    assert log.delete_expired_files(clock.ms + 999) == 0
    assert log.delete_expired_files(clock.ms + 1000) > 0
    assert not list(log.dir.glob("*.deleted"))


def test_fetch_offset_by_timestamp(open_log, clock, batch):
    log = open_log(LogConfig(segment_bytes=600, index_interval_bytes=100))
    base = clock.ms
    for i in range(30):
        log.append(
            batch([b"a", b"b", b"c"], timestamp=base + 100 * i, deltas=[0, 10, 20]), leader_epoch=i // 10
        )
    assert log.segment_count > 2
    assert log.fetch_offset_by_timestamp(base) == (0, base, 0)
    assert log.fetch_offset_by_timestamp(base + 5) == (1, base + 10, 0)
    assert log.fetch_offset_by_timestamp(base + 1500) == (45, base + 1500, 1)
    assert log.fetch_offset_by_timestamp(base + 2921) is None
    assert log.fetch_offset_by_timestamp(-1) == (90, -1, 2)
    assert log.fetch_offset_by_timestamp(-2) == (0, -1, 0)
    assert log.fetch_offset_by_timestamp(-3) == (89, base + 2920, 2)


def test_fetch_offset_by_timestamp_out_of_order(open_log, clock, batch):
    log = open_log()
    stamps = [clock.ms + t for t in (50, 10, 70, 30, 90, 20)]
    for ts in stamps:
        log.append(batch([b"a"], timestamp=ts), leader_epoch=0)
    for target in range(clock.ms, clock.ms + 100, 7):
        expected = next(((i, ts) for i, ts in enumerate(stamps) if ts >= target), None)
        got = log.fetch_offset_by_timestamp(target)
        assert (got[:2] if got else None) == expected
    assert log.fetch_offset_by_timestamp(-3)[:2] == (4, stamps[4])


# truncation ---------------------------------------------------------------------------------------
def test_truncate_to_middle_then_append(open_log, clock, batch):
    log = open_log(LogConfig(segment_bytes=500, index_interval_bytes=50))
    fill(log, batch, clock, 30)
    assert log.segment_count > 2
    log.truncate_to(21)  # inside batch [20, 21]: the whole batch goes
    assert log.log_end_offset == 20
    assert [h.base_offset for h, _ in log.iter_batches()][-1] == 18
    info = log.append(batch([b"n"], timestamp=clock.ms), leader_epoch=0)
    assert info.first_offset == 20
    log.truncate_fully_and_start_at(100)
    assert (log.log_start_offset, log.log_end_offset, log.segment_count) == (100, 100, 1)
    assert log.append(batch([b"n"], timestamp=clock.ms), leader_epoch=0).first_offset == 100


# retention ----------------------------------------------------------------------------------------
def test_retention_ms_by_largest_timestamp(open_log, clock, batch):
    log = open_log(LogConfig(segment_bytes=400, retention_ms=10_000, file_delete_delay_ms=0))
    fill(log, batch, clock, 20, step_ms=1000)
    count = log.segment_count
    deleted = log.delete_old_segments(clock.ms)
    assert 0 < deleted < count
    for segment in log.segments()[:-1]:
        assert clock.ms - segment.largest_timestamp() <= 10_000
    assert log.log_start_offset == log.segments()[0].base_offset
    log.delete_expired_files(clock.ms)
    assert not list(log.dir.glob("*.deleted"))
    with pytest.raises(OffsetOutOfRangeError):
        log.read(0, 100)
    clock.advance(10**7)
    log.delete_old_segments(clock.ms)
    assert log.segment_count == 1  # never the active segment


def test_retention_bytes(open_log, clock, batch):
    log = open_log(LogConfig(segment_bytes=400, retention_bytes=1000))
    fill(log, batch, clock, 30)
    log.delete_old_segments(clock.ms)
    assert log.size_in_bytes <= 1000 + 400
    assert log.size_in_bytes - log.segments()[0].size < 1000


def test_retention_disabled_for_compact_only(open_log, clock, batch):
    log = open_log(LogConfig(segment_bytes=400, retention_bytes=1, cleanup_policy=("compact",)))
    fill(log, batch, clock, 10)
    assert log.delete_old_segments(clock.ms) == 0


def test_delete_records_moves_log_start(open_log, clock, batch):
    log = open_log(LogConfig(segment_bytes=400))
    fill(log, batch, clock, 20)
    second_base = log.segments()[1].base_offset
    assert log.delete_records_before(second_base + 1) == second_base + 1
    assert log.segments()[0].base_offset == second_base
    assert log.log_start_offset == second_base + 1
    with pytest.raises(OffsetOutOfRangeError):
        log.read(second_base, 100)
    assert log.fetch_offset_by_timestamp(-2)[0] == second_base + 1
    assert log.fetch_offset_by_timestamp(clock.ms)[0] == second_base + 1
    with pytest.raises(OffsetOutOfRangeError):
        log.delete_records_before(log.log_end_offset + 1)
