"""The pure reassignment rules (KIP-455): replica sets while moving, replacing and cancelling, and when
and how a reassignment completes."""

from __future__ import annotations

import pytest

from strom.cluster.errors import InvalidReplicaAssignmentError
from strom.cluster.reassignment import (
    NoReassignmentInProgressError,
    ReplicaSet,
    begin,
    cancel,
    complete,
)
from strom.cluster.zk_layout import LeaderAndIsr
from strom.protocol.errors import ErrorCode

BROKERS = {1, 2, 3, 4}


def test_begin_is_target_plus_origin() -> None:
    moved = begin(ReplicaSet((1, 2)), [2, 3], BROKERS)
    assert moved == ReplicaSet((2, 3, 1), adding=(3,), removing=(1,))
    assert moved.target == (2, 3) and moved.origin == (2, 1) and moved.reassigning


def test_reorder_only_is_not_in_progress() -> None:
    moved = begin(ReplicaSet((1, 2)), [2, 1], BROKERS)
    assert moved == ReplicaSet((2, 1)) and not moved.reassigning


def test_new_target_replaces_running_reassignment_keeping_the_origin() -> None:
    running = begin(ReplicaSet((1, 2)), [2, 3], BROKERS)
    replaced = begin(running, [4, 2], BROKERS)
    # 3 was only being added: it leaves the replica set at once
    assert replaced == ReplicaSet((4, 2, 1), adding=(4,), removing=(1,))


@pytest.mark.parametrize("target", [[], [2, 2], [2, 9]])
def test_invalid_targets(target: list[int]) -> None:
    with pytest.raises(InvalidReplicaAssignmentError) as info:
        begin(ReplicaSet((1, 2)), target, BROKERS)
    assert info.value.code == ErrorCode.invalid_replica_assignment


def test_cancel_keeps_added_replicas_until_the_origin_is_in_sync() -> None:
    running = begin(ReplicaSet((1, 2)), [3, 4], BROKERS)
    cancelled = cancel(running)
    assert cancelled.target == running.origin == (1, 2)
    assert set(cancelled.replicas) == {1, 2, 3, 4} and set(cancelled.removing) == {3, 4}
    with pytest.raises(NoReassignmentInProgressError):
        cancel(ReplicaSet((1, 2)))


def state(leader: int, isr: tuple[int, ...], epoch: int = 5) -> LeaderAndIsr:
    return LeaderAndIsr(leader=leader, leader_epoch=epoch, isr=isr, controller_epoch=1, zk_version=7)


def test_complete_waits_for_every_target_replica_in_the_isr() -> None:
    running = begin(ReplicaSet((1, 2)), [2, 3], BROKERS)
    assert complete(running, state(1, (1, 2)), BROKERS, 2) is None
    assert complete(ReplicaSet((1, 2)), state(1, (1, 2)), BROKERS, 2) is None


def test_complete_moves_leadership_off_a_removed_leader() -> None:
    running = begin(ReplicaSet((1, 2)), [2, 3], BROKERS)
    replicas, new = complete(running, state(1, (1, 2, 3)), BROKERS, 2)  # type: ignore[misc]
    assert replicas == (2, 3)
    assert new == LeaderAndIsr(leader=2, leader_epoch=6, isr=(2, 3), controller_epoch=2, zk_version=7)


def test_complete_skips_dead_target_leaders_and_waits_when_none_can_lead() -> None:
    running = begin(ReplicaSet((1, 2)), [3, 4], BROKERS)
    _, new = complete(running, state(1, (1, 3, 4)), {1, 4}, 2)  # type: ignore[misc]
    assert new is not None and new.leader == 4 and new.isr == (3, 4)
    assert complete(running, state(1, (1, 3, 4)), {1}, 2) is None


def test_complete_keeps_state_when_nothing_changes_but_the_lists() -> None:
    running = ReplicaSet((1, 2, 3), adding=(), removing=(3,))
    assert complete(running, state(1, (1, 2)), BROKERS, 2) == ((1, 2), None)


def test_reassign_partitions_znode_json() -> None:
    from strom.cluster import zk_layout as L

    plan = {("t", 1): (3, 2), ("t", 0): (2, 3)}
    raw = L.encode_reassignment(plan)
    assert raw.startswith(b'{"version":1,"partitions":[{"topic":"t","partition":0,"replicas":[2,3]}')
    assert L.decode_reassignment(raw) == plan
    malformed = b'{"version":1,"partitions":[{"topic":"t"},{"topic":"u","partition":"x","replicas":[1]},' + (
        b'{"topic":"v","partition":2,"replicas":[1,2]}]}'
    )
    assert L.decode_reassignment(malformed) == {("v", 2): (1, 2)}
    assert L.decode_reassignment(b"not json") == {} and L.decode_reassignment(None) == {}
