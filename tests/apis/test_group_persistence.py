"""Committed offsets and group metadata live in __consumer_offsets: they survive a graceful restart and a
kill -9 of `strom serve`, and the coordinator replays them on start-up."""

from __future__ import annotations

import os
import shutil
import signal
import sys
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from benchmarks.peers.brokers import SINGLE_NODE_SETTINGS, strom_command  # noqa: E402
from benchmarks.peers.process import BrokerProcess, make_workdir  # noqa: E402
from strom.testing.ports import free_port  # noqa: E402

pytestmark = pytest.mark.compat


@pytest.fixture
def data_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="strom-groups-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def start(data_dir: Path, port: int, extra: Mapping[str, str] | None = None) -> BrokerProcess:
    argv = [*strom_command(), "serve", "--data-dir", str(data_dir), "--port", str(port)]
    for key, value in {**SINGLE_NODE_SETTINGS, "offsets.topic.num.partitions": "3", **(extra or {})}.items():
        argv += ["--set", f"{key}={value}"]
    env = {"PYTHONPATH": str(REPO_ROOT)}
    return BrokerProcess("strom", argv, port, make_workdir("strom-groups-run-"), env=env).start(30)


def committed(bootstrap: str, group: str, topic: str) -> list[int]:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    try:
        parts = consumer.committed([TopicPartition(topic, 0), TopicPartition(topic, 1)], timeout=20)
        return [tp.offset for tp in parts]
    finally:
        consumer.close()


def commit(bootstrap: str, group: str, topic: str, offsets: list[int]) -> None:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    try:
        consumer.commit(
            offsets=[TopicPartition(topic, p, o) for p, o in enumerate(offsets)], asynchronous=False
        )
    finally:
        consumer.close()


def test_offsets_survive_graceful_restart_and_kill_9(data_dir: Path) -> None:
    port = free_port()
    proc = start(data_dir, port)
    try:
        bootstrap = proc.bootstrap
        admin = AdminClient({"bootstrap.servers": bootstrap})
        admin.create_topics([NewTopic("t", 2, 1)])["t"].result(10)
        commit(bootstrap, "g1", "t", [5, 7])
        commit(bootstrap, "g2", "t", [1, 2])
        commit(bootstrap, "g1", "t", [6, 8])  # the later commit wins on replay
        assert committed(bootstrap, "g1", "t") == [6, 8]

        proc.stop()  # SIGTERM: graceful
        proc = start(data_dir, port)
        assert committed(bootstrap, "g1", "t") == [6, 8]
        assert committed(bootstrap, "g2", "t") == [1, 2]

        commit(bootstrap, "g2", "t", [3, 4])
        assert proc.pid is not None
        os.killpg(proc.pid, signal.SIGKILL)
        proc.stop()
        proc = start(data_dir, port)
        assert committed(bootstrap, "g1", "t") == [6, 8]
        assert committed(bootstrap, "g2", "t") == [3, 4]
    finally:
        proc.stop()
