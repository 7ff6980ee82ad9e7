"""Committed offsets of streams groups (KIP-1071), in the same __consumer_offsets records as the others.

Kafka Streams commits through OffsetCommit v9+ and TxnOffsetCommit with its streams member id and epoch:
epoch -1 is accepted while the group has no members (admin tools); otherwise the member must exist
(UNKNOWN_MEMBER_ID) and send its current epoch (STALE_MEMBER_EPOCH), except that a commit from an older
epoch is accepted for partitions of active tasks the member was assigned at or before that epoch (a
commit racing a new epoch that did not take those tasks away). OffsetFetch v9+ with a member id checks
the member and its epoch the same way. Offsets of a streams group expire like a consumer group's, only
for topics its topology does not read.
"""

from __future__ import annotations

from collections.abc import Callable

from strom.coordinator.group.epoch_offsets import (
    commit_epoch_group_offsets,
    settle_epoch_group_txn_offsets,
)
from strom.coordinator.group.results import CommitRequest, FetchedOffset
from strom.coordinator.streams.base import StreamsBase
from strom.coordinator.streams.group import StreamsGroup
from strom.protocol.errors import ErrorCode


class StreamsOffsets(StreamsBase):
    def _streams_commit_error(self, group: StreamsGroup, req: CommitRequest) -> ErrorCode:
        if req.generation_id < 0 and not group.members:
            return ErrorCode.none
        member = group.members.get(req.member_id)
        if member is None:
            return ErrorCode.unknown_member_id
        if req.generation_id == member.member_epoch:
            return ErrorCode.none
        if 0 <= req.generation_id < member.member_epoch and group.topology is not None:
            reads: dict[str, list[str]] = {}
            for s in group.topology.subtopologies:
                for topic in (*s.source_topics, *(t.name for t in s.repartition_source_topics)):
                    reads.setdefault(topic, []).append(s.subtopology_id)
            for o in req.offsets:
                epochs = [member.assigned.active.get(s, {}).get(o.partition) for s in reads.get(o.topic, [])]
                if not any(e is not None and e <= req.generation_id for e in epochs):
                    return ErrorCode.stale_member_epoch
            return ErrorCode.none
        return ErrorCode.stale_member_epoch

    def commit_offsets(
        self, req: CommitRequest, now_ms: int, respond: Callable[[list[ErrorCode]], None]
    ) -> None:
        group = self.streams_groups.get(req.group_id)
        if group is None:
            super().commit_offsets(req, now_ms, respond)  # type: ignore[misc]
            return
        commit_epoch_group_offsets(self, group, req, now_ms, respond, self._streams_commit_error)

    def commit_txn_offsets(
        self,
        req: CommitRequest,
        producer_id: int,
        producer_epoch: int,
        now_ms: int,
        respond: Callable[[list[ErrorCode]], None],
    ) -> None:
        group = self.streams_groups.get(req.group_id)
        if group is not None and req.generation_id >= 0:
            error = self._streams_commit_error(group, req)
            if error is not ErrorCode.none:
                respond([error] * len(req.offsets))
                return
        super().commit_txn_offsets(req, producer_id, producer_epoch, now_ms, respond)  # type: ignore[misc]

    def complete_txn_offsets(self, partition: int, producer_id: int, commit: bool, now_ms: int) -> None:
        settle_epoch_group_txn_offsets(self, self.streams_groups, partition, producer_id, commit)
        super().complete_txn_offsets(partition, producer_id, commit, now_ms)  # type: ignore[misc]

    def validate_offset_fetch(self, group_id: str, member_id: str | None, member_epoch: int) -> ErrorCode:
        group = self.streams_groups.get(group_id)
        if group is None:
            return super().validate_offset_fetch(group_id, member_id, member_epoch)  # type: ignore[misc, no-any-return]
        if member_epoch < 0 and not member_id:
            return ErrorCode.none
        member = group.members.get(member_id or "")
        if member is None:
            return ErrorCode.unknown_member_id
        if member.member_epoch != member_epoch:
            return ErrorCode.stale_member_epoch
        return ErrorCode.none

    def fetch_offsets(
        self, group_id: str, partitions: list[tuple[str, int]] | None, require_stable: bool = False
    ) -> tuple[ErrorCode, list[FetchedOffset]]:
        group = self.streams_groups.get(group_id)
        if group is None:
            return super().fetch_offsets(group_id, partitions, require_stable)  # type: ignore[misc, no-any-return]
        status = self._status(group_id, allow_empty=True)
        if status is not ErrorCode.none:
            return status, []
        unstable = self.pending_txn_partitions(group_id) if require_stable else set()  # type: ignore[attr-defined]
        out = []
        for topic, partition in sorted(group.offsets) if partitions is None else partitions:
            c = group.offsets.get((topic, partition))
            if (topic, partition) in unstable:
                out.append(FetchedOffset(topic, partition, -1, -1, "", ErrorCode.unstable_offset_commit))
            elif c is None:
                out.append(FetchedOffset(topic, partition, -1, -1, ""))
            else:
                out.append(FetchedOffset(topic, partition, c.offset, c.leader_epoch, c.metadata))
        return ErrorCode.none, out
