"""Share groups (KIP-932, Kafka's queues) through Kafka 4.4's own tools: kafka-share-groups --reset-offsets
(on a group that does not exist yet), --list, --describe and --describe --members, and three
kafka-console-share-consumer processes sharing one partition: every record is delivered once (each
consumer acknowledges what it prints), and no lag remains. Passes on Strom and on
Kafka 4.4 (--kafka-reference).
"""

from __future__ import annotations

import subprocess
import time
import uuid
from collections.abc import Callable

import pytest
from compat_support import JavaTools, TopicMaker
from confluent_kafka import Producer

from benchmarks.peers import tools

pytestmark = pytest.mark.compat

SHARE_GROUPS = "org.apache.kafka.tools.consumer.group.ShareGroupCommand"
SHARE_CONSUMER = "org.apache.kafka.tools.consumer.ConsoleShareConsumer"


def _wait(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.5)


def _share_groups(java_tools: JavaTools, *args: str) -> str:
    return java_tools.run(SHARE_GROUPS, "--bootstrap-server", java_tools.bootstrap, *args, timeout=60).stdout


def _rows(out: str, group: str) -> list[list[str]]:
    return [line.split() for line in out.splitlines() if line.split()[:1] == [group]]


def test_share_consumers_share_one_partition(
    broker: str, java_tools: JavaTools, make_topic: TopicMaker, fetched_tools: None
) -> None:
    topic = make_topic(partitions=1)
    group = f"share-{uuid.uuid4().hex[:8]}"
    # start at the beginning: the default (latest) would skip what is produced before a member joins
    reset = _share_groups(
        java_tools, "--reset-offsets", "--to-earliest", "--group", group, "--topic", topic, "--execute"
    )
    assert _rows(reset, group) == [[group, topic, "0", "0"]], reset
    assert group in _share_groups(java_tools, "--list").split()

    producer = Producer({"bootstrap.servers": broker})
    values = [f"v{i}" for i in range(60)]
    for v in values:
        producer.produce(topic, value=v.encode(), partition=0)
    assert producer.flush(20) == 0

    argv = tools.java_command(
        SHARE_CONSUMER,
        "--bootstrap-server",
        broker,
        "--topic",
        topic,
        "--group",
        group,
        "--timeout-ms",
        "8000",
    )
    consumers = [
        subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(3)
    ]
    try:
        outputs = [c.communicate(timeout=120)[0] for c in consumers]
    finally:
        for c in consumers:
            if c.poll() is None:
                c.kill()
    seen = [line for out in outputs for line in out.splitlines() if line.startswith("v")]
    # every record once: each consumer accepts what it printed, so none is delivered twice
    assert sorted(seen) == sorted(values), outputs

    def nothing_left() -> bool:
        rows = _rows(_share_groups(java_tools, "--describe", "--group", group), group)
        # GROUP TOPIC PARTITION START-OFFSET LAG: no record waits (Kafka may keep the start offset where it
        # was and count the delivered records out of the lag instead)
        return len(rows) == 1 and rows[0][2] == "0" and rows[0][4] == "0"

    _wait(nothing_left, 30, "the share group to have no lag")


def test_describe_members_of_a_live_share_group(
    broker: str, java_tools: JavaTools, make_topic: TopicMaker, fetched_tools: None
) -> None:
    topic = make_topic(partitions=2)
    group = f"share-{uuid.uuid4().hex[:8]}"
    argv = tools.java_command(
        SHARE_CONSUMER,
        "--bootstrap-server",
        broker,
        "--topic",
        topic,
        "--group",
        group,
        "--consumer-property",
        "client.id=share-member",
    )
    consumer = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:

        def described() -> bool:
            out = _share_groups(java_tools, "--describe", "--members", "--group", group)
            rows = _rows(out, group)
            # GROUP CONSUMER-ID HOST CLIENT-ID #PARTITIONS [MEMBER-EPOCH] ASSIGNMENT
            return len(rows) == 1 and "share-member" in rows[0] and f"{topic}:0,1" in rows[0]

        _wait(described, 60, "the member to show in kafka-share-groups --describe --members")
        state = _share_groups(java_tools, "--describe", "--state", "--group", group)
        assert "Stable" in state, state
    finally:
        consumer.kill()
        consumer.wait(10)
