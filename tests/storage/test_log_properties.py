"""Property tests: random append / roll / truncate / close / reopen / crash sequences keep the log equal
to an in-memory model, and index lookups equal linear scans."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from strom.config import LogConfig
from strom.protocol.records import Record, build_batch, decode_records
from strom.storage.log import Log

CONFIG = LogConfig(segment_bytes=700, index_interval_bytes=90, segment_index_bytes=64)
T0 = 1_700_000_000_000

operations = st.lists(
    st.one_of(
        st.tuples(st.just("append"), st.integers(1, 4), st.integers(0, 500)),
        st.tuples(st.just("roll"), st.just(0), st.just(0)),
        st.tuples(st.just("truncate"), st.integers(0, 100), st.just(0)),
        st.tuples(st.just("reopen"), st.just(0), st.just(0)),
        st.tuples(st.just("crash"), st.integers(0, 10**6), st.integers(0, 10**6)),
    ),
    min_size=1,
    max_size=25,
)


def _values(log: Log) -> list[tuple[int, bytes]]:
    out = []
    for header, view in log.iter_batches():
        out += [(header.base_offset + r.offset_delta, r.value) for r in decode_records(view)]
    return out


def _check(log: Log, model: list[tuple[int, bytes]], end: int, batches: list[tuple[int, int]]) -> None:
    assert log.log_end_offset == end
    assert _values(log) == model
    for start, _end in batches[:: max(1, len(batches) // 5)]:
        data = log.read(start, 10**6)
        assert data.first_offset == start
    assert log.read(end, 100).length == 0


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(operations)
def test_log_matches_model(ops):
    root = Path(tempfile.mkdtemp())
    clock_ms = [T0]
    clock = lambda: clock_ms[0] / 1000
    log = Log.open(root / "p-0", CONFIG, clock=clock)
    model: list[tuple[int, bytes]] = []  # (offset, value) of every record the log must hold
    end = 0  # the log end offset the log must report (offsets lost to a crash may leave a gap)
    batches: list[tuple[int, int]] = []  # (first offset, next offset)
    try:
        for op, a, b in ops:
            clock_ms[0] += 7
            if op == "append":
                values = [b"%d-%d" % (end + i, b) for i in range(a)]
                raw = build_batch(
                    [Record(i, i, b"k", v) for i, v in enumerate(values)], base_timestamp=clock_ms[0]
                )
                info = log.append(raw, leader_epoch=1)
                assert info.first_offset == end
                batches.append((end, end + a))
                model += [(end + i, v) for i, v in enumerate(values)]
                end += a
            elif op == "roll":
                log.roll()
            elif op == "truncate":
                if not batches:
                    continue
                target = batches[a % len(batches)][0]
                log.truncate_to(target)
                model = [m for m in model if m[0] < target]
                batches = [bt for bt in batches if bt[0] < target]
                end = target
            elif op == "reopen":
                log.close()
                log = Log.open(
                    root / "p-0", CONFIG, clock=clock, clean_shutdown=True, recovery_point=log.recovery_point
                )
            elif op == "crash":
                # cut one segment file at an arbitrary byte, then recover everything from offset 0
                segments = log.segments()
                victim = segments[a % len(segments)]
                is_last = victim is segments[-1]
                layout = [(h.base_offset, h.next_offset, pos + h.size) for pos, h in victim.scan(0)]
                cut = b % (victim.size + 1)
                path = victim.log_path
                for segment in segments:
                    segment.close(trim=False)
                log.closed = True
                os.truncate(path, cut)
                survivors_end = victim.base_offset
                for _first, nxt, batch_end in layout:
                    if batch_end <= cut:
                        survivors_end = nxt
                if layout and cut < victim.size:
                    lost_end = layout[-1][1]
                    torn = cut not in {0} | {batch_end for _f, _n, batch_end in layout}
                    if torn or is_last:
                        # Kafka's recovery: truncate at the torn batch and drop every later segment
                        model = [m for m in model if m[0] < survivors_end]
                        batches = [bt for bt in batches if bt[1] <= survivors_end]
                        end = survivors_end
                    else:
                        # cut at a batch boundary of an older segment: nothing is torn, so the later
                        # segments stay (as in Kafka) and the lost offsets become a gap
                        model = [m for m in model if not survivors_end <= m[0] < lost_end]
                        batches = [bt for bt in batches if not survivors_end < bt[1] <= lost_end]
                log = Log.open(root / "p-0", CONFIG, clock=clock, clean_shutdown=False, recovery_point=0)
            _check(log, model, end, batches)
    finally:
        log.close()
        shutil.rmtree(root, ignore_errors=True)


@settings(max_examples=30, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(1, 5), st.integers(0, 300), st.integers(-50, 200)), min_size=1, max_size=60
    ),
    st.integers(1, 400),
)
def test_index_lookups_equal_linear_scan(batch_specs, interval):
    root = Path(tempfile.mkdtemp())
    config = LogConfig(index_interval_bytes=interval)
    log = Log.open(root / "p-0", config, clock=lambda: T0 / 1000)
    try:
        stamps = []
        for count, size, ts_delta in batch_specs:
            records = [Record(i, i, b"k", b"x" * size) for i in range(count)]
            log.append(build_batch(records, base_timestamp=T0 + ts_delta), leader_epoch=0)
            stamps.append((T0 + ts_delta, count))
        segment = log.active_segment
        layout = list(segment.scan(0))
        entries = [segment.offset_index.entry(i) for i in range(segment.offset_index.entries)]
        tentries = [segment.time_index.entry(i) for i in range(segment.time_index.entries)]
        for target in range(0, log.log_end_offset + 2):
            below = [e for e in entries if e[0] <= target]
            assert segment.offset_index.lookup(target) == (below[-1] if below else (0, 0))
            found = segment.find_batch(target)
            linear = next(((pos, h) for pos, h in layout if h.last_offset >= target), None)
            assert (found[0] if found else None) == (linear[0] if linear else None)
        for target in range(T0 - 60, T0 + 210, 9):
            below = [e for e in tentries if e[0] <= target]
            assert segment.time_index.lookup(target) == (below[-1] if below else (-1, 0))
            # ListOffsets: first record with timestamp >= target, by linear scan over all records
            expected = None
            offset = 0
            for ts, count in stamps:
                for i in range(count):
                    if expected is None and ts + i >= target:
                        expected = (offset + i, ts + i)
                offset += count
            got = log.fetch_offset_by_timestamp(target)
            assert (got[:2] if got else None) == expected
    finally:
        log.close()
        shutil.rmtree(root, ignore_errors=True)
