"""Idempotent producers that pipeline Produce requests (up to 5 in flight per broker) with acks=all to a
topic replicated three times (min.insync.replicas=2) on three `strom serve` processes: every record is
acknowledged, and each partition holds each record exactly once, at its acknowledged offset, in send
order; the replicas' logs end up byte-identical.

This is the regression test of the ordering of a connection's requests: when a Produce handler waited
for one partition's replication before appending the request's next partition, the connection's next
request appended first, and pipelining clients got OUT_OF_ORDER_SEQUENCE_NUMBER and duplicates. Both
clients are checked to have really had more than one Produce request in flight to a broker: librdkafka
(confluent-kafka) through its statistics, franz-go (the Go driver's `franz-pipeline` scenario) through
its broker hooks. franz-go puts every partition with a ready batch into one request, and its test failed
before the fix (OUT_OF_ORDER_SEQUENCE_NUMBER, which kgo takes for data loss). librdkafka (2.16) sends one
partition per Produce request, which the old code already appended in request order: its test passed
before the fix too, and guards the pipelined acks=all path for such clients."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from strom.testing.cluster import (
    REPO,
    IdempotentWriter,
    ProcessCluster,
    assert_exactly_once_in_order,
    create_topic,
    layout,
    wait_replicas_identical,
    wait_until,
)
from strom.testing.prerequisites import missing
from strom.testing.zookeeper import ZooKeeperServer

pytestmark = pytest.mark.cluster

PARTITIONS = 6
RECORDS = 20_000
GOCOMPAT = REPO / ".cache" / "tools" / "go-bin" / "gocompat"


@pytest.fixture(scope="module")
def cluster(zookeeper: ZooKeeperServer) -> Iterator[ProcessCluster]:
    with ProcessCluster(3, f"{zookeeper.connect}/pipelined-idempotence") as running:
        yield running


def _replicated_topic(cluster: ProcessCluster, name: str) -> None:
    create_topic(cluster, name, partitions=PARTITIONS, rf=3, min_insync_replicas="2")
    wait_until(lambda: all(len(isr) == 3 for _l, _r, isr in layout(cluster, name).values()), 30, "full ISRs")


@pytest.fixture(scope="module")
def gocompat() -> Path:
    """The Go driver, (re)built by scripts/fetch-tools when its sources changed."""
    proc = subprocess.run(
        [str(REPO / "scripts" / "fetch-tools")], capture_output=True, text=True, timeout=900
    )
    if proc.returncode != 0 or not GOCOMPAT.is_file():
        missing(f"scripts/fetch-tools could not build the Go driver:\n{proc.stderr[-3000:]}")
    return GOCOMPAT


def test_librdkafka_pipelined_idempotent_producer(cluster: ProcessCluster) -> None:
    topic = "pipelined-librdkafka"
    _replicated_topic(cluster, topic)
    writer = IdempotentWriter(
        cluster.bootstrap_servers,
        topic,
        PARTITIONS,
        total=RECORDS,
        pause_s=0,
        seed=7,  # uneven partitions: batches of different partitions become ready at different times
        config={"linger.ms": 1, "batch.num.messages": 20, "message.timeout.ms": 60000},
        flush_timeout=90,
    )
    writer.start()
    writer.join(150)
    assert not writer.is_alive(), "the writer did not finish within 150 s"
    assert writer.failed == [], writer.failed[:5]
    assert writer.unflushed == 0
    assert writer.max_in_flight > 1, "librdkafka never had two Produce requests in flight to a broker"
    assert writer.acked_total == RECORDS
    assert_exactly_once_in_order(cluster, topic, writer.sent, writer.acked)
    for p in range(PARTITIONS):
        wait_replicas_identical(cluster, topic, p, cluster.node_ids)


def test_franz_go_pipelined_idempotent_producer(cluster: ProcessCluster, gocompat: Path) -> None:
    topic = "pipelined-franz"
    _replicated_topic(cluster, topic)
    proc = subprocess.run(
        [str(gocompat), "franz-pipeline", cluster.bootstrap_servers, topic, str(PARTITIONS), str(RECORDS)],
        capture_output=True,
        text=True,
        timeout=200,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["errors"] == []
    assert result["max_in_flight"] > 1, "franz-go never had two Produce requests in flight to a broker"
    sent = dict(enumerate(result["sent"]))
    assert sum(sent.values()) == RECORDS
    acked = {p: [(int(o), v.encode()) for o, v in records] for p, records in enumerate(result["acked"])}
    assert_exactly_once_in_order(cluster, topic, sent, acked)
    for p in range(PARTITIONS):
        wait_replicas_identical(cluster, topic, p, cluster.node_ids)
