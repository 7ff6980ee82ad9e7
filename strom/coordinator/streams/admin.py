"""Administrative views of streams groups (KIP-1071) beside the other group types, as Kafka 4.4 answers:

- StreamsGroupDescribe: state (Empty, NotReady, Assigning, Reconciling, Stable), epochs, the topology
  (with the partition counts decided for internal topics), and each member's process, endpoint, task
  offsets, assignment and target; GROUP_ID_NOT_FOUND "Group X not found." or "Group X is not a streams
  group.".
- DescribeGroups of a streams group: GROUP_ID_NOT_FOUND "Group X is not a classic group.";
  ConsumerGroupDescribe: "Group X is not a consumer group."; ShareGroupDescribe: "... not a share group.".
- ListGroups lists streams groups with type "streams" and protocol type "streams".
- DeleteGroups deletes an Empty streams group (tombstones for its offsets, target assignment epoch,
  epoch and topology); NON_EMPTY_GROUP while it has members.
- A consumer or share heartbeat for a streams group id: GROUP_ID_NOT_FOUND; a classic JoinGroup turns an
  empty streams group into a classic group that keeps its offsets, and is refused with
  INCONSISTENT_GROUP_PROTOCOL while the streams group has members.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from strom.coordinator.consumer.results import DescribedGroup, HeartbeatResult
from strom.coordinator.group import schemas
from strom.coordinator.group.base import Record, append_error_code
from strom.coordinator.group.group import Group, GroupState
from strom.coordinator.group.results import GroupListing, GroupSummary, JoinRequest, JoinResult
from strom.coordinator.streams.base import StreamsBase, initial_rebalance_key
from strom.coordinator.streams.group import StreamsMember
from strom.coordinator.streams.records import TaskSet, TopicInfo
from strom.protocol.errors import ErrorCode, KafkaError


@dataclass(frozen=True, slots=True)
class DescribedSubtopology:
    subtopology_id: str
    source_topics: tuple[str, ...]
    repartition_sink_topics: tuple[str, ...]
    state_changelog_topics: tuple[TopicInfo, ...]
    repartition_source_topics: tuple[TopicInfo, ...]


@dataclass(frozen=True, slots=True)
class DescribedStreamsGroup:
    group_id: str
    error: ErrorCode = ErrorCode.none
    message: str | None = None
    state: str = ""
    group_epoch: int = 0
    assignment_epoch: int = 0
    topology_epoch: int = -1
    subtopologies: list[DescribedSubtopology] | None = None
    members: list[tuple[StreamsMember, TaskSet]] = field(default_factory=list)


class StreamsAdmin(StreamsBase):
    def streams_describe(self, group_id: str) -> DescribedStreamsGroup:
        status = self._status(group_id, allow_empty=False)
        if status is not ErrorCode.none:
            return DescribedStreamsGroup(group_id, status)
        group = self.streams_groups.get(group_id)
        if group is None:
            if self._is_other_type(group_id) or group_id in getattr(self, "share_groups", {}):
                return DescribedStreamsGroup(
                    group_id, ErrorCode.group_id_not_found, f"Group {group_id} is not a streams group."
                )
            return DescribedStreamsGroup(
                group_id, ErrorCode.group_id_not_found, f"Group {group_id} not found."
            )
        subtopologies = None
        if group.topology is not None:
            counts = self._internal_counts(group)

            def sized(infos: tuple[TopicInfo, ...]) -> tuple[TopicInfo, ...]:
                return tuple(
                    TopicInfo(t.name, counts.get(t.name, t.partitions), t.replication_factor, t.configs)
                    for t in infos
                )

            subtopologies = [
                DescribedSubtopology(
                    s.subtopology_id,
                    s.source_topics,
                    s.repartition_sink_topics,
                    sized(s.state_changelog_topics),
                    sized(s.repartition_source_topics),
                )
                for s in group.topology.subtopologies
            ]
        return DescribedStreamsGroup(
            group_id,
            state=group.state.value,
            group_epoch=group.group_epoch,
            assignment_epoch=group.assignment_epoch,
            topology_epoch=-1 if group.topology is None else group.topology.epoch,
            subtopologies=subtopologies,
            members=[(m, group.target_of(mid)) for mid, m in group.members.items()],
        )

    @staticmethod
    def _internal_counts(group: Any) -> dict[str, int]:
        configured = group.configured
        if configured is None:
            return {}
        counts = {name: partitions for name, partitions, _rf, _c in configured.to_create}
        if configured.ready:
            for s in group.topology.subtopologies:
                for t in (*s.state_changelog_topics, *s.repartition_source_topics):
                    counts.setdefault(t.name, configured.partitions.get(s.subtopology_id, t.partitions))
        return counts

    # --- the other group types' views ----------------------------------------------------------------

    def consumer_describe(self, group_id: str) -> DescribedGroup:
        if group_id in self.streams_groups and self._status(group_id, allow_empty=False) is ErrorCode.none:
            return DescribedGroup(
                group_id, ErrorCode.group_id_not_found, f"Group {group_id} is not a consumer group."
            )
        return super().consumer_describe(group_id)  # type: ignore[misc, no-any-return]

    def consumer_heartbeat(self, req: Any, now_ms: int, respond: Callable[[HeartbeatResult], None]) -> None:
        if (
            req.group_id in self.streams_groups
            and self._status(req.group_id, allow_empty=False) is ErrorCode.none
        ):
            respond(
                HeartbeatResult(
                    ErrorCode.group_id_not_found, f"Group {req.group_id} is not a consumer group."
                )
            )
            return
        super().consumer_heartbeat(req, now_ms, respond)  # type: ignore[misc]

    def describe_message(self, group_id: str) -> str:
        if group_id in self.streams_groups:
            return f"Group {group_id} is not a classic group."
        return super().describe_message(group_id)  # type: ignore[misc, no-any-return]

    def describe(self, group_id: str) -> tuple[ErrorCode, GroupSummary]:
        if group_id in self.streams_groups and self._status(group_id, allow_empty=True) is ErrorCode.none:
            return ErrorCode.group_id_not_found, GroupSummary(group_id, GroupState.DEAD.value, "", "", [])
        return super().describe(group_id)  # type: ignore[misc, no-any-return]

    def list_groups(
        self, states: set[str] | None = None, types: set[str] | None = None
    ) -> tuple[ErrorCode, list[GroupListing]]:
        error, listed = super().list_groups(states, types)  # type: ignore[misc]
        if types is not None and "streams" not in {t.lower() for t in types}:
            return error, listed
        wanted = {s.lower() for s in states} if states else None
        for g in self.streams_groups.values():
            state = g.state.value
            if self.partition_for(g.group_id) in self.owned and (wanted is None or state.lower() in wanted):
                listed.append(GroupListing(g.group_id, "streams", state, "streams"))
        return error, listed

    def delete_groups(
        self, group_ids: list[str], now_ms: int, respond: Callable[[dict[str, ErrorCode]], None]
    ) -> None:
        mine = [g for g in group_ids if g in self.streams_groups]
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
            group = self.streams_groups[group_id]
            if status is not ErrorCode.none:
                results[group_id] = status
                finish()
                continue
            if group.members:
                results[group_id] = ErrorCode.non_empty_group
                finish()
                continue
            group.dead = True
            del self.streams_groups[group_id]
            self.timers.cancel(initial_rebalance_key(group_id))  # Kafka's StreamsGroup.cancelTimers
            records: list[Record] = [
                (schemas.encode_offset_key(group_id, t, p), None) for t, p in sorted(group.offsets)
            ]
            records += self._streams_group_tombstones(group)

            def done(error: KafkaError | None, gid: str = group_id) -> None:
                results[gid] = append_error_code(error)
                finish()

            self._append(self.partition_for(group_id), records, done)
        others = [g for g in group_ids if g not in mine]

        def others_done(found: dict[str, ErrorCode]) -> None:
            results.update(found)
            finish()

        if others:
            super().delete_groups(others, now_ms, others_done)  # type: ignore[misc]
        else:
            finish()

    def join(self, req: JoinRequest, now_ms: int, respond: Callable[[JoinResult], None]) -> None:
        group = self.streams_groups.get(req.group_id)
        if group is not None and self._status(req.group_id, allow_empty=False) is ErrorCode.none:
            if group.members:
                respond(JoinResult(ErrorCode.inconsistent_group_protocol, req.member_id))
                return
            # an empty streams group becomes a classic group that keeps its offsets
            del self.streams_groups[req.group_id]
            self.timers.cancel(initial_rebalance_key(req.group_id))
            classic = Group(req.group_id, now_ms)
            classic.offsets = group.offsets
            self.groups[req.group_id] = classic
            self._append(
                self.partition_for(req.group_id), self._streams_group_tombstones(group), lambda _e: None
            )
        super().join(req, now_ms, respond)  # type: ignore[misc]
