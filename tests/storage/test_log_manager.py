"""LogManager: load/start/stop, checkpoints, the clean-shutdown marker, deletion, periodic retention."""

from __future__ import annotations

import asyncio
import time

from strom.config import BrokerConfig, LogConfig
from strom.protocol.records import Record, build_batch
from strom.storage.log_manager import CLEAN_SHUTDOWN_FILE, LogManager


def broker_config(tmp_path, **extra) -> BrokerConfig:
    return BrokerConfig({"log.dirs": f"{tmp_path}/a,{tmp_path}/b", **extra})


def one_batch(clock, value=b"v"):
    return build_batch([Record(0, 0, b"k", value)], base_timestamp=clock.ms)


async def test_start_stop_restart_keeps_logs_and_offsets(tmp_path, clock):
    config = broker_config(tmp_path)
    manager = LogManager(config.log_dirs, config, clock=clock, cluster_id="c1")
    await manager.start()
    logs = [manager.get_or_create_log("t", p, LogConfig(segment_bytes=300)) for p in range(4)]
    assert {log.dir.parent.name for log in logs} == {"a", "b"}  # spread over the log dirs
    for log in logs:
        for _ in range(10):
            log.append(one_batch(clock), leader_epoch=0)
    logs[0].delete_records_before(7)
    await manager.stop()
    for d in config.log_dirs:
        assert (d / CLEAN_SHUTDOWN_FILE).exists()
        assert (d / "recovery-point-offset-checkpoint").read_text().startswith("0\n2\n")
    again = LogManager(config.log_dirs, config, clock=clock, cluster_id="c1")
    await again.start()
    assert again.had_clean_shutdown
    assert not any((d / CLEAN_SHUTDOWN_FILE).exists() for d in config.log_dirs)
    log0 = again.get_log("t", 0)
    assert (log0.log_start_offset, log0.log_end_offset, log0.recovery_point) == (7, 10, 10)
    assert sorted((log.topic, log.partition) for log in again.all_logs()) == [("t", p) for p in range(4)]
    await again.stop()


async def test_unclean_restart_recovers(tmp_path, clock):
    config = broker_config(tmp_path)
    manager = LogManager(config.log_dirs, config, clock=clock)
    manager.load()
    log = manager.get_or_create_log("t", 0, LogConfig())
    for _ in range(5):
        log.append(one_batch(clock), leader_epoch=0)
    path = log.active_segment.log_path
    size = log.active_segment.size
    for segment in log.segments():
        segment.close(trim=False)  # crash: no marker, no checkpoint
    with open(path, "ab") as f:
        f.write(b"\x00\x00\x00\x00\x00\x00\x00\x05\x00\x00\x01")  # a torn write
    again = LogManager(config.log_dirs, config, clock=clock)
    again.load()
    assert not again.had_clean_shutdown
    recovered = again.get_log("t", 0)
    assert recovered.log_end_offset == 5 and recovered.active_segment.size == size
    again.shutdown()


async def test_delete_log_renames_then_removes(tmp_path, clock):
    config = broker_config(tmp_path)
    manager = LogManager(config.log_dirs, config, clock=clock)
    manager.load()
    log = manager.get_or_create_log("gone", 0, LogConfig(file_delete_delay_ms=1000))
    log.append(one_batch(clock), leader_epoch=0)
    parent = log.dir.parent
    manager.delete_log("gone", 0)
    assert manager.get_log("gone", 0) is None
    renamed = [p for p in parent.iterdir() if p.name.endswith("-delete")]
    assert len(renamed) == 1 and renamed[0].name.startswith("gone-0.")
    manager.delete_expired_files(clock.ms + 999)
    assert renamed[0].exists()
    manager.delete_expired_files(clock.ms + 1000)
    assert not renamed[0].exists()
    manager.shutdown()


async def test_periodic_retention_and_flush(tmp_path, clock):
    config = broker_config(tmp_path, **{"log.retention.check.interval.ms": "20"})
    manager = LogManager(config.log_dirs, config, clock=clock, flush_check_interval_ms=20)
    await manager.start()
    log = manager.get_or_create_log(
        "t", 0, LogConfig(segment_bytes=200, retention_bytes=300, file_delete_delay_ms=0)
    )
    for _ in range(20):
        log.append(one_batch(clock, b"x" * 40), leader_epoch=0)
    assert log.segment_count > 3
    for _ in range(100):
        await asyncio.sleep(0.02)
        flushed = log.recovery_point >= log.segments()[-1].base_offset
        if log.segment_count <= 3 and not list(log.dir.glob("*.deleted")) and flushed:
            break
    assert log.segment_count <= 3
    assert not list(log.dir.glob("*.deleted"))
    assert log.recovery_point >= log.segments()[-1].base_offset  # rolled segments were flushed
    await manager.stop()


def test_open_1000_partitions_after_clean_shutdown(tmp_path, clock):
    config = BrokerConfig({"log.dirs": str(tmp_path / "d")})
    manager = LogManager(config.log_dirs, config, clock=clock)
    manager.load()
    raw = one_batch(clock)
    for p in range(1000):
        manager.get_or_create_log("many", p, LogConfig()).append(raw, leader_epoch=0)
    manager.shutdown()
    again = LogManager(config.log_dirs, config, clock=clock)
    started = time.perf_counter()
    again.load()
    elapsed = time.perf_counter() - started
    assert len(again.all_logs()) == 1000
    assert all(log.log_end_offset == 1 for log in again.all_logs())
    assert elapsed < 2.0, elapsed
    again.shutdown()
