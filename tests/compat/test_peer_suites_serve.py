"""scripts/peer-suites --serve: the cluster mode other projects' suites are pointed at.

It starts ZooKeeper and three Strom brokers on the ports asked for, applies --set to every broker, prints
the bootstrap servers (and writes them to cluster.json), serves until SIGTERM, then stops every process it
started and keeps the broker logs. A librdkafka producer and consumer go through the printed address.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient

from strom.testing.ports import free_port
from strom.testing.prerequisites import missing
from strom.testing.zookeeper import DEFAULT_CLASSPATH

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "peer-suites"
START_S = 90  # ZooKeeper and three brokers on a loaded two-core machine

pytestmark = [pytest.mark.peer, pytest.mark.compat, pytest.mark.cluster]


def _read_until_serving(proc: subprocess.Popen[bytes], deadline: float) -> list[str]:
    assert proc.stdout is not None
    os.set_blocking(proc.stdout.fileno(), False)
    lines: list[str] = []
    buf = ""
    while time.monotonic() < deadline:
        chunk = proc.stdout.read()
        if chunk:
            buf += chunk.decode(errors="replace")
            *done, buf = buf.split("\n")
            lines += done
            if any(line.startswith("serving;") for line in lines):
                return lines
        elif proc.poll() is not None:
            break
        time.sleep(0.1)
    raise AssertionError(f"no 'serving' line before the deadline (exit {proc.poll()}): {[*lines, buf]}")


@pytest.mark.timeout(START_S + 120)
@pytest.mark.parametrize(
    ("extra", "first_id", "host"),
    [([], 1, "127.0.0.1"), (["--first-node-id", "0", "--advertised-host", "localhost"], 0, "localhost")],
    ids=["default", "kafkajs-shape"],
)
def test_serve_mode_starts_a_cluster_on_the_given_ports_and_stops_on_sigterm(
    tmp_path: Path, extra: list[str], first_id: int, host: str
) -> None:
    """The second case is the shape of kafkajs's docker-compose cluster: broker ids 0, 1, 2 advertised as
    localhost (its tests compare both with what they expect)."""
    if not Path(DEFAULT_CLASSPATH).exists():
        missing("Debian's zookeeper package is needed")
    ports = [free_port() for _ in range(3)]
    out = tmp_path / "serve"
    cmd = [
        str(SCRIPT), "--serve", "--ports", ",".join(map(str, ports)), "--set", "num.partitions=2",
        "--out", str(out), *extra,
    ]  # fmt: skip
    proc = subprocess.Popen(
        cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        start_new_session=True,
    )  # fmt: skip
    try:
        lines = _read_until_serving(proc, time.monotonic() + START_S)
        bootstrap = ",".join(f"127.0.0.1:{port}" for port in ports)
        assert f"bootstrap.servers={bootstrap}" in lines
        info = json.loads((out / "cluster.json").read_text())
        assert info["bootstrap_servers"] == bootstrap and len(info["logs"]) == 3

        producer = Producer({"bootstrap.servers": bootstrap, "acks": "all"})
        for i in range(10):
            producer.produce("served", key=str(i).encode(), value=b"v%d" % i)
        assert producer.flush(30) == 0
        md = AdminClient({"bootstrap.servers": bootstrap}).list_topics("served", timeout=10)
        assert len(md.topics["served"].partitions) == 2  # --set num.partitions=2 reached the brokers
        assert {b.port for b in md.brokers.values()} == set(ports)
        assert {b.id for b in md.brokers.values()} == {first_id, first_id + 1, first_id + 2}
        assert {b.host for b in md.brokers.values()} == {host}

        consumer = Consumer(
            {"bootstrap.servers": bootstrap, "group.id": "served", "auto.offset.reset": "earliest"}
        )
        consumer.subscribe(["served"])
        got: list[bytes] = []
        deadline = time.monotonic() + 60
        while len(got) < 10 and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is not None and msg.error() is None:
                got.append(msg.value())
        consumer.close()
        assert sorted(got) == sorted(b"v%d" % i for i in range(10))

        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
    ids = (first_id, first_id + 1, first_id + 2)
    assert sorted(p.name for p in out.glob("broker-*.log")) == [f"broker-{i}.log" for i in ids]
    for port in ports:  # nothing listens any more
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
