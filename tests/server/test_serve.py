"""`strom serve` as a process: one address line once ready (how fast belongs to benchmarks/startup_bench.py),
SIGTERM shuts down cleanly (exit 0, clean shutdown marker, data kept across restarts)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from strom.cli.serve import build_config
from strom.testing.ports import free_port

REPO = Path(__file__).resolve().parents[2]


def _start(data: Path, port: int, *extra: str) -> tuple[subprocess.Popen[str], str, float]:
    started = time.monotonic()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "strom.cli.main",
            "serve",
            "--data-dir",
            str(data),
            "--port",
            str(port),
            "--set",
            "num.partitions=2",
            *extra,
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    return proc, line, time.monotonic() - started


def test_serve_lifecycle(tmp_path: Path) -> None:
    data = tmp_path / "data"
    port = free_port()
    proc, line, elapsed = _start(data, port)
    try:
        assert f"127.0.0.1:{port}" in line
        # how fast start-up is belongs to benchmarks/startup_bench.py; this only bounds a hang
        assert elapsed < 30.0, f"ready after {elapsed:.2f} s"
        producer = Producer({"bootstrap.servers": f"127.0.0.1:{port}"})
        for i in range(5):
            producer.produce("kept", value=str(i).encode(), partition=1)
        assert producer.flush(10) == 0
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert (data / ".kafka_cleanshutdown").exists()
    assert (data / "kept-1").is_dir()

    proc, line, _elapsed = _start(data, port)
    try:
        consumer = Consumer({"bootstrap.servers": f"127.0.0.1:{port}", "group.id": "g"})
        try:
            low, high = consumer.get_watermark_offsets(TopicPartition("kept", 1), timeout=10)
            assert (low, high) == (0, 5)
        finally:
            consumer.close()
        proc.send_signal(signal.SIGINT)
        assert proc.wait(15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_second_signal_exits_at_once(tmp_path: Path) -> None:
    proc, line, _elapsed = _start(tmp_path / "data", free_port())
    try:
        assert "listening on" in line
        proc.send_signal(signal.SIGTERM)
        time.sleep(0.02)  # two signals sent together may be delivered as one
        proc.send_signal(signal.SIGINT)
        assert proc.wait(5) == 1
        assert not (tmp_path / "data" / ".kafka_cleanshutdown").exists()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_config_file_then_flags_then_set(tmp_path: Path) -> None:
    props = tmp_path / "server.properties"
    props.write_text(
        f"log.dirs={tmp_path / 'from-file'}\nnode.id=9\nlisteners=PLAINTEXT://127.0.0.1:1\n"
        "num.partitions=5\nlog.retention.ms=1000\n"
    )
    config = build_config(None, None, None, None, str(props), ())
    assert config.log_dirs == [tmp_path / "from-file"]
    assert config.get("node.id") == 9 and config.get("num.partitions") == 5
    assert config.get("listeners") == "PLAINTEXT://127.0.0.1:1"
    config = build_config(str(tmp_path / "d"), "0.0.0.0", 9099, 3, str(props), ("log.retention.ms=7",))
    assert config.log_dirs == [tmp_path / "d"]
    assert config.get("listeners") == "PLAINTEXT://0.0.0.0:9099"
    assert config.get("node.id") == 3 and config.get("log.retention.ms") == 7
    defaults = build_config(None, None, None, None, None, ())
    assert defaults.get("listeners") == "PLAINTEXT://127.0.0.1:9092"
    assert defaults.get("node.id") == 1 and str(defaults.log_dirs[0]) == "strom-data"


def test_serve_with_host_and_node_id(tmp_path: Path) -> None:
    port = free_port()
    proc, line, _elapsed = _start(tmp_path / "data", port, "--host", "127.0.0.1", "--node-id", "7")
    try:
        assert line.startswith("Strom broker 7 ") and f"127.0.0.1:{port}" in line
        admin = AdminClient({"bootstrap.servers": f"127.0.0.1:{port}"})
        metadata = admin.list_topics(timeout=10)
        assert metadata.controller_id == 7 and list(metadata.brokers) == [7]
        assert (metadata.brokers[7].host, metadata.brokers[7].port) == ("127.0.0.1", port)
    finally:
        proc.terminate()
        proc.wait(15)
