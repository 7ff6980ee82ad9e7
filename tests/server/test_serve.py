"""`strom serve` as a process: ready quickly, one address line, SIGTERM shuts down cleanly (exit 0, clean
shutdown marker, data kept across restarts)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from confluent_kafka import Consumer, Producer, TopicPartition

REPO = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start(data: Path, port: int) -> tuple[subprocess.Popen[str], str, float]:
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
    port = _free_port()
    proc, line, _elapsed = _start(data, port)
    try:
        assert f"127.0.0.1:{port}" in line
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
