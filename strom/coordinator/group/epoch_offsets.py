"""Offset commits of the member-epoch group types (KIP-848 consumer groups, KIP-1071 streams groups),
which differ only in how a member's epoch is checked: once a type's own check has passed, the commit is
written to __consumer_offsets like a classic group's, and transactional offsets settle the same way."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from strom.coordinator.group.base import append_error_code
from strom.coordinator.group.results import CommitRequest
from strom.protocol.errors import ErrorCode, KafkaError


def commit_epoch_group_offsets(
    core: Any,
    group: Any,
    req: CommitRequest,
    now_ms: int,
    respond: Callable[[list[ErrorCode]], None],
    commit_error: Callable[[Any, CommitRequest], ErrorCode],
) -> None:
    """OffsetCommit for `group` (with `.offsets` and `.dead`): the coordinator's status, the type's member
    check (`commit_error`), then the records appended; offsets are applied once written."""
    status = core._status(req.group_id, allow_empty=True)
    if status is ErrorCode.none:
        status = commit_error(group, req)
    if status is not ErrorCode.none:
        respond([status] * len(req.offsets))
        return
    results, records, accepted = core._offset_records(req.group_id, req.offsets, now_ms)
    if not records:
        respond(results)
        return

    def written(append_error: KafkaError | None) -> None:
        code = append_error_code(append_error)
        for i, tp, committed in accepted:
            if code is ErrorCode.none and not group.dead:
                group.offsets[tp] = committed
            else:
                results[i] = code if code is not ErrorCode.none else ErrorCode.coordinator_not_available
        respond(results)

    core._append(core.partition_for(req.group_id), records, written)


def settle_epoch_group_txn_offsets(
    core: Any, groups: Mapping[str, Any], partition: int, producer_id: int, commit: bool
) -> None:
    """A transaction marker in `partition`: the producer's pending offsets of these groups are applied
    (commit) or dropped (abort)."""
    by_group = core.pending_txn_offsets.get(producer_id, {})
    for group_id in [g for g in by_group if g in groups and core.partition_for(g) == partition]:
        offsets = by_group.pop(group_id)
        if commit:
            groups[group_id].offsets.update(offsets)
    if producer_id in core.pending_txn_offsets and not by_group:
        del core.pending_txn_offsets[producer_id]
