"""Recovery after an unclean stop: torn tails, corrupt batches, missing/short/corrupt index files."""

from __future__ import annotations

import os

from strom.config import LogConfig

CONFIG = LogConfig(segment_bytes=3000, index_interval_bytes=100)


def fill(log, batch, clock, n):
    for i in range(n):
        log.append(batch([b"value-%04d" % i] * 2, timestamp=clock.ms + i), leader_epoch=i // 10)


def crash(log):
    """Stop without the clean close: file descriptors go, index files stay preallocated."""
    for segment in log.segments():
        segment.close(trim=False)
    log.closed = True


def test_torn_tail_is_cut_at_the_last_whole_batch(open_log, clock, batch):
    log = open_log(CONFIG)
    fill(log, batch, clock, 40)
    active = log.active_segment
    positions = [pos for pos, _ in active.scan(0)]
    path = active.log_path
    crash(log)
    os.truncate(path, positions[-1] + 30)  # half of the last batch reached the disk
    again = open_log(CONFIG, clean_shutdown=False)
    assert again.log_end_offset == 78
    assert again.active_segment.size == positions[-1]
    assert again.leader_epoch_cache.latest_epoch == 3


def test_corrupt_batch_in_an_old_segment_drops_everything_after(open_log, clock, batch):
    log = open_log(CONFIG)
    fill(log, batch, clock, 60)
    first = log.segments()[0]
    positions = [(pos, h) for pos, h in first.scan(0)]
    pos, header = positions[3]
    path = first.log_path
    crash(log)
    with open(path, "r+b") as f:
        f.seek(pos + 70)
        byte = f.read(1)
        f.seek(pos + 70)
        f.write(bytes([byte[0] ^ 0xFF]))
    again = open_log(CONFIG, clean_shutdown=False, recovery_point=0)
    assert again.log_end_offset == header.base_offset
    assert again.segment_count == 1
    assert [h.base_offset for h, _ in again.iter_batches()] == [h.base_offset for _, h in positions[:3]]
    assert (
        again.append(batch([b"new"], timestamp=clock.ms), leader_epoch=9).first_offset == header.base_offset
    )


def test_clean_open_trusts_files_unclean_open_recovers_from_recovery_point(open_log, clock, batch):
    log = open_log(CONFIG)
    fill(log, batch, clock, 60)
    log.flush()
    recovery_point = log.recovery_point
    assert recovery_point == log.log_end_offset == 120
    log.close()
    again = open_log(CONFIG, clean_shutdown=True, recovery_point=recovery_point)
    assert again.log_end_offset == 120 and again.recovery_point == 120
    again.close()


def test_missing_and_corrupt_indexes_are_rebuilt(open_log, clock, batch):
    log = open_log(CONFIG)
    fill(log, batch, clock, 150)
    segments = log.segments()
    assert len(segments) > 3
    log.close()
    expected = {s.base_offset: s.offset_index.path.read_bytes() for s in segments[:-1]}
    expected_time = {s.base_offset: s.time_index.path.read_bytes() for s in segments[:-1]}
    segments[0].offset_index.path.unlink()  # missing
    with open(segments[1].offset_index.path, "r+b") as f:  # short: last entries lost
        f.truncate(8)
    with open(segments[2].time_index.path, "r+b") as f:  # corrupt: not a whole entry
        f.truncate(13)
    again = open_log(CONFIG, clean_shutdown=True, recovery_point=300)
    for segment in again.segments()[:-1]:
        segment.on_becoming_inactive()
        assert segment.offset_index.path.read_bytes() == expected[segment.base_offset]
        assert segment.time_index.path.read_bytes() == expected_time[segment.base_offset]
    assert [h.base_offset for h, _ in again.iter_batches()] == list(range(0, 300, 2))
    assert again.read(77, 10).first_offset == 76


def test_index_rebuilt_by_recovery_equals_the_one_written_by_appends(open_log, clock, batch):
    log = open_log(CONFIG)
    fill(log, batch, clock, 25)
    active = log.active_segment
    written = (
        list(map(active.offset_index.entry, range(active.offset_index.entries))),
        list(map(active.time_index.entry, range(active.time_index.entries))),
    )
    crash(log)
    again = open_log(CONFIG, clean_shutdown=False)
    act = again.active_segment
    rebuilt = (
        list(map(act.offset_index.entry, range(act.offset_index.entries))),
        list(map(act.time_index.entry, range(act.time_index.entries))),
    )
    assert rebuilt == written
