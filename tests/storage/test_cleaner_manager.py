"""The cleaner inside LogManager: background passes every log.cleaner.backoff.ms, the checkpoint
written on stop and read on start, log.cleaner.enable=false, and an event loop that keeps serving while a
pass runs in its worker thread."""

from __future__ import annotations

import asyncio
import dataclasses
import time

from test_cleaner_support import COMPACT, latest, put, read_all

from strom.config import BrokerConfig
from strom.storage.checkpoint import read_offset_checkpoint
from strom.storage.cleaner_manager import CLEANER_OFFSET_CHECKPOINT
from strom.storage.log_manager import LogManager


def _config(tmp_path, **extra: str) -> BrokerConfig:
    return BrokerConfig({"log.dirs": f"{tmp_path}/d", "log.cleaner.backoff.ms": "20", **extra})


async def _wait(predicate, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached"
        await asyncio.sleep(0.02)


async def test_background_cleaning_and_checkpoint_across_restart(tmp_path, clock) -> None:
    config = _config(tmp_path)
    manager = LogManager(config.log_dirs, config, clock=clock, cluster_id="c1")
    await manager.start()
    log = manager.get_or_create_log("t", 0, COMPACT)
    for r in range(10):
        for k in range(4):
            put(log, f"k{k}".encode(), f"v{r}".encode(), clock.ms)
    before = latest(read_all(log))
    assert manager.cleaner is not None
    await _wait(lambda: manager.cleaner.checkpoints.get(("t", 0), 0) == log.active_segment.base_offset)
    assert latest(read_all(log)) == before
    end = manager.cleaner.checkpoints[("t", 0)]
    await manager.stop()
    stored = read_offset_checkpoint(config.log_dirs[0] / CLEANER_OFFSET_CHECKPOINT)
    assert stored == {("t", 0): end}
    again = LogManager(config.log_dirs, config, clock=clock, cluster_id="c1")
    await again.start()
    try:
        assert again.cleaner is not None and again.cleaner.checkpoints == {("t", 0): end}
    finally:
        await again.stop()


async def test_disabled_cleaner_never_cleans(tmp_path, clock) -> None:
    config = _config(tmp_path, **{"log.cleaner.enable": "false"})
    manager = LogManager(config.log_dirs, config, clock=clock, cluster_id="c1")
    await manager.start()
    try:
        log = manager.get_or_create_log("t", 0, COMPACT)
        for r in range(20):
            put(log, b"same", f"v{r}".encode(), clock.ms)
        await asyncio.sleep(0.3)
        assert len(read_all(log)) == 20
    finally:
        await manager.stop()


async def test_event_loop_keeps_running_during_a_pass(tmp_path, clock) -> None:
    config = _config(tmp_path)
    manager = LogManager(config.log_dirs, config, clock=clock, cluster_id="c1")
    await manager.start()
    try:
        big = dataclasses.replace(COMPACT, segment_bytes=256 << 10, index_interval_bytes=4096)
        log = manager.get_or_create_log("t", 0, big)
        from strom.protocol.records import Record, build_batch

        value = b"x" * 100
        for i in range(400):  # ~2.5 MiB, 20 000 records over 100 keys
            records = [Record(j, 0, b"k%d" % ((i * 50 + j) % 100), value) for j in range(50)]
            log.append(build_batch(records, base_timestamp=clock.ms), leader_epoch=0, now_ms=clock.ms)
        assert manager.cleaner is not None
        ticks = 0
        worst = 0.0
        last = time.perf_counter()
        while manager.cleaner.passes == 0:
            await asyncio.sleep(0.001)
            now = time.perf_counter()
            worst = max(worst, now - last)
            last = now
            ticks += 1
            assert ticks < 100_000
        # the pass took many loop iterations; no single one was blocked for long
        assert ticks > 10
        assert worst < 0.5, f"event loop blocked for {worst:.3f} s during a cleaner pass"
    finally:
        await manager.stop()
