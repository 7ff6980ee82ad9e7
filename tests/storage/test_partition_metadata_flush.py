"""A new log's partition.metadata (KIP-516) is written lazily, as Kafka's UnifiedLog does: not while the
partition is created (thousands of partitions would cost two fsyncs each), but by the owner's background
flush soon after, or before the first append if that comes first, or at close; a restart reads it back."""

from __future__ import annotations

import uuid
from pathlib import Path

from strom.config import BrokerConfig, LogConfig
from strom.protocol.records import Record, build_batch
from strom.storage.checkpoint import read_partition_metadata
from strom.storage.log import PARTITION_METADATA
from strom.storage.log_manager import LogManager


def _manager(tmp_path: Path) -> LogManager:
    cfg = BrokerConfig({"log.dirs": str(tmp_path / "logs")})
    manager = LogManager(cfg.log_dirs, cfg)
    manager.load()
    return manager


def test_partition_metadata_is_written_after_creation_not_during_it(tmp_path: Path) -> None:
    manager = _manager(tmp_path)
    ids = {p: uuid.uuid4() for p in range(3)}
    logs = {p: manager.get_or_create_log("t", p, LogConfig(), ids[p]) for p in ids}
    assert not any((log.dir / PARTITION_METADATA).exists() for log in logs.values())

    # the first append writes it first: no record is on disk without its topic id
    logs[0].append(build_batch([Record(0, 0, None, b"v")]), leader_epoch=0)
    assert read_partition_metadata(logs[0].dir / PARTITION_METADATA) == ids[0]

    # the background flush writes the others (and counts only those it wrote)
    assert manager.flush_pending_metadata() == 2
    assert all(read_partition_metadata(log.dir / PARTITION_METADATA) == ids[p] for p, log in logs.items())
    assert manager.flush_pending_metadata() == 0

    # a log closed before either writes it at close; a restart reads every id back
    late = uuid.uuid4()
    manager.get_or_create_log("t", 3, LogConfig(), late)
    manager.shutdown()
    again = _manager(tmp_path)
    assert again.topic_id("t", 3) == late and again.topic_id("t", 0) == ids[0]
    again.shutdown()
