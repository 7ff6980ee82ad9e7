"""The classic group coordinator as a sans-io state machine (Kafka's GroupCoordinator semantics).

Inputs are requests (as `results` dataclasses) and the time in milliseconds; outputs are replies through
the callback each request passes, and records for __consumer_offsets through the injected `append` sink,
whose completion callback continues the work (a commit is answered only once its records are written, a
rebalance becomes Stable only once the leader's assignment is written). Nothing here sleeps or does I/O:
the owner calls `tick(now_ms)` at `next_deadline()` to fire heartbeat expiry, delayed joins
(group.initial.rebalance.delay.ms, rebalance timeouts), pending-sync timeouts and offset expiry.

Behaviours: KIP-394 (MEMBER_ID_REQUIRED for JoinGroup v4+), KIP-345 (static membership, FENCED_INSTANCE_ID,
rejoin of a static member without rebalance), KIP-814 (skip_assignment for a rejoining static leader),
KIP-211 (offsets of empty groups expire offsets.retention.minutes after the group became empty),
KIP-496 (OffsetDelete).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from strom.config import INT_MAX, BrokerConfig
from strom.coordinator.group import schemas
from strom.coordinator.group.group import CommittedOffset, Group, GroupState
from strom.coordinator.group.member import Member
from strom.coordinator.group.results import (
    CommitRequest,
    FetchedOffset,
    GroupListing,
    GroupSummary,
    JoinMember,
    JoinRequest,
    JoinResult,
    MemberSummary,
    SyncRequest,
    SyncResult,
)
from strom.coordinator.group.timers import Timers
from strom.protocol.errors import ErrorCode, KafkaError

Record = tuple[bytes, bytes | None]
AppendDone = Callable[[KafkaError | None], None]
AppendSink = Callable[[int, list[Record], AppendDone], None]

_S = GroupState
# A group being replayed: its latest metadata value (or None) and offsets.
_LoadedGroup = tuple[schemas.GroupValue | None, dict[tuple[str, int], CommittedOffset]]

# Errors from writing __consumer_offsets, as Kafka maps them for the group APIs.
_APPEND_ERROR_MAP = {
    ErrorCode.unknown_topic_or_partition: ErrorCode.coordinator_not_available,
    ErrorCode.not_enough_replicas: ErrorCode.coordinator_not_available,
    ErrorCode.not_enough_replicas_after_append: ErrorCode.coordinator_not_available,
    ErrorCode.request_timed_out: ErrorCode.coordinator_not_available,
    ErrorCode.not_leader_or_follower: ErrorCode.not_coordinator,
    ErrorCode.kafka_storage_error: ErrorCode.not_coordinator,
    ErrorCode.message_too_large: ErrorCode.unknown_server_error,
    ErrorCode.record_list_too_large: ErrorCode.unknown_server_error,
    ErrorCode.invalid_fetch_size: ErrorCode.unknown_server_error,
}


def append_error_code(error: KafkaError | None) -> ErrorCode:
    if error is None:
        return ErrorCode.none
    return _APPEND_ERROR_MAP.get(error.code, error.code)


@dataclass(frozen=True, slots=True)
class GroupConfig:
    num_partitions: int = 50
    min_session_timeout_ms: int = 6000
    max_session_timeout_ms: int = 1800000
    initial_rebalance_delay_ms: int = 3000
    max_size: int = INT_MAX
    new_member_join_timeout_ms: int = 300000
    offsets_retention_ms: int = 7 * 24 * 3600 * 1000
    offsets_retention_check_interval_ms: int = 600000
    offset_metadata_max_bytes: int = 4096

    @classmethod
    def from_broker_config(cls, config: BrokerConfig) -> GroupConfig:
        return cls(
            num_partitions=config.get("offsets.topic.num.partitions"),
            min_session_timeout_ms=config.get("group.min.session.timeout.ms"),
            max_session_timeout_ms=config.get("group.max.session.timeout.ms"),
            initial_rebalance_delay_ms=config.get("group.initial.rebalance.delay.ms"),
            max_size=config.get("group.max.size"),
            offsets_retention_ms=config.get("offsets.retention.minutes") * 60000,
            offsets_retention_check_interval_ms=config.get("offsets.retention.check.interval.ms"),
            offset_metadata_max_bytes=_get_or(config, "offset.metadata.max.bytes", 4096),
        )


def _get_or(config: BrokerConfig, name: str, default: int) -> int:
    try:
        return int(config.get(name))
    except Exception:
        return default


def _default_member_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4()}"


class GroupCoordinatorCore:
    """Every group of the __consumer_offsets partitions this broker leads. One instance per broker; all
    calls come from one thread (the event loop), so no locking."""

    def __init__(
        self,
        config: GroupConfig,
        append: AppendSink,
        *,
        new_member_id: Callable[[str], str] = _default_member_id,
    ) -> None:
        self.config = config
        self._append = append
        self._new_member_id = new_member_id
        self.groups: dict[str, Group] = {}
        self.owned: set[int] = set()
        self.loading: set[int] = set()
        self.timers = Timers()
        self._initial_join_remaining: dict[str, int] = {}
        self._loads: dict[int, dict[str, _LoadedGroup]] = {}
        # TxnOffsetCommit (KIP-98): offsets written in a transaction, by producer id then group, until
        # the transaction's marker lands in the group's partition
        self.pending_txn_offsets: dict[int, dict[str, dict[tuple[str, int], CommittedOffset]]] = {}
        # writes a transactional batch: (partition, records, done, producer id, producer epoch)
        self.append_transactional: Callable[[int, list[Record], AppendDone, int, int], None] | None = None

    # --- ownership and loading -----------------------------------------------------------------------

    def partition_for(self, group_id: str) -> int:
        return schemas.partition_for(group_id, self.config.num_partitions)

    def _status(self, group_id: str | None, allow_empty: bool) -> ErrorCode:
        if group_id is None or (not allow_empty and group_id == ""):
            return ErrorCode.invalid_group_id
        partition = self.partition_for(group_id)
        if partition in self.loading:
            return ErrorCode.coordinator_load_in_progress
        if partition not in self.owned:
            return ErrorCode.not_coordinator
        return ErrorCode.none

    def begin_loading(self, partition: int) -> None:
        self.loading.add(partition)
        self._loads[partition] = {}

    def load_record(self, partition: int, key: bytes | None, value: bytes | None) -> None:
        """Replay one record of __consumer_offsets (later records win, null values delete)."""
        if key is None:
            return
        decoded = schemas.decode_key(key)
        state = self._loads[partition]
        if isinstance(decoded, schemas.OffsetKey):
            entry = state.setdefault(decoded.group, (None, {}))
            tp = (decoded.topic, decoded.partition)
            if value is None:
                entry[1].pop(tp, None)
            else:
                v = schemas.decode_offset_value(value)
                entry[1][tp] = CommittedOffset(
                    v.offset, v.leader_epoch, v.metadata, v.commit_timestamp, v.expire_timestamp
                )
        elif isinstance(decoded, schemas.GroupKey):
            offsets = state.get(decoded.group, (None, {}))[1]
            if value is None:
                # A group tombstone follows the tombstones of its offsets; anything later starts afresh.
                state.pop(decoded.group, None)
            else:
                state[decoded.group] = (schemas.decode_group_value(value), offsets)

    def finish_loading(self, partition: int, now_ms: int) -> None:
        for group_id, (value, offsets) in self._loads.pop(partition, {}).items():
            if value is None and not offsets:
                continue
            group = Group(group_id, now_ms)
            group.offsets = offsets
            if value is not None:
                group.generation_id = value.generation
                group.protocol_type = value.protocol_type or None
                group.protocol_name = value.protocol
                if value.current_state_timestamp >= 0:
                    group.state_timestamp = value.current_state_timestamp
                for mv in value.members:
                    member = Member(
                        member_id=mv.member_id,
                        group_instance_id=mv.group_instance_id,
                        client_id=mv.client_id,
                        client_host=mv.client_host,
                        rebalance_timeout_ms=mv.rebalance_timeout,
                        session_timeout_ms=mv.session_timeout,
                        protocol_type=value.protocol_type,
                        protocols=[(value.protocol or "", mv.subscription)],
                        assignment=mv.assignment,
                    )
                    group.add(member)
                    self._schedule_heartbeat(group, member, now_ms)
                group.leader_id = value.leader if value.leader in group.members else group.leader_id
                if group.members:
                    group.state = _S.STABLE
            self.groups[group_id] = group
        self.loading.discard(partition)
        self.owned.add(partition)
        self._schedule_expiry(now_ms)

    def unload(self, partition: int) -> None:
        """Leadership of a partition moved away: drop its groups, answering parked requests."""
        self.loading.discard(partition)
        self.owned.discard(partition)
        self._loads.pop(partition, None)
        for producer_id, by_group in list(self.pending_txn_offsets.items()):
            for group_id in [g for g in by_group if self.partition_for(g) == partition]:
                del by_group[group_id]  # the new owner replays them from the log
            if not by_group:
                del self.pending_txn_offsets[producer_id]
        for group_id in [g for g in self.groups if self.partition_for(g) == partition]:
            group = self.groups.pop(group_id)
            for member in group.members.values():
                self._fail_waiters(member, ErrorCode.not_coordinator)
                self.timers.cancel(("hb", group_id, member.member_id))
            for pending in group.pending_members:
                self.timers.cancel(("pending", group_id, pending))
            self.timers.cancel(("join", group_id))
            self.timers.cancel(("sync", group_id))
            self._initial_join_remaining.pop(group_id, None)
            group.state = _S.DEAD

    # --- JoinGroup -----------------------------------------------------------------------------------

    def join(self, req: JoinRequest, now_ms: int, respond: Callable[[JoinResult], None]) -> None:
        status = self._status(req.group_id, allow_empty=False)
        if status is not ErrorCode.none:
            respond(JoinResult(status, req.member_id))
            return
        if not (
            self.config.min_session_timeout_ms <= req.session_timeout_ms <= self.config.max_session_timeout_ms
        ):
            respond(JoinResult(ErrorCode.invalid_session_timeout, req.member_id))
            return
        unknown = req.member_id == ""
        group = self.groups.get(req.group_id)
        if group is None:
            if not unknown:
                respond(JoinResult(ErrorCode.unknown_member_id, req.member_id))
                return
            group = Group(req.group_id, now_ms)
            self.groups[req.group_id] = group
        try:
            if unknown:
                if len(group.members) + len(group.pending_members) >= self.config.max_size:
                    respond(JoinResult(ErrorCode.group_max_size_reached, req.member_id))
                    return
                self._join_unknown(group, req, now_ms, respond)
            else:
                self._join_known(group, req, now_ms, respond)
        finally:
            self._drop_if_unused(group)

    def _join_unknown(
        self, group: Group, req: JoinRequest, now_ms: int, respond: Callable[[JoinResult], None]
    ) -> None:
        if group.state is _S.DEAD:
            respond(JoinResult(ErrorCode.coordinator_not_available, req.member_id))
            return
        if not group.supports_protocols(req.protocol_type, req.protocols):
            respond(JoinResult(ErrorCode.inconsistent_group_protocol, req.member_id))
            return
        new_id = self._new_member_id(req.group_instance_id or req.client_id)
        if req.group_instance_id is not None:
            old_id = group.static_member_id(req.group_instance_id)
            if old_id is not None:
                self._update_static_member(group, old_id, new_id, req, now_ms, respond)
            else:
                self._add_member_and_rebalance(group, new_id, req, now_ms, respond)
        elif req.require_known_member_id:
            group.pending_members.add(new_id)
            self.timers.schedule(("pending", group.group_id, new_id), now_ms + req.session_timeout_ms)
            respond(JoinResult(ErrorCode.member_id_required, new_id))
        else:
            self._add_member_and_rebalance(group, new_id, req, now_ms, respond)

    def _join_known(
        self, group: Group, req: JoinRequest, now_ms: int, respond: Callable[[JoinResult], None]
    ) -> None:
        mid = req.member_id
        if group.state is _S.DEAD:
            respond(JoinResult(ErrorCode.coordinator_not_available, mid))
            return
        if not group.supports_protocols(req.protocol_type, req.protocols):
            respond(JoinResult(ErrorCode.inconsistent_group_protocol, mid))
            return
        if mid in group.pending_members:
            self._add_member_and_rebalance(group, mid, req, now_ms, respond)
            return
        if group.is_static_member_fenced(mid, req.group_instance_id):
            respond(JoinResult(ErrorCode.fenced_instance_id, mid))
            return
        member = group.members.get(mid)
        if member is None:
            respond(JoinResult(ErrorCode.unknown_member_id, mid))
            return
        state = group.state
        if state is _S.PREPARING_REBALANCE:
            self._update_member_and_rebalance(group, member, req, now_ms, respond)
        elif state is _S.COMPLETING_REBALANCE:
            if member.matches(req.protocols):
                # A resent JoinGroup (e.g. after a client-side timeout): answer with the current generation.
                respond(self._join_result(group, member))
            else:
                self._update_member_and_rebalance(group, member, req, now_ms, respond)
        elif state is _S.STABLE:
            if mid == group.leader_id or not member.matches(req.protocols):
                # The leader rejoining or a changed subscription starts a new rebalance.
                self._update_member_and_rebalance(group, member, req, now_ms, respond)
            else:
                self._schedule_heartbeat(group, member, now_ms)
                respond(self._join_result(group, member, with_members=False))
        else:
            respond(JoinResult(ErrorCode.unknown_member_id, mid))

    def _new_member(self, member_id: str, req: JoinRequest) -> Member:
        return Member(
            member_id=member_id,
            group_instance_id=req.group_instance_id,
            client_id=req.client_id,
            client_host=req.client_host,
            rebalance_timeout_ms=req.rebalance_timeout_ms,
            session_timeout_ms=req.session_timeout_ms,
            protocol_type=req.protocol_type,
            protocols=list(req.protocols),
            supports_skip_assignment=req.supports_skip_assignment,
        )

    def _add_member_and_rebalance(
        self,
        group: Group,
        member_id: str,
        req: JoinRequest,
        now_ms: int,
        respond: Callable[[JoinResult], None],
    ) -> None:
        member = self._new_member(member_id, req)
        member.is_new = True
        member.awaiting_join = respond
        if group.state is _S.PREPARING_REBALANCE and group.generation_id == 0:
            group.new_member_added = True
        group.add(member)
        if member_id in group.pending_members:
            group.pending_members.discard(member_id)
            self.timers.cancel(("pending", group.group_id, member_id))
        self.timers.schedule(
            ("hb", group.group_id, member_id), now_ms + self.config.new_member_join_timeout_ms
        )
        self._maybe_prepare_rebalance(group, now_ms)
        self._try_complete_join(group, now_ms)

    def _update_member_and_rebalance(
        self,
        group: Group,
        member: Member,
        req: JoinRequest,
        now_ms: int,
        respond: Callable[[JoinResult], None],
    ) -> None:
        if member.awaiting_join is not None and member.awaiting_join is not respond:
            # The client gave up on its earlier JoinGroup and sent another; only the latest is answered
            # with the generation, the earlier one must still get a reply.
            member.awaiting_join(JoinResult(ErrorCode.rebalance_in_progress, member.member_id))
        member.protocols = list(req.protocols)
        member.rebalance_timeout_ms = req.rebalance_timeout_ms
        member.session_timeout_ms = req.session_timeout_ms
        member.supports_skip_assignment = req.supports_skip_assignment
        member.awaiting_join = respond
        self._schedule_heartbeat(group, member, now_ms)
        self._maybe_prepare_rebalance(group, now_ms)
        self._try_complete_join(group, now_ms)

    def _update_static_member(
        self,
        group: Group,
        old_id: str,
        new_id: str,
        req: JoinRequest,
        now_ms: int,
        respond: Callable[[JoinResult], None],
    ) -> None:
        """A static member restarted (unknown member id, known group.instance.id): it takes over its old
        identity; the group rebalances only if it must (KIP-345)."""
        assert req.group_instance_id is not None
        old_member = group.members[old_id]
        # The old incarnation may still have a request parked: it is fenced now.
        self._fail_waiters(old_member, ErrorCode.fenced_instance_id)
        self.timers.cancel(("hb", group.group_id, old_id))
        saved = (list(old_member.protocols), old_member.rebalance_timeout_ms, old_member.session_timeout_ms)
        member = group.replace_static_member(req.group_instance_id, old_id, new_id)
        member.protocols = list(req.protocols)
        member.rebalance_timeout_ms = req.rebalance_timeout_ms
        member.session_timeout_ms = req.session_timeout_ms
        member.client_id = req.client_id
        member.client_host = req.client_host
        member.supports_skip_assignment = req.supports_skip_assignment
        self._schedule_heartbeat(group, member, now_ms)
        state = group.state
        if state is _S.STABLE:
            if group.protocol_name == group.select_protocol():
                generation = group.generation_id

                def stored(error: KafkaError | None) -> None:
                    code = append_error_code(error)
                    current = group.members.get(new_id)
                    if code is not ErrorCode.none:
                        if current is not None and group.generation_id == generation:
                            (current.protocols, current.rebalance_timeout_ms, current.session_timeout_ms) = (
                                saved
                            )
                            group.replace_static_member(req.group_instance_id or "", new_id, old_id)
                            self._schedule_heartbeat(group, current, now_ms)
                        respond(JoinResult(code, new_id))
                        return
                    if current is None:
                        respond(JoinResult(ErrorCode.unknown_member_id, new_id))
                        return
                    is_leader = new_id == group.leader_id
                    result = self._join_result(group, current, with_members=is_leader)
                    if is_leader:
                        result = JoinResult(
                            result.error,
                            result.member_id,
                            result.generation_id,
                            result.protocol_type,
                            result.protocol_name,
                            result.leader_id,
                            result.members,
                            skip_assignment=True,
                        )
                    respond(result)

                self._store_group(group, now_ms, stored)
            else:
                member.awaiting_join = respond
                self._maybe_prepare_rebalance(group, now_ms)
        elif state is _S.COMPLETING_REBALANCE:
            # The leader may already hold the old member id in its assignment: rebalance again.
            member.awaiting_join = respond
            self._prepare_rebalance(group, now_ms)
        elif state is _S.PREPARING_REBALANCE:
            member.awaiting_join = respond
            self._try_complete_join(group, now_ms)
        else:  # a static member recorded in an Empty group cannot exist
            respond(JoinResult(ErrorCode.unknown_server_error, new_id))

    def _join_result(self, group: Group, member: Member, with_members: bool | None = None) -> JoinResult:
        is_leader = member.member_id == group.leader_id
        members: list[JoinMember] = []
        if (is_leader if with_members is None else with_members) and group.protocol_name is not None:
            members = [
                JoinMember(m.member_id, m.group_instance_id, m.metadata_for(group.protocol_name))
                for m in group.members.values()
            ]
        return JoinResult(
            ErrorCode.none,
            member.member_id,
            group.generation_id,
            group.protocol_type,
            group.protocol_name,
            group.leader_id or "",
            members,
        )

    # --- rebalance -----------------------------------------------------------------------------------

    def _maybe_prepare_rebalance(self, group: Group, now_ms: int) -> None:
        if group.can_rebalance():
            self._prepare_rebalance(group, now_ms)

    def _prepare_rebalance(self, group: Group, now_ms: int) -> None:
        if group.state is _S.COMPLETING_REBALANCE:
            self._reset_and_propagate_assignment_error(group, ErrorCode.rebalance_in_progress)
        group.pending_sync.clear()
        self.timers.cancel(("sync", group.group_id))
        if group.state is _S.EMPTY:
            delay = self.config.initial_rebalance_delay_ms
            self._initial_join_remaining[group.group_id] = max(group.max_rebalance_timeout_ms() - delay, 0)
            self.timers.schedule(("join", group.group_id), now_ms + delay)
        else:
            self._initial_join_remaining.pop(group.group_id, None)
            self.timers.schedule(("join", group.group_id), now_ms + group.max_rebalance_timeout_ms())
        group.transition(_S.PREPARING_REBALANCE, now_ms)

    def _try_complete_join(self, group: Group, now_ms: int) -> None:
        if (
            group.state is _S.PREPARING_REBALANCE
            and group.group_id not in self._initial_join_remaining
            and group.has_all_members_joined()
        ):
            self._complete_join(group, now_ms)

    def _on_join_deadline(self, group: Group, now_ms: int) -> None:
        remaining = self._initial_join_remaining.get(group.group_id)
        if remaining is not None and group.new_member_added and remaining > 0:
            # group.initial.rebalance.delay.ms: wait again while members keep arriving.
            group.new_member_added = False
            delay = min(self.config.initial_rebalance_delay_ms, remaining)
            self._initial_join_remaining[group.group_id] = max(remaining - delay, 0)
            self.timers.schedule(("join", group.group_id), now_ms + delay)
            return
        self._complete_join(group, now_ms)

    def _complete_join(self, group: Group, now_ms: int) -> None:
        self.timers.cancel(("join", group.group_id))
        self._initial_join_remaining.pop(group.group_id, None)
        group.new_member_added = False
        for failed in group.not_yet_rejoined():
            if not failed.is_static:
                self._remove_member(group, failed)
        if group.state is _S.DEAD:
            return
        group.generation_id += 1
        if not group.members:
            group.protocol_name = None
            group.leader_id = None
            group.transition(_S.EMPTY, now_ms)
            self._store_group(group, now_ms, lambda _error: None)
            return
        group.protocol_name = group.select_protocol()
        group.transition(_S.COMPLETING_REBALANCE, now_ms)
        group.pending_sync = set(group.members)
        for member in list(group.members.values()):
            member.is_new = False
            callback = member.awaiting_join
            member.awaiting_join = None
            self._schedule_heartbeat(group, member, now_ms)
            if callback is not None:
                callback(self._join_result(group, member))
        self.timers.schedule(("sync", group.group_id), now_ms + group.max_rebalance_timeout_ms())

    def _reset_and_propagate_assignment_error(self, group: Group, error: ErrorCode) -> None:
        for member in group.members.values():
            member.assignment = b""
            callback = member.awaiting_sync
            member.awaiting_sync = None
            if callback is not None:
                callback(SyncResult(error))

    def _set_and_propagate_assignment(self, group: Group, assignments: dict[str, bytes], now_ms: int) -> None:
        for member in group.members.values():
            member.assignment = assignments.get(member.member_id, b"")
            callback = member.awaiting_sync
            member.awaiting_sync = None
            if callback is not None:
                callback(
                    SyncResult(ErrorCode.none, group.protocol_type, group.protocol_name, member.assignment)
                )
            self._schedule_heartbeat(group, member, now_ms)

    # --- SyncGroup -----------------------------------------------------------------------------------

    def sync(self, req: SyncRequest, now_ms: int, respond: Callable[[SyncResult], None]) -> None:
        status = self._status(req.group_id, allow_empty=False)
        if status is not ErrorCode.none:
            respond(SyncResult(status))
            return
        group = self.groups.get(req.group_id)
        if group is None:
            respond(SyncResult(ErrorCode.unknown_member_id))
            return
        error = self._validate_member(group, req.member_id, req.group_instance_id, req.generation_id)
        if error is ErrorCode.none and (
            (req.protocol_type is not None and req.protocol_type != group.protocol_type)
            or (req.protocol_name is not None and req.protocol_name != group.protocol_name)
        ):
            error = ErrorCode.inconsistent_group_protocol
        if error is not ErrorCode.none:
            respond(SyncResult(error))
            return
        member = group.members[req.member_id]
        state = group.state
        if state is _S.EMPTY:
            respond(SyncResult(ErrorCode.unknown_member_id))
        elif state is _S.PREPARING_REBALANCE:
            respond(SyncResult(ErrorCode.rebalance_in_progress))
        elif state is _S.STABLE:
            group.pending_sync.discard(member.member_id)
            self._schedule_heartbeat(group, member, now_ms)
            respond(SyncResult(ErrorCode.none, group.protocol_type, group.protocol_name, member.assignment))
        else:  # CompletingRebalance
            if member.awaiting_sync is not None:
                member.awaiting_sync(SyncResult(ErrorCode.rebalance_in_progress))
            member.awaiting_sync = respond
            group.pending_sync.discard(member.member_id)
            if not group.pending_sync:
                self.timers.cancel(("sync", group.group_id))
            self._schedule_heartbeat(group, member, now_ms)
            if member.member_id == group.leader_id:
                assignments = {mid: req.assignments.get(mid, b"") for mid in group.members}
                generation = group.generation_id

                def stored(error: KafkaError | None) -> None:
                    if group.state is not _S.COMPLETING_REBALANCE or group.generation_id != generation:
                        return
                    code = append_error_code(error)
                    if code is not ErrorCode.none:
                        self._reset_and_propagate_assignment_error(group, code)
                        self._maybe_prepare_rebalance(group, now_ms)
                    else:
                        self._set_and_propagate_assignment(group, assignments, now_ms)
                        group.transition(_S.STABLE, now_ms)

                self._store_group(group, now_ms, stored, assignments)

    def _validate_member(
        self, group: Group, member_id: str, instance_id: str | None, generation_id: int
    ) -> ErrorCode:
        if group.state is _S.DEAD:
            return ErrorCode.coordinator_not_available
        if group.is_static_member_fenced(member_id, instance_id):
            return ErrorCode.fenced_instance_id
        if member_id not in group.members:
            return ErrorCode.unknown_member_id
        if generation_id != group.generation_id:
            return ErrorCode.illegal_generation
        return ErrorCode.none

    # --- Heartbeat -----------------------------------------------------------------------------------

    def heartbeat(
        self, group_id: str, generation_id: int, member_id: str, instance_id: str | None, now_ms: int
    ) -> ErrorCode:
        status = self._status(group_id, allow_empty=False)
        if status is not ErrorCode.none:
            return status
        group = self.groups.get(group_id)
        if group is None:
            return ErrorCode.unknown_member_id
        error = self._validate_member(group, member_id, instance_id, generation_id)
        if error is not ErrorCode.none:
            return error
        if group.state is _S.EMPTY:
            return ErrorCode.unknown_member_id
        self._schedule_heartbeat(group, group.members[member_id], now_ms)
        if group.state is _S.PREPARING_REBALANCE:
            return ErrorCode.rebalance_in_progress
        return ErrorCode.none

    def _schedule_heartbeat(self, group: Group, member: Member, now_ms: int) -> None:
        self.timers.schedule(("hb", group.group_id, member.member_id), now_ms + member.session_timeout_ms)

    def _on_heartbeat_deadline(self, group: Group, member_id: str, now_ms: int) -> None:
        member = group.members.get(member_id)
        if member is None:
            return
        keep_alive = (member.awaiting_join is not None and not member.is_new) or (
            member.awaiting_sync is not None
        )
        if keep_alive:
            self._schedule_heartbeat(group, member, now_ms)
        else:
            self._remove_member_and_update_group(group, member, now_ms)

    # --- LeaveGroup ----------------------------------------------------------------------------------

    def leave(
        self, group_id: str, members: Iterable[tuple[str, str | None]], now_ms: int
    ) -> tuple[ErrorCode, list[tuple[str, str | None, ErrorCode]]]:
        """Remove members (LeaveGroup v3+ batches them, KIP-345). Returns the top-level error and, per
        member, (member id, instance id, error)."""
        members = list(members)
        status = self._status(group_id, allow_empty=False)
        if status is not ErrorCode.none:
            return status, []
        group = self.groups.get(group_id)
        if group is None:
            return ErrorCode.none, [(m, i, ErrorCode.unknown_member_id) for m, i in members]
        if group.state is _S.DEAD:
            return ErrorCode.coordinator_not_available, []
        out: list[tuple[str, str | None, ErrorCode]] = []
        for member_id, instance_id in members:
            mid = member_id
            if instance_id is not None:
                static_id = group.static_member_id(instance_id)
                if static_id is None:
                    out.append((member_id, instance_id, ErrorCode.unknown_member_id))
                    continue
                if member_id and static_id != member_id:
                    out.append((member_id, instance_id, ErrorCode.fenced_instance_id))
                    continue
                mid = static_id
            if mid in group.pending_members:
                group.pending_members.discard(mid)
                self.timers.cancel(("pending", group_id, mid))
                self._try_complete_join(group, now_ms)
                out.append((member_id, instance_id, ErrorCode.none))
            elif mid in group.members:
                self._remove_member_and_update_group(group, group.members[mid], now_ms)
                out.append((member_id, instance_id, ErrorCode.none))
            else:
                out.append((member_id, instance_id, ErrorCode.unknown_member_id))
        return ErrorCode.none, out

    def _remove_member(self, group: Group, member: Member) -> None:
        group.remove(member.member_id)
        self.timers.cancel(("hb", group.group_id, member.member_id))
        self._fail_waiters(member, ErrorCode.unknown_member_id)

    def _fail_waiters(self, member: Member, error: ErrorCode) -> None:
        join_cb, sync_cb = member.awaiting_join, member.awaiting_sync
        member.awaiting_join = member.awaiting_sync = None
        if join_cb is not None:
            join_cb(JoinResult(error, member.member_id))
        if sync_cb is not None:
            sync_cb(SyncResult(error))

    def _remove_member_and_update_group(self, group: Group, member: Member, now_ms: int) -> None:
        self._remove_member(group, member)
        if group.state in (_S.STABLE, _S.COMPLETING_REBALANCE):
            self._maybe_prepare_rebalance(group, now_ms)
        self._try_complete_join(group, now_ms)

    def _on_pending_deadline(self, group: Group, member_id: str, now_ms: int) -> None:
        if member_id in group.pending_members:
            group.pending_members.discard(member_id)
            self._try_complete_join(group, now_ms)
            self._drop_if_unused(group)

    def _on_sync_deadline(self, group: Group, now_ms: int) -> None:
        """Members that got their JoinGroup answer but never sent SyncGroup within the rebalance timeout
        are removed and the group rebalances."""
        if group.state not in (_S.COMPLETING_REBALANCE, _S.STABLE) or not group.pending_sync:
            return
        for member_id in list(group.pending_sync):
            member = group.members.get(member_id)
            if member is not None:
                self._remove_member(group, member)
        group.pending_sync.clear()
        self._maybe_prepare_rebalance(group, now_ms)
        self._try_complete_join(group, now_ms)

    # --- group metadata records ----------------------------------------------------------------------

    def _store_group(
        self,
        group: Group,
        now_ms: int,
        done: Callable[[KafkaError | None], None],
        assignments: dict[str, bytes] | None = None,
    ) -> None:
        protocol = group.protocol_name
        members = [
            schemas.MemberValue(
                member_id=m.member_id,
                group_instance_id=m.group_instance_id,
                client_id=m.client_id,
                client_host=m.client_host,
                rebalance_timeout=m.rebalance_timeout_ms,
                session_timeout=m.session_timeout_ms,
                subscription=m.metadata_for(protocol) if protocol is not None else b"",
                assignment=(assignments or {}).get(m.member_id, m.assignment),
            )
            for m in group.members.values()
        ]
        value = schemas.GroupValue(
            protocol_type=group.protocol_type or "",
            generation=group.generation_id,
            protocol=protocol,
            leader=group.leader_id,
            current_state_timestamp=group.state_timestamp,
            members=members,
        )
        record = (schemas.encode_group_key(group.group_id), schemas.encode_group_value(value))
        self._append(self.partition_for(group.group_id), [record], done)

    # --- offsets -------------------------------------------------------------------------------------

    def commit_offsets(
        self, req: CommitRequest, now_ms: int, respond: Callable[[list[ErrorCode]], None]
    ) -> None:
        """OffsetCommit: answers one error per requested partition, in request order, once written."""
        n = len(req.offsets)
        status = self._status(req.group_id, allow_empty=True)
        if status is not ErrorCode.none:
            respond([status] * n)
            return
        group = self.groups.get(req.group_id)
        if group is None:
            if req.generation_id >= 0:
                # Not ours to create: a commit from an old generation of a group that has since gone.
                respond([ErrorCode.illegal_generation] * n)
                return
            group = Group(req.group_id, now_ms)
            self.groups[req.group_id] = group
        error = ErrorCode.none
        if group.state is _S.DEAD:
            error = ErrorCode.coordinator_not_available
        elif group.is_static_member_fenced(req.member_id, req.group_instance_id):
            error = ErrorCode.fenced_instance_id
        elif req.generation_id < 0 and group.state is _S.EMPTY:
            pass  # the group only stores offsets (no group management)
        elif group.state is _S.COMPLETING_REBALANCE:
            error = ErrorCode.rebalance_in_progress
        elif req.member_id not in group.members:
            error = ErrorCode.unknown_member_id
        elif req.generation_id != group.generation_id:
            error = ErrorCode.illegal_generation
        if error is not ErrorCode.none:
            self._drop_if_unused(group)
            respond([error] * n)
            return
        member = group.members.get(req.member_id)
        if member is not None:
            self._schedule_heartbeat(group, member, now_ms)
        results: list[ErrorCode] = [ErrorCode.none] * n
        records: list[Record] = []
        accepted: list[tuple[int, tuple[str, int], CommittedOffset]] = []
        for i, o in enumerate(req.offsets):
            metadata = o.metadata or ""
            if len(metadata.encode()) > self.config.offset_metadata_max_bytes:
                results[i] = ErrorCode.offset_metadata_too_large
                continue
            committed = CommittedOffset(o.offset, o.leader_epoch, metadata, now_ms)
            accepted.append((i, (o.topic, o.partition), committed))
            records.append(
                (
                    schemas.encode_offset_key(req.group_id, o.topic, o.partition),
                    schemas.encode_offset_value(
                        schemas.OffsetValue(o.offset, o.leader_epoch, metadata, now_ms)
                    ),
                )
            )
        if not records:
            self._drop_if_unused(group)
            respond(results)
            return

        def written(append_error: KafkaError | None) -> None:
            code = append_error_code(append_error)
            for i, tp, committed in accepted:
                if code is ErrorCode.none and group.state is not _S.DEAD:
                    group.offsets[tp] = committed
                else:
                    results[i] = code if code is not ErrorCode.none else ErrorCode.coordinator_not_available
            self._drop_if_unused(group)
            respond(results)

        self._append(self.partition_for(req.group_id), records, written)

    def commit_txn_offsets(
        self,
        req: CommitRequest,
        producer_id: int,
        producer_epoch: int,
        now_ms: int,
        respond: Callable[[list[ErrorCode]], None],
    ) -> None:
        """TxnOffsetCommit: write the offsets in the producer's transaction; they count once its COMMIT
        marker reaches the group's partition (`complete_txn_offsets`) and are dropped on ABORT. The
        group's generation and member are checked only when given (KIP-447)."""
        n = len(req.offsets)
        status = self._status(req.group_id, allow_empty=True)
        if status is not ErrorCode.none:
            respond([status] * n)
            return
        if self.append_transactional is None:
            respond([ErrorCode.coordinator_not_available] * n)
            return
        group = self.groups.get(req.group_id)
        if group is not None and req.generation_id >= 0 and group.state is not _S.EMPTY:
            error = ErrorCode.none
            if group.is_static_member_fenced(req.member_id, req.group_instance_id):
                error = ErrorCode.fenced_instance_id
            elif req.member_id and req.member_id not in group.members:
                error = ErrorCode.unknown_member_id
            elif req.generation_id != group.generation_id:
                error = ErrorCode.illegal_generation
            if error is not ErrorCode.none:
                respond([error] * n)
                return
        results: list[ErrorCode] = [ErrorCode.none] * n
        records: list[Record] = []
        accepted: list[tuple[tuple[str, int], CommittedOffset]] = []
        for i, o in enumerate(req.offsets):
            metadata = o.metadata or ""
            if len(metadata.encode()) > self.config.offset_metadata_max_bytes:
                results[i] = ErrorCode.offset_metadata_too_large
                continue
            committed = CommittedOffset(o.offset, o.leader_epoch, metadata, now_ms)
            accepted.append(((o.topic, o.partition), committed))
            records.append(
                (
                    schemas.encode_offset_key(req.group_id, o.topic, o.partition),
                    schemas.encode_offset_value(
                        schemas.OffsetValue(o.offset, o.leader_epoch, metadata, now_ms)
                    ),
                )
            )
        if not records:
            respond(results)
            return

        def written(append_error: KafkaError | None) -> None:
            code = append_error_code(append_error)
            if append_error is not None and append_error.code in (
                ErrorCode.invalid_producer_epoch,
                ErrorCode.producer_fenced,
            ):
                code = ErrorCode.producer_fenced
            if code is ErrorCode.none:
                pending = self.pending_txn_offsets.setdefault(producer_id, {}).setdefault(req.group_id, {})
                for tp, committed in accepted:
                    pending[tp] = committed
            for i in range(n):
                if results[i] is ErrorCode.none:
                    results[i] = code
            respond(results)

        partition = self.partition_for(req.group_id)
        self.append_transactional(partition, records, written, producer_id, producer_epoch)

    def complete_txn_offsets(self, partition: int, producer_id: int, commit: bool, now_ms: int) -> None:
        """A transaction marker reached `partition`: its groups' pending offsets of the producer become
        committed (COMMIT) or vanish (ABORT)."""
        by_group = self.pending_txn_offsets.get(producer_id)
        if not by_group:
            return
        for group_id in [g for g in by_group if self.partition_for(g) == partition]:
            offsets = by_group.pop(group_id)
            if not commit:
                continue
            group = self.groups.get(group_id)
            if group is None:
                group = Group(group_id, now_ms)
                self.groups[group_id] = group
            group.offsets.update(offsets)
        if not by_group:
            del self.pending_txn_offsets[producer_id]

    def load_pending_txn_offset(self, producer_id: int, key: bytes | None, value: bytes | None) -> None:
        """An offset record of a transaction still open at the end of a replayed partition."""
        if key is None or value is None:
            return
        decoded = schemas.decode_key(key)
        if not isinstance(decoded, schemas.OffsetKey):
            return
        v = schemas.decode_offset_value(value)
        self.pending_txn_offsets.setdefault(producer_id, {}).setdefault(decoded.group, {})[
            (decoded.topic, decoded.partition)
        ] = CommittedOffset(v.offset, v.leader_epoch, v.metadata, v.commit_timestamp, v.expire_timestamp)

    def fetch_offsets(
        self, group_id: str, partitions: list[tuple[str, int]] | None
    ) -> tuple[ErrorCode, list[FetchedOffset]]:
        """OffsetFetch for one group; `partitions=None` asks for every committed offset of the group."""
        status = self._status(group_id, allow_empty=True)
        if status is not ErrorCode.none:
            return status, []
        group = self.groups.get(group_id)
        offsets = group.offsets if group is not None else {}
        if partitions is None:
            items = sorted(offsets.items())
            return ErrorCode.none, [
                FetchedOffset(t, p, c.offset, c.leader_epoch, c.metadata) for (t, p), c in items
            ]
        out = []
        for topic, partition in partitions:
            c = offsets.get((topic, partition))
            if c is None:
                out.append(FetchedOffset(topic, partition, -1, -1, ""))
            else:
                out.append(FetchedOffset(topic, partition, c.offset, c.leader_epoch, c.metadata))
        return ErrorCode.none, out

    def delete_offsets(
        self,
        group_id: str,
        partitions: list[tuple[str, int]],
        now_ms: int,
        respond: Callable[[ErrorCode, list[ErrorCode]], None],
    ) -> None:
        """OffsetDelete (KIP-496): only offsets of topics the group does not consume."""
        status = self._status(group_id, allow_empty=False)
        if status is not ErrorCode.none:
            respond(status, [])
            return
        group = self.groups.get(group_id)
        if group is None or group.state is _S.DEAD:
            respond(ErrorCode.group_id_not_found, [])
            return
        if group.state is not _S.EMPTY and group.protocol_type not in (None, "consumer"):
            respond(ErrorCode.non_empty_group, [])
            return
        subscribed: set[str] | None = set()
        if group.state is not _S.EMPTY:
            subscribed = group.subscribed_topics()
        results: list[ErrorCode] = []
        doomed: list[tuple[str, int]] = []
        for topic, partition in partitions:
            if subscribed is None or topic in subscribed:
                results.append(ErrorCode.group_subscribed_to_topic)
            else:
                results.append(ErrorCode.none)
                if (topic, partition) in group.offsets:
                    doomed.append((topic, partition))
        if not doomed:
            respond(ErrorCode.none, results)
            return
        for tp in doomed:
            group.offsets.pop(tp, None)
        records: list[Record] = [(schemas.encode_offset_key(group_id, t, p), None) for t, p in doomed]

        def written(error: KafkaError | None) -> None:
            respond(append_error_code(error), results)

        self._append(self.partition_for(group_id), records, written)

    def _schedule_expiry(self, now_ms: int) -> None:
        if self.timers.deadline(("expire",)) is None:
            self.timers.schedule(("expire",), now_ms + self.config.offsets_retention_check_interval_ms)

    def expire_offsets(self, now_ms: int) -> int:
        """Drop committed offsets past offsets.retention.minutes (KIP-211): for an Empty group counted from
        when it became empty, for a group that only stores offsets from the commit; Empty groups left
        without offsets die. Returns the number of offsets removed."""
        retention = self.config.offsets_retention_ms
        removed = 0
        per_partition: dict[int, list[Record]] = {}
        for group_id, group in list(self.groups.items()):
            if self.partition_for(group_id) not in self.owned:
                continue
            if group.state is _S.EMPTY:
                use_state_ts = group.protocol_type is not None
            elif group.state is _S.STABLE and group.protocol_type == "consumer":
                use_state_ts = False
            else:
                continue
            subscribed = group.subscribed_topics() if group.state is _S.STABLE else set()
            if subscribed is None:
                continue
            expired = []
            for tp, c in group.offsets.items():
                if tp[0] in subscribed:
                    continue
                if c.expire_timestamp >= 0:
                    gone = now_ms >= c.expire_timestamp
                else:
                    base = c.commit_timestamp
                    if use_state_ts:
                        base = max(group.state_timestamp, base)
                    gone = now_ms - base >= retention
                if gone:
                    expired.append(tp)
            records = per_partition.setdefault(self.partition_for(group_id), [])
            for tp in expired:
                del group.offsets[tp]
                records.append((schemas.encode_offset_key(group_id, tp[0], tp[1]), None))
            removed += len(expired)
            if group.state is _S.EMPTY and not group.offsets and not group.pending_members:
                group.transition(_S.DEAD, now_ms)
                del self.groups[group_id]
                records.append((schemas.encode_group_key(group_id), None))
        for partition, records in per_partition.items():
            if records:
                self._append(partition, records, lambda _error: None)
        return removed

    # --- admin ---------------------------------------------------------------------------------------

    def list_groups(
        self, states: set[str] | None = None, types: set[str] | None = None
    ) -> tuple[ErrorCode, list[GroupListing]]:
        error = ErrorCode.coordinator_load_in_progress if self.loading else ErrorCode.none
        if types is not None and "classic" not in {t.lower() for t in types}:
            return error, []
        wanted = {s.lower() for s in states} if states else None
        out = [
            GroupListing(g.group_id, g.protocol_type or "", g.state.value)
            for g in self.groups.values()
            if self.partition_for(g.group_id) in self.owned
            and (wanted is None or g.state.value.lower() in wanted)
        ]
        return error, out

    def describe(self, group_id: str) -> tuple[ErrorCode, GroupSummary]:
        status = self._status(group_id, allow_empty=True)
        dead = GroupSummary(group_id, _S.DEAD.value, "", "", [])
        if status is not ErrorCode.none:
            return status, dead
        group = self.groups.get(group_id)
        if group is None:
            return ErrorCode.none, dead
        stable = group.state is _S.STABLE and group.protocol_name is not None
        members = [
            MemberSummary(
                m.member_id,
                m.group_instance_id,
                m.client_id,
                m.client_host,
                m.metadata_for(group.protocol_name) if stable and group.protocol_name else b"",
                m.assignment if stable else b"",
            )
            for m in group.members.values()
        ]
        return ErrorCode.none, GroupSummary(
            group_id,
            group.state.value,
            group.protocol_type or "",
            (group.protocol_name or "") if stable else "",
            members,
        )

    def delete_groups(
        self, group_ids: list[str], now_ms: int, respond: Callable[[dict[str, ErrorCode]], None]
    ) -> None:
        """DeleteGroups: Empty groups only; their offsets and metadata get tombstones."""
        results: dict[str, ErrorCode] = {}
        per_partition: dict[int, list[Record]] = {}
        waiting: dict[int, list[str]] = {}
        for group_id in group_ids:
            status = self._status(group_id, allow_empty=False)
            if status is not ErrorCode.none:
                results[group_id] = status
                continue
            group = self.groups.get(group_id)
            if group is None or group.state is _S.DEAD:
                results[group_id] = ErrorCode.group_id_not_found
                continue
            if group.state is not _S.EMPTY:
                results[group_id] = ErrorCode.non_empty_group
                continue
            group.transition(_S.DEAD, now_ms)
            del self.groups[group_id]
            for pending in group.pending_members:
                self.timers.cancel(("pending", group_id, pending))
            partition = self.partition_for(group_id)
            records = per_partition.setdefault(partition, [])
            records += [(schemas.encode_offset_key(group_id, t, p), None) for t, p in group.offsets]
            records.append((schemas.encode_group_key(group_id), None))
            waiting.setdefault(partition, []).append(group_id)
        outstanding = len(per_partition)
        if not outstanding:
            respond(results)
            return

        def make_done(ids: list[str]) -> Callable[[KafkaError | None], None]:
            def done(error: KafkaError | None) -> None:
                nonlocal outstanding
                for gid in ids:
                    results[gid] = append_error_code(error)
                outstanding -= 1
                if outstanding == 0:
                    respond(results)

            return done

        for partition, records in per_partition.items():
            self._append(partition, records, make_done(waiting[partition]))

    # --- time ----------------------------------------------------------------------------------------

    def next_deadline(self) -> int | None:
        return self.timers.next_deadline()

    def tick(self, now_ms: int) -> None:
        """Fire every deadline at or before `now_ms`."""
        for key in self.timers.pop_expired(now_ms):
            kind = key[0]
            if kind == "expire":
                self.expire_offsets(now_ms)
                self._schedule_expiry(now_ms)
                continue
            group = self.groups.get(key[1])
            if group is None:
                continue
            if kind == "hb":
                self._on_heartbeat_deadline(group, key[2], now_ms)
            elif kind == "join":
                if group.state is _S.PREPARING_REBALANCE:
                    self._on_join_deadline(group, now_ms)
            elif kind == "sync":
                self._on_sync_deadline(group, now_ms)
            elif kind == "pending":
                self._on_pending_deadline(group, key[2], now_ms)

    def _drop_if_unused(self, group: Group) -> None:
        """A group that never got a member or an offset is not kept (nor written)."""
        if (
            group.state is _S.EMPTY
            and group.generation_id == 0
            and not group.members
            and not group.pending_members
            and not group.offsets
            and self.groups.get(group.group_id) is group
        ):
            del self.groups[group.group_id]
