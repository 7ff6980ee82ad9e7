"""More of the installed `strom` executable: consume --isolation-level (read_committed skips aborted
transactions), groups reset-offsets --to-latest and --to-datetime, configs for a broker, log-dirs,
topics describe --under-replicated-partitions, and the kcat format's %t."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from strom.testing.embedded import EmbeddedBroker

STROM = shutil.which("strom") or str(Path(sys.executable).with_name("strom"))


@pytest.fixture(scope="module")
def cli_broker() -> Iterator[EmbeddedBroker]:
    with EmbeddedBroker({"num.partitions": "1"}) as broker:
        yield broker


def strom(broker: EmbeddedBroker, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "STROM_BOOTSTRAP_SERVER": broker.bootstrap_servers}
    proc = subprocess.run([STROM, *args], capture_output=True, text=True, env=env, timeout=60)
    if check:
        assert proc.returncode == 0, f"strom {' '.join(args)} exited {proc.returncode}: {proc.stderr}"
    return proc


def name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _transactions(broker: EmbeddedBroker) -> str:
    """A topic holding c1 (committed), a1 (aborted), c2 (committed), each in its own transaction."""
    topic = name("cli-txn")
    strom(broker, "topics", "create", topic)
    producer = Producer({"bootstrap.servers": broker.bootstrap_servers, "transactional.id": name("tx")})
    producer.init_transactions(10)
    for value, commit in (("c1", True), ("a1", False), ("c2", True)):
        producer.begin_transaction()
        producer.produce(topic, value.encode())
        producer.flush(10)
        if commit:
            producer.commit_transaction(10)
        else:
            producer.abort_transaction(10)
    return topic


def _consume(broker: EmbeddedBroker, topic: str, level: str) -> list[str]:
    out = strom(
        broker, "consume", topic, "--from-beginning", "--exit",
        "--isolation-level", level, "--format", "%t/%p/%v\\n",
    ).stdout  # fmt: skip
    return out.split()


def test_consume_read_uncommitted_and_topic_format(cli_broker: EmbeddedBroker) -> None:
    topic = _transactions(cli_broker)
    assert _consume(cli_broker, topic, "read_uncommitted") == [f"{topic}/0/{v}" for v in ("c1", "a1", "c2")]


def test_consume_read_committed_skips_aborted_records(cli_broker: EmbeddedBroker) -> None:
    topic = _transactions(cli_broker)
    assert _consume(cli_broker, topic, "read_committed") == [f"{topic}/0/c1", f"{topic}/0/c2"]


def test_reset_offsets_to_latest_and_to_datetime(cli_broker: EmbeddedBroker) -> None:
    topic, group = name("cli-reset"), name("g")
    strom(cli_broker, "topics", "create", topic)
    base = 1_700_000_000_000
    producer = Producer({"bootstrap.servers": cli_broker.bootstrap_servers})
    for i in range(5):
        producer.produce(topic, f"v{i}".encode(), partition=0, timestamp=base + i * 60_000)
    assert producer.flush(10) == 0
    consumer = Consumer({"bootstrap.servers": cli_broker.bootstrap_servers, "group.id": group})
    consumer.commit(offsets=[TopicPartition(topic, 0, 1)], asynchronous=False)
    consumer.close()

    def current() -> int:
        view = json.loads(strom(cli_broker, "groups", "describe", group, "--format", "json").stdout)
        (row,) = view["partitions"]
        return int(row["current_offset"])

    strom(cli_broker, "groups", "reset-offsets", group, "--all-topics", "--to-latest", "--execute")
    assert current() == 5
    # the earliest record whose timestamp is at or after the given time: exactly base + 2 min is offset 2,
    # a millisecond later is offset 3
    two_minutes = "2023-11-14T22:15:20"  # base (2023-11-14T22:13:20Z) + 120 s, no zone means UTC
    plan = strom(
        cli_broker, "groups", "reset-offsets", group, "--topic", topic, "--to-datetime", two_minutes,
        "--format", "json",
    )  # fmt: skip
    assert [o["new_offset"] for o in json.loads(plan.stdout)["offsets"]] == [2]
    assert current() == 5  # a plan only
    strom(cli_broker, "groups", "reset-offsets", group, "--topic", topic, "--to-datetime",
          "2023-11-14T22:15:20.001", "--execute")  # fmt: skip
    assert current() == 3
    bad = strom(
        cli_broker, "groups", "reset-offsets", group, "--all-topics", "--to-datetime", "yesterday",
        check=False,
    )  # fmt: skip
    assert bad.returncode == 2 and "ISO-8601" in bad.stderr


def test_broker_configs_and_log_dirs(cli_broker: EmbeddedBroker) -> None:
    strom(cli_broker, "configs", "alter", "--broker", "1", "--set", "log.retention.ms=3600000")
    try:
        described = json.loads(
            strom(cli_broker, "configs", "describe", "--broker", "1", "--format", "json").stdout
        )
        (entry,) = [c for c in described if c["name"] == "log.retention.ms"]
        assert entry["value"] == "3600000" and entry["source"] == "DYNAMIC_BROKER_CONFIG"
    finally:
        strom(cli_broker, "configs", "alter", "--broker", "1", "--delete", "log.retention.ms")
    described = json.loads(
        strom(cli_broker, "configs", "describe", "--broker", "1", "--format", "json").stdout
    )
    assert all(c["name"] != "log.retention.ms" for c in described)

    topic = name("cli-dirs")
    strom(cli_broker, "topics", "create", topic)
    producer = Producer({"bootstrap.servers": cli_broker.bootstrap_servers})
    producer.produce(topic, b"x" * 1000, partition=0)
    assert producer.flush(10) == 0
    rows = json.loads(strom(cli_broker, "log-dirs", "--format", "json").stdout)
    (row,) = [r for r in rows if r["partition"] == f"{topic}-0"]
    assert row["broker"] == 1 and row["size"] > 1000 and row["offset_lag"] == 0
    assert row["log_dir"] == str(cli_broker.data_dir)
    down = strom(cli_broker, "log-dirs", "--broker", "99", check=False)
    assert down.returncode == 1 and "Traceback" not in down.stderr


def test_describe_under_replicated_partitions_filters(cli_broker: EmbeddedBroker) -> None:
    topic = name("cli-urp")
    strom(cli_broker, "topics", "create", topic, "--partitions", "2")
    full = strom(cli_broker, "topics", "describe", topic).stdout
    assert f"Topic: {topic}\tPartition: 1\tLeader: 1\tReplicas: 1\tIsr: 1" in full
    # a single broker's partitions all have their whole ISR: nothing is under-replicated
    assert strom(cli_broker, "topics", "describe", topic, "--under-replicated-partitions").stdout == ""
    as_json = json.loads(
        strom(
            cli_broker, "topics", "describe", topic, "--under-replicated-partitions", "--format", "json"
        ).stdout
    )
    assert [t["partitions"] for t in as_json] == [[]]
