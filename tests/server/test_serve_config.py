"""`strom serve --config server.properties`: the file's keys are the broker's configuration, flags and
`--set` override them, and `advertised.listeners` and `broker.rack` are what Metadata and DescribeCluster
answer to a real client (Kafka's KafkaConfig.effectiveAdvertisedListeners and the broker's rack)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient, NewTopic

from strom.testing.ports import free_port

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[list[subprocess.Popen[str]]]:
    procs: list[subprocess.Popen[str]] = []
    yield procs
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)


def _start(procs: list[subprocess.Popen[str]], *args: str) -> str:
    proc = subprocess.Popen(
        [sys.executable, "-m", "strom.cli.main", "serve", *args],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    procs.append(proc)
    assert proc.stdout is not None
    return proc.stdout.readline()


def test_config_file_advertised_listener_and_rack_reach_clients(
    tmp_path: Path, serve: list[subprocess.Popen[str]]
) -> None:
    port = free_port()
    props = tmp_path / "server.properties"
    props.write_text(
        "# a server.properties as Kafka reads it\n"
        "node.id=7\n"
        f"log.dirs={tmp_path / 'from-file'}\n"
        f"listeners=PLAINTEXT://127.0.0.1:{port}\n"
        # a name that resolves to the bound address, so the client can follow the advertised one
        f"advertised.listeners=PLAINTEXT://localhost:{port}\n"
        "broker.rack=rack-b\n"
        "num.partitions=3\n"
    )
    line = _start(serve, "--config", str(props), "--set", "num.partitions=4")
    assert f"listening on 127.0.0.1:{port} (advertised localhost:{port})" in line, line

    admin = AdminClient({"bootstrap.servers": f"127.0.0.1:{port}"})
    md = admin.list_topics(timeout=10)
    assert {(b.id, b.host, b.port) for b in md.brokers.values()} == {(7, "localhost", port)}
    cluster = admin.describe_cluster(request_timeout=10).result(10)
    assert [(n.id, n.host, n.port, n.rack) for n in cluster.nodes] == [(7, "localhost", port, "rack-b")]

    # --set wins over the file (a topic created without a count gets num.partitions); data goes to the
    # file's log.dirs
    admin.create_topics([NewTopic("defaults")])["defaults"].result(10)
    topic = admin.list_topics("defaults", timeout=10).topics["defaults"]
    assert topic.error is None and len(topic.partitions) == 4
    assert (tmp_path / "from-file" / "defaults-3").is_dir()

    serve[0].send_signal(signal.SIGTERM)
    assert serve[0].wait(15) == 0


def test_without_advertised_listeners_the_bound_address_is_advertised(
    tmp_path: Path, serve: list[subprocess.Popen[str]]
) -> None:
    port = free_port()
    props = tmp_path / "server.properties"
    props.write_text(f"log.dirs={tmp_path / 'data'}\nlisteners=PLAINTEXT://127.0.0.1:0\n")
    # an explicit --port replaces the file's listener port
    line = _start(serve, "--config", str(props), "--port", str(port))
    assert f"(advertised 127.0.0.1:{port})" in line, line
    admin = AdminClient({"bootstrap.servers": f"127.0.0.1:{port}"})
    cluster = admin.describe_cluster(request_timeout=10).result(10)
    assert [(n.host, n.port, n.rack) for n in cluster.nodes] == [("127.0.0.1", port, None)]


def test_missing_config_file_fails_cleanly(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "strom.cli.main", "serve", "--config", str(tmp_path / "absent.properties")],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert result.returncode != 0
    assert "absent.properties" in result.stderr and "Traceback" not in result.stderr
