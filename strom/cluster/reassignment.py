"""Partition reassignment rules of the controller, as pure functions (KIP-455, ZooKeeper mode).

A partition's replica set in the topic znode is RS; while a reassignment runs the znode also carries the
replicas being added and removed. With ORS the original replicas and TRS the target:

    RS = (TRS + ORS) without duplicates      adding = TRS - ORS      removing = ORS - TRS
    TRS = RS - removing                       ORS = RS - adding

So the znode alone says everything: a partition is being reassigned when it has adding or removing
replicas, and its target and origin can be recovered after a controller failover.

- Starting (`begin`): the target must be non-empty, without duplicates, and name only registered brokers
  (INVALID_REPLICA_ASSIGNMENT). A new target during a running reassignment replaces it: the origin stays,
  replicas that were being added and are not in the new target are dropped from RS at once.
- Cancelling (`cancel`, a null target): NO_REASSIGNMENT_IN_PROGRESS unless one runs. The target becomes
  the origin; the replicas added so far stay in RS (as removing) until the origin is back in the ISR, so a
  partition never loses every replica it could be led from.
- Completing (`complete`, level-triggered in every controller pass): once every target replica is in the
  ISR, RS becomes TRS, the adding/removing lists are cleared, the ISR shrinks to TRS and, when the leader is
  not in TRS, the first live target replica in the ISR becomes leader; any state change bumps the leader
  epoch (KIP-101: followers truncate by it). Brokers left out of RS delete their logs when they see the
  new image.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

from strom.cluster.errors import InvalidReplicaAssignmentError
from strom.cluster.zk_layout import LeaderAndIsr
from strom.protocol.errors import ErrorCode, KafkaError

__all__ = [
    "NoReassignmentInProgressError",
    "ReplicaSet",
    "begin",
    "cancel",
    "complete",
    "validate_target",
]


class NoReassignmentInProgressError(KafkaError):
    """A cancellation named a partition that is not being reassigned."""

    code = ErrorCode.no_reassignment_in_progress


def _distinct(replicas: Sequence[int]) -> tuple[int, ...]:
    return tuple(dict.fromkeys(replicas))


@dataclass(frozen=True, slots=True)
class ReplicaSet:
    """One partition's replicas as the topic znode holds them."""

    replicas: tuple[int, ...]
    adding: tuple[int, ...] = ()
    removing: tuple[int, ...] = ()

    @property
    def reassigning(self) -> bool:
        return bool(self.adding or self.removing)

    @property
    def target(self) -> tuple[int, ...]:
        return tuple(r for r in self.replicas if r not in self.removing)

    @property
    def origin(self) -> tuple[int, ...]:
        return tuple(r for r in self.replicas if r not in self.adding)


def validate_target(target: Sequence[int], brokers: Collection[int]) -> None:
    if not target:
        raise InvalidReplicaAssignmentError("Empty replica list specified in partition reassignment.")
    if len(set(target)) != len(target):
        raise InvalidReplicaAssignmentError(
            f"Duplicate replica ids in partition reassignment replica list: {list(target)}"
        )
    unknown = sorted(set(target) - set(brokers))
    if unknown:
        raise InvalidReplicaAssignmentError(
            f"The proposed assignment contains non-existent brokerIDs: {unknown}"
        )


def _toward(origin: Sequence[int], target: Sequence[int]) -> ReplicaSet:
    replicas = _distinct((*target, *origin))
    return ReplicaSet(
        replicas,
        tuple(r for r in target if r not in origin),
        tuple(r for r in origin if r not in target),
    )


def begin(current: ReplicaSet, target: Sequence[int], brokers: Collection[int]) -> ReplicaSet:
    """The replica set that starts (or replaces) a reassignment of `current` to `target`."""
    validate_target(target, brokers)
    return _toward(current.origin, tuple(target))


def cancel(current: ReplicaSet) -> ReplicaSet:
    """Revert to the origin; replicas added so far stay (as removing) until the origin is in the ISR."""
    if not current.reassigning:
        raise NoReassignmentInProgressError("No partition reassignment is in progress for this partition.")
    origin = current.origin
    replicas = _distinct((*origin, *current.replicas))
    return ReplicaSet(replicas, (), tuple(r for r in replicas if r not in origin))


def complete(
    current: ReplicaSet, state: LeaderAndIsr, live: Collection[int], controller_epoch: int
) -> tuple[tuple[int, ...], LeaderAndIsr | None] | None:
    """When the reassignment of `current` can finish: (the new replicas, the new state or None when the
    state stays). None while some target replica is still outside the ISR or no target replica can lead."""
    if not current.reassigning:
        return None
    target = current.target
    if not target or not all(r in state.isr for r in target):
        return None
    isr = tuple(r for r in state.isr if r in target)
    leader = state.leader
    if leader not in target:
        eligible = [r for r in target if r in isr and r in live]
        if not eligible:
            return None
        leader = eligible[0]
    if leader == state.leader and isr == state.isr:
        return target, None
    return target, LeaderAndIsr(
        leader=leader,
        leader_epoch=state.leader_epoch + 1,
        isr=isr,
        controller_epoch=controller_epoch,
        zk_version=state.zk_version,
    )
