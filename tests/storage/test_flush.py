"""flush.messages and flush.ms: the recovery point moves when the topic asks for an fsync, and only then
(Kafka's default leaves flushing to the OS); a roll makes the rolled segment due for a flush. The append
itself never fsyncs: flush.messages asks the owner (the LogManager) to flush in a worker thread."""

from __future__ import annotations

import asyncio
import os
import threading

from strom.config import BrokerConfig, LogConfig
from strom.storage.log_manager import LogManager


def test_flush_messages_makes_the_log_due_every_n_messages(open_log, clock, batch):
    log = open_log(LogConfig(flush_messages=3))
    requests: list[int] = []
    log.schedule_flush = lambda: requests.append(log.log_end_offset)
    log.append(batch([b"a"], timestamp=clock.ms), leader_epoch=0)
    log.append(batch([b"b"], timestamp=clock.ms), leader_epoch=0)
    assert requests == [] and log.flush_due(clock.ms) is None
    log.append(batch([b"c"], timestamp=clock.ms), leader_epoch=0)
    assert requests == [3] and log.flush_due(clock.ms) == 3
    assert log.recovery_point == 0  # the append only asks; the owner flushes
    log.flush(log.flush_due(clock.ms))
    assert log.recovery_point == 3 and log.flush_due(clock.ms) is None
    log.append(batch([b"d", b"e"], timestamp=clock.ms), leader_epoch=0)
    assert requests == [3] and log.flush_due(clock.ms) is None
    log.append(batch([b"f"], timestamp=clock.ms), leader_epoch=0)
    assert requests == [3, 6] and log.flush_due(clock.ms) == 6


async def wait_for(condition, timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "background flush did not finish"
        await asyncio.sleep(0.005)


def manager_for(tmp_path, clock) -> LogManager:
    config = BrokerConfig({"log.dirs": str(tmp_path / "logs")})
    manager = LogManager(config.log_dirs, config, clock=clock)
    manager.load()
    return manager


async def test_flush_messages_moves_the_recovery_point_in_the_background(tmp_path, clock, batch):
    manager = manager_for(tmp_path, clock)
    log = manager.get_or_create_log("t", 0, LogConfig(flush_messages=3))
    for value in (b"a", b"b"):
        log.append(batch([value], timestamp=clock.ms), leader_epoch=0)
    await asyncio.sleep(0.05)
    assert log.recovery_point == 0
    log.append(batch([b"c"], timestamp=clock.ms), leader_epoch=0)
    await wait_for(lambda: log.recovery_point == 3)
    log.append(batch([b"d", b"e"], timestamp=clock.ms), leader_epoch=0)
    await asyncio.sleep(0.05)
    assert log.recovery_point == 3
    log.append(batch([b"f"], timestamp=clock.ms), leader_epoch=0)
    await wait_for(lambda: log.recovery_point == 6)
    await manager.stop()


async def test_flush_messages_never_fsyncs_on_the_event_loop_thread(tmp_path, clock, batch, monkeypatch):
    manager = manager_for(tmp_path, clock)
    log = manager.get_or_create_log("t", 0, LogConfig(flush_messages=1))
    # the first append of an epoch writes the leader-epoch checkpoint (once per epoch, not per message)
    log.append(batch([b"first"], timestamp=clock.ms), leader_epoch=0)
    await wait_for(lambda: log.recovery_point == 1)
    real_fsync = os.fsync
    threads: list[threading.Thread] = []

    def recording_fsync(fd: int) -> None:
        threads.append(threading.current_thread())
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", recording_fsync)
    loop_thread = threading.current_thread()
    for i in range(5):
        log.append(batch([b"%d" % i], timestamp=clock.ms), leader_epoch=0)
        assert loop_thread not in threads  # the append returned without an fsync of its own
    await wait_for(lambda: log.recovery_point == 6)
    assert threads and loop_thread not in threads
    monkeypatch.setattr(os, "fsync", real_fsync)
    await manager.stop()


async def test_flushes_of_one_log_never_overlap(tmp_path, clock, batch, monkeypatch):
    manager = manager_for(tmp_path, clock)
    log = manager.get_or_create_log("t", 0, LogConfig(flush_messages=1, flush_ms=0))
    real_flush = log.flush
    running = 0
    most = 0
    guard = threading.Lock()

    def slow_flush(up_to: int | None = None) -> None:
        nonlocal running, most
        with guard:
            running += 1
            most = max(most, running)
        threading.Event().wait(0.02)
        real_flush(up_to)
        with guard:
            running -= 1

    monkeypatch.setattr(log, "flush", slow_flush)
    for i in range(10):
        log.append(batch([b"%d" % i], timestamp=clock.ms), leader_epoch=0)
        await asyncio.gather(manager.flush_due_logs(), asyncio.sleep(0.005))
    await wait_for(lambda: log.recovery_point == 10)
    assert most == 1
    await manager.stop()


def test_default_leaves_flushing_to_the_os(open_log, clock, batch):
    log = open_log()
    for _ in range(50):
        log.append(batch([b"x"], timestamp=clock.ms), leader_epoch=0)
    clock.advance(3_600_000)
    assert log.recovery_point == 0
    assert log.flush_due(clock.ms) is None


def test_flush_ms_makes_unflushed_data_due(open_log, clock, batch):
    log = open_log(LogConfig(flush_ms=1000))
    assert log.flush_due(clock.ms) is None  # nothing unflushed yet
    log.append(batch([b"a", b"b"], timestamp=clock.ms), leader_epoch=0)
    clock.advance(999)
    assert log.flush_due(clock.ms) is None
    clock.advance(1)
    assert log.flush_due(clock.ms) == 2
    log.flush(2)
    assert log.recovery_point == 2 and log.flush_due(clock.ms) is None


def test_a_roll_makes_the_rolled_segment_due(open_log, clock, batch):
    log = open_log()
    log.append(batch([b"a", b"b"], timestamp=clock.ms), leader_epoch=0)
    log.roll()
    assert log.flush_due(clock.ms) == 2
    log.flush(log.flush_due(clock.ms))
    assert log.recovery_point == 2 and log.flush_due(clock.ms) is None
