"""The controller of a ZooKeeper-based cluster: the one broker that holds /controller.

It is level-triggered: after every metadata refresh of its broker (any watched znode changed) it compares
the cache with what should be, and writes the difference to ZooKeeper, each write a compare-and-set on
the znode version, fenced by the /controller_epoch version it created when elected. A write that loses a
race is simply dropped: the watch that made it lose triggers the next pass, which decides again from the
new state. Decisions are the pure rules of strom.cluster.election.

A pass:
- carries out /admin/delete_topics/<t> requests (removes the topic's znodes, then the request);
- gives topics written without a topic id one (KIP-516), as Kafka 2.8+ controllers do;
- creates the state of new partitions (leader = first live replica, ISR = live replicas);
- elects leaders for partitions whose leader is dead or shutting down, from the ISR, or from any live
  replica when unclean.leader.election.enable is true (the topic's override, else the broker setting,
  dynamic configs included); otherwise leaves the partition offline with leader -1;
- removes dead and shutting-down followers from ISRs; every change bumps the leader epoch;
- completes partition reassignments (KIP-455, rules in strom.cluster.reassignment): once every target
  replica is in the ISR, the topic znode and the partition state change together in one transaction;
  starts the reassignments an operator wrote to /admin/reassign_partitions and deletes that znode;
- answers controlled-shutdown requests (/strom/controlled_shutdown/<id>) by deleting them once the
  broker is in no ISR it does not lead and leads only partitions nobody else can take.

A second task runs the auto leader rebalance (auto.leader.rebalance.enable,
leader.imbalance.check.interval.seconds, leader.imbalance.per.broker.percentage) and purges config
change notifications older than 15 minutes, as Kafka's brokers do.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from strom.cluster import zk_layout as L
from strom.cluster.election import (
    imbalanced_partitions,
    new_partition_state,
    preferred_election,
    reconcile_partition,
    unclean_election,
)
from strom.cluster.local import random_kafka_uuid
from strom.cluster.reassignment import ReplicaSet, begin, cancel, complete
from strom.cluster.zk_store import ControllerClaim
from strom.protocol.errors import ErrorCode, KafkaError

if TYPE_CHECKING:
    from strom.cluster.zookeeper import ZooKeeperBackend

log = logging.getLogger(__name__)

PREFERRED_ELECTION = 0
UNCLEAN_ELECTION = 1
CONFIG_CHANGE_RETENTION_MS = 15 * 60 * 1000
ADMIN_WAIT_S = 5.0

Op = tuple[Any, ...]
TopicPartition = tuple[str, int]
ReassignResult = tuple[ErrorCode, str | None]


def _as_bool(raw: str) -> bool:
    return raw.strip().lower() == "true"


class Controller:
    def __init__(self, backend: ZooKeeperBackend, claim: ControllerClaim) -> None:
        self._backend = backend
        self.claim = claim
        self._kicked = asyncio.Event()
        self._lock = asyncio.Lock()
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self._kicked.set()
        node = self._backend.node_id
        self._tasks = [
            asyncio.create_task(self._reconcile_loop(), name=f"controller-{node}"),
            asyncio.create_task(self._rebalance_loop(), name=f"controller-rebalance-{node}"),
        ]

    def kick(self) -> None:
        self._kicked.set()

    async def stop(self) -> None:
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    # --- the reconcile pass ----------------------------------------------------------------------------
    async def _reconcile_loop(self) -> None:
        while True:
            await self._kicked.wait()
            self._kicked.clear()
            try:
                await self.reconcile()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("controller pass failed; retrying")
                await asyncio.sleep(0.5)
                self._kicked.set()

    def _unclean(self, topic: str) -> bool:
        override = self._backend.cache.topic_configs.get(topic, {}).get("unclean.leader.election.enable")
        if override is not None:
            return _as_bool(override)
        return bool(self._backend.broker_config.get("unclean.leader.election.enable"))

    def plan(self) -> tuple[list[Op], list[int]]:
        """The writes that bring ZooKeeper to what should be, and the shutdown requests then answered."""
        cache = self._backend.cache
        epoch = self.claim.epoch
        live = set(cache.brokers)
        shutting = cache.shutdown_requests & live
        ops: list[Op] = [("delete", t) for t in sorted(cache.deleting)]
        after: dict[tuple[str, int], L.LeaderAndIsr] = {}
        for topic, (assignment, version) in sorted(cache.assignments.items()):
            if topic in cache.deleting:
                continue
            if assignment.topic_id is None:
                with_id = L.TopicAssignment(
                    random_kafka_uuid(self._backend.rng),
                    assignment.partitions,
                    assignment.adding,
                    assignment.removing,
                )
                ops.append(("topic_id", topic, with_id, version))
            unclean = self._unclean(topic)
            done: dict[int, tuple[tuple[int, ...], L.LeaderAndIsr | None]] = {}
            for partition, replicas in assignment.partitions.items():
                state = cache.states.get((topic, partition))
                if state is None:
                    new = new_partition_state(replicas, live, epoch)
                    if new is not None:
                        ops.append(("create", topic, partition, new))
                        after[(topic, partition)] = new
                    continue
                new = reconcile_partition(
                    replicas, state, live, shutting, unclean=unclean, controller_epoch=epoch
                )
                if new is not None:
                    ops.append(("update", topic, partition, new))
                elif assignment.topic_id is not None:
                    finished = complete(_replica_set(assignment, partition), state, live, epoch)
                    if finished is not None:
                        done[partition] = finished
                after[(topic, partition)] = new or state
            if done:
                ops.append(("reassigned", topic, *_completed(assignment, done), version))
        if cache.reassign_request is not None:
            ops.append(("zk_reassign", *cache.reassign_request))
        answered = [
            b for b in sorted(shutting) if not any(s.leader != b and b in s.isr for s in after.values())
        ]
        return ops, answered

    async def reconcile(self) -> None:
        async with self._lock:
            ops, answered = self.plan()
            if ops or answered:
                await asyncio.to_thread(self._execute, ops, answered)

    def _execute(self, ops: list[Op], answered: list[int]) -> None:
        store, claim = self._backend.store, self.claim
        all_applied = True
        for op in ops:
            kind = op[0]
            if kind == "delete":
                store.delete_topic_tree(claim, op[1])
                applied = True
            elif kind == "topic_id":
                applied = store.set_topic_id(claim, op[1], op[2], op[3])
            elif kind == "create":
                applied = store.create_state(claim, op[1], op[2], op[3])
            elif kind == "reassigned":
                applied = store.set_topic_assignment(claim, op[1], op[2], op[4], op[3])
                if applied:
                    log.info("%s: reassignments completed, replicas now %s", op[1], op[2].partitions)
            elif kind == "zk_reassign":
                results = self._alter(list(op[1].items()), frozenset(self._backend.cache.brokers))
                for (topic, partition), (code, message) in sorted(results.items()):
                    if code != ErrorCode.none:
                        log.warning(
                            "ignoring /admin/reassign_partitions entry %s-%d: %s", topic, partition, message
                        )
                store.delete_reassign_request(op[2])
                applied = True
            else:
                applied = store.update_state(claim, op[1], op[2], op[3])
            if not applied:
                log.debug("controller write lost a race: %r", op[:3])
            all_applied = all_applied and applied
        if all_applied:
            for broker in answered:
                store.delete_quietly(L.controlled_shutdown_path(broker))

    # --- reassignments on request (AlterPartitionReassignments) -------------------------------------
    async def alter_reassignments(
        self, requests: Sequence[tuple[TopicPartition, Sequence[int] | None]]
    ) -> dict[TopicPartition, ReassignResult]:
        """Start, replace or (target None) cancel reassignments; the completion is left to the passes.

        Returns once this broker's cache shows what was written (or after ADMIN_WAIT_S), as Kafka's
        controller updates its own context before answering: a ListPartitionReassignments or a cancel
        sent right after the answer sees the reassignment."""
        brokers = frozenset(self._backend.cache.brokers)
        written: dict[str, int] = {}
        async with self._lock:
            results = await asyncio.to_thread(self._alter, list(requests), brokers, written)
        self.kick()
        if written:
            cache = self._backend.cache

            def seen(_image: object) -> bool:
                # a later pass may have moved the znode further, or the topic may be gone
                return all(
                    (found := cache.assignments.get(topic)) is None or found[1] >= version
                    for topic, version in written.items()
                )

            if not await self._backend.wait_for(seen, ADMIN_WAIT_S):
                log.warning("reassignment of %s written but not yet seen by the controller", sorted(written))
        return results

    def _alter(
        self,
        requests: list[tuple[TopicPartition, Sequence[int] | None]],
        brokers: frozenset[int],
        written: dict[str, int] | None = None,
    ) -> dict[TopicPartition, ReassignResult]:
        """Blocking: apply the requests to the topic znodes; `written` gets each rewritten topic's new
        znode version."""
        store, claim = self._backend.store, self.claim
        results: dict[TopicPartition, ReassignResult] = {}
        by_topic: dict[str, list[tuple[int, Sequence[int] | None]]] = {}
        for (topic, partition), target in requests:
            by_topic.setdefault(topic, []).append((partition, target))
        deleting = self._backend.cache.deleting
        for topic, entries in by_topic.items():
            for _ in range(5):  # re-read and decide again when the topic znode moved under us
                found = None if topic in deleting else store.read_topic(topic)
                if found is None:
                    for partition, _target in entries:
                        results[(topic, partition)] = (
                            ErrorCode.unknown_topic_or_partition,
                            f"Topic {topic} does not exist.",
                        )
                    break
                assignment, version = found
                partitions = dict(assignment.partitions)
                adding, removing = dict(assignment.adding), dict(assignment.removing)
                for partition, target in entries:
                    if partition not in partitions:
                        results[(topic, partition)] = (
                            ErrorCode.unknown_topic_or_partition,
                            f"Partition {topic}-{partition} does not exist.",
                        )
                        continue
                    current = ReplicaSet(
                        partitions[partition], adding.get(partition, ()), removing.get(partition, ())
                    )
                    try:
                        moved = cancel(current) if target is None else begin(current, target, brokers)
                    except KafkaError as exc:
                        results[(topic, partition)] = (exc.code, str(exc))
                        continue
                    partitions[partition] = moved.replicas
                    _set_or_drop(adding, partition, moved.adding)
                    _set_or_drop(removing, partition, moved.removing)
                    results[(topic, partition)] = (ErrorCode.none, None)
                updated = L.TopicAssignment(assignment.topic_id, partitions, adding, removing)
                if updated == assignment:
                    break
                if store.set_topic_assignment(claim, topic, updated, version):
                    if written is not None:
                        written[topic] = version + 1  # a set_data bumps the znode version by one
                    break
            else:
                for partition, _target in entries:
                    results[(topic, partition)] = (
                        ErrorCode.request_timed_out,
                        "Concurrent updates of the topic kept conflicting.",
                    )
        return results

    def reassignments(
        self, partitions: Sequence[TopicPartition] | None = None
    ) -> dict[TopicPartition, ReplicaSet]:
        """The reassignments in progress (all, or those of the given partitions), from the cache."""
        cache = self._backend.cache
        out: dict[TopicPartition, ReplicaSet] = {}
        wanted = None if partitions is None else set(partitions)
        for topic, (assignment, _) in sorted(cache.assignments.items()):
            for partition in sorted(set(assignment.adding) | set(assignment.removing)):
                if partition in assignment.partitions and (wanted is None or (topic, partition) in wanted):
                    current = _replica_set(assignment, partition)
                    if current.reassigning:
                        out[(topic, partition)] = current
        return out

    # --- elections on request (ElectLeaders, auto rebalance) ---------------------------------------
    async def elect_leaders(
        self, partitions: Sequence[tuple[str, int]], election_type: int
    ) -> dict[tuple[str, int], ErrorCode]:
        cache = self._backend.cache
        live = frozenset(cache.brokers)
        requests: list[tuple[str, int, tuple[int, ...] | None]] = []
        for topic, partition in partitions:
            found = cache.assignments.get(topic)
            replicas = found[0].partitions.get(partition) if found is not None else None
            if topic in cache.deleting:
                replicas = None
            requests.append((topic, partition, replicas))
        async with self._lock:
            return await asyncio.to_thread(self._elect, requests, live, election_type)

    def _elect(
        self,
        requests: list[tuple[str, int, tuple[int, ...] | None]],
        live: frozenset[int],
        election_type: int,
    ) -> dict[tuple[str, int], ErrorCode]:
        store, claim = self._backend.store, self.claim
        results: dict[tuple[str, int], ErrorCode] = {}
        for topic, partition, replicas in requests:
            if replicas is None:
                results[(topic, partition)] = ErrorCode.unknown_topic_or_partition
                continue
            code = ErrorCode.unknown_server_error
            for _ in range(3):  # re-read and decide again when a concurrent write moved the znode
                state = store.read_state(topic, partition)
                if state is None:
                    code = ErrorCode.eligible_leaders_not_available
                    break
                if election_type == PREFERRED_ELECTION:
                    decision = preferred_election(replicas, state, live, claim.epoch)
                else:
                    decision = unclean_election(replicas, state, live, claim.epoch)
                if isinstance(decision, ErrorCode):
                    code = decision
                    break
                if store.update_state(claim, topic, partition, decision):
                    code = ErrorCode.none
                    break
            results[(topic, partition)] = code
        return results

    async def _rebalance_loop(self) -> None:
        config = self._backend.broker_config
        while True:
            await asyncio.sleep(float(config.get("leader.imbalance.check.interval.seconds")))
            try:
                await self.rebalance_once()
                now_ms = int(self._backend.clock() * 1000)
                await asyncio.to_thread(
                    self._backend.store.purge_config_changes, now_ms - CONFIG_CHANGE_RETENTION_MS
                )
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("auto leader rebalance failed")

    async def rebalance_once(self) -> list[tuple[str, int]]:
        """One auto leader rebalance check; returns the partitions it moved back to their preferred leader."""
        config = self._backend.broker_config
        if not config.get("auto.leader.rebalance.enable"):
            return []
        cache = self._backend.cache
        live = set(cache.brokers) - cache.shutdown_requests
        entries = [
            (topic, p, replicas, cache.states[(topic, p)])
            for topic, (assignment, _) in sorted(cache.assignments.items())
            if topic not in cache.deleting
            for p, replicas in assignment.partitions.items()
            if (topic, p) in cache.states
        ]
        targets = imbalanced_partitions(
            entries, live, int(config.get("leader.imbalance.per.broker.percentage"))
        )
        if not targets:
            return []
        results = await self.elect_leaders(targets, PREFERRED_ELECTION)
        return [tp for tp, code in results.items() if code == ErrorCode.none]


def _replica_set(assignment: L.TopicAssignment, partition: int) -> ReplicaSet:
    return ReplicaSet(
        assignment.partitions[partition],
        assignment.adding.get(partition, ()),
        assignment.removing.get(partition, ()),
    )


def _set_or_drop(layout: dict[int, tuple[int, ...]], partition: int, replicas: tuple[int, ...]) -> None:
    if replicas:
        layout[partition] = replicas
    else:
        layout.pop(partition, None)


def _completed(
    assignment: L.TopicAssignment, done: dict[int, tuple[tuple[int, ...], L.LeaderAndIsr | None]]
) -> tuple[L.TopicAssignment, dict[int, L.LeaderAndIsr]]:
    """The topic znode with the finished partitions moved to their targets, and their new states."""
    partitions = dict(assignment.partitions)
    adding, removing = dict(assignment.adding), dict(assignment.removing)
    states: dict[int, L.LeaderAndIsr] = {}
    for partition, (target, state) in done.items():
        partitions[partition] = target
        adding.pop(partition, None)
        removing.pop(partition, None)
        if state is not None:
            states[partition] = state
    return L.TopicAssignment(assignment.topic_id, partitions, adding, removing), states
