"""The pytest plugin, as a user meets it: pytest in a subprocess on a sample test file that uses the
strom_broker and strom_topic fixtures (found through the pytest11 entry point), embedded or external."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

from strom.testing.embedded import EmbeddedBroker

SAMPLE = textwrap.dedent(
    """
    import pytest
    from confluent_kafka import Consumer, Producer
    from confluent_kafka.admin import AdminClient


    def test_broker_has_an_address(strom_broker):
        host, port = strom_broker.bootstrap_servers.rsplit(":", 1)
        assert int(port) > 0
        print("BOOTSTRAP", strom_broker.bootstrap_servers)


    def test_round_trip(strom_broker, strom_topic):
        producer = Producer({"bootstrap.servers": strom_broker.bootstrap_servers})
        producer.produce(strom_topic, key=b"k", value=b"v")
        assert producer.flush(10) == 0
        consumer = Consumer({"bootstrap.servers": strom_broker.bootstrap_servers, "group.id": "sample",
                             "auto.offset.reset": "earliest"})
        consumer.subscribe([strom_topic])
        message = None
        for _ in range(60):
            message = consumer.poll(0.25)
            if message is not None and not message.error():
                break
        consumer.close()
        assert message is not None and message.value() == b"v"


    @pytest.mark.strom_topic(partitions=3, config={"cleanup.policy": "compact"})
    def test_marked_topic(strom_broker, strom_topic):
        admin = AdminClient({"bootstrap.servers": strom_broker.bootstrap_servers})
        assert len(admin.list_topics(strom_topic, timeout=10).topics[strom_topic].partitions) == 3
        print("TOPIC", strom_topic)


    def test_each_test_gets_its_own_topic(strom_topic):
        assert strom_topic.startswith("test_each_test_gets_its_own_topic-")
    """
)


def _run_pytest(tmp_path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    sample = tmp_path / "test_sample.py"
    sample.write_text(SAMPLE)
    env = {k: v for k, v in os.environ.items() if k != "STROM_TEST_BOOTSTRAP"}
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            str(sample),
            "-q",
            "-s",
            "-p",
            "no:cacheprovider",
            "-p",
            "no:randomly",
            "--rootdir",
            str(tmp_path),
            *extra,
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def test_fixtures_with_an_embedded_broker(tmp_path: Path) -> None:
    proc = _run_pytest(tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "4 passed" in proc.stdout
    assert "BOOTSTRAP 127.0.0.1:" in proc.stdout


def test_fixtures_with_an_external_broker(tmp_path: Path) -> None:
    with EmbeddedBroker() as broker:
        proc = _run_pytest(tmp_path, "--strom-bootstrap", broker.bootstrap_servers)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert f"BOOTSTRAP {broker.bootstrap_servers}" in proc.stdout
        topic = re.search(r"TOPIC (\S+)", proc.stdout).group(1)  # type: ignore[union-attr]
        # the fixture deleted its topics from the external broker afterwards
        from confluent_kafka.admin import AdminClient

        listed = AdminClient({"bootstrap.servers": broker.bootstrap_servers}).list_topics(timeout=10).topics
        assert topic not in listed
        assert not any(name.startswith("test_round_trip-") for name in listed)


def test_a_failing_sample_fails(tmp_path: Path) -> None:
    (tmp_path / "test_bad.py").write_text(
        "def test_wrong(strom_broker):\n    assert strom_broker.bootstrap_servers == 'nowhere:1'\n"
    )
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            str(tmp_path / "test_bad.py"),
            "-q",
            "-p",
            "no:cacheprovider",
            "--rootdir",
            str(tmp_path),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env={k: v for k, v in os.environ.items() if k != "STROM_TEST_BOOTSTRAP"},
    )
    assert proc.returncode == 1 and "1 failed" in proc.stdout
