"""The log cleaner's worker processes and its upper bound: a pass runs outside the broker's process,
a worker killed mid-pass fails that pass cleanly (no `.cleaned` files left, log and checkpoint
untouched) and the pass is retried after log.cleaner.backoff.ms, LogManager.stop stops the workers,
and nothing at or above the owner's bound (the high watermark) is ever rewritten."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import signal
import time

import pytest
from test_cleaner_support import COMPACT, clean_now, latest, make_cleaner, put, read_all

from strom.config import BrokerConfig
from strom.protocol.records import Record, build_batch
from strom.storage.cleaner_manager import CleanerConfig, LogCleaner
from strom.storage.log import Log
from strom.storage.log_manager import LogManager


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie still answers kill(0); its state in /proc says it is gone
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def _fill(log: Log, ts: int, batches: int, keys: int = 50) -> None:
    value = b"x" * 100
    for i in range(batches):
        records = [Record(j, 0, b"k%d" % ((i * 20 + j) % keys), value) for j in range(20)]
        log.append(build_batch(records, base_timestamp=ts), leader_epoch=0, now_ms=ts)


def test_nothing_at_or_above_the_upper_bound_is_cleaned(open_log, clock) -> None:
    log = open_log(COMPACT)
    for r in range(10):
        for k in range(3):
            put(log, f"k{k}".encode(), f"v{r}".encode(), clock.ms)
    bases = [s.base_offset for s in log.segments()]
    assert len(bases) > 4
    bound = bases[3] + 1  # inside the fourth segment: that segment holds offsets at the bound
    before = {h.base_offset: bytes(v) for h, v in log.iter_batches(0)}
    cleaner = make_cleaner(log, clock, upper_bound=lambda topic, partition: bound)
    result = clean_now(cleaner)
    assert result is not None and result.groups
    assert result.end_offset == bases[3]
    after = {h.base_offset: bytes(v) for h, v in log.iter_batches(0)}
    # everything from the segment holding the bound on is byte for byte what was written
    assert {o: b for o, b in after.items() if o >= bases[3]} == {
        o: b for o, b in before.items() if o >= bases[3]
    }
    assert len([o for o in after if o < bases[3]]) < len([o for o in before if o < bases[3]])
    assert latest(read_all(log)) == {b"k0": b"v9", b"k1": b"v9", b"k2": b"v9"}
    # a bound that does not move leaves nothing more to clean; raising it cleans the rest
    assert cleaner.grab_filthiest() is None
    cleaner.upper_bound = lambda topic, partition: log.log_end_offset
    assert clean_now(cleaner) is not None
    assert cleaner.first_dirty_offset(log) == log.active_segment.base_offset


def test_a_bound_below_the_first_segment_cleans_nothing(open_log, clock) -> None:
    log = open_log(COMPACT)
    for r in range(6):
        put(log, b"k", f"v{r}".encode(), clock.ms)
    cleaner = make_cleaner(log, clock, upper_bound=lambda topic, partition: 0)
    assert cleaner.grab_filthiest() is None
    cleaner = make_cleaner(log, clock, upper_bound=lambda topic, partition: None)
    assert clean_now(cleaner) is not None


async def test_the_pass_runs_in_a_worker_process(open_log, clock) -> None:
    log = open_log(COMPACT)
    for r in range(6):
        put(log, b"k", f"v{r}".encode(), clock.ms)
    cleaner = LogCleaner(lambda: [log], [log.dir.parent], CleanerConfig(), clock=clock)
    try:
        assert await cleaner.clean_once() is not None
        pids = cleaner.pool.pids()
        assert len(pids) == 1 and pids[0] != os.getpid() and _alive(pids[0])
    finally:
        await cleaner.stop()
    assert not _alive(pids[0])


async def test_a_killed_worker_fails_the_pass_which_is_retried_after_the_backoff(
    open_log, clock, caplog: pytest.LogCaptureFixture
) -> None:
    log = open_log(dataclasses.replace(COMPACT, segment_bytes=16 << 10, index_interval_bytes=4096))
    _fill(log, clock.ms, 200)  # ~450 KiB over 50 keys
    before = read_all(log)
    # throttled to ~150 KiB/s so the pass is still running when its worker is killed
    config = CleanerConfig(backoff_ms=300, io_max_bytes_per_second=150 * 1024)
    cleaner = LogCleaner(lambda: [log], [log.dir.parent], config, clock=clock)
    caplog.set_level(logging.ERROR, logger="strom.storage.cleaner_manager")
    await cleaner.start()
    try:
        deadline = time.monotonic() + 10
        while not [p for p in cleaner.pool.pids() if _busy(cleaner)]:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.3)  # the pass is under way
        victim = cleaner.pool.pids()[0]
        os.kill(victim, signal.SIGKILL)
        while cleaner.pool.crashes == 0:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.01)
        failed_at = time.monotonic()
        while "log cleaner pass failed" not in caplog.text:  # logged once the loop sees the failure
            assert time.monotonic() < deadline
            await asyncio.sleep(0.01)
        assert cleaner.passes == 0
        assert "died" in caplog.text
        assert not [n for n in os.listdir(log.dir) if n.endswith((".cleaned", ".swap"))]
        assert read_all(log) == before
        assert (log.topic, log.partition) not in cleaner.checkpoints
        cleaner.config = dataclasses.replace(
            config, io_max_bytes_per_second=CleanerConfig().io_max_bytes_per_second
        )
        while cleaner.passes == 0:
            assert time.monotonic() < deadline + 10
            await asyncio.sleep(0.01)
        assert time.monotonic() - failed_at >= 0.25  # retried after log.cleaner.backoff.ms
        assert victim not in cleaner.pool.pids()
        assert latest(read_all(log)) == latest(before)
        assert len(read_all(log)) < len(before)
    finally:
        await cleaner.stop()


def _busy(cleaner: LogCleaner) -> bool:
    return bool(cleaner._in_progress)


async def test_log_manager_stop_stops_the_workers(tmp_path, clock) -> None:
    config = BrokerConfig({"log.dirs": f"{tmp_path}/d", "log.cleaner.backoff.ms": "20"})
    manager = LogManager(config.log_dirs, config, clock=clock, cluster_id="c1")
    await manager.start()
    log = manager.get_or_create_log("t", 0, COMPACT)
    for r in range(8):
        put(log, b"k", f"v{r}".encode(), clock.ms)
    assert manager.cleaner is not None
    deadline = time.monotonic() + 10
    while manager.cleaner.passes == 0:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.02)
    pids = manager.cleaner.pool.pids()
    assert pids and all(_alive(p) for p in pids)
    await manager.stop()
    assert not any(_alive(p) for p in pids)
    assert manager.cleaner.pool.pids() == []


async def test_upper_bound_reaches_the_cleaner_through_the_log_manager(tmp_path, clock) -> None:
    config = BrokerConfig({"log.dirs": f"{tmp_path}/d", "log.cleaner.backoff.ms": "20"})
    manager = LogManager(config.log_dirs, config, clock=clock, cluster_id="c1")
    asked: list[tuple[str, int]] = []

    def bound(topic: str, partition: int) -> int | None:
        asked.append((topic, partition))
        return 0

    manager.cleanable_upper_bound = bound
    await manager.start()
    try:
        log = manager.get_or_create_log("t", 0, COMPACT)
        for r in range(8):
            put(log, b"k", f"v{r}".encode(), clock.ms)
        deadline = time.monotonic() + 5
        while ("t", 0) not in asked:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.1)
        assert manager.cleaner is not None and manager.cleaner.passes == 0
        assert len(read_all(log)) == 8
    finally:
        await manager.stop()
