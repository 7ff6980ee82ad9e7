"""Committed offsets of classic groups: OffsetCommit, OffsetFetch, OffsetDelete and offset expiry.

- A commit is answered only once its records are written to the group's __consumer_offsets partition;
  a group that only stores offsets (generation -1, no members) is created on its first commit.
- OffsetDelete (KIP-496) removes only offsets of topics the group does not subscribe to
  (GROUP_SUBSCRIBED_TO_TOPIC otherwise).
- Expiry (KIP-211): an offset lives offsets.retention.minutes, counted for an Empty group from when it
  became empty, for a group that only stores offsets from the commit; offsets of topics a Stable consumer
  group subscribes to never expire; an Empty group left with no offsets dies (with a tombstone).
"""

from __future__ import annotations

from collections.abc import Callable

from strom.coordinator.group import schemas
from strom.coordinator.group.base import CoreBase, Record, append_error_code
from strom.coordinator.group.group import Group, GroupState
from strom.coordinator.group.results import CommitRequest, FetchedOffset
from strom.protocol.errors import ErrorCode, KafkaError

_S = GroupState


class OffsetStore(CoreBase):
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
        results, records, accepted = self._offset_records(req.group_id, req.offsets, now_ms)
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

    def fetch_offsets(
        self, group_id: str, partitions: list[tuple[str, int]] | None, require_stable: bool = False
    ) -> tuple[ErrorCode, list[FetchedOffset]]:
        """OffsetFetch for one group; `partitions=None` asks for every committed offset of the group.

        With `require_stable` (KIP-447, OffsetFetch v7+) a partition with transactional offsets still
        pending for the group (written by TxnOffsetCommit, the transaction's marker not yet here) answers
        offset -1 and UNSTABLE_OFFSET_COMMIT, which the client retries: answering the older committed
        offset would let a new owner of the partition consume again what the transaction consumed."""
        status = self._status(group_id, allow_empty=True)
        if status is not ErrorCode.none:
            return status, []
        group = self.groups.get(group_id)
        offsets = group.offsets if group is not None else {}
        unstable = self.pending_txn_partitions(group_id) if require_stable else set()
        if partitions is None:
            partitions = sorted(offsets)
        out = []
        for topic, partition in partitions:
            c = offsets.get((topic, partition))
            if (topic, partition) in unstable:
                out.append(FetchedOffset(topic, partition, -1, -1, "", ErrorCode.unstable_offset_commit))
            elif c is None:
                out.append(FetchedOffset(topic, partition, -1, -1, ""))
            else:
                out.append(FetchedOffset(topic, partition, c.offset, c.leader_epoch, c.metadata))
        return ErrorCode.none, out

    def pending_txn_partitions(self, group_id: str) -> set[tuple[str, int]]:
        """Partitions with transactional offsets of any producer still pending for `group_id`."""
        return {tp for by_group in self.pending_txn_offsets.values() for tp in by_group.get(group_id, ())}

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
