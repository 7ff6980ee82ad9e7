"""Consumer groups driven by confluent-kafka (librdkafka) against an embedded broker: eager and
cooperative rebalancing, static membership, commits, and the AdminClient's view of groups."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from confluent_kafka import Consumer, ConsumerGroupTopicPartitions, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from strom.testing.embedded import EmbeddedBroker

pytestmark = pytest.mark.compat


@pytest.fixture(scope="module")
def broker() -> Iterator[EmbeddedBroker]:
    with EmbeddedBroker({"group.min.session.timeout.ms": "1000"}) as b:
        yield b


@pytest.fixture(scope="module")
def admin(broker: EmbeddedBroker) -> AdminClient:
    return AdminClient({"bootstrap.servers": broker.bootstrap_servers})


def make_topic(broker: EmbeddedBroker, admin: AdminClient, partitions: int = 6, messages: int = 0) -> str:
    name = f"t-{uuid.uuid4().hex[:8]}"
    admin.create_topics([NewTopic(name, partitions, 1)])[name].result(10)
    if messages:
        producer = Producer({"bootstrap.servers": broker.bootstrap_servers})
        for i in range(messages):
            producer.produce(name, f"m{i}".encode(), partition=i % partitions)
        producer.flush(10)
    return name


class Member:
    """A consumer and the partitions its rebalance callbacks gave it."""

    def __init__(self, broker: EmbeddedBroker, group: str, topic: str, **conf: Any) -> None:
        self.assigned: set[int] = set()
        self.events: list[tuple[str, set[int]]] = []
        self.received: list[bytes] = []
        self.consumer = Consumer(
            {
                "bootstrap.servers": broker.bootstrap_servers,
                "group.id": group,
                "auto.offset.reset": "earliest",
                "enable.auto.commit": False,
                "heartbeat.interval.ms": 300,
                "session.timeout.ms": 6000,
                **conf,
            }
        )
        self.cooperative = conf.get("partition.assignment.strategy") == "cooperative-sticky"
        self.consumer.subscribe([topic], on_assign=self._on_assign, on_revoke=self._on_revoke)

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        parts = {p.partition for p in partitions}
        self.events.append(("assign", parts))
        if self.cooperative:
            self.assigned |= parts
        else:
            self.assigned = parts

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        parts = {p.partition for p in partitions}
        self.events.append(("revoke", parts))
        self.assigned -= parts

    def poll(self) -> None:
        msg = self.consumer.poll(0.05)
        if msg is not None and not msg.error():
            self.received.append(msg.value())


def poll_until(members: list[Member], check: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for m in members:
            m.poll()
        if check():
            return
    raise AssertionError(f"timed out; assignments {[sorted(m.assigned) for m in members]}")


def balanced(members: list[Member], sizes: list[int], total: int) -> Callable[[], bool]:
    def check() -> bool:
        got = sorted(len(m.assigned) for m in members)
        union = set().union(*(m.assigned for m in members))
        return got == sorted(sizes) and len(union) == total

    return check


@pytest.mark.parametrize("strategy", ["range", "roundrobin"])
def test_three_consumers_split_six_partitions_then_one_leaves(
    broker: EmbeddedBroker, admin: AdminClient, strategy: str
) -> None:
    topic = make_topic(broker, admin)
    group = f"g-{uuid.uuid4().hex[:8]}"
    members = [Member(broker, group, topic, **{"partition.assignment.strategy": strategy}) for _ in range(3)]
    poll_until(members, balanced(members, [2, 2, 2], 6))
    members[2].consumer.close()
    rest = members[:2]
    poll_until(rest, balanced(rest, [3, 3], 6))
    for m in rest:
        m.consumer.close()


def test_cooperative_sticky_rebalances_incrementally(broker: EmbeddedBroker, admin: AdminClient) -> None:
    topic = make_topic(broker, admin)
    group = f"g-{uuid.uuid4().hex[:8]}"
    conf = {"partition.assignment.strategy": "cooperative-sticky"}
    first = Member(broker, group, topic, **conf)
    poll_until([first], lambda: len(first.assigned) == 6)
    second = Member(broker, group, topic, **conf)
    poll_until([first, second], balanced([first, second], [3, 3], 6))
    # Incremental: the first member only ever gave up the three partitions that moved.
    revoked = [parts for kind, parts in first.events if kind == "revoke"]
    assert revoked and all(len(parts) <= 3 for parts in revoked)
    assert second.assigned.isdisjoint(first.assigned)
    for m in (first, second):
        m.consumer.close()


def test_static_member_restart_keeps_partitions_without_rebalance(
    broker: EmbeddedBroker, admin: AdminClient
) -> None:
    topic = make_topic(broker, admin)
    group = f"g-{uuid.uuid4().hex[:8]}"
    a = Member(broker, group, topic, **{"group.instance.id": "a", "session.timeout.ms": 10000})
    b = Member(broker, group, topic, **{"group.instance.id": "b", "session.timeout.ms": 10000})
    poll_until([a, b], balanced([a, b], [3, 3], 6))
    coordinator = broker.broker.group_coordinator  # type: ignore[union-attr]
    generation = coordinator.core.groups[group].generation_id
    b_parts = set(b.assigned)
    a_events = len(a.events)
    b.consumer.close()  # a static member does not leave the group on close
    b2 = Member(broker, group, topic, **{"group.instance.id": "b", "session.timeout.ms": 10000})
    poll_until([a, b2], lambda: b2.assigned == b_parts)
    for _ in range(20):
        a.poll()
    assert coordinator.core.groups[group].generation_id == generation
    assert len(a.events) == a_events  # no rebalance reached the other member
    for m in (a, b2):
        m.consumer.close()


def test_commit_then_resume_in_new_consumer(broker: EmbeddedBroker, admin: AdminClient) -> None:
    topic = make_topic(broker, admin, partitions=2, messages=20)
    group = f"g-{uuid.uuid4().hex[:8]}"
    first = Member(broker, group, topic)
    poll_until([first], lambda: len(first.received) >= 20)
    first.consumer.commit(
        offsets=[TopicPartition(topic, 0, 6), TopicPartition(topic, 1, 4)], asynchronous=False
    )
    first.consumer.close()
    second = Member(broker, group, topic)
    poll_until([second], lambda: len(second.received) >= 10)
    # Partition 0 holds m0, m2, ... m18: resuming at offset 6 starts at m12; partition 1 at offset 4, m9.
    assert b"m12" in second.received and b"m10" not in second.received
    assert b"m9" in second.received and b"m7" not in second.received
    assert len(second.received) == 10
    committed = second.consumer.committed([TopicPartition(topic, 0), TopicPartition(topic, 1)], timeout=10)
    assert [tp.offset for tp in committed] == [6, 4]
    second.consumer.close()


def test_admin_list_describe_offsets_delete(broker: EmbeddedBroker, admin: AdminClient) -> None:
    topic = make_topic(broker, admin, partitions=3, messages=3)
    group = f"g-{uuid.uuid4().hex[:8]}"
    m = Member(broker, group, topic, **{"client.id": "describe-me"})
    poll_until([m], lambda: len(m.assigned) == 3 and len(m.received) == 3)
    m.consumer.commit(asynchronous=False)
    listed = {g.group_id: g for g in admin.list_consumer_groups().result(10).valid}
    assert group in listed and str(listed[group].state).endswith("STABLE")
    desc = admin.describe_consumer_groups([group])[group].result(10)
    assert str(desc.state).endswith("STABLE") and desc.partition_assignor == "range"
    (member,) = desc.members
    assert member.client_id == "describe-me"
    assert {tp.partition for tp in member.assignment.topic_partitions} == {0, 1, 2}
    offsets = admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group)])[group].result(10)
    assert sorted((tp.partition, tp.offset) for tp in offsets.topic_partitions) == [(0, 1), (1, 1), (2, 1)]
    with pytest.raises(Exception, match="NON_EMPTY_GROUP"):
        admin.delete_consumer_groups([group])[group].result(10)
    m.consumer.close()
    admin.delete_consumer_groups([group])[group].result(10)
    assert group not in {g.group_id for g in admin.list_consumer_groups().result(10).valid}
    offsets = admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group)])[group].result(10)
    assert offsets.topic_partitions == []
