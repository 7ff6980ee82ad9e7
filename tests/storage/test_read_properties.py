"""Property tests of the fetch read path: `Log.read` (offset index + bounded header scans) hands back
exactly the slice a linear walk over the raw .log bytes gives, for every start offset, max_bytes, upper
offset (high watermark / last stable offset) and min_one_batch (KIP-74), over logs of several segments
with small and large batches and sparse or dense indexes. Also checks the scan reads headers, not
payloads."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from strom.config import LogConfig
from strom.protocol.errors import OffsetOutOfRangeError
from strom.protocol.record_batch import parse_header
from strom.protocol.records import Record, build_batch
from strom.storage.log import Log

T0 = 1_700_000_000_000


def _layout(log: Log) -> list[tuple[object, list[tuple[int, int, int, int]]]]:
    """Per segment: its read file and (position, size, base offset, last offset) of every batch, by
    parsing the file's bytes from the start, independently of the indexes."""
    out = []
    for segment in log.segments():
        raw = os.pread(segment.read_file.fileno(), segment.size, 0)
        batches = []
        pos = 0
        while pos < len(raw):
            header = parse_header(raw, pos)
            batches.append((pos, header.size, header.base_offset, header.last_offset))
            pos += header.size
        out.append((segment.read_file, batches))
    return out


def _reference(
    layout: list[tuple[object, list[tuple[int, int, int, int]]]],
    leo: int,
    start: int,
    max_bytes: int,
    max_offset: int | None,
    min_one: bool,
) -> tuple[object, int, int, int] | None:
    """(file, position, length, first offset) by a linear walk; None for an empty slice."""
    upper = leo if max_offset is None else min(max_offset, leo)
    if start >= upper:
        return None
    for file, batches in layout:
        for i, (pos, _size, base, last) in enumerate(batches):
            if last < start:
                continue
            length = 0
            for bpos, bsize, _b, blast in batches[i:]:
                if blast >= upper:
                    break
                end = bpos + bsize - pos
                if end > max_bytes and not (min_one and length == 0):
                    break
                length = end
            return file, pos, length, base
    return None


def _build(root: Path, specs: list[tuple[int, int, bool]], config: LogConfig) -> Log:
    log = Log.open(root / "p-0", config, clock=lambda: T0 / 1000)
    for count, size, roll in specs:
        records = [Record(i, i, b"k", b"v" * size) for i in range(count)]
        log.append(build_batch(records, base_timestamp=T0), leader_epoch=0)
        if roll:
            log.roll()
    return log


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.tuples(st.integers(1, 6), st.sampled_from([0, 3, 40, 300, 2000, 9000]), st.integers(0, 9)),
        min_size=1,
        max_size=40,
    ),
    st.sampled_from([1, 60, 400, 4096, 40000]),
    st.sampled_from([60000, 150000, 10**6]),
    st.data(),
)
def test_read_equals_linear_walk(specs, interval, segment_bytes, data):
    root = Path(tempfile.mkdtemp())
    config = LogConfig(index_interval_bytes=interval, segment_bytes=segment_bytes)
    log = _build(root, [(c, s, r == 0) for c, s, r in specs], config)
    try:
        layout = _layout(log)
        leo = log.log_end_offset
        sizes = [size for _f, batches in layout for _p, size, _b, _l in batches]
        max_bytes_choices = st.sampled_from(sorted({0, 1, 61, 500, 5000, 20000, 10**7, *sizes[:5]}))
        uppers = st.one_of(st.none(), st.integers(0, leo + 2))
        for start in range(leo + 1):
            for _ in range(2):
                max_bytes = data.draw(max_bytes_choices)
                max_offset = data.draw(uppers)
                min_one = data.draw(st.booleans())
                got = log.read(start, max_bytes, max_offset=max_offset, min_one_batch=min_one)
                want = _reference(layout, leo, start, max_bytes, max_offset, min_one)
                if want is None:
                    assert (got.length, got.first_offset) == (0, start)
                else:
                    assert (got.file, got.position, got.length, got.first_offset) == want
    finally:
        log.close()
        shutil.rmtree(root, ignore_errors=True)


def test_read_outside_log_is_out_of_range(tmp_path: Path) -> None:
    log = _build(tmp_path, [(3, 10, False)], LogConfig())
    try:
        with pytest.raises(OffsetOutOfRangeError):
            log.read(4, 100)
    finally:
        log.close()


def test_fetch_reads_headers_not_payloads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A fetch over 64 batches of 16 KiB reads a few headers' worth of bytes, not the payload."""
    log = _build(tmp_path, [(4, 4000, False)] * 64, LogConfig(index_interval_bytes=4096))
    read_bytes: list[int] = []
    real_pread = os.pread

    def counting_pread(fd: int, length: int, position: int) -> bytes:
        read_bytes.append(length)
        return real_pread(fd, length, position)

    try:
        middle = log.log_end_offset // 2 + 1
        monkeypatch.setattr(os, "pread", counting_pread)
        whole = log.read(middle, 10**7)
        bounded = log.read(middle, 100_000, max_offset=log.log_end_offset - 9)
        monkeypatch.undo()
        assert whole.length == log.active_segment.size - whole.position
        assert 0 < bounded.length <= 100_000
        assert sum(read_bytes) <= 8 * 61, read_bytes
    finally:
        log.close()


def test_fetch_of_small_batches_takes_few_preads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Small batches: finding the start and the max_bytes boundary take about one pread each, each
    within one index span, not one per batch."""
    log = _build(tmp_path, [(2, 50, False)] * 400, LogConfig(index_interval_bytes=4096))
    reads: list[int] = []
    real_pread = os.pread

    def counting_pread(fd: int, length: int, position: int) -> bytes:
        reads.append(length)
        return real_pread(fd, length, position)

    try:
        monkeypatch.setattr(os, "pread", counting_pread)
        piece = log.read(101, 30_000)
        monkeypatch.undo()
        assert 29_000 < piece.length <= 30_000
        assert len(reads) <= 4 and max(reads) <= 8 * 1024 + 61, reads
    finally:
        log.close()
