"""Transactional offset commits in the group coordinator (TxnOffsetCommit, KIP-98): pending until the
transaction's marker, then committed or dropped; the replay keeps open transactions pending."""

from __future__ import annotations

from typing import Any

from strom.coordinator.group.results import CommitRequest, OffsetToCommit
from strom.protocol.errors import ErrorCode
from tests.coordinator.harness import Box, Harness

PID, EPOCH = 77, 3


def commit_request(group: str, offset: int) -> CommitRequest:
    return CommitRequest(group, -1, "", None, [OffsetToCommit("t", 0, offset, -1, "m")])


def with_txn_sink(h: Harness) -> list[tuple[int, Any, int, int]]:
    writes: list[tuple[int, Any, int, int]] = []

    def sink(partition: int, records: Any, done: Any, producer_id: int, producer_epoch: int) -> None:
        writes.append((partition, records, producer_id, producer_epoch))
        done(None)

    h.core.append_transactional = sink
    return writes


def committed(h: Harness, group: str) -> int:
    error, offsets = h.core.fetch_offsets(group, [("t", 0)])
    assert error == ErrorCode.none
    return offsets[0].offset


def test_offsets_count_only_after_commit_marker() -> None:
    h = Harness()
    writes = with_txn_sink(h)
    box = Box()
    h.core.commit_txn_offsets(commit_request("g", 10), PID, EPOCH, h.now, box)
    assert box.value == [ErrorCode.none]
    ((partition, records, pid, epoch),) = writes
    assert (partition, pid, epoch) == (h.core.partition_for("g"), PID, EPOCH) and len(records) == 1
    assert committed(h, "g") == -1
    h.core.complete_txn_offsets(partition + 1 if partition + 1 < 4 else 0, PID, True, h.now)
    assert committed(h, "g") == -1  # a marker on another partition does not touch this group
    h.core.complete_txn_offsets(partition, PID, True, h.now)
    assert committed(h, "g") == 10
    assert h.core.pending_txn_offsets == {}


def test_abort_drops_pending_offsets() -> None:
    h = Harness()
    with_txn_sink(h)
    box = Box()
    h.core.commit_txn_offsets(commit_request("g", 10), PID, EPOCH, h.now, box)
    partition = h.core.partition_for("g")
    h.core.complete_txn_offsets(partition, PID, False, h.now)
    assert committed(h, "g") == -1
    h.core.complete_txn_offsets(partition, PID, True, h.now)  # nothing left to commit
    assert committed(h, "g") == -1


def test_replayed_open_transaction_stays_pending_and_unload_forgets_it() -> None:
    from strom.coordinator.group import schemas

    h = Harness()
    key = schemas.encode_offset_key("g", "t", 0)
    value = schemas.encode_offset_value(schemas.OffsetValue(5, -1, "", h.now))
    h.core.load_pending_txn_offset(PID, key, value)
    partition = h.core.partition_for("g")
    h.core.complete_txn_offsets(partition, PID, True, h.now)
    assert committed(h, "g") == 5
    h.core.load_pending_txn_offset(PID, key, value)
    h.core.unload(partition)
    assert h.core.pending_txn_offsets == {}


def test_without_a_transactional_sink_the_coordinator_is_not_available() -> None:
    h = Harness()
    box = Box()
    h.core.commit_txn_offsets(commit_request("g", 1), PID, EPOCH, h.now, box)
    assert box.value == [ErrorCode.coordinator_not_available]


def test_require_stable_answers_unstable_while_transactional_offsets_are_pending() -> None:
    """KIP-447: OffsetFetch with require_stable must not hand a new owner the older committed offset
    while a transaction's offsets for the partition wait for their marker."""
    h = Harness()
    with_txn_sink(h)
    h.core.commit_offsets(commit_request("g", 4), h.now, Box())
    box = Box()
    h.core.commit_txn_offsets(commit_request("g", 10), PID, EPOCH, h.now, box)
    assert box.value == [ErrorCode.none]
    partition = h.core.partition_for("g")
    for wanted in ([("t", 0), ("t", 1)], None):
        error, fetched = h.core.fetch_offsets("g", wanted, require_stable=True)
        assert error is ErrorCode.none
        assert (fetched[0].offset, fetched[0].error) == (-1, ErrorCode.unstable_offset_commit)
    error, fetched = h.core.fetch_offsets("g", [("t", 0), ("t", 1)], require_stable=True)
    assert (fetched[1].offset, fetched[1].error) == (-1, ErrorCode.none)  # nothing pending there
    assert committed(h, "g") == 4  # without require_stable: the committed offset, as Kafka answers
    assert h.core.fetch_offsets("other", [("t", 0)], require_stable=True)[1][0].error is ErrorCode.none
    h.core.complete_txn_offsets(partition, PID, True, h.now)
    error, fetched = h.core.fetch_offsets("g", [("t", 0)], require_stable=True)
    assert (fetched[0].offset, fetched[0].error) == (10, ErrorCode.none)
