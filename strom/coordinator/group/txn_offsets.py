"""Transactional offset commits (KIP-98 TxnOffsetCommit, KIP-447 generation checks).

The offsets are written to __consumer_offsets inside the producer's transaction and kept pending, by
producer id and group, until the transaction's marker reaches the group's partition: COMMIT makes them
the group's committed offsets, ABORT drops them. On replay, offsets of a transaction still open at the end
of the log come back as pending.
"""

from __future__ import annotations

from collections.abc import Callable

from strom.coordinator.group import schemas
from strom.coordinator.group.base import CoreBase, append_error_code
from strom.coordinator.group.group import CommittedOffset, Group, GroupState
from strom.coordinator.group.results import CommitRequest
from strom.protocol.errors import ErrorCode, KafkaError

_S = GroupState


class TxnOffsets(CoreBase):
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
        results, records, accepted = self._offset_records(req.group_id, req.offsets, now_ms)
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
                for _, tp, committed in accepted:
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
