"""StreamsGroupHeartbeat (KIP-1071) in the coordinator core: joining with a topology, the group epoch,
the task assignment and the member's reconciliation, as Kafka 4.4's GroupMetadataManager does them.

One heartbeat:
1. Validation (INVALID_REQUEST with Kafka's messages): a group id, a member id (the client's own),
   non-empty instance, rack and process ids; epoch 0 (re)joins with a rebalance timeout, a topology and
   no owned tasks; -2 needs an instance id; other negative epochs are invalid.
2. The group: created by a joining member (an empty classic group becomes a streams group and keeps its
   offsets); GROUP_ID_NOT_FOUND for a group of another type or, without joining, for none at all.
3. The member: new ones may join up to group.streams.max.size (GROUP_MAX_SIZE_REACHED); a known one must
   send its member epoch, or the previous one while reporting only tasks it still has (FENCED_MEMBER_EPOCH
   otherwise); UNKNOWN_MEMBER_ID for one we do not know. Static members (instance id) rejoin in the place
   of the member that left with epoch -2 (UNRELEASED_INSTANCE_ID while it is still in).
4. The topology: the first member's becomes the group's (a StreamsGroupTopology record); a member with an
   older topology epoch is told STALE_TOPOLOGY, a newer one, or another one of the same epoch, is refused
   ("Topology updates are not supported yet.", as Kafka 4.4). The topology is configured against the
   cluster's topics (`topology.configure`): missing source topics, wrongly partitioned topics and
   missing internal topics become statuses, and the internal topics to create go back to the handler,
   which creates them.
5. The group epoch moves with a new member, a new topology, a member leaving, and any change of the
   metadata of the topology's topics; a group epoch ahead of the target gets a new target from the sticky
   assignor (no tasks while the topology is not ready). Two settings hold it back, each with status
   ASSIGNMENT_DELAYED (5) and Kafka 4.4's detail: a member joining an empty group starts
   group.streams.initial.rebalance.delay.ms (3 s; group config streams.initial.rebalance.delay.ms), until
   which no target is computed and members reconcile to the last one (a new group's: epoch 1, no tasks);
   when it ends the target is computed for whoever is in the group then (nothing if it emptied), and
   members take it at their next heartbeat. Otherwise a target is computed at most once per
   group.streams.assignment.interval.ms (1 s; streams.assignment.interval.ms); inside it the next
   heartbeat after the interval computes it. Meanwhile StreamsGroupDescribe shows Assigning with the
   assignment epoch behind the group epoch.
6. The member reconciles (`reconcile.StreamsReconciler`); one asked to revoke must do so within its
   rebalance timeout or be fenced. A member asking to shut the application down makes every member see
   SHUTDOWN_APPLICATION.

Records go to __consumer_offsets in Kafka's order (member metadata, topology, group epoch, target members,
target metadata, current assignment) and the heartbeat is answered once they are written. Tasks are in
the answer when the member (re)joins or its tasks changed; the endpoints' partitions (for interactive
queries) when the member's endpoint information epoch is behind the group's.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

from strom.coordinator.consumer.base import can_compute_next_target
from strom.coordinator.group.base import Record, append_error_code
from strom.coordinator.group.group import GroupState
from strom.coordinator.group.schemas import encode_group_key
from strom.coordinator.streams import assignor
from strom.coordinator.streams import records as rec
from strom.coordinator.streams.base import STREAMS_REBALANCE, StreamsBase, initial_rebalance_key
from strom.coordinator.streams.group import (
    LEAVE_GROUP_MEMBER_EPOCH,
    LEAVE_GROUP_STATIC_MEMBER_EPOCH,
    MemberState,
    StreamsGroup,
    StreamsMember,
)
from strom.coordinator.streams.reconcile import Owned, StreamsReconciler
from strom.coordinator.streams.records import TaskSet, TopologyValue
from strom.coordinator.streams.topology import SHUTDOWN_APPLICATION, STALE_TOPOLOGY, configure
from strom.protocol.errors import ErrorCode, KafkaError

InternalTopic = tuple[str, int, int, tuple[tuple[str, str], ...]]

ASSIGNMENT_DELAYED = 5  # StreamsGroupHeartbeatResponse.Status
INITIAL_DELAY_DETAIL = "Assignment delayed due to the configured initial rebalance delay."
INTERVAL_DETAIL = "Assignment delayed due to the configured assignment interval."


@dataclass(frozen=True, slots=True)
class StreamsHeartbeatRequest:
    group_id: str
    member_id: str
    member_epoch: int
    endpoint_information_epoch: int = 0
    instance_id: str | None = None
    rack_id: str | None = None
    rebalance_timeout_ms: int = -1
    topology: TopologyValue | None = None
    owned: Owned = None
    process_id: str | None = None
    user_endpoint: tuple[str, int] | None = None
    client_tags: tuple[tuple[str, str], ...] | None = None
    task_offsets: tuple[tuple[str, int, int], ...] | None = None
    task_end_offsets: tuple[tuple[str, int, int], ...] | None = None
    shutdown_application: bool = False
    client_id: str = ""
    client_host: str = ""


@dataclass(frozen=True, slots=True)
class EndpointPartitions:
    endpoint: tuple[str, int]
    active: list[tuple[str, list[int]]]
    standby: list[tuple[str, list[int]]]


@dataclass(frozen=True, slots=True)
class StreamsHeartbeatResult:
    error: ErrorCode
    message: str | None = None
    member_id: str = ""
    member_epoch: int = 0
    heartbeat_interval_ms: int = 0
    acceptable_recovery_lag: int = 0
    task_offset_interval_ms: int = 0
    statuses: list[tuple[int, str]] = field(default_factory=list)
    tasks: TaskSet | None = None
    endpoint_information_epoch: int = 0
    partitions_by_endpoint: list[EndpointPartitions] | None = None
    to_create: list[InternalTopic] = field(default_factory=list)


def _error(code: ErrorCode, message: str) -> KafkaError:
    return KafkaError(message, code)


def _task_count(tasks: TaskSet) -> int:
    return sum(len(p) for kind in tasks.kinds() for p in kind.values())


class StreamsHeartbeats(StreamsBase):
    def streams_heartbeat(
        self, req: StreamsHeartbeatRequest, now_ms: int, respond: Callable[[StreamsHeartbeatResult], None]
    ) -> None:
        try:
            self._validate_streams_heartbeat(req)
        except KafkaError as exc:
            respond(StreamsHeartbeatResult(exc.code, exc.message))
            return
        status = self._status(req.group_id, allow_empty=False)
        if status is not ErrorCode.none:
            respond(StreamsHeartbeatResult(status))
            return
        try:
            if req.member_epoch in (LEAVE_GROUP_MEMBER_EPOCH, LEAVE_GROUP_STATIC_MEMBER_EPOCH):
                records, result = self._streams_leave(req, now_ms)
            else:
                records, result = self._streams_heartbeat(req, now_ms)
        except KafkaError as exc:
            respond(StreamsHeartbeatResult(exc.code, exc.message))
            return
        if not records:
            respond(result)
            return

        def written(error: KafkaError | None) -> None:
            code = append_error_code(error)
            respond(result if code is ErrorCode.none else StreamsHeartbeatResult(code))

        self._append(self.partition_for(req.group_id), records, written)

    # --- validation ----------------------------------------------------------------------------------

    @staticmethod
    def _validate_streams_heartbeat(req: StreamsHeartbeatRequest) -> None:
        def not_empty(value: str | None, message: str) -> None:
            if value is not None and not value.strip():
                raise _error(ErrorCode.invalid_request, message)

        not_empty(req.group_id, "GroupId can't be empty.")
        not_empty(req.member_id, "MemberId can't be empty.")
        not_empty(req.instance_id, "InstanceId can't be empty.")
        not_empty(req.rack_id, "RackId can't be empty.")
        not_empty(req.process_id, "ProcessId can't be empty.")
        epoch = req.member_epoch
        if epoch == 0:
            if req.rebalance_timeout_ms == -1:
                raise _error(
                    ErrorCode.invalid_request, "RebalanceTimeoutMs must be provided in first request."
                )
            if req.topology is None:
                raise _error(ErrorCode.invalid_request, "Topology must be non-null when (re-)joining.")
            if req.process_id is None:
                raise _error(ErrorCode.invalid_request, "ProcessId must be provided in first request.")
            names = ("ActiveTasks", "StandbyTasks", "WarmupTasks")
            for name, kind in zip(names, req.owned or ({}, {}, {}), strict=True):
                if any(kind.values()):
                    raise _error(ErrorCode.invalid_request, f"{name} must be empty when (re-)joining.")
        elif epoch == LEAVE_GROUP_STATIC_MEMBER_EPOCH:
            if req.instance_id is None:
                raise _error(ErrorCode.invalid_request, "InstanceId can't be null.")
        elif epoch < 0 and epoch != LEAVE_GROUP_MEMBER_EPOCH:
            raise _error(
                ErrorCode.invalid_request, f"MemberEpoch is {epoch}, but must be greater than or equal to -2."
            )

    # --- the group -----------------------------------------------------------------------------------

    def _streams_group_for(
        self, group_id: str, create: bool, now_ms: int, records: list[Record]
    ) -> StreamsGroup:
        group = self.streams_groups.get(group_id)
        if group is not None:
            return group
        classic = self.groups.get(group_id)
        other = (
            group_id in self.consumer_groups
            or group_id in getattr(self, "share_groups", {})
            or (classic is not None and classic.state is not GroupState.DEAD)
        )
        if other:
            empty_classic = (
                classic is not None
                and not classic.members
                and not classic.pending_members
                and classic.state is GroupState.EMPTY
            )
            if not (create and empty_classic):
                raise _error(ErrorCode.group_id_not_found, f"Group {group_id} is not a streams group.")
            # an empty classic group (committed offsets only) becomes a streams group and keeps them
            del self.groups[group_id]
            records.append((encode_group_key(group_id), None))
            group = StreamsGroup(group_id, now_ms)
            group.group_epoch = 1
            group.offsets = classic.offsets  # type: ignore[union-attr]
            self.streams_groups[group_id] = group
            return group
        if not create:
            raise _error(ErrorCode.group_id_not_found, f"Streams group {group_id} not found.")
        group = StreamsGroup(group_id, now_ms)
        # as Kafka 4.4: a new group is at epoch 1, and its first member brings it to 2
        group.group_epoch = 1
        self.streams_groups[group_id] = group
        return group

    def _streams_heartbeat(
        self, req: StreamsHeartbeatRequest, now_ms: int
    ) -> tuple[list[Record], StreamsHeartbeatResult]:
        records: list[Record] = []
        group = self._streams_group_for(req.group_id, req.member_epoch == 0, now_ms, records)
        try:
            return self._streams_heartbeat_in(group, req, now_ms, records)
        except KafkaError:
            if not group.members and group.topology is None and not group.offsets:
                # a group created by a refused first heartbeat is not kept
                self.streams_groups.pop(group.group_id, None)
            raise

    def _streams_member(
        self, group: StreamsGroup, req: StreamsHeartbeatRequest, records: list[Record], now_ms: int
    ) -> StreamsMember:
        cfg = self.streams_config
        member = group.members.get(req.member_id)
        existing_static = group.static_member(req.instance_id)
        if req.member_epoch == 0:
            if member is None and existing_static is None and len(group.members) >= cfg.max_size:
                raise _error(
                    ErrorCode.group_max_size_reached,
                    f"The streams group has reached its maximum capacity of {cfg.max_size} members.",
                )
            if existing_static is not None and existing_static.member_id != req.member_id:
                if existing_static.member_epoch != LEAVE_GROUP_STATIC_MEMBER_EPOCH:
                    raise _error(
                        ErrorCode.unreleased_instance_id,
                        f"Static member {req.member_id} with instance id {req.instance_id} cannot join the "
                        f"group because the instance id is owned by member {existing_static.member_id}.",
                    )
                # the new member id takes over the static member and its tasks
                target = group.target.pop(existing_static.member_id, None)
                group.remove_member(existing_static.member_id, now_ms)
                self._cancel_streams_timers(group.group_id, existing_static)
                records.extend(self._streams_member_tombstones(group.group_id, existing_static.member_id))
                replaced = replace(
                    existing_static, member_id=req.member_id, member_epoch=0, previous_member_epoch=0
                )
                group.update_member(replaced)
                if target is not None:
                    group.target[req.member_id] = target
                return replaced
            return member if member is not None else StreamsMember(req.member_id)
        if member is None:
            raise _error(
                ErrorCode.unknown_member_id,
                f"Member {req.member_id} is not a member of group {group.group_id}.",
            )
        if req.member_epoch != member.member_epoch:
            owned_ok = req.owned is not None and _owns_only(req.owned, member.assigned)
            if req.member_epoch != member.previous_member_epoch or not owned_ok:
                raise _error(
                    ErrorCode.fenced_member_epoch,
                    f"The streams group member has a smaller member epoch ({req.member_epoch}) than the one "
                    f"known by the group coordinator ({member.member_epoch}). The member must abandon all "
                    "its tasks and rejoin."
                    if req.member_epoch < member.member_epoch
                    else f"The streams group member has a greater member epoch ({req.member_epoch}) than the "
                    f"one known by the group coordinator ({member.member_epoch}). The member must abandon "
                    "all its tasks and rejoin.",
                )
        return member

    def _streams_heartbeat_in(
        self, group: StreamsGroup, req: StreamsHeartbeatRequest, now_ms: int, records: list[Record]
    ) -> tuple[list[Record], StreamsHeartbeatResult]:
        cfg = self._streams_config_of(group.group_id)
        # Kafka asks whether the group was empty before this heartbeat (its records are not replayed yet)
        was_empty = not group.members
        member = self._streams_member(group, req, records, now_ms)
        is_new = member.member_id not in group.members
        statuses: list[tuple[int, str]] = []
        topology_epoch = member.topology_epoch if req.topology is None else req.topology.epoch
        updated = replace(
            member,
            instance_id=req.instance_id if req.instance_id is not None else member.instance_id,
            rack_id=req.rack_id if req.rack_id is not None else member.rack_id,
            rebalance_timeout_ms=(
                req.rebalance_timeout_ms if req.rebalance_timeout_ms != -1 else member.rebalance_timeout_ms
            ),
            topology_epoch=topology_epoch,
            process_id=req.process_id if req.process_id is not None else member.process_id,
            user_endpoint=req.user_endpoint if req.user_endpoint is not None else member.user_endpoint,
            client_tags=req.client_tags if req.client_tags is not None else member.client_tags,
            task_offsets=req.task_offsets if req.task_offsets is not None else member.task_offsets,
            task_end_offsets=req.task_end_offsets
            if req.task_end_offsets is not None
            else member.task_end_offsets,
            client_id=req.client_id,
            client_host=req.client_host,
        )
        bump = is_new
        if is_new or not updated.metadata_equals(member):
            records.append(self._streams_member_record(group.group_id, updated))
        if req.topology is not None:
            if group.topology is None:
                group.topology = req.topology
                group.configured = None
                records.append(
                    (rec.group_key(rec.TOPOLOGY, group.group_id), rec.encode_topology(req.topology))
                )
                bump = True
            elif req.topology.epoch >= group.topology.epoch and not _same_topology(
                req.topology, group.topology
            ):
                # Kafka 4.4 refuses any other topology that is not older (StreamsTopology.equals: the
                # epoch and the subtopologies by id)
                raise _error(ErrorCode.invalid_request, "Topology updates are not supported yet.")
        if group.topology is None:
            raise _error(
                ErrorCode.invalid_request, "The topology is null and the group topology is also null."
            )
        if updated.topology_epoch < group.topology.epoch:
            statuses.append(
                (
                    STALE_TOPOLOGY,
                    f"The member's topology epoch {updated.topology_epoch} is behind the group's topology "
                    f"epoch {group.topology.epoch}.",
                )
            )
        group.update_member(updated)
        topics = self.topics_view()
        metadata_hash = self._metadata_hash(group.topics(), topics)
        if metadata_hash != group.metadata_hash:
            bump = True
        assignment_configs = tuple(sorted(cfg.assignment_configs))
        if assignment_configs != group.assignment_configs:
            bump = True  # the group's configs changed (num.standby.replicas, ...): assign again
        if group.configured is None or bump:
            group.configured = configure(group.topology, topics)
        if bump:
            group.group_epoch += 1
            group.metadata_hash = metadata_hash
            group.assignment_configs = assignment_configs
            group.validated_topology_epoch = group.topology.epoch if group.configured.ready else -1
            records.append(self._streams_epoch_record(group))
        delay_key = initial_rebalance_key(group.group_id)
        if was_empty and cfg.initial_rebalance_delay_ms > 0 and self.timers.deadline(delay_key) is None:
            # the first member of an empty group: wait for more before the first target (Kafka's
            # scheduleIfAbsent, so a group that empties and refills meanwhile keeps the first deadline)
            self.timers.schedule(delay_key, now_ms + cfg.initial_rebalance_delay_ms)
        if self.timers.deadline(delay_key) is not None:
            statuses.append((ASSIGNMENT_DELAYED, INITIAL_DELAY_DETAIL))
        elif group.group_epoch > group.assignment_epoch:
            if can_compute_next_target(group.assignment_timestamp, cfg.assignment_interval_ms, now_ms):
                self._streams_target(group, now_ms, records, updated.member_id if is_new else None)
            else:
                statuses.append((ASSIGNMENT_DELAYED, INTERVAL_DETAIL))
        if req.shutdown_application:
            group.shutdown_detail = (
                f"Streams group member {updated.member_id} encountered a fatal error and requested a "
                "shutdown "
                "for the entire application."
            )
        reconciled = self._streams_reconcile(group, updated, req.owned, now_ms, records)
        self._schedule_streams_session(group.group_id, reconciled.member_id, now_ms)
        statuses += group.configured.statuses
        if group.shutdown_detail is not None:
            statuses.append((SHUTDOWN_APPLICATION, group.shutdown_detail))
        tasks = None
        if req.member_epoch == 0 or reconciled.assigned != member.assigned:
            tasks = reconciled.assigned
        partitions_by_endpoint = None
        if req.endpoint_information_epoch != group.endpoint_information_epoch:
            partitions_by_endpoint = self._endpoint_partitions(group)
        return records, StreamsHeartbeatResult(
            ErrorCode.none,
            member_id=reconciled.member_id,
            member_epoch=reconciled.member_epoch,
            heartbeat_interval_ms=cfg.heartbeat_interval_ms,
            acceptable_recovery_lag=cfg.acceptable_recovery_lag,
            task_offset_interval_ms=cfg.task_offset_interval_ms,
            statuses=statuses,
            tasks=tasks,
            endpoint_information_epoch=group.endpoint_information_epoch,
            partitions_by_endpoint=partitions_by_endpoint,
            to_create=list(group.configured.to_create),
        )

    def _streams_target(
        self, group: StreamsGroup, now_ms: int, records: list[Record], new_member: str | None
    ) -> None:
        configured = group.configured
        if configured is not None and configured.ready:
            specs = {
                mid: assignor.AssignorMember(
                    m.process_id, group.target_of(mid) if mid in group.target else m.assigned
                )
                for mid, m in group.members.items()
            }
            standbys = self._streams_config_of(group.group_id).num_standby_replicas
            target = assignor.assign(specs, configured.partitions, configured.stateful, standbys)
        else:
            target = {mid: TaskSet() for mid in group.members}
        for mid in sorted(group.members):
            new = target.get(mid, TaskSet())
            if new != group.target.get(mid) or mid == new_member:
                key = rec.member_key(rec.TARGET_ASSIGNMENT_MEMBER, group.group_id, mid)
                records.append((key, rec.encode_target_member(new)))
        if any(target.get(m) != group.target.get(m) for m in group.members):
            group.endpoint_information_epoch += 1
        group.target = {mid: target.get(mid, TaskSet()) for mid in group.members}
        group.assignment_epoch = group.group_epoch
        group.assignment_timestamp = now_ms
        records.append(
            (
                rec.group_key(rec.TARGET_ASSIGNMENT_METADATA, group.group_id),
                rec.encode_target_metadata(group.assignment_epoch, now_ms),
            )
        )

    def _streams_initial_delay_ended(self, group_id: str, now_ms: int) -> None:
        """group.streams.initial.rebalance.delay.ms has passed (Kafka's computeDelayedTargetAssignment):
        compute the target of whoever is in the group now and write it; members take it at their next
        heartbeat. Nothing for a group deleted, emptied or never configured meanwhile."""
        group = self.streams_groups.get(group_id)
        if group is None or not group.members or group.configured is None:
            return
        if group.group_epoch <= group.assignment_epoch:
            return  # Kafka fails this timer with an IllegalStateException and drops it
        if not can_compute_next_target(
            group.assignment_timestamp, self._streams_config_of(group_id).assignment_interval_ms, now_ms
        ):
            return  # the next heartbeat after the assignment interval computes it
        records: list[Record] = []
        self._streams_target(group, now_ms, records, None)
        self._append(self.partition_for(group_id), records, lambda _error: None)

    def _streams_reconcile(
        self, group: StreamsGroup, member: StreamsMember, owned: Owned, now_ms: int, records: list[Record]
    ) -> StreamsMember:
        current = group.members[member.member_id]
        updated = StreamsReconciler(
            current,
            group.assignment_epoch,
            group.target_of(member.member_id),
            group.active_process,
            group.standby_processes,
            group.warmup_processes,
            owned,
        ).build()
        if updated is current or updated.assignment_equals(current):
            return current
        group.update_member(updated)
        records.append(self._streams_assignment_record(group.group_id, updated))
        self.timers.cancel((STREAMS_REBALANCE, group.group_id, member.member_id, str(current.member_epoch)))
        if updated.state is MemberState.UNREVOKED_TASKS:
            key = (STREAMS_REBALANCE, group.group_id, member.member_id, str(updated.member_epoch))
            self.timers.schedule(key, now_ms + max(updated.rebalance_timeout_ms, 0))
        return updated

    def _endpoint_partitions(self, group: StreamsGroup) -> list[EndpointPartitions]:
        """Each member with a user endpoint and the source partitions of its tasks (interactive queries)."""
        if group.topology is None:
            return []
        inputs = {
            s.subtopology_id: [*s.source_topics, *(t.name for t in s.repartition_source_topics)]
            for s in group.topology.subtopologies
        }

        def partitions(*kinds: dict[str, dict[int, int]]) -> list[tuple[str, list[int]]]:
            by_topic: dict[str, set[int]] = {}
            for kind in kinds:
                for s, parts in kind.items():
                    for topic in inputs.get(s, []):
                        by_topic.setdefault(topic, set()).update(parts)
            return [(t, sorted(p)) for t, p in sorted(by_topic.items())]

        return [
            EndpointPartitions(
                m.user_endpoint,
                partitions(m.assigned.active),
                partitions(m.assigned.standby, m.assigned.warmup),
            )
            for _mid, m in sorted(group.members.items())
            if m.user_endpoint is not None
        ]

    # overridden by the departures module; declared here for the type checker
    def _streams_leave(
        self, req: StreamsHeartbeatRequest, now_ms: int
    ) -> tuple[list[Record], StreamsHeartbeatResult]:
        raise NotImplementedError


def _same_topology(a: TopologyValue, b: TopologyValue) -> bool:
    """Kafka's StreamsTopology equality: the epoch and the subtopologies keyed by id (in any order)."""
    return a.epoch == b.epoch and {s.subtopology_id: s for s in a.subtopologies} == {
        s.subtopology_id: s for s in b.subtopologies
    }


def _owns_only(owned: Owned, assigned: TaskSet) -> bool:
    """Whether every task the member reports is one it is assigned (a retry after a lost answer)."""
    if owned is None:
        return False
    for have, mine in zip(owned, assigned.kinds(), strict=True):
        for s, parts in have.items():
            if any(p not in mine.get(s, {}) for p in parts):
                return False
    return True
