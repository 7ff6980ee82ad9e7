"""Faults: an idempotent acks=all producer writes without pause while brokers are killed with -9 and
restarted (a partition leader, a follower, the controller). Afterwards every acknowledged record is read
back exactly once, in order per partition, nothing is duplicated, and the replica logs are byte-identical
(all are in sync by then, so below the high watermark means the whole log)."""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from strom.testing.cluster import (
    ProcessCluster,
    controller_id,
    create_topic,
    high_watermark,
    layout,
    log_bytes,
    wait_until,
)
from strom.testing.prerequisites import missing
from strom.testing.zookeeper import ZooKeeperServer, java_available

pytestmark = [pytest.mark.cluster, pytest.mark.slow]
TOPIC = "chaos"
PARTITIONS = 3


@pytest.fixture(scope="module")
def zookeeper() -> Iterator[ZooKeeperServer]:
    if not java_available():
        missing("java and Debian's zookeeper package are needed")
    with ZooKeeperServer() as server:
        yield server


class Writer(threading.Thread):
    """Produces `p<partition>-<n>` values round-robin until stopped; records what was acknowledged."""

    def __init__(self, bootstrap: str) -> None:
        super().__init__(daemon=True)
        self.producer = Producer(
            {
                "bootstrap.servers": bootstrap,
                "acks": "all",
                "enable.idempotence": True,
                "linger.ms": 5,
                "message.timeout.ms": 120000,
                "retry.backoff.ms": 100,
            }
        )
        self.stop_flag = threading.Event()
        self.acked: dict[int, list[tuple[int, bytes]]] = defaultdict(list)
        self.failed: list[str] = []
        self.sent = 0

    def _done(self, err: object, msg: object) -> None:
        if err is not None:
            self.failed.append(str(err))
        else:
            self.acked[msg.partition()].append((msg.offset(), msg.value()))  # type: ignore[attr-defined]

    def run(self) -> None:
        n = 0
        while not self.stop_flag.is_set():
            for p in range(PARTITIONS):
                self.producer.produce(TOPIC, value=f"p{p}-{n}".encode(), partition=p, on_delivery=self._done)
            n += 1
            self.sent = n
            self.producer.poll(0)
            time.sleep(0.005)
        self.producer.flush(120)


def _read_partition(cluster: ProcessCluster, partition: int, end: int) -> list[tuple[int, bytes]]:
    consumer = Consumer(
        {
            "bootstrap.servers": cluster.bootstrap_servers,
            "group.id": "chaos-reader",
            "enable.auto.commit": False,
        }
    )
    out: list[tuple[int, bytes]] = []
    try:
        consumer.assign([TopicPartition(TOPIC, partition, 0)])
        deadline = time.monotonic() + 60
        while (not out or out[-1][0] < end - 1) and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is not None and not msg.error():
                out.append((msg.offset(), msg.value()))
    finally:
        consumer.close()
    return out


def _kill_and_restart(cluster: ProcessCluster, node: int, down_s: float) -> None:
    cluster.kill(node)
    time.sleep(down_s)
    cluster.start(node)
    wait_until(
        lambda: all(len(isr) == 3 for _l, _r, isr in layout(cluster, TOPIC).values()),
        60,
        f"full ISRs after broker {node} came back",
    )


def test_acknowledged_records_survive_kill_9(zookeeper: ZooKeeperServer, tmp_path: Path) -> None:
    with ProcessCluster(3, f"{zookeeper.connect}/chaos") as cluster:
        create_topic(cluster, TOPIC, partitions=PARTITIONS, rf=3, min_insync_replicas="2")
        wait_until(
            lambda: all(len(i) == 3 for _l, _r, i in layout(cluster, TOPIC).values()), what="full ISRs"
        )
        writer = Writer(cluster.bootstrap_servers)
        writer.start()
        try:
            # conditions, not durations: a loaded machine may write far slower than an idle one
            wait_until(lambda: len(writer.acked[0]) > 100, 30, "the writer acknowledged before the kills")
            leader0 = layout(cluster, TOPIC)[0][0]
            _kill_and_restart(cluster, leader0, 5)
            follower = next(r for r in layout(cluster, TOPIC)[1][1] if r != layout(cluster, TOPIC)[1][0])
            _kill_and_restart(cluster, follower, 2)
            _kill_and_restart(cluster, controller_id(cluster), 3)
            after_kills = len(writer.acked[0])
            wait_until(lambda: len(writer.acked[0]) > after_kills + 100, 60, "acknowledged after the kills")
        finally:
            writer.stop_flag.set()
            writer.join(150)
        assert not writer.is_alive()
        assert not writer.failed, writer.failed[:5]
        assert writer.sent > 200, "the writer must have been busy through the kills"
        assert sum(len(v) for v in writer.acked.values()) == writer.sent * PARTITIONS

        for p in range(PARTITIONS):
            end = high_watermark(cluster, TOPIC, p)
            records = _read_partition(cluster, p, end)
            values = [v for _o, v in records]
            assert len(values) == len(set(values)), f"duplicates in partition {p}"
            acked = writer.acked[p]
            assert sorted(v for _o, v in acked) == sorted(values), f"partition {p} lost or gained records"
            # in order: the producer's sequence numbers grow with the offsets
            seqs = [int(v.split(b"-")[1]) for v in values]
            assert seqs == sorted(seqs) == list(range(writer.sent))
            assert dict(acked) == dict(records), "acknowledged offsets differ from where records are"
            wait_until(
                lambda p=p: len({log_bytes(cluster, n, TOPIC, p) for n in (1, 2, 3)}) == 1,
                30,
                f"identical replica logs of partition {p}",
            )
