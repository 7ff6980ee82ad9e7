"""One partition's change as Kafka 4.4's PartitionChangeBuilder writes it, and the reassignment rules of
its ReplicationControlManager (PartitionReassignmentReplicas, PartitionReassignmentRevert), as pure
functions over a `PartitionRegistration`.

`partition_change` builds the PartitionChangeRecord that moves a partition toward a target ISR, replica
list, adding and removing replicas, in Kafka's order:
1. a reassignment in progress completes when the target ISR, without the removing replicas, holds every
   replica that stays: the replicas become the target (removing dropped), the ISR loses the removing
   replicas, adding and removing are cleared;
2. eligible leader replicas (KIP-966, with `elr` on: `eligible.leader.replicas.version` >= 1): a target
   ISR of at least `min_isr` members clears the ELR; a smaller one makes the ELR the current ISR and ELR
   members that leave the ISR (without the target ISR's members and the brokers that restarted after an
   unclean shutdown);
3. the leader (a preferred election tries the first replica first, and is never unclean): the current
   one while it is valid (in the target ISR, or in the ELR when the target ISR is
   empty) and acceptable (active: unfenced, not in controlled shutdown); else the first valid acceptable
   replica in target replica order; with the ELR on and no ISR nor ELR, the last known leader (the one
   member of `last_known_elr`) when acceptable, as an unclean election; with unclean election allowed,
   the first acceptable replica; else none. A leader elected from the ELR becomes the whole ISR and
   leaves the ELR; an unclean one becomes the whole ISR, empties the ELR, and marks the partition's
   leader recovery state RECOVERING (KIP-704) until the leader's AlterPartition says RECOVERED;
4. a replica list that loses a replica bumps the leader epoch (the record carries the unchanged leader),
   so the removed replicas' fetches are fenced; so does an ISR shrink below metadata.version 3.6-IV0
   (KAFKA-15021);
5. the ISR is written when it changes; an empty one only with the ELR on (without it the last member
   stays, with no leader); the ELR where it changes; `last_known_elr` holds the last leader once the ISR
   goes empty and is cleared once the partition has a leader again;
6. replicas, their directories (the known directory of a kept replica, the broker's only log dir or
   UNASSIGNED for a new one), removing and adding are written where they change, and the leader recovery
   state when a target one (AlterPartition's) differs. Nothing changed: None.

Reassignment (KIP-455, `kafka-reassign-partitions`, Admin.alterPartitionReassignments):
- a target names registered brokers, at least one, none twice (INVALID_REPLICA_ASSIGNMENT, checked in
  broker id order as Kafka's validateManualPartitionAssignment does); fenced brokers may be named;
- the change computes, from the current replica list, removing = current - target, adding = target -
  current (both in broker id order), replicas = target followed by removing; the builder then completes
  it at once when the ISR already allows (a reordering, or dropping replicas). During a reassignment the
  current list is the whole one (origin and earlier target): a new target replaces the running one, a
  replica the earlier one was adding and the new one leaves out is now removing, and a later cancel goes
  back to that whole list without the new adding replicas, as Kafka's does;
- cancelling (null target) with nothing in progress is NO_REASSIGNMENT_IN_PROGRESS; otherwise the
  replicas go back to the list without the adding replicas, the ISR loses the adding replicas, adding and
  removing are cleared. Were every ISR member an adding replica, the first original replica becomes the
  ISR, which needs unclean leader election allowed for the topic (else INVALID_REPLICA_ASSIGNMENT).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import replace

from strom.cluster.errors import InvalidReplicaAssignmentError
from strom.metadata import records as r
from strom.metadata.image import PartitionRegistration
from strom.metadata.serde import ApiMessageAndVersion

__all__ = [
    "RECOVERED",
    "RECOVERING",
    "UNASSIGNED_DIR",
    "merge",
    "partition_change",
    "reassignment_target",
    "revert_reassignment",
    "validate_reassignment_target",
]

NO_LEADER = -1
NO_LEADER_CHANGE = -2
UNASSIGNED_DIR = uuid.UUID(int=0)
RECOVERED, RECOVERING = 0, 1  # Kafka's LeaderRecoveryState (KIP-704)
NO_RECOVERY_CHANGE = -1


def validate_reassignment_target(target: Sequence[int], registered: Mapping[int, object]) -> None:
    """Kafka's validateManualPartitionAssignment for a reassignment: InvalidReplicaAssignmentError."""
    if not target:
        raise InvalidReplicaAssignmentError("The manual partition assignment includes an empty replica list.")
    previous: int | None = None
    for broker_id in sorted(target):
        if broker_id not in registered:
            raise InvalidReplicaAssignmentError(
                f"The manual partition assignment includes broker {broker_id}, but no such broker is "
                "registered."
            )
        if broker_id == previous:
            raise InvalidReplicaAssignmentError(
                f"The manual partition assignment includes the broker {broker_id} more than once."
            )
        previous = broker_id


def reassignment_target(
    current: Sequence[int], target: Sequence[int]
) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
    """PartitionReassignmentReplicas: (replicas, adding, removing) of a reassignment from `current` to
    `target`."""
    removing = tuple(sorted(set(current) - set(target)))
    adding = tuple(sorted(set(target) - set(current)))
    return (*target, *removing), adding, removing


def revert_reassignment(part: PartitionRegistration) -> tuple[tuple[int, ...], tuple[int, ...], bool]:
    """PartitionReassignmentRevert: (replicas, ISR, unclean) of cancelling the reassignment of `part`."""
    replicas = tuple(b for b in part.replicas if b not in part.adding_replicas)
    isr = tuple(b for b in part.isr if b not in part.adding_replicas)
    if isr:
        return replicas, isr, False
    if not replicas:
        raise InvalidReplicaAssignmentError(
            "Invalid replica assignment: addingReplicas contains all replicas."
        )
    return replicas, replicas[:1], True


def _complete(
    replicas: tuple[int, ...], adding: tuple[int, ...], removing: tuple[int, ...], isr: tuple[int, ...]
) -> tuple[tuple[int, ...], tuple[int, ...]] | None:
    """PartitionReassignmentReplicas.maybeCompleteReassignment: (replicas, ISR) once it may finish."""
    if not adding and not removing:
        return None
    new_isr, new_replicas = isr, replicas
    if removing:
        new_isr = tuple(b for b in isr if b not in removing)
        new_replicas = tuple(b for b in replicas if b not in removing)
        if not new_isr or not new_replicas:
            return None
    if not set(new_replicas) <= set(new_isr):
        return None
    return new_replicas, new_isr


def partition_change(
    part: PartitionRegistration,
    topic_id: uuid.UUID,
    partition: int,
    *,
    acceptable: Callable[[int], bool],
    version: int,
    isr: Sequence[int] | None = None,
    replicas: Sequence[int] | None = None,
    adding: Sequence[int] | None = None,
    removing: Sequence[int] | None = None,
    unclean: bool = False,
    default_dir: Callable[[int], uuid.UUID] | None = None,
    elr: bool = False,
    min_isr: int = 1,
    unclean_shutdown: Collection[int] = (),
    recovery_state: int | None = None,
    bump_on_isr_shrink: bool = False,
    preferred: bool = False,
) -> ApiMessageAndVersion | None:
    """PartitionChangeBuilder.build: the record, at `version`, or None when nothing changes. Unset targets
    keep the partition's own; `default_dir` gives a new replica's directory (None: no directories are
    written); `elr` turns on KIP-966's eligible leader replicas with the topic's effective `min_isr`;
    `unclean_shutdown` names brokers that may not stay in the ELR; `recovery_state` is the target leader
    recovery state (AlterPartition's); `preferred` is Kafka's Election.PREFERRED (the first replica when it
    is valid, never an unclean election)."""
    target_isr = tuple(part.isr if isr is None else isr)
    target_replicas = tuple(part.replicas if replicas is None else replicas)
    target_adding = tuple(part.adding_replicas if adding is None else adding)
    target_removing = tuple(part.removing_replicas if removing is None else removing)
    completed = _complete(target_replicas, target_adding, target_removing, target_isr)
    if completed is not None:
        target_replicas, target_isr = completed
        target_adding = target_removing = ()
    target_elr = part.elr
    if elr:
        if len(target_isr) >= min_isr:
            target_elr = ()
        else:
            candidates = set(part.elr) | set(part.isr)
            target_elr = tuple(
                sorted(b for b in candidates if b not in target_isr and b not in unclean_shutdown)
            )

    def valid(b: int) -> bool:
        return (b in target_isr or (not target_isr and b in target_elr)) and acceptable(b)

    # the election: electPreferredLeader (the first replica first) or electAnyLeader
    elected_unclean = False
    if preferred and target_replicas and valid(target_replicas[0]):
        leader = target_replicas[0]
    elif valid(part.leader):
        leader = part.leader
    else:
        leader = next((b for b in target_replicas if valid(b)), NO_LEADER)
        if (
            leader == NO_LEADER
            and elr
            and not target_elr
            and not target_isr
            and len(part.last_known_elr) == 1
            and acceptable(part.last_known_elr[0])
        ):
            leader, elected_unclean = part.last_known_elr[0], True
        if leader == NO_LEADER and unclean and not preferred:
            leader = next((b for b in target_replicas if acceptable(b)), NO_LEADER)
            elected_unclean = leader != NO_LEADER
    record_leader = NO_LEADER_CHANGE
    record_isr: tuple[int, ...] | None = None
    record_recovery = NO_RECOVERY_CHANGE
    if leader != part.leader:
        if leader in target_elr:
            target_isr = (leader,)
            target_elr = tuple(b for b in target_elr if b != leader)
        record_leader = leader
        if elected_unclean:
            # the new leader is the whole ISR; it may have lost records, so it recovers first (KIP-704)
            record_isr = (leader,)
            if part.leader_recovery_state != RECOVERING:
                record_recovery = RECOVERING
    if record_leader == NO_LEADER_CHANGE and not set(part.replicas) <= set(target_replicas):
        record_leader = part.leader  # a replica leaves: bump the leader epoch
    # maybeUpdateRecordElr: an unclean election or the ELR off clears it
    if record_isr is not None or not elr:
        target_elr = ()
    record_elr = target_elr if target_elr != part.elr else None
    if record_isr is None and (target_isr or elr) and target_isr != part.isr:
        record_isr = target_isr
    if (
        bump_on_isr_shrink
        and record_leader == NO_LEADER_CHANGE
        and record_isr is not None
        and not set(part.isr) <= set(record_isr)
    ):
        record_leader = part.leader
    # maybeUpdateLastKnownLeader: the last leader, kept from the moment the ISR goes empty
    record_last_known: tuple[int, ...] | None = None
    if elr:
        if record_isr == () and part.last_known_elr != (part.leader,):
            record_last_known = (part.leader,)
        elif (
            record_leader >= 0 or (part.leader != NO_LEADER and record_leader != NO_LEADER)
        ) and part.last_known_elr:
            record_last_known = ()
    elif part.last_known_elr:
        record_last_known = ()
    directories: tuple[uuid.UUID, ...] | None = None
    record_replicas: tuple[int, ...] | None = None
    if target_replicas and target_replicas != part.replicas:
        record_replicas = target_replicas
        if default_dir is not None:
            known = dict(zip(part.replicas, part.directories, strict=False))
            dirs = tuple(known[b] if b in known else default_dir(b) for b in target_replicas)
            directories = dirs if dirs != part.directories else None
    if recovery_state is not None and recovery_state != part.leader_recovery_state:
        record_recovery = recovery_state
    if version < 2:
        record_elr = record_last_known = None  # the ELR fields exist from PartitionChangeRecord v2
    record = r.PartitionChangeRecord(
        partition_id=partition,
        topic_id=topic_id,
        isr=record_isr,
        leader=record_leader,
        replicas=record_replicas,
        removing_replicas=target_removing if target_removing != part.removing_replicas else None,
        adding_replicas=target_adding if target_adding != part.adding_replicas else None,
        leader_recovery_state=record_recovery,
        directories=directories,
        eligible_leader_replicas=record_elr,
        last_known_elr=record_last_known,
    )
    if (
        record.isr is None
        and record.leader == NO_LEADER_CHANGE
        and record.replicas is None
        and record.removing_replicas is None
        and record.adding_replicas is None
        and record.directories is None
        and record.eligible_leader_replicas is None
        and record.last_known_elr is None
        and record.leader_recovery_state == NO_RECOVERY_CHANGE
    ):
        return None
    return ApiMessageAndVersion(record, version)


def merge(part: PartitionRegistration, record: r.PartitionChangeRecord) -> PartitionRegistration:
    """The partition after `record`, as the metadata replay (Kafka's PartitionRegistration.merge) has it."""
    changes: dict[str, object] = {"partition_epoch": part.partition_epoch + 1}
    for name in ("isr", "replicas", "removing_replicas", "adding_replicas", "directories", "last_known_elr"):
        value = getattr(record, name)
        if value is not None:
            changes[name] = tuple(value)
    if record.eligible_leader_replicas is not None:
        changes["elr"] = tuple(record.eligible_leader_replicas)
    if record.leader_recovery_state != NO_RECOVERY_CHANGE:
        changes["leader_recovery_state"] = record.leader_recovery_state
    if record.leader != NO_LEADER_CHANGE:
        changes["leader"] = record.leader
        changes["leader_epoch"] = part.leader_epoch + 1
    return replace(part, **changes)  # type: ignore[arg-type]
