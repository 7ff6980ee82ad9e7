"""The membership requests of a classic group: JoinGroup, SyncGroup, Heartbeat and LeaveGroup.

Each validates the member (NOT_COORDINATOR, COORDINATOR_LOAD_IN_PROGRESS, UNKNOWN_MEMBER_ID,
ILLEGAL_GENERATION, FENCED_INSTANCE_ID, INCONSISTENT_GROUP_PROTOCOL, INVALID_SESSION_TIMEOUT,
GROUP_MAX_SIZE_REACHED) and moves the group through the state machine in `rebalance`.

Behaviours: KIP-394 (MEMBER_ID_REQUIRED for JoinGroup v4+: an unknown member first gets an id, then joins
with it), KIP-345 (static membership: a restarted static member takes over its old identity without a
rebalance when its protocols still match; an old incarnation is fenced; LeaveGroup v3+ removes members in
a batch by instance id), KIP-814 (skip_assignment for a rejoining static leader).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from strom.coordinator.group.base import append_error_code
from strom.coordinator.group.group import Group, GroupState
from strom.coordinator.group.member import Member
from strom.coordinator.group.rebalance import Rebalancer
from strom.coordinator.group.results import JoinRequest, JoinResult, SyncRequest, SyncResult
from strom.protocol.errors import ErrorCode, KafkaError

_S = GroupState


class MembershipHandlers(Rebalancer):
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
