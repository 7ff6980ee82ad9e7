"""Faults: an idempotent acks=all producer writes without pause while brokers are killed with -9 and
restarted (a partition leader, a follower, the controller). Afterwards every acknowledged record is read
back exactly once, in order per partition, nothing is duplicated, and the replica logs are byte-identical
(all are in sync by then, so below the high watermark means the whole log)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from strom.testing.cluster import (
    IdempotentWriter,
    ProcessCluster,
    assert_exactly_once_in_order,
    controller_id,
    create_topic,
    layout,
    wait_replicas_identical,
    wait_until,
)
from strom.testing.zookeeper import ZooKeeperServer

pytestmark = [pytest.mark.cluster, pytest.mark.slow]
TOPIC = "chaos"
PARTITIONS = 3


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
        writer = IdempotentWriter(cluster.bootstrap_servers, TOPIC, PARTITIONS)
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
            writer.stop()
        assert not writer.is_alive()
        assert not writer.failed, writer.failed[:5]
        assert writer.unflushed == 0
        assert writer.sent[0] > 200, "the writer must have been busy through the kills"
        assert_exactly_once_in_order(cluster, TOPIC, writer.sent, writer.acked)
        for p in range(PARTITIONS):
            wait_replicas_identical(cluster, TOPIC, p, cluster.node_ids, 30)
