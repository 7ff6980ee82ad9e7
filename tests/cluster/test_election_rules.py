"""The controller's election and ISR rules (pure functions, no ZooKeeper)."""

from __future__ import annotations

from strom.cluster.election import (
    imbalanced_partitions,
    new_partition_state,
    preferred_election,
    reconcile_partition,
    unclean_election,
)
from strom.cluster.zk_layout import LeaderAndIsr
from strom.protocol.errors import ErrorCode


def st(leader: int, isr: tuple[int, ...], epoch: int = 5, version: int = 7) -> LeaderAndIsr:
    return LeaderAndIsr(leader=leader, leader_epoch=epoch, isr=isr, controller_epoch=1, zk_version=version)


def test_new_partition_leads_with_first_live_replica() -> None:
    assert new_partition_state((3, 1, 2), {1, 2}, 4) == LeaderAndIsr(1, 0, (1, 2), 4)
    assert new_partition_state((3,), {1}, 4) is None


def test_healthy_partition_needs_nothing() -> None:
    assert (
        reconcile_partition((1, 2, 3), st(1, (1, 2, 3)), {1, 2, 3}, set(), unclean=False, controller_epoch=2)
        is None
    )


def test_dead_leader_replaced_from_isr_in_assignment_order() -> None:
    new = reconcile_partition((1, 2, 3), st(1, (3, 1, 2)), {2, 3}, set(), unclean=False, controller_epoch=2)
    assert new == LeaderAndIsr(2, 6, (3, 2), 2, 7)


def test_dead_follower_leaves_isr_with_epoch_bump() -> None:
    new = reconcile_partition((1, 2, 3), st(1, (1, 2, 3)), {1, 2}, set(), unclean=False, controller_epoch=2)
    assert new == LeaderAndIsr(1, 6, (1, 2), 2, 7)


def test_no_isr_member_alive_goes_offline_unless_unclean() -> None:
    offline = reconcile_partition((1, 2), st(1, (1,)), {2}, set(), unclean=False, controller_epoch=2)
    assert offline == LeaderAndIsr(-1, 6, (1,), 2, 7)
    assert reconcile_partition((1, 2), offline, {2}, set(), unclean=False, controller_epoch=2) is None
    unclean = reconcile_partition((1, 2), offline, {2}, set(), unclean=True, controller_epoch=2)
    assert unclean == LeaderAndIsr(2, 7, (2,), 2, 7)
    # the last ISR member returns: it is elected cleanly
    back = reconcile_partition((1, 2), offline, {1, 2}, set(), unclean=False, controller_epoch=2)
    assert back == LeaderAndIsr(1, 7, (1,), 2, 7)


def test_shutting_down_leader_moves_only_if_someone_can_take_over() -> None:
    moved = reconcile_partition((1, 2), st(1, (1, 2)), {1, 2}, {1}, unclean=False, controller_epoch=2)
    assert moved == LeaderAndIsr(2, 6, (2,), 2, 7)
    assert reconcile_partition((1, 2), st(1, (1,)), {1, 2}, {1}, unclean=False, controller_epoch=2) is None
    follower = reconcile_partition((1, 2), st(1, (1, 2)), {1, 2}, {2}, unclean=False, controller_epoch=2)
    assert follower == LeaderAndIsr(1, 6, (1,), 2, 7)


def test_preferred_and_unclean_elections_on_request() -> None:
    assert preferred_election((1, 2), st(1, (1, 2)), {1, 2}, 3) == ErrorCode.election_not_needed
    assert preferred_election((1, 2), st(2, (2,)), {1, 2}, 3) == ErrorCode.preferred_leader_not_available
    assert preferred_election((1, 2), st(2, (2, 1)), {1, 2}, 3) == LeaderAndIsr(1, 6, (2, 1), 3, 7)
    assert unclean_election((1, 2), st(1, (1,)), {1, 2}, 3) == ErrorCode.election_not_needed
    assert unclean_election((1, 2), st(-1, (1,)), {2}, 3) == LeaderAndIsr(2, 6, (2,), 3, 7)
    assert unclean_election((1, 2), st(-1, (1,)), set(), 3) == ErrorCode.eligible_leaders_not_available


def test_imbalance_check_uses_the_per_broker_percentage() -> None:
    parts = [
        ("t", 0, (1, 2), st(2, (1, 2))),
        ("t", 1, (1, 2), st(1, (1, 2))),
        ("t", 2, (2, 1), st(2, (2, 1))),
        ("t", 3, (1, 2), st(2, (2,))),
    ]
    # broker 1 prefers 3 partitions and leads 1: 66% imbalance; partition 3 is not eligible (not in ISR)
    assert imbalanced_partitions(parts, {1, 2}, 10) == [("t", 0)]
    assert imbalanced_partitions(parts, {1, 2}, 70) == []
    assert imbalanced_partitions(parts, {2}, 10) == []
