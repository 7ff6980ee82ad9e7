"""Streams groups (KIP-1071) through Kafka Streams 4.4 and Kafka 4.4's own tools, passing on Strom and on
Kafka 4.4 (--kafka-reference).

A word-count application (tests/compat/java/StreamsWordCount.java, compiled at test time against the
Kafka Streams jar that scripts/fetch-tools caches) runs with group.protocol=streams: the broker takes its
topology, creates the repartition and changelog topics, assigns its tasks; the counts it writes must be
the word counts of the input. While it runs, kafka-streams-groups --list shows the group and
--describe --members its member with the tasks of both subtopologies.

On the wire, a new group's first StreamsGroupHeartbeat waits group.streams.initial.rebalance.delay.ms
(Kafka's default 3 s on both brokers): status ASSIGNMENT_DELAYED, member epoch 1 without tasks, and
StreamsGroupDescribe shows Assigning with the assignment epoch behind the group epoch until the delay ends.
"""

from __future__ import annotations

import asyncio
import collections
import re
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from compat_support import JavaTools, TopicMaker, poll_until
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, ConfigResource
from kio.schema.find_coordinator.v6.request import FindCoordinatorRequest
from kio.schema.streams_group_describe.v0.request import StreamsGroupDescribeRequest
from kio.schema.streams_group_heartbeat.v0 import request as hb
from kio.static.primitive import i8, i32
from wire_helpers import ms

from benchmarks.peers import tools
from strom.client.connection import BrokerConnection
from strom.protocol.errors import ErrorCode

pytestmark = pytest.mark.compat

STREAMS_GROUPS = "org.apache.kafka.tools.streams.StreamsGroupCommand"
SOURCE = Path(__file__).parent / "java" / "StreamsWordCount.java"
LINES = ["the quick brown fox", "jumps over the lazy dog", "the dog barks", "a fox runs away"] * 5


@pytest.fixture(scope="module")
def word_count_classes(fetched_tools: None) -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="strom-streams-app-") as out:
        classpath = str(tools.kafka_home() / "libs" / "*")
        subprocess.run(["javac", "-d", out, "-cp", classpath, str(SOURCE)], check=True, timeout=120,
                       capture_output=True)  # fmt: skip
        yield Path(out)


def _counts(bootstrap: str, topic: str, expected: dict[str, int], timeout: float) -> dict[str, int]:
    """The latest count per word in the output topic, read until it matches `expected` or time is up."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"{topic}-reader",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})  # fmt: skip
    consumer.subscribe([topic])
    counts: dict[str, int] = {}
    deadline = time.monotonic() + timeout
    try:
        while counts != expected and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is None or msg.error():
                continue
            counts[msg.key().decode()] = int.from_bytes(msg.value(), "big", signed=True)
    finally:
        consumer.close()
    return counts


def _read_until(proc: subprocess.Popen[str], marker: str, timeout: float) -> list[str]:
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line.strip())
        if line.startswith(marker) or line.startswith("TIMEOUT"):
            break
    return lines


def test_word_count_over_the_streams_protocol(
    broker: str, make_topic: TopicMaker, java_tools: JavaTools, word_count_classes: Path, unique: object
) -> None:
    app = unique("wordcount")  # type: ignore[operator]
    source = make_topic(partitions=2)
    sink = make_topic(partitions=1)
    producer = Producer({"bootstrap.servers": broker})
    for i, line in enumerate(LINES):
        producer.produce(source, key=str(i), value=line)
    assert producer.flush(30) == 0
    expected = dict(collections.Counter(w for line in LINES for w in re.split(r"\W+", line) if w))
    classpath = f"{word_count_classes}:{tools.kafka_home() / 'libs' / '*'}"
    state_dir = tempfile.mkdtemp(prefix="strom-streams-state-")
    argv = ["java", "-Xmx256m", "-XX:TieredStopAtLevel=1",
            f"-Dlog4j2.configurationFile={tools.kafka_home() / 'log4j2.properties'}", "-cp", classpath,
            "StreamsWordCount", broker, app, source, sink, str(len(LINES)), "90000", state_dir]  # fmt: skip
    proc = subprocess.Popen(
        argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    try:
        seen = _read_until(proc, "PROCESSED", 100)
        assert "PROCESSED" in seen, seen
        assert _counts(broker, sink, expected, 30) == expected

        listed = java_tools.run(STREAMS_GROUPS, "--bootstrap-server", broker, "--list").stdout.split()
        assert app in listed
        members = java_tools.run(
            STREAMS_GROUPS, "--bootstrap-server", broker, "--describe", "--members", "--group", app
        ).stdout
        rows = [line.split() for line in members.splitlines() if line.split()[:1] == [app]]
        assert len(rows) == 1, members
        # one stream thread: it runs every task of both subtopologies (0: the source, 1: the counts)
        assert "0:[0,1]" in members and "1:[0,1]" in members, members

        admin = AdminClient({"bootstrap.servers": broker})
        names = set(admin.list_topics(timeout=10).topics)
        internal = sorted(n for n in names if n.startswith(f"{app}-"))
        assert [n.rsplit("-", 1)[1] for n in internal] == ["changelog", "repartition"], internal
        configs = {
            name: {k: v.value for k, v in f.result().items()}
            for r, f in admin.describe_configs([ConfigResource("topic", n) for n in internal]).items()
            for name in [r.name]
        }
        changelog, repartition = (configs[n] for n in internal)
        assert changelog["cleanup.policy"] == "compact"
        assert (repartition["cleanup.policy"], repartition["retention.ms"]) == ("delete", "-1")
    finally:
        if proc.stdin is not None:
            proc.stdin.close()
        try:
            proc.wait(timeout=40)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# --- the initial rebalance delay on the wire ------------------------------------------------------------

ASSIGNMENT_DELAYED = 5
INITIAL_DELAY_DETAIL = "Assignment delayed due to the configured initial rebalance delay."
_RETRIABLE = {ErrorCode.not_coordinator, ErrorCode.coordinator_not_available,
              ErrorCode.coordinator_load_in_progress}  # fmt: skip


def _call(broker: str, request: Any) -> Any:
    async def go() -> Any:
        host, port = broker.rsplit(":", 1)
        conn = await BrokerConnection.open(host, int(port))
        try:
            return await conn.request(request, timeout=30)
        finally:
            await conn.close()

    return asyncio.run(go())


def _heartbeat(group: str, member: str, epoch: int, topic: str) -> hb.StreamsGroupHeartbeatRequest:
    joining = epoch == 0
    topology = hb.Topology(epoch=i32(0), subtopologies=(
        hb.Subtopology(subtopology_id="0", source_topics=(topic,), source_topic_regex=(),
                       state_changelog_topics=(), repartition_sink_topics=(), repartition_source_topics=(),
                       copartition_groups=()),
    ))  # fmt: skip
    return hb.StreamsGroupHeartbeatRequest(
        group_id=group, member_id=member, member_epoch=i32(epoch), endpoint_information_epoch=i32(0),
        instance_id=None, rack_id=None, rebalance_timeout=ms(30000 if joining else -1),
        topology=topology if joining else None, active_tasks=(), standby_tasks=(), warmup_tasks=(),
        process_id=member if joining else None, user_endpoint=None, client_tags=() if joining else None,
        task_offsets=(), task_end_offsets=(), shutdown_application=False,
    )  # fmt: skip


def test_first_heartbeat_waits_for_the_initial_rebalance_delay(broker: str, make_topic: TopicMaker) -> None:
    topic = make_topic(partitions=1)
    group, member = f"delay-{uuid.uuid4().hex[:8]}", str(uuid.uuid4())
    found = FindCoordinatorRequest(key_type=i8(0), coordinator_keys=(group,))
    poll_until(lambda: _call(broker, found), lambda r: r.coordinators[0].error_code not in _RETRIABLE)

    first = poll_until(lambda: _call(broker, _heartbeat(group, member, 0, topic)),
                   lambda r: r.error_code not in _RETRIABLE)  # fmt: skip
    assert first.error_code == ErrorCode.none, first
    assert [(s.status_code, s.status_detail) for s in first.status] == [
        (ASSIGNMENT_DELAYED, INITIAL_DELAY_DETAIL)
    ]
    # the group's initial target (epoch 1, no tasks) while the first real one waits
    assert (first.member_epoch, first.active_tasks) == (1, ())
    describe = StreamsGroupDescribeRequest(group_ids=(group,), include_authorized_operations=False)
    d = _call(broker, describe).groups[0]
    assert (d.error_code, d.group_state, d.group_epoch, d.assignment_epoch) == (0, "Assigning", 2, 1)

    # after the delay (3 s) a heartbeat brings the member to the group epoch with the task
    last = poll_until(lambda: _call(broker, _heartbeat(group, member, 1, topic)),
                  lambda r: r.error_code != ErrorCode.none or r.member_epoch != 1, timeout=20)  # fmt: skip
    assert (last.error_code, last.member_epoch, list(last.status)) == (ErrorCode.none, 2, [])
    assert [(t.subtopology_id, list(t.partitions)) for t in last.active_tasks] == [("0", [0])]
    _call(broker, _heartbeat(group, member, -1, topic))
