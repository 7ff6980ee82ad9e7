"""Administrative views of classic groups: ListGroups (states filter KIP-518, types filter KIP-848),
DescribeGroups, and DeleteGroups (Empty groups only; NON_EMPTY_GROUP otherwise; the group's offsets and
metadata get tombstones in __consumer_offsets)."""

from __future__ import annotations

from collections.abc import Callable

from strom.coordinator.group import schemas
from strom.coordinator.group.base import CoreBase, Record, append_error_code
from strom.coordinator.group.group import GroupState
from strom.coordinator.group.results import GroupListing, GroupSummary, MemberSummary
from strom.protocol.errors import ErrorCode, KafkaError

_S = GroupState


class GroupAdmin(CoreBase):
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
        if group is None or group.state is _S.DEAD:
            # DescribeGroups v6+ answers this (KIP-1043); older versions describe a Dead group, no error
            return ErrorCode.group_id_not_found, dead
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
