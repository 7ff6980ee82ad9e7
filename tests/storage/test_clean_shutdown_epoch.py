"""The broker epoch in the clean-shutdown markers (KIP-966, Kafka's CleanShutdownFileHandler): written by a
clean stop once the KRaft broker registered, read back as `previous_broker_epoch` only when every log dir
holds the same one."""

from __future__ import annotations

import json
from pathlib import Path

from strom.config import BrokerConfig
from strom.storage.log_manager import CLEAN_SHUTDOWN_FILE, LogManager


def config(tmp_path: Path) -> BrokerConfig:
    return BrokerConfig({"log.dirs": f"{tmp_path}/a,{tmp_path}/b"})


def test_a_clean_stop_writes_the_epoch_and_the_next_start_reads_it(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    manager = LogManager(cfg.log_dirs, cfg)
    manager.load()
    assert manager.previous_broker_epoch == -1
    manager.broker_epoch = 42
    manager.shutdown()
    for d in cfg.log_dirs:
        assert json.loads((d / CLEAN_SHUTDOWN_FILE).read_text()) == {"version": 0, "brokerEpoch": 42}
    again = LogManager(cfg.log_dirs, cfg)
    again.load()
    assert again.previous_broker_epoch == 42 and again.had_clean_shutdown
    assert not any((d / CLEAN_SHUTDOWN_FILE).exists() for d in cfg.log_dirs)
    again.shutdown()


def test_no_epoch_without_registration_a_missing_marker_or_disagreeing_dirs(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    manager = LogManager(cfg.log_dirs, cfg)
    manager.load()
    manager.shutdown()  # never registered: an empty marker, as before
    assert (cfg.log_dirs[0] / CLEAN_SHUTDOWN_FILE).read_text() == ""
    again = LogManager(cfg.log_dirs, cfg)
    again.load()
    assert again.previous_broker_epoch == -1 and again.had_clean_shutdown
    again.broker_epoch = 7
    again.shutdown()
    (cfg.log_dirs[1] / CLEAN_SHUTDOWN_FILE).write_text('{"version":0,"brokerEpoch":8}')
    third = LogManager(cfg.log_dirs, cfg)
    third.load()
    assert third.previous_broker_epoch == -1
    third.broker_epoch = 9
    third.shutdown()
    (cfg.log_dirs[0] / CLEAN_SHUTDOWN_FILE).unlink()  # one dir lost its marker: not clean
    fourth = LogManager(cfg.log_dirs, cfg)
    fourth.load()
    assert fourth.previous_broker_epoch == -1 and not fourth.had_clean_shutdown
    fourth.shutdown()
