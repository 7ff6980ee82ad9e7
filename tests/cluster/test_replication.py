"""Replication on a real 3-broker cluster (`strom serve` processes on a real ZooKeeper): placement, ISR,
high watermark, leader failover, rejoin after restart, NOT_ENOUGH_REPLICAS, unclean election both ways,
controller failover and preferred election. One cluster serves the module; each test uses its own topics
and restarts whatever it stopped."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest
from confluent_kafka import ElectionType, TopicPartition
from confluent_kafka.admin import ConfigResource

from strom.protocol.errors import ErrorCode
from strom.testing.cluster import (
    ProcessCluster,
    admin,
    consume_all,
    controller_id,
    create_assigned,
    create_topic,
    high_watermark,
    layout,
    log_bytes,
    produce,
    raw_produce,
    wait_until,
)
from strom.testing.zookeeper import ZooKeeperServer

pytestmark = [pytest.mark.cluster]
_chroots = itertools.count()


@pytest.fixture(scope="module")
def cluster(zookeeper: ZooKeeperServer) -> Iterator[ProcessCluster]:
    with ProcessCluster(3, f"{zookeeper.connect}/replication-{next(_chroots)}") as running:
        yield running


@pytest.fixture(autouse=True)
def all_running(cluster: ProcessCluster) -> Iterator[None]:
    yield
    for node_id in cluster.node_ids:
        if not cluster.running(node_id):
            cluster.start(node_id)


def _identical_below_hw(cluster: ProcessCluster, topic: str, nodes: list[int], partition: int = 0) -> None:
    def same() -> bool:
        logs = [log_bytes(cluster, n, topic, partition) for n in nodes]
        return all(b == logs[0] for b in logs) and len(logs[0]) > 0

    wait_until(same, 15, f"replica logs of {topic}-{partition} identical")


def test_placement_isr_and_high_watermark(cluster: ProcessCluster) -> None:
    create_topic(cluster, "placed", partitions=3, rf=3, min_insync_replicas="2")
    parts = wait_until(
        lambda: (lt := layout(cluster, "placed")) and all(sorted(r) == i for _l, r, i in lt.values()) and lt,
        what="full ISRs",
    )
    assert {leader for leader, _r, _i in parts.values()} == {1, 2, 3}, parts
    for leader, replicas, _isr in parts.values():
        assert sorted(replicas) == [1, 2, 3] and leader == replicas[0]
    for p in range(3):
        produce(cluster, "placed", [f"{p}-{i}".encode() for i in range(50)], partition=p)
    for p in range(3):
        assert high_watermark(cluster, "placed", p) == 50
        _identical_below_hw(cluster, "placed", [1, 2, 3], p)
        assert consume_all(cluster, "placed", p, 50) == [f"{p}-{i}".encode() for i in range(50)]


def test_leader_failover_and_rejoin(cluster: ProcessCluster) -> None:
    create_topic(cluster, "failover", rf=3, min_insync_replicas="2")
    wait_until(lambda: len(layout(cluster, "failover")[0][2]) == 3, what="ISR of 3")
    produce(cluster, "failover", [b"a%d" % i for i in range(100)])
    old_leader = layout(cluster, "failover")[0][0]
    cluster.kill(old_leader)
    state = wait_until(
        lambda: (
            (lt := layout(cluster, "failover")[0])[0] not in (-1, old_leader)
            and old_leader not in lt[2]
            and lt
        ),
        30,
        "a new leader and a smaller ISR",
    )
    assert len(state[2]) == 2
    produce(cluster, "failover", [b"b%d" % i for i in range(100)])
    expected = [b"a%d" % i for i in range(100)] + [b"b%d" % i for i in range(100)]
    assert consume_all(cluster, "failover", 0, 200) == expected
    cluster.start(old_leader)
    wait_until(
        lambda: old_leader in layout(cluster, "failover")[0][2], 30, "the restarted broker back in the ISR"
    )
    assert high_watermark(cluster, "failover") == 200
    _identical_below_hw(cluster, "failover", [1, 2, 3])


def test_not_enough_replicas_with_two_of_three_down(cluster: ProcessCluster) -> None:
    create_topic(cluster, "min-isr", rf=3, min_insync_replicas="2")
    leader, replicas, _isr = wait_until(
        lambda: (lt := layout(cluster, "min-isr")[0]) and len(lt[2]) == 3 and lt, what="ISR of 3"
    )
    followers = [r for r in replicas if r != leader]
    for node in followers:
        cluster.kill(node)
    wait_until(
        lambda: layout(cluster, "min-isr", via=leader)[0][2] == [leader], 30, "ISR shrunk to the leader"
    )
    assert raw_produce(cluster, leader, "min-isr", 0, acks=-1) == ErrorCode.not_enough_replicas
    hw_before = high_watermark(cluster, "min-isr")
    assert raw_produce(cluster, leader, "min-isr", 0, acks=1) == ErrorCode.none
    assert high_watermark(cluster, "min-isr") == hw_before + 1
    for node in followers:
        cluster.start(node)
    wait_until(lambda: len(layout(cluster, "min-isr")[0][2]) == 3, 30, "ISR of 3 again")
    assert raw_produce(cluster, leader, "min-isr", 0, acks=-1) == ErrorCode.none


def test_produce_to_follower_is_refused(cluster: ProcessCluster) -> None:
    create_topic(cluster, "not-leader", rf=3)
    leader, replicas, _isr = wait_until(lambda: layout(cluster, "not-leader")[0], what="layout")
    follower = next(r for r in replicas if r != leader)
    assert raw_produce(cluster, follower, "not-leader", 0, acks=1) == ErrorCode.not_leader_or_follower


def test_unclean_election_both_ways(cluster: ProcessCluster) -> None:
    create_assigned(cluster, "unclean", [[2, 3]])
    wait_until(lambda: layout(cluster, "unclean")[0][2] == [2, 3], what="ISR [2, 3]")
    produce(cluster, "unclean", [b"both-%d" % i for i in range(10)])
    cluster.kill(3)
    wait_until(lambda: layout(cluster, "unclean")[0][2] == [2], 30, "ISR [2]")
    produce(cluster, "unclean", [b"only-2-%d" % i for i in range(10)])
    cluster.kill(2)
    cluster.start(3)
    # unclean election disabled: broker 3 is alive but out of sync, so the partition stays offline
    wait_until(lambda: layout(cluster, "unclean")[0][0] == -1, 30, "partition offline")
    client = admin(cluster)
    futures = client.alter_configs(
        [ConfigResource("topic", "unclean", set_config={"unclean.leader.election.enable": "true"})]
    )
    for future in futures.values():
        future.result(20)
    wait_until(lambda: layout(cluster, "unclean")[0][0] == 3, 30, "broker 3 elected uncleanly")
    # the records written while broker 3 was away are lost, as Kafka loses them
    assert consume_all(cluster, "unclean", 0, 10, timeout=10) == [b"both-%d" % i for i in range(10)]
    cluster.start(2)
    wait_until(
        lambda: layout(cluster, "unclean")[0][2] == [2, 3], 30, "broker 2 truncated and back in the ISR"
    )
    _identical_below_hw(cluster, "unclean", [2, 3])


def test_controller_failover(cluster: ProcessCluster) -> None:
    old = controller_id(cluster)
    cluster.kill(old)
    new = wait_until(lambda: (c := controller_id(cluster)) not in (-1, old) and c, 30, "a new controller")
    create_topic(cluster, "after-controller", rf=2)
    leader = wait_until(
        lambda: (
            layout(cluster, "after-controller")[0][0] not in (-1,) and layout(cluster, "after-controller")[0]
        ),
        what="leader",
    )
    assert old not in leader[1]
    assert new != old


def test_controlled_shutdown_and_preferred_election(cluster: ProcessCluster) -> None:
    create_assigned(cluster, "preferred", [[1, 2, 3]])
    wait_until(
        lambda: layout(cluster, "preferred")[0] == (1, [1, 2, 3], [1, 2, 3]), what="leader 1, full ISR"
    )
    produce(cluster, "preferred", [b"p%d" % i for i in range(20)])
    assert cluster.stop(1) == 0
    leader, _r, isr = layout(cluster, "preferred")[0]
    assert leader in (2, 3) and 1 not in isr  # moved before broker 1 went away
    produce(cluster, "preferred", [b"q%d" % i for i in range(20)])
    cluster.start(1)
    wait_until(lambda: 1 in layout(cluster, "preferred")[0][2], 30, "broker 1 back in the ISR")
    client = admin(cluster)
    result = client.elect_leaders(ElectionType.PREFERRED, [TopicPartition("preferred", 0)]).result(20)
    assert all(err is None for err in result.values()), result
    wait_until(lambda: layout(cluster, "preferred")[0][0] == 1, 20, "preferred leader back")
    expected = [b"p%d" % i for i in range(20)] + [b"q%d" % i for i in range(20)]
    assert consume_all(cluster, "preferred", 0, 40) == expected
