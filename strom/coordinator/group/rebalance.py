"""The rebalance state machine of a classic group (Kafka's GroupCoordinator): Empty -> PreparingRebalance
-> CompletingRebalance -> Stable, and the deadlines that drive it.

- PreparingRebalance waits for every member to rejoin, bounded by the largest rebalance timeout; an Empty
  group first waits group.initial.rebalance.delay.ms, again while new members keep arriving, up to the
  rebalance timeout (KIP-134).
- Completing the join removes dynamic members that did not rejoin (static ones stay, KIP-345), bumps the
  generation, selects the protocol and answers every parked JoinGroup; the leader gets the member list.
- The leader's assignment is written to __consumer_offsets before the group turns Stable and the parked
  SyncGroups are answered; members that never send SyncGroup within the rebalance timeout are removed.
- A member whose session timeout passes without a heartbeat is removed; a new member's deadline is the
  longer new-member join timeout until its first join completes (KIP-394); MEMBER_ID_REQUIRED ids that
  never come back expire after the session timeout.
"""

from __future__ import annotations

from strom.coordinator.group import schemas
from strom.coordinator.group.base import AppendDone, CoreBase
from strom.coordinator.group.group import Group, GroupState
from strom.coordinator.group.member import Member
from strom.coordinator.group.results import JoinMember, JoinResult, SyncResult
from strom.protocol.errors import ErrorCode

_S = GroupState


class Rebalancer(CoreBase):
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

    def _remove_member(self, group: Group, member: Member) -> None:
        group.remove(member.member_id)
        self.timers.cancel(("hb", group.group_id, member.member_id))
        self._fail_waiters(member, ErrorCode.unknown_member_id)

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

    def _store_group(
        self,
        group: Group,
        now_ms: int,
        done: AppendDone,
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
