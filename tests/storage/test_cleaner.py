"""Log cleaner rules: latest value per key, offsets and metadata kept, codecs, groups, tombstones, lags,
dirty ratio, checkpoint, control batches, keyless records, policy switches, throttling."""

from __future__ import annotations

import dataclasses
import os
import time
from pathlib import Path

import pytest
from test_cleaner_support import (
    COMPACT,
    clean_now,
    latest,
    make_cleaner,
    put,
    put_many,
    read_all,
    shared_pool,
)

from strom.config import LogConfig
from strom.protocol.errors import InvalidRecordError
from strom.protocol.records import Record, build_batch, decode_records
from strom.storage.checkpoint import read_offset_checkpoint
from strom.storage.cleaner import DELETE_HORIZON_BIT, Throttler
from strom.storage.cleaner_manager import CLEANER_OFFSET_CHECKPOINT
from strom.storage.log import Log
from strom.storage.offset_map import OffsetMap


def fill(log: Log, clock, rounds: int = 6, keys: int = 4) -> list[tuple[int, bytes, bytes]]:
    written = []
    for r in range(rounds):
        for k in range(keys):
            key, value = f"k{k}".encode(), f"v{r}-{k}".encode()
            written.append((put(log, key, value, clock.ms), key, value))
    return written


def test_keeps_latest_value_of_every_key_and_offsets_with_gaps(open_log, clock) -> None:
    log = open_log(COMPACT)
    written = fill(log, clock)
    before = read_all(log)
    assert log.segment_count > 3
    result = clean_now(make_cleaner(log, clock))
    assert result is not None and result.groups
    after = read_all(log)
    assert latest(after) == latest(before)
    offsets = [o for o, _k, _v in after]
    assert offsets == sorted(set(offsets))
    assert len(after) < len(before)
    # every surviving record is exactly what was written at that offset
    by_offset = {o: (k, v) for o, k, v in written}
    assert all(by_offset[o] == (k, v) for o, k, v in after)
    assert log.log_end_offset == written[-1][0] + 1


def test_never_touches_active_segment(open_log, clock) -> None:
    log = open_log(COMPACT)
    fill(log, clock)
    active = log.active_segment
    active_records = read_all(log, active.base_offset)
    clean_now(make_cleaner(log, clock))
    assert log.active_segment is active
    assert read_all(log, active.base_offset) == active_records


def test_all_in_active_segment_is_not_cleanable(open_log, clock) -> None:
    log = open_log(dataclasses.replace(COMPACT, segment_bytes=1 << 20))
    fill(log, clock)
    assert clean_now(make_cleaner(log, clock)) is None


def test_batch_metadata_survives_a_rewrite(open_log, clock) -> None:
    log = open_log(COMPACT)
    ts = clock.ms
    put_many(
        log,
        [(b"a", b"1"), (b"b", b"1"), (b"c", b"1")],
        ts,
        producer_id=7,
        producer_epoch=3,
        base_sequence=40,
    )
    for _ in range(10):
        put(log, b"b", b"2", ts + 5)  # supersedes b in the first batch
    clean_now(make_cleaner(log, clock))
    header, view = next(log.iter_batches(0))
    assert (header.base_offset, header.producer_id, header.producer_epoch, header.base_sequence) == (
        0,
        7,
        3,
        40,
    )
    assert header.partition_leader_epoch == 0
    records = decode_records(view)
    assert [(r.offset_delta, r.key) for r in records] == [(0, b"a"), (2, b"c")]
    assert [header.base_timestamp + r.timestamp_delta for r in records] == [ts, ts + 2]
    assert header.max_timestamp == ts + 2
    assert header.records_count == 2 and header.last_offset_delta == 2


def test_log_append_time_batches_keep_their_timestamp(open_log, clock) -> None:
    log = open_log(dataclasses.replace(COMPACT, message_timestamp_type="LogAppendTime"))
    put_many(log, [(b"a", b"1"), (b"b", b"1")], clock.ms)
    stamped = next(log.iter_batches(0))[0].max_timestamp
    clock.advance(50)
    for _ in range(10):
        put(log, b"b", b"2", clock.ms)
    clean_now(make_cleaner(log, clock))
    header, _ = next(log.iter_batches(0))
    assert header.timestamp_type == 1 and header.max_timestamp == stamped and header.records_count == 1


@pytest.mark.parametrize("codec", [1, 2, 3, 4])
def test_rewritten_batches_keep_their_codec(open_log, clock, codec: int) -> None:
    log = open_log(dataclasses.replace(COMPACT, segment_bytes=2000))
    pairs = [(f"k{i}".encode(), b"x" * 100) for i in range(10)]
    put_many(log, pairs, clock.ms, codec=codec)
    for i in range(0, 10, 2):
        put_many(log, [(f"k{i}".encode(), b"new")] * 1, clock.ms, codec=codec)
    for _ in range(8):
        put(log, b"other", b"y" * 200, clock.ms)
    clean_now(make_cleaner(log, clock))
    header, view = next(log.iter_batches(0))
    assert header.compression == codec
    assert [r.key for r in decode_records(view)] == [f"k{i}".encode() for i in range(1, 10, 2)]


def test_small_cleaned_segments_are_grouped(open_log, clock) -> None:
    log = open_log(COMPACT)
    for _ in range(30):
        put(log, b"same", b"v", clock.ms)
    before = log.segment_count
    cleaner = make_cleaner(log, clock)
    clean_now(cleaner)
    # groups are sized by the original segments (as Kafka does): the second pass merges the now
    # small cleaned segments
    for _ in range(6):
        put(log, b"same", b"w", clock.ms)
    clean_now(cleaner)
    assert log.segment_count < before
    # group sizes respect segment.bytes: no segment beyond it
    assert all(s.size <= COMPACT.segment_bytes for s in log.segments())
    assert [k for _o, k, _v in read_all(log)].count(b"same") <= 2


def test_tombstones_survive_delete_retention_then_vanish(open_log, clock) -> None:
    log = open_log(COMPACT)
    put(log, b"gone", b"v", clock.ms)
    put(log, b"gone", None, clock.ms)
    for i in range(12):
        put(log, f"x{i % 3}".encode(), b"v", clock.ms)
    cleaner = make_cleaner(log, clock)
    clean_now(cleaner)
    assert (b"gone", None) in [(k, v) for _o, k, v in read_all(log)]
    assert (b"gone", b"v") not in [(k, v) for _o, k, v in read_all(log)]
    header = next(h for h, view in log.iter_batches(0) if any(r.key == b"gone" for r in decode_records(view)))
    assert header.attributes & DELETE_HORIZON_BIT
    assert header.base_timestamp == clock.ms + COMPACT.delete_retention_ms
    clock.advance(COMPACT.delete_retention_ms - 1)
    assert cleaner.grab_filthiest() is None  # not due yet, and nothing dirty
    clock.advance(1)
    assert clean_now(cleaner) is not None
    assert b"gone" not in [k for _o, k, _v in read_all(log)]


def test_min_compaction_lag_holds_back_young_segments(open_log, clock) -> None:
    log = open_log(dataclasses.replace(COMPACT, min_compaction_lag_ms=60_000))
    fill(log, clock)
    assert clean_now(make_cleaner(log, clock)) is None
    clock.advance(60_001)
    put(log, b"late", b"v", clock.ms)
    assert clean_now(make_cleaner(log, clock)) is not None


def test_max_compaction_lag_forces_a_clean_below_the_ratio(open_log, clock) -> None:
    config = dataclasses.replace(COMPACT, min_cleanable_dirty_ratio=0.99, max_compaction_lag_ms=1000)
    log = open_log(config)
    fill(log, clock, rounds=2)
    cleaner = make_cleaner(log, clock)
    clean_now(cleaner)  # first pass: everything dirty (ratio 1.0)
    fill(log, clock, rounds=1)
    assert cleaner.grab_filthiest() is None  # ratio below 0.99
    clock.advance(1001)
    ltc = cleaner.grab_filthiest()
    assert ltc is not None and ltc.must_clean


def test_max_compaction_lag_rolls_an_old_active_segment(open_log, clock) -> None:
    log = open_log(dataclasses.replace(COMPACT, segment_bytes=1 << 20, max_compaction_lag_ms=1000))
    put(log, b"a", b"1", clock.ms)
    put(log, b"a", b"2", clock.ms)
    cleaner = make_cleaner(log, clock)
    assert cleaner.grab_filthiest() is None
    clock.advance(1001)
    assert cleaner.grab_filthiest() is not None
    assert log.segment_count == 2


def test_picks_the_filthiest_log(tmp_path: Path, clock) -> None:
    config = dataclasses.replace(COMPACT, min_cleanable_dirty_ratio=0.5)
    a = Log.open(tmp_path / "a-0", config, clock=clock)
    b = Log.open(tmp_path / "b-0", config, clock=clock)
    try:
        fill(a, clock)
        fill(b, clock)
        from strom.storage.cleaner_manager import CleanerConfig, LogCleaner

        cleaner = LogCleaner(lambda: [a, b], [tmp_path], CleanerConfig(), clock=clock, pool=shared_pool())
        import asyncio

        first = asyncio.run(cleaner.clean_once())
        assert first is not None
        fill(b, clock, rounds=10)  # b becomes much dirtier than a
        fill(a, clock, rounds=1)
        ltc = cleaner.grab_filthiest()
        assert ltc is not None and ltc.log is b
    finally:
        a.close()
        b.close()


def test_cleaner_offset_checkpoint_is_kept_and_reloaded(open_log, clock, tmp_path: Path) -> None:
    log = open_log(COMPACT)
    fill(log, clock)
    cleaner = make_cleaner(log, clock)
    result = clean_now(cleaner)
    assert result is not None
    stored = read_offset_checkpoint(tmp_path / CLEANER_OFFSET_CHECKPOINT)
    assert stored == {("topic", 0): result.end_offset}
    assert result.end_offset == log.active_segment.base_offset
    again = make_cleaner(log, clock)
    again.load_checkpoints()
    assert again.first_dirty_offset(log) == result.end_offset
    assert again.grab_filthiest() is None  # nothing new is dirty


def test_control_batches_are_copied_untouched(open_log, clock) -> None:
    log = open_log(COMPACT)
    marker = build_batch(
        [Record(0, 0, b"\x00\x00\x00\x00", b"\x00\x00\x00\x00\x00\x00")],
        base_timestamp=clock.ms,
        producer_id=5,
        producer_epoch=0,
        transactional=True,
        control=True,
    )
    log.append(marker, leader_epoch=0, now_ms=clock.ms)
    original = bytes(next(log.iter_batches(0))[1])
    fill(log, clock)
    clean_now(make_cleaner(log, clock))
    assert bytes(next(log.iter_batches(0))[1]) == original


def test_keyless_records_are_refused_on_a_compacted_topic(open_log, clock) -> None:
    log = open_log(COMPACT)
    with pytest.raises(InvalidRecordError):
        put(log, None, b"v", clock.ms)
    assert log.log_end_offset == 0


def test_keyless_records_written_before_a_switch_to_compact_are_dropped(open_log, clock) -> None:
    log = open_log(dataclasses.replace(COMPACT, cleanup_policy=("delete",)))
    put(log, None, b"nokey", clock.ms)
    fill(log, clock)
    cleaner = make_cleaner(log, clock)
    assert cleaner.grab_filthiest() is None  # delete policy: never cleaned
    log.update_config(COMPACT)
    clean_now(cleaner)
    assert None not in [k for _o, k, _v in read_all(log)]


def test_compact_delete_applies_both_policies(open_log, clock) -> None:
    config = dataclasses.replace(COMPACT, cleanup_policy=("compact", "delete"), retention_ms=10_000)
    clock.ms = int(time.time() * 1000)  # empty cleaned segments carry their files' mtime, as in Kafka
    log = open_log(config)
    fill(log, clock)
    clean_now(make_cleaner(log, clock))
    assert latest(read_all(log))
    clock.advance(20_000)
    log.roll()
    put(log, b"fresh", b"v", clock.ms)
    log.roll()
    assert log.delete_old_segments(clock.ms) > 0
    assert [k for _o, k, _v in read_all(log)] == [b"fresh"]


def test_swap_is_dropped_when_retention_removed_a_segment_meanwhile(open_log, clock) -> None:
    from strom.storage.cleaner import prepare_clean, run_clean
    from strom.storage.swap import SwapAbortedError, swap_in

    log = open_log(dataclasses.replace(COMPACT, cleanup_policy=("compact", "delete")))
    fill(log, clock)
    before = read_all(log)
    prepared = prepare_clean(log, 0, log.active_segment.base_offset, clock.ms)
    result = run_clean(prepared.job)
    log.delete_records_before(log.segments()[1].base_offset)  # the first segment goes away
    with pytest.raises(SwapAbortedError):
        swap_in(log, prepared.cleaned_groups(result)[0], clock.ms)
    assert read_all(log) == [r for r in before if r[0] >= log.log_start_offset]
    leftovers = [p for p in os.listdir(log.dir) if p.endswith((".cleaned", ".swap"))]
    assert not [p for p in leftovers if p.startswith(f"{result.groups[0].base_offset:020d}")]


def test_a_small_dedupe_buffer_cleans_in_several_passes(open_log, clock) -> None:
    log = open_log(COMPACT)
    fill(log, clock, rounds=4, keys=8)
    before = latest(read_all(log))
    cleaner = make_cleaner(log, clock, dedupe_buffer_size=24 * 4)  # room for 3 keys
    passes = 0
    while cleaner.grab_filthiest() is not None and passes < 50:
        cleaner._in_progress.clear()
        assert clean_now(cleaner) is not None
        passes += 1
    assert passes > 1
    assert latest(read_all(log)) == before
    assert cleaner.first_dirty_offset(log) == log.active_segment.base_offset


def test_throttler_sleeps_to_hold_the_rate() -> None:
    now = [0.0]
    slept: list[float] = []

    def sleep(s: float) -> None:
        slept.append(s)
        now[0] += s

    throttler = Throttler(1000.0, clock=lambda: now[0], sleep=sleep, check_interval_s=0.01)
    for _ in range(10):
        throttler.maybe_throttle(500)
    assert sum(slept) == pytest.approx(5.0, rel=0.05)


def test_offset_map_budget_matches_kafka() -> None:
    m = OffsetMap(24 * 1000)
    assert m.capacity == 900
    m.put(b"a", 3)
    m.put(b"a", 9)
    assert (m.get(b"a"), m.get(b"b"), len(m), m.latest_offset) == (9, -1, 1, 9)
    assert m.room_for(899) and not m.room_for(900)


def test_default_config_is_not_compacted() -> None:
    assert not LogConfig().compact
