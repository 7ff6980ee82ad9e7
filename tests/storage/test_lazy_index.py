"""Lazy .index and .timeindex files (Kafka's LazyIndex): a segment creates its index files only when it
first writes an entry, when it becomes inactive (roll, a cleaned segment) or when it is closed or
recovered holding batches. A missing index reads as empty, and every lifecycle step (lookups, roll,
truncation, deletion to `.deleted`, the cleaner's `.cleaned`/`.swap` renames, recovery, flush, close)
works on a segment whose index files were never created. Once entries exist the files hold exactly
what they held when they were created eagerly."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from test_cleaner_support import COMPACT, latest, put, read_all

from strom.config import LogConfig
from strom.protocol.record_batch import parse_header
from strom.storage.cleaner import prepare_clean, run_clean
from strom.storage.log import Log
from strom.storage.segment import Segment
from strom.storage.swap import swap_in

# index.interval.bytes of 4096: a handful of small batches write no index entry
SMALL = LogConfig(segment_index_bytes=1024)
# an entry every ~100 bytes and small segments: entries and rolls come quickly
DENSE = LogConfig(segment_bytes=3000, index_interval_bytes=100, segment_index_bytes=1024)
ZERO = "00000000000000000000"


def index_files(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.endswith((".index", ".timeindex")))


def fill(log: Log, batch, clock, n: int, start: int = 0) -> None:
    for i in range(start, start + n):
        log.append(batch([b"value-%04d" % i] * 2, timestamp=clock.ms + i), leader_epoch=0)


def crash(log: Log) -> None:
    """Stop without the clean close (descriptors go, nothing is trimmed or created)."""
    for segment in log.segments():
        segment.close(trim=False)
    log.closed = True


def test_a_new_log_creates_no_index_files_and_reads_as_empty(open_log, clock):
    log = open_log(SMALL)
    assert index_files(log.dir) == []
    active = log.active_segment
    assert not active.offset_index.created and not active.time_index.created
    # lookups on the missing indexes behave as on empty ones, and create nothing
    assert active.offset_index.lookup(5) == (0, 0)
    assert active.time_index.lookup(clock.ms) == (-1, 0)
    assert log.read(0, 1000).length == 0
    assert log.fetch_offset_by_timestamp(clock.ms) is None
    assert active.should_roll(100, 0, clock.ms, SMALL) is False
    log.flush()
    assert index_files(log.dir) == []
    log.close()
    # a clean shutdown of a segment that never held a batch leaves no index file either
    assert index_files(log.dir) == []
    assert sorted(p.name for p in log.dir.iterdir() if p.name.startswith(ZERO)) == [f"{ZERO}.log"]


def test_an_empty_log_without_index_files_reopens_clean_and_unclean(open_log, clock, batch):
    log = open_log(SMALL)
    log.close()
    for clean in (True, False):
        again = open_log(SMALL, clean_shutdown=clean)
        # an unclean open recovers the empty segment; recovering nothing creates nothing
        assert again.log_end_offset == 0 and again.recovered_from == (None if clean else 0)
        assert index_files(again.dir) == []
        again.close()
    last = open_log(SMALL, clean_shutdown=True)
    assert last.append(batch([b"a"], timestamp=clock.ms), leader_epoch=0).first_offset == 0


def test_appends_below_the_index_interval_write_no_file_until_close(open_log, clock, batch):
    log = open_log(SMALL)
    fill(log, batch, clock, 5)
    assert index_files(log.dir) == []
    assert log.read(3, 10_000).first_offset == 2
    assert log.fetch_offset_by_timestamp(clock.ms + 3)[0] == 6
    log.close()
    # a segment holding batches leaves both files: no offset entry, the final time entry (Kafka: the
    # index was loaded by the first append, the time index gets its final entry at close)
    assert (log.dir / f"{ZERO}.index").stat().st_size == 0
    assert (log.dir / f"{ZERO}.timeindex").stat().st_size == 12
    again = open_log(SMALL, clean_shutdown=True, recovery_point=10)
    assert again.recovered_from is None  # trusted: nothing to rebuild
    assert again.log_end_offset == 10 and again.active_segment.max_timestamp == clock.ms + 4


def test_the_first_index_entry_creates_both_files_preallocated(open_log, clock, batch):
    log = open_log(DENSE)
    log.append(batch([b"x" * 150], timestamp=clock.ms), leader_epoch=0)
    assert index_files(log.dir) == []  # the first batch is never indexed (no bytes before it)
    log.append(batch([b"y" * 150], timestamp=clock.ms + 1), leader_epoch=0)
    active = log.active_segment
    assert active.offset_index.entries == 1 and active.time_index.entries == 1
    assert (log.dir / f"{ZERO}.index").stat().st_size == 1024
    assert (log.dir / f"{ZERO}.timeindex").stat().st_size == 1020
    log.close()
    assert (log.dir / f"{ZERO}.index").stat().st_size == 8
    assert (log.dir / f"{ZERO}.timeindex").stat().st_size == 12


def test_roll_leaves_both_files_on_the_old_segment_and_none_on_the_new(open_log, clock, batch):
    log = open_log(SMALL)
    fill(log, batch, clock, 3)
    log.roll()
    assert index_files(log.dir) == [f"{ZERO}.index", f"{ZERO}.timeindex"]
    assert (log.dir / f"{ZERO}.index").stat().st_size == 0
    assert (log.dir / f"{ZERO}.timeindex").stat().st_size == 12
    new = log.active_segment
    assert new.base_offset == 6 and not new.offset_index.created
    # an empty active segment replaced by a roll to a higher base (follower jump) leaves nothing
    log.roll(new_base=50)
    assert index_files(log.dir) == [f"{ZERO}.index", f"{ZERO}.timeindex"]
    assert [s.base_offset for s in log.segments()] == [0, 50]
    fill(log, batch, clock, 2, start=3)
    assert log.read(50, 10_000).first_offset == 50


def test_index_bytes_match_the_entries_the_appends_wrote_and_recovery_rebuilds(open_log, clock, batch):
    log = open_log(DENSE)
    fill(log, batch, clock, 100)
    assert log.segment_count > 2
    active = log.active_segment
    written = [list(map(s.offset_index.entry, range(s.offset_index.entries))) for s in log.segments()]
    log.close()
    on_disk = {p.name: p.read_bytes() for p in log.dir.iterdir() if p.name.endswith("index")}
    for name in list(on_disk):
        if name.endswith((".index", ".timeindex")):
            (log.dir / name).unlink()
    rebuilt = open_log(DENSE, clean_shutdown=False, recovery_point=0)
    assert rebuilt.recovered_from == 0
    assert [
        list(map(s.offset_index.entry, range(s.offset_index.entries))) for s in rebuilt.segments()
    ] == written
    rebuilt.close()
    again = {p.name: p.read_bytes() for p in log.dir.iterdir() if p.name.endswith("index")}
    assert again == on_disk
    assert active.offset_index.path.name in again


def test_unclean_restart_rebuilds_the_active_segments_missing_index(open_log, clock, batch):
    log = open_log(DENSE)
    fill(log, batch, clock, 30)
    entries = log.active_segment.offset_index.entries
    assert entries > 0
    active_base = log.active_segment.base_offset
    crash(log)
    stem = f"{active_base:020d}"
    (log.dir / f"{stem}.index").unlink()
    (log.dir / f"{stem}.timeindex").unlink()
    again = open_log(DENSE, clean_shutdown=False)
    assert again.log_end_offset == 60
    assert again.active_segment.offset_index.entries == entries
    # rebuilt as Kafka's recover does: both files exist, preallocated for the active segment
    assert (log.dir / f"{stem}.index").stat().st_size == 1024
    assert (log.dir / f"{stem}.timeindex").stat().st_size == 1020


def test_unclean_restart_of_an_active_segment_that_never_had_an_entry(open_log, clock, batch):
    log = open_log(SMALL)
    fill(log, batch, clock, 4)
    crash(log)
    assert index_files(log.dir) == []
    again = open_log(SMALL, clean_shutdown=False)
    assert again.log_end_offset == 8 and again.recovered_from == 0
    assert again.active_segment.max_timestamp == clock.ms + 3
    # recovery of a segment holding batches creates both files (Kafka's recover resets, so loads, them)
    assert index_files(log.dir) == [f"{ZERO}.index", f"{ZERO}.timeindex"]


def test_a_missing_time_index_of_an_old_segment_is_rebuilt(open_log, clock, batch):
    log = open_log(DENSE)
    fill(log, batch, clock, 60)
    first = log.segments()[0]
    log.close()
    expected = first.time_index.path.read_bytes()
    first.time_index.path.unlink()
    again = open_log(DENSE, clean_shutdown=True, recovery_point=120)
    assert again.segments()[0].time_index.path.read_bytes() == expected
    assert again.fetch_offset_by_timestamp(clock.ms + 5)[0] == 10


def test_truncation_with_and_without_index_files(open_log, clock, batch):
    log = open_log(SMALL)
    fill(log, batch, clock, 4)
    log.truncate_to(4)  # inside the active segment, whose index files do not exist
    assert log.log_end_offset == 4 and index_files(log.dir) == []
    log.truncate_to(0)
    assert log.log_end_offset == 0 and index_files(log.dir) == []
    fill(log, batch, clock, 2)
    log.truncate_fully_and_start_at(100)
    assert index_files(log.dir) == [] and log.log_end_offset == 100
    fill(log, batch, clock, 2)
    assert log.read(100, 10_000).first_offset == 100


def test_truncation_of_a_segment_with_entries_and_later_appends(open_log, clock, batch):
    log = open_log(DENSE)
    fill(log, batch, clock, 60)
    bases = [s.base_offset for s in log.segments()]
    log.close()
    # reopened: the active segment's index is loaded (short-lived descriptor), not yet preallocated
    again = open_log(DENSE, clean_shutdown=True, recovery_point=120)
    active = again.active_segment
    size = active.offset_index.path.stat().st_size
    assert size == 8 * active.offset_index.entries
    keep_to = active.offset_index.entry(1)[0]
    again.truncate_to(keep_to)
    assert active.offset_index.entries == 1
    # cut to the entries kept, then grown back to the maximum as Kafka's truncateTo resizes: the space
    # after the kept entry reads as zeros, not as the dropped entries
    raw = active.offset_index.path.read_bytes()
    assert len(raw) == 1024 and raw[8:] == bytes(1016)
    fill(again, batch, clock, 20, start=200)
    assert active.offset_index.entries > 1
    # back into an older segment: later segments go, whose files all existed
    again.truncate_to(bases[1] + 1)
    assert [s.base_offset for s in again.segments()] == bases[:2]
    assert index_files(again.dir) == sorted(
        f"{b:020d}{kind}" for b in bases[:2] for kind in (".index", ".timeindex")
    )
    leo = again.log_end_offset
    assert leo == bases[1]  # the batch holding bases[1] + 1 starts the segment
    again.close()
    reopened = open_log(DENSE, clean_shutdown=True, recovery_point=leo)
    assert reopened.recovered_from is None and reopened.log_end_offset == leo


def test_segment_without_index_files_renames_to_deleted_and_deletes(tmp_path, clock, batch):
    segment = Segment(tmp_path, 0, SMALL, clock.ms)
    segment.prepare_for_appends()
    data = batch([b"a"], timestamp=clock.ms)
    segment.append(data, [parse_header(data)])
    segment.flush()
    renamed = segment.rename_to_deleted()
    assert [p.name for p in renamed] == [f"{ZERO}.log.deleted"]
    # the lazily named paths follow the rename: a late index write cannot resurrect the live name
    assert segment.offset_index.path.name == f"{ZERO}.index.deleted"
    segment.delete_files()
    assert list(tmp_path.iterdir()) == []


def test_retention_deletes_segments_through_deleted_names(open_log, clock, batch):
    config = dataclasses.replace(SMALL, file_delete_delay_ms=60_000)
    log = open_log(config)
    fill(log, batch, clock, 3)
    log.roll()
    fill(log, batch, clock, 3, start=3)
    log.roll()
    assert log.delete_records_before(12) >= 1
    deleted = sorted(p.name for p in log.dir.iterdir() if p.name.endswith(".deleted"))
    assert f"{ZERO}.log.deleted" in deleted and f"{ZERO}.index.deleted" in deleted
    assert log.delete_expired_files(clock.ms + 120_000) >= 1
    assert not any(p.name.endswith(".deleted") for p in log.dir.iterdir())
    assert index_files(log.dir) == []  # the active segment at 12 never had an entry


def test_clean_swap_with_an_emptied_segment_and_with_missing_cleaned_indexes(tmp_path):
    ts = 1_700_000_000_000
    log = Log.open(tmp_path / "topic-0", COMPACT, clock=lambda: ts / 1000)
    try:
        for r in range(6):
            for k in range(3):
                put(log, f"k{k}".encode(), f"v{r}-{k}".encode(), ts)
        expected = latest(read_all(log))
        prepared = prepare_clean(log, 0, log.active_segment.base_offset, ts)
        result = run_clean(prepared.job)
        groups = prepared.cleaned_groups(result)
        directory = tmp_path / "topic-0"
        # the later values of every key are in the third segment: the first two clean to nothing
        assert [g.base_offset for g in groups] == [0, 5, 10]
        assert (directory / f"{ZERO}.log.cleaned").stat().st_size == 0
        # Kafka's onBecomeInactiveSegment creates both index files of every cleaned segment, even empty
        for base in (0, 5):
            assert (directory / f"{base:020d}.index.cleaned").stat().st_size == 0
            assert (directory / f"{base:020d}.timeindex.cleaned").stat().st_size == 0
        # a cleaned segment whose index files are gone still swaps in (opened as empty indexes)
        (directory / f"{ZERO}.index.cleaned").unlink()
        (directory / f"{ZERO}.timeindex.cleaned").unlink()
        for group in groups:
            swap_in(log, group, ts)
        assert latest(read_all(log)) == expected
        names = sorted(os.listdir(directory))
        assert not any(n.endswith((".cleaned", ".swap")) for n in names)
        assert f"{ZERO}.log" in names and f"{ZERO}.index" not in names
        assert {f"{b:020d}{kind}" for b in (5, 10) for kind in (".index", ".timeindex")} <= set(names)
        # the old segments' files went to .deleted and, with file.delete.delay.ms=0, are removed
        log.delete_expired_files(ts + 1)
        assert not any(n.endswith(".deleted") for n in os.listdir(directory))
    finally:
        log.close()
    again = Log.open(tmp_path / "topic-0", COMPACT, clock=lambda: ts / 1000, clean_shutdown=True)
    try:
        assert latest(read_all(again)) == expected
    finally:
        again.close()


def test_reopened_old_segments_hold_no_index_descriptors(open_log, clock, batch):
    log = open_log(DENSE)
    fill(log, batch, clock, 120)
    count = log.segment_count
    assert count >= 4
    log.close()
    before = len(os.listdir("/proc/self/fd"))
    again = open_log(DENSE, clean_shutdown=True, recovery_point=240)
    opened = len(os.listdir("/proc/self/fd")) - before
    # the .log of each segment and its read-only file object; no index is held open (eagerly opened
    # indexes made it 4 per segment; <= since the collector may close a stray file of another test)
    assert opened <= 2 * count
    assert not any(s.offset_index.created and s.offset_index._fd >= 0 for s in again.segments())
    assert again.read(7, 100).first_offset == 6
    assert again.fetch_offset_by_timestamp(clock.ms + 50)[0] == 100
