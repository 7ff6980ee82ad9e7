"""Committed offsets of consumer groups (KIP-848), in the same __consumer_offsets records as classic groups.

- OffsetCommit v9+ and TxnOffsetCommit carry the member epoch in place of the generation: a commit with
  epoch -1 is accepted while the group has no members (admin tools, manual assignment); otherwise the
  member must exist (UNKNOWN_MEMBER_ID) and send its current epoch (STALE_MEMBER_EPOCH), except that a
  commit from an older epoch is accepted for partitions the member was assigned at or before that epoch
  (KIP-1251: a commit racing a new epoch that did not take those partitions away). A member of the
  consumer protocol committing with OffsetCommit below v9 gets UNSUPPORTED_VERSION, as in Kafka 4.4.
- OffsetFetch v9+ with a member id checks the member and its epoch the same way (no exception there).
- OffsetDelete removes only offsets of topics no member subscribes to (GROUP_SUBSCRIBED_TO_TOPIC).
- Expiry (KIP-211): an offset of a topic the group does not subscribe to expires
  offsets.retention.minutes after its commit; an empty group left without offsets is deleted.

The classic paths of `strom.coordinator.group` handle every group id that is not a consumer group.
"""

from __future__ import annotations

from collections.abc import Callable

from strom.coordinator.consumer.base import ConsumerBase
from strom.coordinator.consumer.group import ConsumerGroup
from strom.coordinator.group import schemas
from strom.coordinator.group.base import Record, append_error_code
from strom.coordinator.group.epoch_offsets import (
    commit_epoch_group_offsets,
    settle_epoch_group_txn_offsets,
)
from strom.coordinator.group.group import CommittedOffset
from strom.coordinator.group.results import CommitRequest, FetchedOffset
from strom.protocol.errors import ErrorCode


class ConsumerOffsets(ConsumerBase):
    def _commit_error(self, group: ConsumerGroup, req: CommitRequest) -> ErrorCode:
        if req.generation_id < 0 and not group.members:
            return ErrorCode.none
        member = group.members.get(req.member_id)
        if member is None:
            return ErrorCode.unknown_member_id
        if member.uses_classic_protocol:
            # a classic member commits with its generation, which is its member epoch
            ok = req.generation_id == member.member_epoch
            return ErrorCode.none if ok else ErrorCode.illegal_generation
        if req.api_version is not None and req.api_version < 9:
            # "OffsetCommit version 9 or above must be used by members using the modern group protocol"
            return ErrorCode.unsupported_version
        if req.generation_id == member.member_epoch:
            return ErrorCode.none
        if 0 <= req.generation_id < member.member_epoch:
            topics = self.topics_view()
            for o in req.offsets:
                meta = topics.by_name.get(o.topic)
                epoch = None if meta is None else member.assigned.get(meta.topic_id, {}).get(o.partition)
                if epoch is None or epoch > req.generation_id:
                    return ErrorCode.stale_member_epoch
            return ErrorCode.none
        return ErrorCode.stale_member_epoch

    def commit_offsets(
        self, req: CommitRequest, now_ms: int, respond: Callable[[list[ErrorCode]], None]
    ) -> None:
        group = self.consumer_groups.get(req.group_id)
        if group is None:
            super().commit_offsets(req, now_ms, respond)  # type: ignore[misc]
            return
        commit_epoch_group_offsets(self, group, req, now_ms, respond, self._commit_error)

    def commit_txn_offsets(
        self,
        req: CommitRequest,
        producer_id: int,
        producer_epoch: int,
        now_ms: int,
        respond: Callable[[list[ErrorCode]], None],
    ) -> None:
        group = self.consumer_groups.get(req.group_id)
        if group is not None and req.generation_id >= 0:
            error = self._commit_error(group, req)
            if error is not ErrorCode.none:
                respond([error] * len(req.offsets))
                return
        super().commit_txn_offsets(req, producer_id, producer_epoch, now_ms, respond)  # type: ignore[misc]

    def complete_txn_offsets(self, partition: int, producer_id: int, commit: bool, now_ms: int) -> None:
        settle_epoch_group_txn_offsets(self, self.consumer_groups, partition, producer_id, commit)
        super().complete_txn_offsets(partition, producer_id, commit, now_ms)  # type: ignore[misc]

    def validate_offset_fetch(self, group_id: str, member_id: str | None, member_epoch: int) -> ErrorCode:
        """OffsetFetch v9+: a consumer-group member fetching must be known and at its current epoch."""
        group = self.consumer_groups.get(group_id)
        if group is None or (member_epoch < 0 and not member_id):
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
        group = self.consumer_groups.get(group_id)
        if group is None:
            return super().fetch_offsets(group_id, partitions, require_stable)  # type: ignore[misc, no-any-return]
        status = self._status(group_id, allow_empty=True)
        if status is not ErrorCode.none:
            return status, []
        unstable = self.pending_txn_partitions(group_id) if require_stable else set()  # type: ignore[attr-defined]
        wanted = sorted(group.offsets) if partitions is None else partitions
        out = []
        for topic, partition in wanted:
            c = group.offsets.get((topic, partition))
            if (topic, partition) in unstable:
                out.append(FetchedOffset(topic, partition, -1, -1, "", ErrorCode.unstable_offset_commit))
            elif c is None:
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
        group = self.consumer_groups.get(group_id)
        if group is None:
            super().delete_offsets(group_id, partitions, now_ms, respond)  # type: ignore[misc]
            return
        status = self._status(group_id, allow_empty=False)
        if status is not ErrorCode.none:
            respond(status, [])
            return
        results: list[ErrorCode] = []
        doomed: list[tuple[str, int]] = []
        for topic, partition in partitions:
            if group.is_subscribed_to(topic):
                results.append(ErrorCode.group_subscribed_to_topic)
                continue
            results.append(ErrorCode.none)
            if (topic, partition) in group.offsets:
                doomed.append((topic, partition))
        if not doomed:
            respond(ErrorCode.none, results)
            return
        for tp in doomed:
            group.offsets.pop(tp, None)
        records: list[Record] = [(schemas.encode_offset_key(group_id, t, p), None) for t, p in doomed]
        self._append(
            self.partition_for(group_id), records, lambda error: respond(append_error_code(error), results)
        )

    def expire_offsets(self, now_ms: int) -> int:
        removed: int = super().expire_offsets(now_ms)  # type: ignore[misc]
        retention = self.config.offsets_retention_ms
        per_partition: dict[int, list[Record]] = {}
        for group_id, group in list(self.consumer_groups.items()):
            partition = self.partition_for(group_id)
            if partition not in self.owned:
                continue
            records = per_partition.setdefault(partition, [])
            expired = [
                tp
                for tp, c in group.offsets.items()
                if not group.is_subscribed_to(tp[0]) and _expired(c, now_ms, retention)
            ]
            for tp in expired:
                del group.offsets[tp]
                records.append((schemas.encode_offset_key(group_id, tp[0], tp[1]), None))
            removed += len(expired)
            if not group.members and not group.offsets:
                group.dead = True
                del self.consumer_groups[group_id]
                records += self._group_tombstones(group)
        for partition, records in per_partition.items():
            if records:
                self._append(partition, records, lambda _error: None)
        return removed


def _expired(c: CommittedOffset, now_ms: int, retention_ms: int) -> bool:
    if c.expire_timestamp >= 0:
        return now_ms >= c.expire_timestamp
    return now_ms - c.commit_timestamp >= retention_ms
