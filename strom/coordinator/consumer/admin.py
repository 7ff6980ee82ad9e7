"""Administrative views of consumer groups (KIP-848) beside the classic ones, as Kafka 4.4 answers them:

- ConsumerGroupDescribe: epochs, the assignor, and each member's subscription, assignment and target;
  GROUP_ID_NOT_FOUND "Group X not found." for an unknown group and "Group X is not a consumer group." for
  a classic one (the admin client then falls back to DescribeGroups).
- DescribeGroups of a consumer group: GROUP_ID_NOT_FOUND "Group X is not a classic group.".
- ListGroups lists both types (type "consumer", protocol type "consumer") and filters by type and state.
- DeleteGroups deletes an Empty consumer group: tombstones for its offsets, regexes, target assignment
  epoch, subscription metadata and epoch; NON_EMPTY_GROUP while it has members.
- JoinGroup (a classic member) on an Empty consumer group turns it back into a classic group that keeps
  its offsets; on one with members the classic member joins the consumer group (`classic_members`).
"""

from __future__ import annotations

from collections.abc import Callable

from strom.coordinator.consumer.base import ConsumerBase
from strom.coordinator.consumer.group import TopicsView
from strom.coordinator.consumer.results import DescribedGroup, DescribedMember
from strom.coordinator.group import schemas
from strom.coordinator.group.base import Record, append_error_code
from strom.coordinator.group.group import Group, GroupState
from strom.coordinator.group.results import GroupListing, GroupSummary, JoinRequest, JoinResult
from strom.protocol.errors import ErrorCode, KafkaError


def _named(assignment: object, topics: TopicsView) -> list[tuple[object, str, list[int]]]:
    out = []
    for topic_id, parts in assignment.items():  # type: ignore[attr-defined]
        name = topics.name(topic_id)
        if name is not None and parts:
            out.append((topic_id, name, sorted(parts)))
    return sorted(out, key=lambda x: x[1])


class ConsumerAdmin(ConsumerBase):
    def consumer_describe(self, group_id: str) -> DescribedGroup:
        status = self._status(group_id, allow_empty=False)
        if status is not ErrorCode.none:
            return DescribedGroup(group_id, status)
        group = self.consumer_groups.get(group_id)
        if group is None:
            classic = self.groups.get(group_id)
            if classic is not None and classic.state is not GroupState.DEAD:
                return DescribedGroup(
                    group_id, ErrorCode.group_id_not_found, f"Group {group_id} is not a consumer group."
                )
            return DescribedGroup(group_id, ErrorCode.group_id_not_found, f"Group {group_id} not found.")
        topics = self.topics_view()
        members = [
            DescribedMember(
                m.member_id,
                m.instance_id,
                m.rack_id,
                m.member_epoch,
                m.client_id,
                m.client_host,
                m.subscribed_topic_names,
                m.subscribed_topic_regex,
                _named(m.assigned, topics),  # type: ignore[arg-type]
                _named(group.target_of(m.member_id), topics),  # type: ignore[arg-type]
                0 if m.uses_classic_protocol else 1,
            )
            for m in group.members.values()
        ]
        return DescribedGroup(
            group_id,
            state=group.state.value,
            group_epoch=group.group_epoch,
            assignment_epoch=group.assignment_epoch,
            assignor=group.preferred_assignor(group.members, self.consumer_config.default_assignor),
            members=members,
        )

    def describe_message(self, group_id: str) -> str:
        """The error message DescribeGroups v6+ gives with GROUP_ID_NOT_FOUND."""
        if group_id in self.consumer_groups:
            return f"Group {group_id} is not a classic group."
        return f"Group {group_id} not found."

    def describe(self, group_id: str) -> tuple[ErrorCode, GroupSummary]:
        if group_id in self.consumer_groups and self._status(group_id, allow_empty=True) is ErrorCode.none:
            return ErrorCode.group_id_not_found, GroupSummary(group_id, GroupState.DEAD.value, "", "", [])
        return super().describe(group_id)  # type: ignore[misc, no-any-return]

    def list_groups(
        self, states: set[str] | None = None, types: set[str] | None = None
    ) -> tuple[ErrorCode, list[GroupListing]]:
        error, listed = super().list_groups(states, types)  # type: ignore[misc]
        wanted_types = None if types is None else {t.lower() for t in types}
        if wanted_types is not None and "consumer" not in wanted_types:
            return error, listed
        wanted = {s.lower() for s in states} if states else None
        for g in self.consumer_groups.values():
            state = g.state.value
            if self.partition_for(g.group_id) in self.owned and (wanted is None or state.lower() in wanted):
                listed.append(GroupListing(g.group_id, "consumer", state, "consumer"))
        return error, listed

    def delete_groups(
        self, group_ids: list[str], now_ms: int, respond: Callable[[dict[str, ErrorCode]], None]
    ) -> None:
        mine = [g for g in group_ids if g in self.consumer_groups]
        if not mine:
            super().delete_groups(group_ids, now_ms, respond)  # type: ignore[misc]
            return
        results: dict[str, ErrorCode] = {}
        per_partition: dict[int, list[Record]] = {}
        waiting: dict[int, list[str]] = {}
        for group_id in mine:
            status = self._status(group_id, allow_empty=False)
            group = self.consumer_groups[group_id]
            if status is not ErrorCode.none:
                results[group_id] = status
            elif group.members:
                results[group_id] = ErrorCode.non_empty_group
            else:
                group.dead = True
                del self.consumer_groups[group_id]
                partition = self.partition_for(group_id)
                records = per_partition.setdefault(partition, [])
                records += [
                    (schemas.encode_offset_key(group_id, t, p), None) for t, p in sorted(group.offsets)
                ]
                records += self._group_tombstones(group)
                waiting.setdefault(partition, []).append(group_id)
        outstanding = len(per_partition) + 1

        def finish() -> None:
            nonlocal outstanding
            outstanding -= 1
            if outstanding == 0:
                respond(results)

        def make_done(ids: list[str]) -> Callable[[KafkaError | None], None]:
            def done(error: KafkaError | None) -> None:
                for gid in ids:
                    results[gid] = append_error_code(error)
                finish()

            return done

        for partition, records in per_partition.items():
            self._append(partition, records, make_done(waiting[partition]))
        others = [g for g in group_ids if g not in mine]

        def classic_done(classic: dict[str, ErrorCode]) -> None:
            results.update(classic)
            finish()

        if others:
            super().delete_groups(others, now_ms, classic_done)  # type: ignore[misc]
        else:
            finish()

    def _classic_from_empty_consumer_group(self, group_id: str, now_ms: int) -> list[Record] | None:
        """A classic member joins a consumer group id: an empty consumer group becomes a classic group
        that keeps its offsets (the tombstones to write are returned); None if the group has members."""
        group = self.consumer_groups.get(group_id)
        if group is None:
            return []
        if group.members:
            return None
        del self.consumer_groups[group_id]
        classic = Group(group_id, now_ms)
        classic.offsets = group.offsets
        self.groups[group_id] = classic
        return self._group_tombstones(group)

    def join(self, req: JoinRequest, now_ms: int, respond: Callable[[JoinResult], None]) -> None:
        if (
            req.group_id in self.consumer_groups
            and self._status(req.group_id, allow_empty=False) is ErrorCode.none
        ):
            records = self._classic_from_empty_consumer_group(req.group_id, now_ms)
            if records is None:
                respond(JoinResult(ErrorCode.inconsistent_group_protocol, req.member_id))
                return
            if records:
                self._append(self.partition_for(req.group_id), records, lambda _error: None)
        super().join(req, now_ms, respond)  # type: ignore[misc]
