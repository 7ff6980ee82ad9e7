"""Partition reassignment through three ZooKeeperBackend brokers (no replicas behind them, so the test
plays the partition leader's ISR changes): Kafka's znode contents while moving, completion when the
target is in the ISR, a leader moved off a removed replica with a bumped epoch, cancellation, errors,
NOT_CONTROLLER off the controller, and the old /admin/reassign_partitions path."""

from __future__ import annotations

import asyncio
import json
from unittest.mock import ANY

import pytest

from strom.cluster.election import NotControllerError
from strom.cluster.metadata import MetadataImage
from strom.cluster.zookeeper import ZooKeeperBackend
from strom.protocol.errors import ErrorCode

pytestmark = pytest.mark.cluster


def controller_of(backends: list[ZooKeeperBackend]) -> ZooKeeperBackend:
    (controller,) = [b for b in backends if b.is_controller]
    return controller


def by_id(backends: list[ZooKeeperBackend], node_id: int) -> ZooKeeperBackend:
    return next(b for b in backends if b.node_id == node_id)


async def _topic(trio: list[ZooKeeperBackend], converge, name: str, replicas: list[int]) -> None:
    await trio[0].create_topic(name, -1, -1, {}, assignments={0: replicas})
    await converge(trio, lambda im: (s := im.partition(name, 0)) is not None and s.leader == replicas[0])


async def _join_isr(trio: list[ZooKeeperBackend], name: str, joiner: int) -> None:
    """What the leader's replica manager does once the new replica caught up."""
    state = trio[0].image.partition(name, 0)
    assert state is not None
    await _set_isr(trio, name, (*state.isr, joiner))


async def test_move_completes_once_target_is_in_isr(trio, zk, converge) -> None:
    await _topic(trio, converge, "moving", [1, 2])
    before = trio[0].image.partition("moving", 0)
    controller = controller_of(trio)
    results = await controller.alter_partition_reassignments([(("moving", 0), [2, 3])])
    assert results == {("moving", 0): (ErrorCode.none, None)}

    await converge(trio, lambda im: im.partition("moving", 0).replicas == (2, 3, 1))
    doc = json.loads(zk.get("/brokers/topics/moving")[0])
    assert doc["partitions"] == {"0": [2, 3, 1]}
    assert doc["adding_replicas"] == {"0": [3]} and doc["removing_replicas"] == {"0": [1]}
    listed = await controller.list_partition_reassignments()
    assert {tp: (r.replicas, r.adding, r.removing) for tp, r in listed.items()} == {
        ("moving", 0): ((2, 3, 1), (3,), (1,))
    }
    assert await controller.list_partition_reassignments([("moving", 1), ("other", 0)]) == {}
    # not in the ISR yet: nothing completes
    assert trio[0].image.partition("moving", 0).leader == 1

    await _join_isr(trio, "moving", 3)

    def done(image: MetadataImage) -> bool:
        s = image.partition("moving", 0)
        return s is not None and s.replicas == (2, 3) and s.leader == 2 and s.isr == (2, 3)

    await converge(trio, done)
    after = trio[0].image.partition("moving", 0)
    assert after.leader_epoch == before.leader_epoch + 1
    doc = json.loads(zk.get("/brokers/topics/moving")[0])
    assert doc["partitions"] == {"0": [2, 3]}
    assert doc["adding_replicas"] == {} and doc["removing_replicas"] == {}
    assert await controller.list_partition_reassignments() == {}


async def test_a_reassignment_is_listed_as_soon_as_it_is_accepted(trio, converge) -> None:
    """Kafka's controller answers AlterPartitionReassignments after updating its own view, so a list
    right after it shows the reassignment (and a cancel right after it sees one in progress)."""
    await _topic(trio, converge, "at-once", [1, 2])
    controller = controller_of(trio)
    for _ in range(5):
        started = await controller.alter_partition_reassignments([(("at-once", 0), [1, 3])])
        assert started == {("at-once", 0): (ErrorCode.none, None)}
        listed = await controller.list_partition_reassignments()
        assert {tp: (r.replicas, r.adding, r.removing) for tp, r in listed.items()} == {
            ("at-once", 0): ((1, 3, 2), (3,), (2,))
        }
        cancelled = await controller.alter_partition_reassignments([(("at-once", 0), None)])
        assert cancelled == {("at-once", 0): (ErrorCode.none, None)}
        # the origin [1, 2] is in the ISR: the cancellation completes in the next controller pass
        assert await controller.list_partition_reassignments() in ({}, {("at-once", 0): ANY})
        await converge(trio, lambda im: im.partition("at-once", 0).replicas == (1, 2))


async def _set_isr(trio: list[ZooKeeperBackend], name: str, isr: tuple[int, ...]) -> None:
    state = trio[0].image.partition(name, 0)
    assert state is not None
    leader = by_id(trio, state.leader)
    await leader.alter_isr(name, 0, state.leader_epoch, isr, state.partition_epoch)


async def test_cancel_reverts_to_the_original_replicas(trio, zk, converge) -> None:
    await _topic(trio, converge, "undo", [1, 2])
    controller = controller_of(trio)
    await controller.alter_partition_reassignments([(("undo", 0), [3, 2])])
    await converge(trio, lambda im: 3 in im.partition("undo", 0).replicas)
    # 3 caught up while 2 fell behind: neither the target [3, 2] nor the origin is in sync
    await _set_isr(trio, "undo", (1, 3))
    await converge(trio, lambda im: im.partition("undo", 0).isr == (1, 3))
    results = await controller.alter_partition_reassignments([(("undo", 0), None)])
    assert results[("undo", 0)][0] == ErrorCode.none
    await converge(trio, lambda im: controller.cache.assignments["undo"][0].removing == {0: (3,)})
    listed = await controller.list_partition_reassignments()
    assert listed[("undo", 0)].removing == (3,) and listed[("undo", 0)].adding == ()
    assert trio[0].image.partition("undo", 0).isr == (1, 3)  # the origin is not back in sync yet

    await _set_isr(trio, "undo", (1, 3, 2))

    def reverted(image: MetadataImage) -> bool:
        s = image.partition("undo", 0)
        return s is not None and sorted(s.replicas) == [1, 2] and s.isr == (1, 2)

    await converge(trio, reverted)
    assert trio[0].image.partition("undo", 0).leader == 1
    assert await controller.list_partition_reassignments() == {}
    doc = json.loads(zk.get("/brokers/topics/undo")[0])
    assert doc["adding_replicas"] == {} and doc["removing_replicas"] == {}
    again = await controller.alter_partition_reassignments([(("undo", 0), None)])
    assert again[("undo", 0)][0] == ErrorCode.no_reassignment_in_progress


async def test_errors_and_not_controller(trio, converge) -> None:
    await _topic(trio, converge, "fixed", [1, 2])
    controller = controller_of(trio)
    results = await controller.alter_partition_reassignments(
        [
            (("fixed", 0), [1, 9]),
            (("fixed", 0 + 5), [1]),
            (("nope", 0), [1]),
        ]
    )
    assert results[("fixed", 0)][0] == ErrorCode.invalid_replica_assignment
    assert results[("fixed", 5)][0] == ErrorCode.unknown_topic_or_partition
    assert results[("nope", 0)][0] == ErrorCode.unknown_topic_or_partition
    assert trio[0].image.partition("fixed", 0).replicas == (1, 2)
    other = next(b for b in trio if not b.is_controller)
    with pytest.raises(NotControllerError):
        await other.alter_partition_reassignments([(("fixed", 0), [2, 3])])
    with pytest.raises(NotControllerError):
        await other.list_partition_reassignments()


async def test_admin_reassign_partitions_znode(trio, zk, converge) -> None:
    await _topic(trio, converge, "legacy", [1, 2])
    request = {"version": 1, "partitions": [{"topic": "legacy", "partition": 0, "replicas": [1, 3]}]}
    zk.create("/admin/reassign_partitions", json.dumps(request).encode(), makepath=True)
    await converge(trio, lambda im: im.partition("legacy", 0).replicas == (1, 3, 2))
    deadline = asyncio.get_running_loop().time() + 10
    while zk.exists("/admin/reassign_partitions") is not None:
        assert asyncio.get_running_loop().time() < deadline, "/admin/reassign_partitions was not removed"
        await asyncio.sleep(0.1)
    await _join_isr(trio, "legacy", 3)

    # the topic and state znodes change in one transaction, but a broker reads them one by one: its
    # image may show the new replicas a moment before the shrunk ISR
    def moved(image: MetadataImage) -> bool:
        s = image.partition("legacy", 0)
        return s is not None and s.replicas == (1, 3) and s.leader == 1 and s.isr == (1, 3)

    await converge(trio, moved)
