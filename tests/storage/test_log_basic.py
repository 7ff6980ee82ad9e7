"""Append, read, reopen and roll of one partition log."""

from __future__ import annotations

import pytest

from strom.config import LogConfig
from strom.protocol.errors import CorruptRecordError, OffsetOutOfRangeError
from strom.protocol.record_batch import validate_batches
from strom.protocol.records import decode_records


def test_append_assigns_offsets_and_read_returns_them(open_log, clock, batch):
    log = open_log()
    first = log.append(batch([b"a", b"b"], timestamp=clock.ms), leader_epoch=3)
    second = log.append(batch([b"c"], timestamp=clock.ms), leader_epoch=3)
    assert (first.first_offset, first.last_offset) == (0, 1)
    assert (second.first_offset, second.last_offset) == (2, 2)
    assert log.log_end_offset == 3
    data = log.read(0, 1 << 20).read_bytes()
    headers = validate_batches(data)
    assert [h.base_offset for h in headers] == [0, 2]
    assert [h.partition_leader_epoch for h in headers] == [3, 3]
    assert [r.value for r in decode_records(data[: headers[0].size])] == [b"a", b"b"]
    assert log.read(2, 1 << 20).first_offset == 2
    assert log.read(3, 1 << 20).length == 0


def test_read_out_of_range(open_log, clock, batch):
    log = open_log()
    log.append(batch([b"a"], timestamp=clock.ms), leader_epoch=0)
    with pytest.raises(OffsetOutOfRangeError):
        log.read(2, 100)
    with pytest.raises(OffsetOutOfRangeError):
        log.read(-1, 100)


def test_corrupt_batch_writes_nothing(open_log, clock, batch):
    log = open_log()
    good = batch([b"a"], timestamp=clock.ms)
    bad = bytearray(batch([b"b"], timestamp=clock.ms))
    bad[-1] ^= 0xFF
    with pytest.raises(CorruptRecordError):
        log.append(good + bytes(bad), leader_epoch=0)
    assert log.log_end_offset == 0
    assert log.size_in_bytes == 0


def test_reopen_clean_and_unclean_keeps_data(tmp_path, open_log, clock, batch):
    config = LogConfig(segment_bytes=2000, index_interval_bytes=100)
    log = open_log(config)
    for i in range(50):
        log.append(batch([b"v%03d" % i] * 3, timestamp=clock.ms + i), leader_epoch=1)
    assert log.segment_count > 1
    log.close()
    clean = open_log(config, clean_shutdown=True)
    assert clean.log_end_offset == 150
    assert [h.base_offset for h, _ in clean.iter_batches()] == list(range(0, 150, 3))
    clean.close()
    unclean = open_log(config, clean_shutdown=False)
    assert unclean.log_end_offset == 150
    assert unclean.recovery_point == 150
    assert unclean.fetch_offset_by_timestamp(clock.ms + 10)[0] == 30


def test_append_in_place_rewrites_the_callers_buffer_and_stores_the_same_bytes(open_log, clock, batch):
    log = open_log()
    log.append(batch([b"first"], timestamp=clock.ms), leader_epoch=2)
    sent = batch([b"a", b"b"], timestamp=clock.ms) + batch([b"c"], timestamp=clock.ms)
    owned = bytearray(sent)
    info = log.append(memoryview(owned), leader_epoch=2, in_place=True)
    assert (info.first_offset, info.last_offset) == (1, 3)
    stored = log.read(1, 1 << 20).read_bytes()
    assert stored == bytes(owned)  # the offsets were written into the caller's buffer
    assert [h.base_offset for h in validate_batches(stored)] == [1, 3]
    assert owned != bytearray(sent)


def test_append_copies_unless_in_place_or_read_only(open_log, clock, batch):
    log = open_log()
    log.append(batch([b"first"], timestamp=clock.ms), leader_epoch=0)
    owned = bytearray(batch([b"a"], timestamp=clock.ms))
    before = bytes(owned)
    log.append(owned, leader_epoch=0)  # not in place: the caller's buffer is left alone
    assert owned == before
    readonly = batch([b"b"], timestamp=clock.ms)
    log.append(memoryview(readonly), leader_epoch=0, in_place=True)  # read-only: copied, not refused
    assert [h.base_offset for h in validate_batches(log.read(0, 1 << 20).read_bytes())] == [0, 1, 2]
