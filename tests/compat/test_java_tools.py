"""Apache Kafka's own command-line tools (kafka-tools 4.x jar, Java 17) against the broker under test:
TopicCommand (--create, --describe, --alter --partitions, --delete), ConsoleProducer with parse.key,
ConsoleConsumer --from-beginning --max-messages on an assigned partition, GetOffsetShell.

Each JVM start costs about a second, so the tool calls are few and grouped into two tests."""

from __future__ import annotations

import time

import pytest
from compat_support import JavaTools, ToolFailed, TopicMaker, admin_client

pytestmark = pytest.mark.compat


def test_topic_command_lifecycle(java_tools: JavaTools, broker: str, topic_name: str) -> None:
    java_tools.topics("--create", "--topic", topic_name, "--partitions", "2", "--replication-factor", "1",
                      "--config", "retention.ms=86400000")
    java_tools.topics("--alter", "--topic", topic_name, "--partitions", "4")

    described = java_tools.topics("--describe", "--topic", topic_name).stdout
    assert f"Topic: {topic_name}" in described
    assert "PartitionCount: 4" in described
    assert "retention.ms=86400000" in described
    part_lines = [line for line in described.splitlines() if "Partition: " in line]
    assert len(part_lines) == 4
    assert all("Leader: " in line and "Isr: " in line for line in part_lines)

    # Shrinking is refused by the broker (INVALID_PARTITIONS): the tool exits non-zero.
    with pytest.raises(ToolFailed) as exc:
        java_tools.topics("--alter", "--topic", topic_name, "--partitions", "1")
    assert "InvalidPartitionsException" in str(exc.value)

    java_tools.topics("--delete", "--topic", topic_name)
    admin = admin_client(broker)
    deadline = time.monotonic() + 15
    while topic_name in admin.list_topics(timeout=10).topics and time.monotonic() < deadline:
        time.sleep(0.2)
    assert topic_name not in admin.list_topics(timeout=10).topics


def test_console_producer_consumer_and_offsets(java_tools: JavaTools, broker: str,
                                               make_topic: TopicMaker) -> None:
    topic = make_topic(partitions=1)
    lines = "".join(f"key{i}:value {i}\n" for i in range(7))
    java_tools.run("org.apache.kafka.tools.ConsoleProducer", "--bootstrap-server", broker, "--topic", topic,
                   "--reader-property", "parse.key=true", "--reader-property", "key.separator=:",
                   input_text=lines)

    out = java_tools.run(
        "org.apache.kafka.tools.consumer.ConsoleConsumer", "--bootstrap-server", broker, "--topic", topic,
        "--partition", "0", "--from-beginning", "--max-messages", "7", "--timeout-ms", "20000",
        "--formatter-property", "print.key=true", "--formatter-property", "key.separator=|",
        "--formatter-property", "print.offset=true").stdout
    rows = [line for line in out.splitlines() if line.strip()]
    assert rows == [f"Offset:{i}|key{i}|value {i}" for i in range(7)]

    offsets = java_tools.run("org.apache.kafka.tools.GetOffsetShell", "--bootstrap-server", broker,
                             "--topic", topic).stdout
    assert offsets.split() == [f"{topic}:0:7"]
    earliest = java_tools.run("org.apache.kafka.tools.GetOffsetShell", "--bootstrap-server", broker,
                              "--topic", topic, "--time", "-2").stdout
    assert earliest.split() == [f"{topic}:0:0"]
