"""Share groups (KIP-932) through Kafka 4.4's own KafkaShareConsumer in explicit acknowledgement mode
(tests/compat/java/ShareWorkers.java, compiled at test time against the Kafka 4.4 jars), passing on Strom
and on Kafka 4.4 (--kafka-reference):

- three members of one group on a one-partition topic share its records: every record reaches the group,
  each member gets some, an ACCEPTed record is never delivered again, and a RELEASEd one comes back with
  delivery count 2 (ConsumerRecord.deliveryCount) and is accepted then; no lag remains;
- records acquired by a member whose JVM is killed (-9) without acknowledging come back to another member
  with a higher delivery count (through the connection's close or the acquisition lock,
  share.record.lock.duration.ms, set on the group with IncrementalAlterConfigs);
- with share.delivery.count.limit=2 (the least Kafka allows) a record released on both its deliveries is
  archived: never delivered again, and ListShareGroupOffsets reports no lag.
"""

from __future__ import annotations

import collections
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from compat_support import TopicMaker
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource

from benchmarks.peers import tools
from strom.testing.share_workers import ShareWorkers, compile_share_workers

pytestmark = [pytest.mark.compat, pytest.mark.slow]


@pytest.fixture(scope="module")
def worker_classes(fetched_tools: None) -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="strom-share-workers-") as out:
        yield compile_share_workers(tools.kafka_home(), Path(out))


@pytest.fixture
def workers() -> Iterator[Callable[..., ShareWorkers]]:
    """workers(classes, bootstrap, group, topic, **options): a started ShareWorkers JVM, killed at the end."""
    started: list[ShareWorkers] = []

    def start(classes: Path, *args: str, **kwargs: object) -> ShareWorkers:
        w = ShareWorkers(classes, tools.kafka_home(), *args, **kwargs)  # type: ignore[arg-type]
        started.append(w)
        return w

    yield start
    for w in started:
        w.kill()


def _share_group(broker: str, **configs: str) -> str:
    """A new share group id with these group configs (IncrementalAlterConfigs on the GROUP resource)."""
    group = f"share-java-{uuid.uuid4().hex[:8]}"
    entries = [
        ConfigEntry(k.replace("_", "."), v, incremental_operation=AlterConfigOpType.SET)
        for k, v in {"share_auto_offset_reset": "earliest", **configs}.items()
    ]
    resource = ConfigResource(ConfigResource.Type.GROUP, group, incremental_configs=entries)
    admin = AdminClient({"bootstrap.servers": broker})
    admin.incremental_alter_configs([resource])[resource].result(30)
    return group


def _produce_one_by_one(broker: str, topic: str, values: list[str]) -> None:
    """One batch per record, so that Strom (which acquires whole batches) can hand them out one by one."""
    producer = Producer({"bootstrap.servers": broker, "linger.ms": 0})
    for v in values:
        producer.produce(topic, value=v.encode(), partition=0)
        assert producer.flush(20) == 0


def test_three_members_share_accept_and_release(
    broker: str, make_topic: TopicMaker, worker_classes: Path, workers: Callable[..., ShareWorkers]
) -> None:
    topic = make_topic(partitions=1)
    group = _share_group(broker)
    w = workers(worker_classes, broker, group, topic, members=3, work_ms=40, max_poll_records=3)
    w.wait_line("READY", 90)
    accepted_first = [f"a{i}" for i in range(30)]
    released_first = [f"r{i}" for i in range(10)]
    values = accepted_first[:10] + released_first + accepted_first[10:]
    _produce_one_by_one(broker, topic, values)
    w.wait_for(lambda w: w.accepted() >= set(values), 90, "every record accepted")
    # records produced after all were accepted: anything delivered again would have to come before or among
    # these, which the checks below refuse
    sentinels = [f"z{i}" for i in range(3)]
    _produce_one_by_one(broker, topic, sentinels)
    w.wait_for(lambda w: w.accepted() >= set(values + sentinels), 60, "the later records accepted")
    start, lag = w.finish()

    recs = w.records()
    deliveries = collections.defaultdict(list)
    for r in recs:
        deliveries[r.value].append((r.delivery_count, r.action))
    assert set(deliveries) == set(values + sentinels), deliveries
    for v in accepted_first + sentinels:
        assert deliveries[v] == [(1, "ACCEPT")], (v, deliveries[v])  # delivered once, never again
    for v in released_first:
        assert deliveries[v] == [(1, "RELEASE"), (2, "ACCEPT")], (v, deliveries[v])
    by_member = collections.Counter(r.client for r in recs)
    assert len(by_member) == 3, by_member  # the three members shared the partition
    assert lag == 0, (start, lag)


def test_records_of_a_killed_member_come_back(
    broker: str, make_topic: TopicMaker, worker_classes: Path, workers: Callable[..., ShareWorkers]
) -> None:
    topic = make_topic(partitions=1)
    group = _share_group(broker, share_record_lock_duration_ms="15000")
    values = [f"k{i}" for i in range(8)]
    _produce_one_by_one(broker, topic, values)
    holder = workers(worker_classes, broker, group, topic, mode="hold", max_poll_records=3)
    holder.wait_line("HELD", 90)
    held = {r.value for r in holder.records()}
    assert held and all(r.delivery_count == 1 for r in holder.records()), holder.lines

    taker = workers(worker_classes, broker, group, topic)
    taker.wait_line("READY", 90)
    holder.kill()
    # the holder's records come back once its connection is gone or their 15 s acquisition locks run out
    taker.wait_for(lambda w: w.accepted() >= set(values), 90, "every record accepted by the other member")
    start, lag = taker.finish()

    got = {r.value: r for r in taker.records()}
    assert sorted(got) == sorted(values) and len(taker.records()) == len(values), taker.records()
    for v in held:
        assert got[v].delivery_count >= 2, got[v]  # delivered again, and counted
    assert all(r.action == "ACCEPT" for r in got.values())
    assert lag == 0, (start, lag)


def test_record_past_the_delivery_count_limit_is_archived(
    broker: str, make_topic: TopicMaker, worker_classes: Path, workers: Callable[..., ShareWorkers]
) -> None:
    topic = make_topic(partitions=1)
    group = _share_group(broker, share_delivery_count_limit="2")  # Kafka's least
    rejected = [f"x{i}" for i in range(3)]
    _produce_one_by_one(broker, topic, rejected)
    w = workers(worker_classes, broker, group, topic)
    w.wait_line("READY", 90)

    def released_twice(w: ShareWorkers) -> bool:
        second = {r.value for r in w.records() if r.delivery_count == 2 and r.action == "RELEASE"}
        return second == set(rejected)

    w.wait_for(released_twice, 90, "every x record released on its second delivery")
    # a record produced after: once the member has it, an x record would have come back before it
    _produce_one_by_one(broker, topic, ["s0"])
    w.wait_for(lambda w: "s0" in w.accepted(), 60, "the later record accepted")
    start, lag = w.finish()

    deliveries = collections.defaultdict(list)
    for r in w.records():
        deliveries[r.value].append((r.delivery_count, r.action))
    for v in rejected:
        assert deliveries[v] == [(1, "RELEASE"), (2, "RELEASE")], (v, deliveries[v])  # then archived
    assert deliveries["s0"] == [(1, "ACCEPT")]
    assert lag == 0, (start, lag)  # the archived records wait no more
