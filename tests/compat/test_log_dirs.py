"""JBOD through Kafka's own tools, the same against Strom and Apache Kafka 4.4 (`--kafka-reference`), each
started with two log dirs (`log.dirs=a,b`):

- `kafka-log-dirs --describe` (DescribeLogDirs) lists both dirs without error, and each partition of a new
  topic once, in one of them, not as a future replica.
- `kafka-reassign-partitions --execute` with `log_dirs` in the plan sends AlterPartitionReassignments
  (same replicas) and AlterReplicaLogDirs for the partition; `--verify` reports the move completed; the
  partition is then in the other dir (kafka-log-dirs) and still holds every record.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from compat_support import JavaTools, admin_client, consume_partition, wait_for_topic
from confluent_kafka import Producer
from confluent_kafka.admin import NewTopic

from benchmarks.peers import brokers, tools

pytestmark = pytest.mark.compat

LOG_DIRS_COMMAND = "org.apache.kafka.tools.LogDirsCommand"
REASSIGN_COMMAND = "org.apache.kafka.tools.reassign.ReassignPartitionsCommand"


@dataclass(frozen=True)
class JbodBroker:
    bootstrap: str
    dirs: tuple[str, str]
    tools: JavaTools


@pytest.fixture(scope="module")
def jbod(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[JbodBroker]:
    if request.config.getoption("--bootstrap", default=None):
        pytest.skip("needs a broker it configures itself (two log dirs)")
    root = Path(tmp_path_factory.mktemp("jbod"))
    dirs = (str((root / "a").resolve()), str((root / "b").resolve()))
    settings = {"log.dirs": ",".join(dirs)}
    tools.ensure_tools()
    if request.config.getoption("--kafka-reference", default=False):
        proc = brokers.start_kafka(settings=settings)
    else:
        proc = brokers.start_strom(settings=settings)
    try:
        yield JbodBroker(proc.bootstrap, dirs, JavaTools(proc.bootstrap))
    finally:
        proc.stop()


def _describe(broker: JbodBroker, topic: str) -> dict[str, dict[str, tuple[bool, int]]]:
    """kafka-log-dirs --describe: {dir: {"topic-p": (is future, size)}}; every dir must have no error."""
    out = broker.tools.run(LOG_DIRS_COMMAND, "--bootstrap-server", broker.bootstrap, "--describe",
                           "--topic-list", topic).stdout  # fmt: skip
    doc = json.loads(next(line for line in out.splitlines() if line.startswith("{")))
    (entry,) = doc["brokers"]
    result: dict[str, dict[str, tuple[bool, int]]] = {}
    for log_dir in entry["logDirs"]:
        assert log_dir["error"] is None, log_dir
        parts = log_dir["partitions"]
        result[log_dir["logDir"]] = {p["partition"]: (p["isFuture"], p["size"]) for p in parts}
    return result


def _where(described: dict[str, dict[str, tuple[bool, int]]], name: str) -> list[tuple[str, bool]]:
    return [(d, parts[name][0]) for d, parts in described.items() if name in parts]


def test_describe_and_move_with_kafka_tools(jbod: JbodBroker) -> None:
    topic = f"jbod-{uuid.uuid4().hex[:8]}"
    admin = admin_client(jbod.bootstrap)
    admin.create_topics([NewTopic(topic, num_partitions=2, replication_factor=1)])[topic].result(30)
    wait_for_topic(admin, topic, 2)
    producer = Producer({"bootstrap.servers": jbod.bootstrap, "linger.ms": 5})
    for i in range(400):
        producer.produce(topic, value=f"v{i}".encode(), partition=i % 2)
    assert producer.flush(30) == 0

    described = _describe(jbod, topic)
    assert set(described) == set(jbod.dirs)
    for p in (0, 1):
        ((log_dir, future),) = _where(described, f"{topic}-{p}")
        assert not future and described[log_dir][f"{topic}-{p}"][1] > 0
    ((source, _),) = _where(described, f"{topic}-0")
    target = next(d for d in jbod.dirs if d != source)
    node = admin.list_topics(topic, timeout=10).topics[topic].partitions[0].replicas[0]
    plan = {"version": 1, "partitions": [
        {"topic": topic, "partition": 0, "replicas": [node], "log_dirs": [target]}]}  # fmt: skip
    plan_file = Path(jbod.dirs[0]).parent / f"{topic}.json"
    plan_file.write_text(json.dumps(plan))
    executed = jbod.tools.run(REASSIGN_COMMAND, "--bootstrap-server", jbod.bootstrap,
                              "--reassignment-json-file", str(plan_file), "--execute",
                              timeout=90).stdout  # fmt: skip
    assert "Successfully started partition reassignment" in executed, executed
    deadline = time.monotonic() + 60
    while True:
        verified = jbod.tools.run(REASSIGN_COMMAND, "--bootstrap-server", jbod.bootstrap,
                                  "--reassignment-json-file", str(plan_file), "--verify").stdout  # fmt: skip
        if "in progress" not in verified or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert f"Reassignment of replica {topic}-0-{node} completed successfully." in verified, verified
    moved = _describe(jbod, topic)
    assert _where(moved, f"{topic}-0") == [(target, False)]
    assert _where(moved, f"{topic}-1") == _where(described, f"{topic}-1")
    values = [m.value() for m in consume_partition(jbod.bootstrap, topic, 0, count=200)]
    assert values == [f"v{i}".encode() for i in range(0, 400, 2)]
