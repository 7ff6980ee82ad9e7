"""The consumer rebalance protocol (KIP-848, `group.protocol=consumer`) through real clients: Kafka 4.4's
ConsoleConsumer and kafka-consumer-groups (--list with types, --describe --members / --state / offsets),
and librdkafka consumers joining and leaving a group while records flow, losing nothing (a record is seen
twice only on a partition that changed owner). Passes on Strom and on Kafka 4.4 (--kafka-reference).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
from compat_support import JavaTools, TopicMaker
from confluent_kafka import Consumer, Producer

pytestmark = pytest.mark.compat

GROUP_COMMAND = "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand"


def _wait(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.1)


def _produce(broker: str, topic: str, count: int, partitions: int) -> None:
    producer = Producer({"bootstrap.servers": broker})
    for i in range(count):
        producer.produce(topic, value=str(i).encode(), partition=i % partitions)
    assert producer.flush(20) == 0


class GroupMember:
    """A librdkafka consumer of the consumer protocol polling in its own thread."""

    def __init__(self, broker: str, group: str, topic: str, name: str) -> None:
        self.name = name
        self.seen: list[tuple[int, int]] = []
        self.assigned: set[int] = set()
        self._stop = threading.Event()
        self._config = {
            "bootstrap.servers": broker,
            "group.id": group,
            "group.protocol": "consumer",
            "client.id": name,
            "auto.offset.reset": "earliest",
            "auto.commit.interval.ms": 500,
        }
        self._topic = topic
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            consumer = Consumer(self._config)
            consumer.subscribe([self._topic])
            while not self._stop.is_set():
                msg = consumer.poll(0.2)
                self.assigned = {tp.partition for tp in consumer.assignment()}
                if msg is not None and not msg.error():
                    self.seen.append((msg.partition(), msg.offset()))
            consumer.close()  # commits what it consumed and leaves the group (epoch -1)
        except BaseException as exc:  # reported by close()
            self.error = exc

    def close(self) -> None:
        self._stop.set()
        self._thread.join(30)
        assert not self._thread.is_alive(), f"{self.name} did not close"
        assert self.error is None, self.error


@contextmanager
def _members() -> Iterator[list[GroupMember]]:
    members: list[GroupMember] = []
    try:
        yield members
    finally:
        for m in members:
            if m._thread.is_alive():
                m.close()


def test_console_consumer_and_group_tools(java_tools: JavaTools, broker: str, make_topic: TopicMaker) -> None:
    topic = make_topic(partitions=3)
    group = f"cg-{uuid.uuid4().hex[:8]}"
    _produce(broker, topic, 20, 3)
    out = java_tools.run(
        "org.apache.kafka.tools.consumer.ConsoleConsumer", "--bootstrap-server", broker, "--topic", topic,
        "--group", group, "--command-property", "group.protocol=consumer", "--from-beginning",
        "--max-messages", "20", "--timeout-ms", "30000", timeout=90).stdout
    assert sorted(int(v) for v in out.split()) == list(range(20))

    with _members() as members:
        members.append(GroupMember(broker, group, topic, "member-a"))
        _wait(lambda: members[0].assigned == {0, 1, 2}, 30, "the member's assignment")
        listed = java_tools.run(GROUP_COMMAND, "--bootstrap-server", broker, "--list", "--type", "consumer")
        assert any(line.split()[:2] == [group, "Consumer"] for line in listed.stdout.splitlines())
        classic = java_tools.run(GROUP_COMMAND, "--bootstrap-server", broker, "--list", "--type", "classic")
        assert group not in classic.stdout
        rows = java_tools.run(GROUP_COMMAND, "--bootstrap-server", broker, "--describe", "--group", group,
                              "--members").stdout.splitlines()
        assert rows[-1].split()[0] == group and rows[-1].split()[-2:] == ["member-a", "3"], rows
        state = java_tools.run(GROUP_COMMAND, "--bootstrap-server", broker, "--describe", "--group", group,
                               "--state").stdout.splitlines()
        fields = state[-1].split()
        assert fields[0] == group and fields[-3:] == ["uniform", "Stable", "1"], state
        offsets = java_tools.run(GROUP_COMMAND, "--bootstrap-server", broker, "--describe", "--group",
                                 group).stdout.splitlines()
        committed = {int(line.split()[2]): int(line.split()[3]) for line in offsets if line.startswith(group)}
        assert committed == {0: 7, 1: 7, 2: 6}


def test_members_join_and_leave_while_records_flow(broker: str, make_topic: TopicMaker) -> None:
    partitions = 6
    topic = make_topic(partitions=partitions)
    group = f"flow-{uuid.uuid4().hex[:8]}"
    produced = 0
    stop = threading.Event()

    def produce() -> None:
        nonlocal produced
        producer = Producer({"bootstrap.servers": broker, "linger.ms": 5})
        while not stop.is_set():
            producer.produce(topic, value=str(produced).encode(), partition=produced % partitions)
            produced += 1
            producer.poll(0)
            time.sleep(0.005)
        assert producer.flush(20) == 0

    writer = threading.Thread(target=produce, daemon=True)
    with _members() as members:
        a = GroupMember(broker, group, topic, "member-a")
        members.append(a)
        _wait(lambda: len(a.assigned) == partitions, 45, "member-a to own every partition")
        writer.start()
        time.sleep(2)
        b = GroupMember(broker, group, topic, "member-b")
        members.append(b)
        _wait(lambda: a.assigned and b.assigned and len(a.assigned | b.assigned) == partitions
              and not a.assigned & b.assigned, 45, "a and b to share the partitions")
        time.sleep(2)
        a.close()
        _wait(lambda: len(b.assigned) == partitions, 45, "member-b to take every partition")
        c = GroupMember(broker, group, topic, "member-c")
        members.append(c)
        _wait(lambda: b.assigned and c.assigned and len(b.assigned | c.assigned) == partitions, 45,
              "b and c to share the partitions")
        time.sleep(2)
        stop.set()
        writer.join(30)
        expected = {(i % partitions, i // partitions) for i in range(produced)}

        def everything_seen() -> bool:
            return expected <= {pair for m in members for pair in m.seen}

        _wait(everything_seen, 45, f"all {produced} records to be consumed")
        for m in (b, c):
            m.close()
    owners: dict[int, set[str]] = {}
    counts: dict[tuple[int, int], int] = {}
    for m in members:
        for pair in m.seen:
            owners.setdefault(pair[0], set()).add(m.name)
            counts[pair] = counts.get(pair, 0) + 1
    duplicated = {p for (p, _o), n in counts.items() if n > 1}
    assert all(len(owners[p]) > 1 for p in duplicated), (duplicated, owners)
    assert produced > 500
