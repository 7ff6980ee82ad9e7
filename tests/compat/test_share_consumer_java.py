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
import queue
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from compat_support import TopicMaker
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource

from benchmarks.peers import tools

pytestmark = [pytest.mark.compat, pytest.mark.slow]

SOURCE = Path(__file__).parent / "java" / "ShareWorkers.java"


@pytest.fixture(scope="module")
def worker_classes(fetched_tools: None) -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="strom-share-workers-") as out:
        classpath = str(tools.kafka_home() / "libs" / "*")
        subprocess.run(["javac", "-d", out, "-cp", classpath, str(SOURCE)], check=True, timeout=120,
                       capture_output=True)  # fmt: skip
        yield Path(out)


@dataclass(frozen=True)
class Rec:
    """One REC line: a record a member got, and what it did with it."""

    client: str
    value: str
    offset: int
    delivery_count: int
    action: str


class Workers:
    """One ShareWorkers JVM: its members' output lines, collected by a thread as they come."""

    def __init__(self, classes: Path, broker: str, group: str, topic: str, *, members: int = 1,
                 mode: str = "ack", work_ms: int = 0, max_poll_records: int = 100) -> None:  # fmt: skip
        classpath = f"{classes}:{tools.kafka_home() / 'libs' / '*'}"
        argv = ["java", "-Xmx192m", "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC",
                f"-Dlog4j2.configurationFile={tools.kafka_home() / 'log4j2.properties'}", "-cp", classpath,
                "ShareWorkers", broker, group, topic, str(members), mode, str(work_ms),
                str(max_poll_records), "100000"]  # fmt: skip
        self.proc = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
        )
        self.lines: list[str] = []
        self._new: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._new.put(line.strip())
        self._new.put(None)

    def wait_for(self, condition: Callable[[Workers], bool], timeout: float, what: str) -> None:
        """Collects lines until `condition(self)` holds; fails after `timeout` s or when the JVM ends."""
        deadline = time.monotonic() + timeout
        while not condition(self):
            left = deadline - time.monotonic()
            try:
                line = self._new.get(timeout=max(left, 0.01))
            except queue.Empty:
                tail = self.lines[-30:]
                raise AssertionError(f"timed out after {timeout}s waiting for {what}: {tail}") from None
            if line is None:
                raise AssertionError(f"ShareWorkers ended before {what}: {self.lines[-30:]}")
            self.lines.append(line)
            assert not line.startswith(("ERROR", "COMMIT-ERROR", "NOT-READY")), self.lines[-30:]

    def wait_line(self, start: str, timeout: float) -> str:
        self.wait_for(lambda w: any(line.startswith(start) for line in w.lines), timeout, start)
        return next(line for line in self.lines if line.startswith(start))

    def records(self) -> list[Rec]:
        out = []
        for line in self.lines:
            if line.startswith("REC "):
                _, client, value, offset, count, action = line.split()
                out.append(Rec(client, value, int(offset), int(count), action))
        return out

    def accepted(self) -> set[str]:
        return {r.value for r in self.records() if r.action == "ACCEPT"}

    def finish(self, timeout: float = 60) -> tuple[int, int]:
        """Closes the members (standard input ends) and returns (start offset, lag) of partition 0 once
        no record waits (or ListShareGroupOffsets' last answer)."""
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.wait_line("CLOSED", timeout)
        self.proc.wait(timeout=10)
        lag = self.wait_line("LAG", 1).split()
        assert lag[1:] != ["none"], self.lines[-10:]
        return int(lag[1]), int(lag[2])

    def kill(self) -> None:
        """kill -9 of the JVM: its members neither acknowledge nor leave the group."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)


@pytest.fixture
def workers() -> Iterator[Callable[..., Workers]]:
    started: list[Workers] = []

    def start(*args: object, **kwargs: object) -> Workers:
        w = Workers(*args, **kwargs)  # type: ignore[arg-type]
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
    broker: str, make_topic: TopicMaker, worker_classes: Path, workers: Callable[..., Workers]
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
    broker: str, make_topic: TopicMaker, worker_classes: Path, workers: Callable[..., Workers]
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
    broker: str, make_topic: TopicMaker, worker_classes: Path, workers: Callable[..., Workers]
) -> None:
    topic = make_topic(partitions=1)
    group = _share_group(broker, share_delivery_count_limit="2")  # Kafka's least
    rejected = [f"x{i}" for i in range(3)]
    _produce_one_by_one(broker, topic, rejected)
    w = workers(worker_classes, broker, group, topic)
    w.wait_line("READY", 90)

    def released_twice(w: Workers) -> bool:
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
