"""Online migration between classic and consumer groups (KIP-848, group.consumer.migration.policy, Kafka
4.4's default `bidirectional`) through real clients: librdkafka consumers with group.protocol=classic
consume while records flow, are restarted one by one with group.protocol=consumer (the group becomes a
consumer group with classic and consumer members side by side) and then back (the group becomes classic
again). Nothing is lost, a record is seen twice only on a partition that changed owner, and
kafka-consumer-groups shows the group's type at each step. Passes on Strom and on Kafka 4.4
(--kafka-reference).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable

import pytest
from compat_support import JavaTools, TopicMaker
from confluent_kafka import Consumer, Producer

pytestmark = pytest.mark.compat

GROUP_COMMAND = "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand"
PARTITIONS = 4


def _wait(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.2)


class Member:
    """A librdkafka consumer of either protocol polling in its own thread."""

    def __init__(self, broker: str, group: str, topic: str, name: str, protocol: str) -> None:
        self.name = name
        self.seen: list[tuple[int, int]] = []
        self.assigned: set[int] = set()
        self.error: BaseException | None = None
        self._stop = threading.Event()
        config = {
            "bootstrap.servers": broker,
            "group.id": group,
            "group.protocol": protocol,
            "client.id": name,
            "auto.offset.reset": "earliest",
            "auto.commit.interval.ms": 500,
        }
        if protocol == "classic":
            config |= {"session.timeout.ms": 10000, "heartbeat.interval.ms": 500}
        self._config = config
        self._topic = topic
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
            consumer.close()  # commits what it consumed and leaves the group
        except BaseException as exc:  # reported by close()
            self.error = exc

    def close(self) -> None:
        self._stop.set()
        self._thread.join(30)
        assert not self._thread.is_alive(), f"{self.name} did not close"
        assert self.error is None, self.error


def _group_type(java_tools: JavaTools, broker: str, group: str) -> str:
    listed = java_tools.run(GROUP_COMMAND, "--bootstrap-server", broker, "--list", "--type").stdout
    for line in listed.splitlines():
        fields = line.split()
        if fields and fields[0] == group:
            return fields[1]
    return ""


def test_classic_to_consumer_and_back_while_records_flow(
    java_tools: JavaTools, broker: str, make_topic: TopicMaker
) -> None:
    topic = make_topic(partitions=PARTITIONS)
    group = f"mig-{uuid.uuid4().hex[:8]}"
    produced = 0
    stop = threading.Event()

    def produce() -> None:
        nonlocal produced
        producer = Producer({"bootstrap.servers": broker, "linger.ms": 5})
        while not stop.is_set():
            producer.produce(topic, value=str(produced).encode(), partition=produced % PARTITIONS)
            produced += 1
            producer.poll(0)
            time.sleep(0.005)
        assert producer.flush(20) == 0

    members: list[Member] = []
    live: dict[str, Member] = {}

    def start(name: str, protocol: str) -> None:
        m = Member(broker, group, topic, name, protocol)
        members.append(m)
        live[name[0]] = m

    def shared() -> bool:
        owned = [m.assigned for m in live.values()]
        return all(owned) and len(set().union(*owned)) == PARTITIONS and sum(map(len, owned)) == PARTITIONS

    writer = threading.Thread(target=produce, daemon=True)
    try:
        start("a-classic", "classic")
        start("b-classic", "classic")
        _wait(shared, 60, "the classic members to share the partitions")
        assert _group_type(java_tools, broker, group) == "Classic"
        writer.start()
        steps = [("a", "a-consumer", "consumer", "Consumer"), ("b", "b-consumer", "consumer", "Consumer"),
                 ("a", "a-classic2", "classic", "Consumer"), ("b", "b-classic2", "classic", "Classic")]
        for key, name, protocol, group_type in steps:
            time.sleep(1)
            live.pop(key).close()
            start(name, protocol)
            _wait(shared, 60, f"the partitions shared after {name} joined")
            assert _group_type(java_tools, broker, group) == group_type, name
            if name == "a-consumer":
                rows = java_tools.run(GROUP_COMMAND, "--bootstrap-server", broker, "--describe", "--group",
                                      group, "--members").stdout.splitlines()
                assert {r.split()[-2] for r in rows if r.startswith(group)} == {"b-classic", "a-consumer"}
        time.sleep(1)
        stop.set()
        writer.join(30)
        expected = {(i % PARTITIONS, i // PARTITIONS) for i in range(produced)}
        _wait(lambda: expected <= {pair for m in members for pair in m.seen}, 60,
              f"all {produced} records to be consumed")
        for m in list(live.values()):
            m.close()
        live.clear()
    finally:
        stop.set()
        for m in live.values():
            m.close()
    owners: dict[int, set[str]] = {}
    counts: dict[tuple[int, int], int] = {}
    for m in members:
        for pair in m.seen:
            owners.setdefault(pair[0], set()).add(m.name)
            counts[pair] = counts.get(pair, 0) + 1
    duplicated = {p for (p, _o), n in counts.items() if n > 1}
    assert all(len(owners[p]) > 1 for p in duplicated), (duplicated, owners)
    # the committed offsets survived both conversions: they cover what was produced
    offsets = java_tools.run(GROUP_COMMAND, "--bootstrap-server", broker, "--describe", "--group", group,
                             "--offsets").stdout.splitlines()
    committed = {int(r.split()[2]): int(r.split()[3]) for r in offsets if r.startswith(group)}
    assert sum(committed.values()) == produced, (committed, produced)
