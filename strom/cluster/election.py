"""Leader election and ISR decisions of the controller, as pure functions (Kafka's PartitionStateMachine
and ReplicaStateMachine rules in ZooKeeper mode).

- New partition: the leader is the first live replica in assignment order; the ISR is all live replicas.
  With no live replica the partition gets no state yet (Kafka leaves it in NewPartition).
- Offline leader (dead, or shutting down): the first replica in assignment order that is live and in
  the ISR (so the preferred replica wins when eligible); the new ISR keeps the live ISR members. With no
  such replica: when unclean.leader.election.enable is true, the first live replica, ISR = [it] (data
  loss is possible, KIP-106); otherwise leader -1 (the partition is offline, clients see
  LEADER_NOT_AVAILABLE) and the ISR keeps its last member so that member can be elected when it returns.
- A dead or shutting-down follower is removed from the ISR.
- Every change bumps the leader epoch (KIP-101: followers truncate by it).
- Preferred election (KIP-183/KIP-460): the first assigned replica, when it is live and in the ISR.
- Unclean election on request (KIP-460): only for a partition without a live leader.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

from strom.cluster.zk_layout import LeaderAndIsr
from strom.protocol.errors import ErrorCode, KafkaError

NO_LEADER = -1


class NotControllerError(KafkaError):
    """The request needs the active controller and this broker is not it."""

    code = ErrorCode.not_controller


class InvalidUpdateVersionError(KafkaError):
    """An ISR change was based on a stale partition epoch (znode version): re-read and retry."""

    code = ErrorCode.invalid_update_version


class FencedLeaderEpochError(KafkaError):
    """An ISR change carried a leader epoch older than the partition's current one."""

    code = ErrorCode.fenced_leader_epoch


def new_partition_state(
    replicas: Sequence[int], live: Collection[int], controller_epoch: int
) -> LeaderAndIsr | None:
    live_replicas = tuple(r for r in replicas if r in live)
    if not live_replicas:
        return None
    return LeaderAndIsr(
        leader=live_replicas[0], leader_epoch=0, isr=live_replicas, controller_epoch=controller_epoch
    )


def _bump(state: LeaderAndIsr, leader: int, isr: Sequence[int], controller_epoch: int) -> LeaderAndIsr:
    return LeaderAndIsr(
        leader=leader,
        leader_epoch=state.leader_epoch + 1,
        isr=tuple(isr),
        controller_epoch=controller_epoch,
        zk_version=state.zk_version,
    )


def reconcile_partition(
    replicas: Sequence[int],
    state: LeaderAndIsr,
    live: Collection[int],
    shutting_down: Collection[int],
    *,
    unclean: bool,
    controller_epoch: int,
) -> LeaderAndIsr | None:
    """The state the partition should move to given the live brokers, or None when it is fine."""

    def usable(r: int) -> bool:
        return r in live and r not in shutting_down

    leader = state.leader
    if leader == NO_LEADER or not usable(leader):
        eligible = [r for r in replicas if r in state.isr and usable(r)]
        if eligible:
            return _bump(state, eligible[0], [r for r in state.isr if usable(r)], controller_epoch)
        if leader != NO_LEADER and leader in live:
            # shutting down but nobody can take over: it keeps leading (Kafka reports it as remaining)
            return None
        if unclean:
            candidates = [r for r in replicas if usable(r)] or [r for r in replicas if r in live]
            if candidates:
                return _bump(state, candidates[0], [candidates[0]], controller_epoch)
        if leader == NO_LEADER:
            return None
        live_isr = [r for r in state.isr if r in live]
        return _bump(state, NO_LEADER, live_isr or list(state.isr)[-1:], controller_epoch)
    new_isr = [r for r in state.isr if r == leader or usable(r)]
    if len(new_isr) != len(state.isr):
        return _bump(state, leader, new_isr, controller_epoch)
    return None


def preferred_election(
    replicas: Sequence[int], state: LeaderAndIsr, live: Collection[int], controller_epoch: int
) -> LeaderAndIsr | ErrorCode:
    """Move leadership to the preferred (first) replica, or say why not."""
    if not replicas:
        return ErrorCode.preferred_leader_not_available
    preferred = replicas[0]
    if state.leader == preferred:
        return ErrorCode.election_not_needed
    if preferred not in live or preferred not in state.isr:
        return ErrorCode.preferred_leader_not_available
    return _bump(state, preferred, state.isr, controller_epoch)


def unclean_election(
    replicas: Sequence[int], state: LeaderAndIsr, live: Collection[int], controller_epoch: int
) -> LeaderAndIsr | ErrorCode:
    """Elect a leader for a partition without a live one: from the ISR if possible, else any replica."""
    if state.leader != NO_LEADER and state.leader in live:
        return ErrorCode.election_not_needed
    from_isr = [r for r in replicas if r in state.isr and r in live]
    if from_isr:
        return _bump(state, from_isr[0], [r for r in state.isr if r in live], controller_epoch)
    candidates = [r for r in replicas if r in live]
    if not candidates:
        return ErrorCode.eligible_leaders_not_available
    return _bump(state, candidates[0], [candidates[0]], controller_epoch)


def imbalanced_partitions(
    partitions: Sequence[tuple[str, int, Sequence[int], LeaderAndIsr]],
    live: Collection[int],
    imbalance_percentage: int,
) -> list[tuple[str, int]]:
    """Kafka's auto leader rebalance check: for each broker, the share of partitions it prefers but does
    not lead; when above `leader.imbalance.per.broker.percentage`, those whose preferred replica is live
    and in the ISR get a preferred election."""
    by_preferred: dict[int, list[tuple[str, int, Sequence[int], LeaderAndIsr]]] = {}
    for entry in partitions:
        if entry[2]:
            by_preferred.setdefault(entry[2][0], []).append(entry)
    result: list[tuple[str, int]] = []
    for broker, entries in sorted(by_preferred.items()):
        if broker not in live:
            continue
        not_led = [e for e in entries if e[3].leader != broker]
        if len(not_led) * 100 <= imbalance_percentage * len(entries):
            continue
        result.extend((t, p) for t, p, _, state in not_led if broker in state.isr)
    return result
