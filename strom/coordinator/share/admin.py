"""Administrative views of share groups (KIP-932) beside the other group types, as Kafka 4.4 answers them:

- ShareGroupDescribe: state (Empty, Stable), group and assignment epochs, the assignor ("simple"), and
  each member's subscription and assignment; GROUP_ID_NOT_FOUND "Group X not found." or "Group X is not a
  share group." for a group of another type.
- DescribeGroups of a share group: GROUP_ID_NOT_FOUND "Group X is not a classic group.".
- ListGroups lists share groups with type "share" and protocol type "share".
- DeleteGroups deletes an Empty share group (its records get tombstones and its share-partitions' state
  is deleted from the share coordinator); NON_EMPTY_GROUP while it has members.
- The share-group offset APIs (Describe/Alter/DeleteShareGroupOffsets) ask `share_partitions` which
  share-partitions a group has; Alter and Delete need an Empty group (NON_EMPTY_GROUP otherwise), and
  Alter creates the group when it does not exist yet, as Kafka 4.4 does.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from strom.coordinator.group.base import Record, append_error_code
from strom.coordinator.group.group import GroupState
from strom.coordinator.group.results import GroupListing, GroupSummary
from strom.coordinator.share.base import ShareBase
from strom.coordinator.share.group import ShareGroup
from strom.protocol.errors import ErrorCode, KafkaError

ASSIGNOR = "simple"


@dataclass(frozen=True, slots=True)
class DescribedShareMember:
    member_id: str
    rack_id: str | None
    member_epoch: int
    client_id: str
    client_host: str
    subscribed_topic_names: tuple[str, ...]
    assignment: list[tuple[uuid.UUID, str, list[int]]]


@dataclass(frozen=True, slots=True)
class DescribedShareGroup:
    group_id: str
    error: ErrorCode = ErrorCode.none
    message: str | None = None
    state: str = ""
    group_epoch: int = 0
    assignment_epoch: int = 0
    assignor: str = ASSIGNOR
    members: list[DescribedShareMember] = field(default_factory=list)


class ShareAdmin(ShareBase):
    def share_describe(self, group_id: str) -> DescribedShareGroup:
        status = self._status(group_id, allow_empty=False)
        if status is not ErrorCode.none:
            return DescribedShareGroup(group_id, status)
        group = self.share_groups.get(group_id)
        if group is None:
            if self._is_other_type(group_id):
                return DescribedShareGroup(
                    group_id, ErrorCode.group_id_not_found, f"Group {group_id} is not a share group."
                )
            return DescribedShareGroup(group_id, ErrorCode.group_id_not_found, f"Group {group_id} not found.")
        topics = self.topics_view()
        members = []
        for m in group.members.values():
            named = []
            for topic_id, parts in m.assigned.items():
                name = topics.name(topic_id)
                if name is not None and parts:
                    named.append((topic_id, name, sorted(parts)))
            members.append(
                DescribedShareMember(
                    m.member_id,
                    m.rack_id,
                    m.member_epoch,
                    m.client_id,
                    m.client_host,
                    m.subscribed_topic_names,
                    sorted(named, key=lambda x: x[1]),
                )
            )
        return DescribedShareGroup(
            group_id,
            state=group.state.value,
            group_epoch=group.group_epoch,
            assignment_epoch=group.assignment_epoch,
            members=members,
        )

    def describe_message(self, group_id: str) -> str:
        if group_id in self.share_groups:
            return f"Group {group_id} is not a classic group."
        return super().describe_message(group_id)  # type: ignore[misc, no-any-return]

    def describe(self, group_id: str) -> tuple[ErrorCode, GroupSummary]:
        if group_id in self.share_groups and self._status(group_id, allow_empty=True) is ErrorCode.none:
            return ErrorCode.group_id_not_found, GroupSummary(group_id, GroupState.DEAD.value, "", "", [])
        return super().describe(group_id)  # type: ignore[misc, no-any-return]

    def list_groups(
        self, states: set[str] | None = None, types: set[str] | None = None
    ) -> tuple[ErrorCode, list[GroupListing]]:
        error, listed = super().list_groups(states, types)  # type: ignore[misc]
        if types is not None and "share" not in {t.lower() for t in types}:
            return error, listed
        wanted = {s.lower() for s in states} if states else None
        for g in self.share_groups.values():
            state = g.state.value
            if self.partition_for(g.group_id) in self.owned and (wanted is None or state.lower() in wanted):
                listed.append(GroupListing(g.group_id, "share", state, "share"))
        return error, listed

    def delete_groups(
        self, group_ids: list[str], now_ms: int, respond: Callable[[dict[str, ErrorCode]], None]
    ) -> None:
        mine = [g for g in group_ids if g in self.share_groups]
        if not mine:
            super().delete_groups(group_ids, now_ms, respond)  # type: ignore[misc]
            return
        results: dict[str, ErrorCode] = {}
        pending = [len(mine) + 1]

        def finish() -> None:
            pending[0] -= 1
            if pending[0] == 0:
                respond(results)

        for group_id in mine:
            status = self._status(group_id, allow_empty=False)
            group = self.share_groups[group_id]
            if status is not ErrorCode.none:
                results[group_id] = status
                finish()
            elif group.members:
                results[group_id] = ErrorCode.non_empty_group
                finish()
            else:
                self._delete_share_group(group, results, finish)
        others = [g for g in group_ids if g not in mine]

        def others_done(classic: dict[str, ErrorCode]) -> None:
            results.update(classic)
            finish()

        if others:
            super().delete_groups(others, now_ms, others_done)  # type: ignore[misc]
        else:
            finish()

    def _delete_share_group(
        self, group: ShareGroup, results: dict[str, ErrorCode], finish: Callable[[], None]
    ) -> None:
        group.dead = True
        del self.share_groups[group.group_id]
        partitions = [(t, p) for t, (_n, parts) in group.initialized.items() for p in sorted(parts)]
        records: list[Record] = self._share_group_tombstones(group)

        def done(error: KafkaError | None) -> None:
            results[group.group_id] = append_error_code(error)
            if error is None and partitions:
                self.on_share_state_deleted(group.group_id, partitions)
            finish()

        self._append(self.partition_for(group.group_id), records, done)

    # --- the share-group offset APIs -----------------------------------------------------------------

    def share_partitions(
        self, group_id: str
    ) -> tuple[ErrorCode, str | None, dict[uuid.UUID, tuple[str, frozenset[int]]]]:
        """The initialized share-partitions of a group (for DescribeShareGroupOffsets)."""
        status = self._status(group_id, allow_empty=False)
        if status is not ErrorCode.none:
            return status, None, {}
        group = self.share_groups.get(group_id)
        if group is None:
            if self._is_other_type(group_id):
                return ErrorCode.group_id_not_found, f"Group {group_id} is not a share group.", {}
            return ErrorCode.group_id_not_found, f"Group {group_id} not found.", {}
        return ErrorCode.none, None, dict(group.initialized)

    def share_alterable(self, group_id: str, create: bool, now_ms: int) -> tuple[ErrorCode, str | None]:
        """Whether a share group's offsets may be altered or deleted now (an Empty group)."""
        status = self._status(group_id, allow_empty=False)
        if status is not ErrorCode.none:
            return status, None
        if self._is_other_type(group_id):
            return ErrorCode.group_id_not_found, f"Group {group_id} is not a share group."
        group = self.share_groups.get(group_id)
        if group is None:
            if not create:
                return ErrorCode.group_id_not_found, f"Group {group_id} not found."
            self.share_groups[group_id] = ShareGroup(group_id, now_ms)
            return ErrorCode.none, None
        if group.members:
            return ErrorCode.non_empty_group, (
                "Share group offsets can only be altered or deleted when the group is empty."
            )
        return ErrorCode.none, None

    def share_topics_deleted(
        self, group_id: str, topic_ids: list[uuid.UUID], respond: Callable[[ErrorCode], None]
    ) -> None:
        """DeleteShareGroupOffsets removed these topics' share state: they are uninitialized again."""
        group = self.share_groups.get(group_id)
        if group is None:
            respond(ErrorCode.none)
            return
        for topic_id in topic_ids:
            group.initialized.pop(topic_id, None)
        records = [self._share_state_metadata_record(group)]
        self._append(self.partition_for(group_id), records, lambda e: respond(append_error_code(e)))
