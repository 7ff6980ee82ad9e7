"""Faults under a pipelining idempotent producer: librdkafka with acks=all and up to 5 Produce requests in
flight per broker writes without pause to a topic replicated three times (min.insync.replicas=2) while
(b) a follower is frozen with SIGSTOP until it drops out of every ISR (replica.lag.time.max.ms), writing
goes on with the smaller ISR, and after SIGCONT the follower catches up and rejoins; and (a) partition
leaders are killed with -9 (leadership moves to an ISR member) and restarted on their data. Afterwards
every acknowledged record is in its partition exactly once, in send order, at its acknowledged offset,
and the replicas' logs are byte-identical (all replicas are in sync and writing has stopped, so the
whole log is below the high watermark)."""

from __future__ import annotations

import time

import pytest

from strom.testing.cluster import (
    IdempotentWriter,
    ProcessCluster,
    assert_exactly_once_in_order,
    create_assigned,
    layout,
    wait_replicas_identical,
    wait_until,
)
from strom.testing.zookeeper import ZooKeeperServer

pytestmark = [pytest.mark.cluster, pytest.mark.slow]

TOPIC = "pipelined-faults"
# Broker 3 is first in no assignment, so it leads nothing and freezing it changes ISRs and nothing else.
ASSIGNMENT = [[1, 2, 3], [2, 1, 3], [1, 2, 3], [2, 1, 3]]
PARTITIONS = len(ASSIGNMENT)
FROZEN = 3
OVERRIDES = {
    "replica.lag.time.max.ms": 2000,
    # Longer than the freeze lasts, so that the lag alone takes the frozen follower out of the ISR,
    # not the expiry of its ZooKeeper session (which makes the controller drop it). A killed leader is
    # then noticed after this long.
    "zookeeper.session.timeout.ms": 10000,
}


def _isrs(cluster: ProcessCluster, via: int) -> dict[int, list[int]]:
    return {p: isr for p, (_leader, _replicas, isr) in layout(cluster, TOPIC, via=via).items()}


def _full_isrs(cluster: ProcessCluster, via: int) -> bool:
    isrs = _isrs(cluster, via)
    return len(isrs) == PARTITIONS and all(len(isr) == 3 for isr in isrs.values())


def _out_of_every_isr(cluster: ProcessCluster, node: int, via: int) -> bool:
    isrs = _isrs(cluster, via)
    return len(isrs) == PARTITIONS and all(node not in isr for isr in isrs.values())


def _wait_acknowledged(
    writer: IdempotentWriter, more: int, timeout: float, what: str, partition: int = -1
) -> None:
    """Waits until `more` further records are acknowledged (on `partition`, or on any)."""

    def count() -> int:
        return writer.acked_total if partition < 0 else len(writer.acked[partition])

    start = count()
    wait_until(lambda: writer.failed or count() >= start + more, timeout, f"{more} acknowledged {what}")
    assert not writer.failed, writer.failed[:5]


def _other(cluster: ProcessCluster, node: int) -> int:
    return next(n for n in cluster.node_ids if n != node and cluster.running(n))


@pytest.mark.timeout(360)
def test_pipelined_idempotent_producer_through_isr_changes_and_kill_9(zookeeper: ZooKeeperServer) -> None:
    started = time.monotonic()
    with ProcessCluster(3, f"{zookeeper.connect}/pipelined-faults", OVERRIDES) as cluster:
        create_assigned(cluster, TOPIC, ASSIGNMENT, min_insync_replicas="2")
        wait_until(lambda: _full_isrs(cluster, via=1), 30, "full ISRs")
        writer = IdempotentWriter(
            cluster.bootstrap_servers,
            TOPIC,
            PARTITIONS,
            pause_s=0,
            # small batches and no linger: many requests per broker in flight; a bounded queue so that
            # the writer goes at the cluster's pace instead of piling up records
            config={"linger.ms": 1, "batch.num.messages": 20, "queue.buffering.max.messages": 2000},
        )
        writer.start()
        try:
            _wait_acknowledged(writer, 1000, 30, "before the faults")

            # (b) an ISR shrinks and grows back while acks=all writes go on
            cluster.pause(FROZEN)
            try:
                wait_until(
                    lambda: _out_of_every_isr(cluster, FROZEN, via=1), 30, f"{FROZEN} out of every ISR"
                )
                _wait_acknowledged(writer, 1000, 30, f"with {FROZEN} out of the ISR")
            finally:
                cluster.resume(FROZEN)
            wait_until(lambda: _full_isrs(cluster, via=1), 60, f"{FROZEN} back in every ISR")
            _wait_acknowledged(writer, 1000, 30, f"after {FROZEN} rejoined")

            # (a) kill -9 of a partition's leader, which comes back on the same data
            for partition in (0, 1):
                leader = layout(cluster, TOPIC, via=_other(cluster, FROZEN))[partition][0]
                cluster.kill(leader)
                via = _other(cluster, leader)
                wait_until(
                    lambda p=partition, gone=leader, v=via: (
                        layout(cluster, TOPIC, via=v)[p][0] not in (gone, -1)
                    ),
                    40,
                    f"a new leader of partition {partition} after {leader} was killed",
                )
                _wait_acknowledged(writer, 200, 40, f"on partition {partition} with {leader} down", partition)
                cluster.start(leader)
                wait_until(
                    lambda v=via: _full_isrs(cluster, via=v), 60, f"full ISRs after {leader} came back"
                )
            _wait_acknowledged(writer, 1000, 30, "after the kills")
        finally:
            writer.stop()
        assert not writer.is_alive(), "the writer's flush did not end"
        assert not writer.failed, writer.failed[:5]
        assert writer.unflushed == 0
        assert writer.max_in_flight > 1, "librdkafka never had two Produce requests in flight to a broker"
        wait_until(lambda: _full_isrs(cluster, via=1), 60, "full ISRs at the end")
        assert_exactly_once_in_order(cluster, TOPIC, writer.sent, writer.acked)
        for p in range(PARTITIONS):
            wait_replicas_identical(cluster, TOPIC, p, cluster.node_ids, 30)
        # shown with -s: how hard the faults were pressed
        print(
            f"{writer.sent_total} records, at most {writer.max_in_flight} Produce requests in flight to one "
            f"broker, {time.monotonic() - started:.0f} s"
        )
