"""Real clients that fetch by topic id (Fetch v13+, KIP-516) against the broker under test; the same tests
run against Apache Kafka 4.4 with `--kafka-reference`:
- librdkafka (confluent-kafka 2.16) fetches with Fetch v16, its newest, by topic id;
- franz-go picks the broker's newest Fetch (v18); when its topic is deleted and re-created under the same
  name (a new topic id), kgo 1.22 goes on fetching the old id and gets UNKNOWN_TOPIC_ID, on Kafka 4.4 as
  on Strom, and reads nothing of the new topic;
- Kafka 4.4's ConsoleConsumer (the Java client, Fetch v18) does the same on an assigned partition.
"""

from __future__ import annotations

import json
import logging
import re
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from compat_support import ToolFailed, TopicMaker, admin_client, wait_for_topic
from confluent_kafka import Consumer, KafkaException, Producer, TopicCollection, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from benchmarks.peers import tools

pytestmark = pytest.mark.compat


@pytest.fixture(scope="session")
def gocompat(fetched_tools: None) -> Path:
    binary = tools.CACHE_DIR / "go-bin" / "gocompat"
    if not binary.is_file():
        raise ToolFailed(f"{binary} was not built by scripts/fetch-tools")
    return binary


def _produce(broker: str, topic: str, *values: str) -> None:
    producer = Producer({"bootstrap.servers": broker})
    for value in values:
        producer.produce(topic, value.encode(), partition=0)
    assert producer.flush(30) == 0


def _topic_id(admin: AdminClient, topic: str) -> Any:
    try:
        return admin.describe_topics(TopicCollection([topic]))[topic].result(30).topic_id
    except KafkaException:
        return None


def _recreate(broker: str, topic: str) -> None:
    """Delete `topic` and create it again with one partition. Kafka may still be deleting the old one,
    and a running consumer's Metadata requests may auto-create the topic first (Kafka's consumers ask
    for auto-creation by default): either way the topic that ends up there has a new topic id."""
    admin = admin_client(broker)
    old_id = _topic_id(admin, topic)
    admin.delete_topics([topic], operation_timeout=30)[topic].result(30)
    deadline = time.monotonic() + 90
    while True:
        try:
            admin.create_topics([NewTopic(topic, 1, 1)], operation_timeout=30)[topic].result(30)
            break
        except Exception as exc:
            if "already exists" not in str(exc).lower() or time.monotonic() > deadline:
                raise
            current = _topic_id(admin, topic)
            if current is not None and current != old_id:
                break  # re-created by a consumer's auto-creation
            time.sleep(0.2)
    wait_for_topic(admin, topic, 1)


def test_librdkafka_fetches_with_v16(broker: str, topic: str) -> None:
    _produce(broker, topic, "a", "b")
    lines: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(record.getMessage())

    logger = logging.getLogger(f"rdkafka-{topic}")
    logger.addHandler(Collect())
    logger.setLevel(logging.DEBUG)
    consumer = Consumer(
        {"bootstrap.servers": broker, "group.id": "compat-unused", "enable.auto.commit": False,
         "debug": "protocol"},
        logger=logger,
    )
    try:
        consumer.assign([TopicPartition(topic, 0, 0)])
        values: list[bytes] = []
        deadline = time.monotonic() + 20
        while len(values) < 2 and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is not None and msg.error() is None:
                values.append(msg.value())
        assert values == [b"a", b"b"]
    finally:
        consumer.close()
    versions = {int(v) for line in lines for v in re.findall(r"Sent FetchRequest \(v(\d+)", line)}
    assert versions == {16}


def test_franz_consumer_on_a_recreated_topic(gocompat: Path, broker: str, make_topic: TopicMaker) -> None:
    topic = make_topic(partitions=1)
    proc = subprocess.run([str(gocompat), "franz-topic-recreated", broker, topic],
                          capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        raise ToolFailed(f"gocompat franz-topic-recreated exited {proc.returncode}:\n{proc.stderr[-3000:]}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["broker_fetch_max"] == 18
    assert [(r["offset"], r["value"]) for r in result["before"]] == [(0, "v0"), (1, "v1")]
    assert result["ids_differ"] is True
    # what Kafka 4.4 answers kgo, which keeps the old topic id: the old id is unknown, the new topic unread
    assert result["after"] == []
    assert result["fetch_errors"] == ["UNKNOWN_TOPIC_ID: This server does not host this topic ID."]


def test_java_console_consumer_follows_a_recreated_topic(fetched_tools: None, broker: str,
                                                          make_topic: TopicMaker) -> None:
    topic = make_topic(partitions=1)
    _produce(broker, topic, "v0", "v1")
    cmd = tools.java_command(
        "org.apache.kafka.tools.consumer.ConsoleConsumer", "--bootstrap-server", broker, "--topic", topic,
        "--partition", "0", "--offset", "earliest", "--max-messages", "3", "--timeout-ms", "60000",
        "--command-property", "auto.offset.reset=earliest", "--command-property", "metadata.max.age.ms=1000",
    )
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        seen = [proc.stdout.readline().strip() for _ in range(2)]  # bounded by --timeout-ms
        assert seen == ["v0", "v1"]
        _recreate(broker, topic)
        _produce(broker, topic, "n0")
        out, err = proc.communicate(timeout=90)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err[-3000:]
    assert [line for line in out.splitlines() if line.strip()] == ["n0"], err[-3000:]
