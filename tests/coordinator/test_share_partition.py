"""The share-partition core (KIP-932) with a fake clock: acquisition of whole batches, locks expiring,
delivery counts and the archive past group.share.delivery.count.limit, acknowledgement types, release
of a member's records, the record-lock window, and the persisted state batches."""

from __future__ import annotations

from strom.coordinator.share.partition import (
    Acquired,
    FetchedBatch,
    RecordState,
    ShareLimits,
    SharePartition,
    StateBatch,
)
from strom.protocol.errors import ErrorCode

LIMITS = ShareLimits(lock_duration_ms=1000, delivery_count_limit=3, max_record_locks=100)


def _batches(*ranges: tuple[int, int]) -> list[FetchedBatch]:
    return [FetchedBatch(a, b) for a, b in ranges]


def test_acquire_whole_batches_up_to_max_records() -> None:
    sp = SharePartition(0, LIMITS)
    acquired, used = sp.acquire("a", _batches((0, 4), (5, 9), (10, 14)), max_records=7, now_ms=0)
    # the second batch takes it past 7: whole batches only
    assert acquired == [Acquired(0, 9, 1)]
    assert [b.base_offset for b in used] == [0, 5]
    assert sp.end_offset == 10
    # another member gets the rest, not the same records
    acquired, _ = sp.acquire("b", _batches((10, 14)), max_records=100, now_ms=0)
    assert acquired == [Acquired(10, 14, 1)]
    assert sp.fetch_offset() == 15


def test_accept_moves_the_start_and_is_never_redelivered() -> None:
    sp = SharePartition(0, LIMITS)
    sp.acquire("a", _batches((0, 9)), 100, 0)
    assert sp.acknowledge("a", 0, 9, [1], 10) is ErrorCode.none
    assert sp.start_offset == 10 and not sp.records
    assert sp.fetch_offset() == 10
    assert sp.acquire("b", _batches((0, 9)), 100, 20) == ([], [])


def test_release_comes_back_with_a_higher_delivery_count() -> None:
    sp = SharePartition(0, LIMITS)
    sp.acquire("a", _batches((0, 4)), 100, 0)
    assert sp.acknowledge("a", 2, 3, [2], 1) is ErrorCode.none  # RELEASE
    assert sp.acknowledge("a", 0, 1, [1], 1) is ErrorCode.none
    assert sp.start_offset == 2
    assert sp.fetch_offset() == 2
    acquired, _ = sp.acquire("b", _batches((0, 4), (5, 6)), 100, 2)
    assert acquired == [Acquired(2, 3, 2), Acquired(5, 6, 1)]


def test_per_offset_types_and_gap() -> None:
    sp = SharePartition(0, LIMITS)
    sp.acquire("a", _batches((0, 3)), 100, 0)
    # ACCEPT, GAP, REJECT, RELEASE
    assert sp.acknowledge("a", 0, 3, [1, 0, 3, 2], 1) is ErrorCode.none
    assert sp.start_offset == 3
    assert sp.records[3].state is RecordState.AVAILABLE


def test_acknowledging_what_the_member_does_not_hold_changes_nothing() -> None:
    sp = SharePartition(0, LIMITS)
    sp.acquire("a", _batches((0, 3)), 100, 0)
    assert sp.acknowledge("b", 0, 3, [1], 1) is ErrorCode.invalid_record_state
    assert sp.acknowledge("a", 2, 5, [1], 1) is ErrorCode.invalid_record_state
    assert sp.acknowledge("a", 3, 2, [1], 1) is ErrorCode.invalid_request
    assert sp.acknowledge("a", 0, 3, [1, 1], 1) is ErrorCode.invalid_request
    assert all(r.state is RecordState.ACQUIRED for r in sp.records.values())


def test_locks_expire_and_renew() -> None:
    sp = SharePartition(0, LIMITS)
    sp.acquire("a", _batches((0, 1)), 100, 0)
    assert sp.next_deadline() == 1000
    assert sp.acknowledge("a", 1, 1, [4], 500) is ErrorCode.none  # RENEW
    assert not sp.expire_locks(999)
    assert sp.expire_locks(1000)
    assert sp.records[0].state is RecordState.AVAILABLE
    assert sp.records[1].state is RecordState.ACQUIRED
    assert sp.expire_locks(1500)
    assert sp.next_deadline() is None


def test_archived_past_the_delivery_count_limit() -> None:
    sp = SharePartition(0, LIMITS)
    now = 0
    for delivery in range(1, 4):
        acquired, _ = sp.acquire("a", _batches((0, 0), (1, 1)), 1, now)
        assert acquired == [Acquired(0, 0, delivery)]
        now += 1000
        sp.expire_locks(now)
    # the third delivery was the last: archived, and the start moves past it
    assert sp.start_offset == 1
    acquired, _ = sp.acquire("a", _batches((0, 0), (1, 1)), 1, now)
    assert acquired == [Acquired(1, 1, 1)]


def test_release_member_on_session_close() -> None:
    sp = SharePartition(0, LIMITS)
    sp.acquire("a", _batches((0, 4)), 100, 0)
    sp.acquire("b", _batches((5, 9)), 100, 0)
    assert sp.release_member("a")
    assert sp.acquired_by("a") == []
    assert sp.acquired_by("b") == [5, 6, 7, 8, 9]
    assert sp.fetch_offset() == 0
    assert not sp.release_member("nobody")


def test_record_lock_window() -> None:
    sp = SharePartition(0, ShareLimits(1000, 5, max_record_locks=10))
    acquired, _ = sp.acquire("a", _batches((0, 5), (6, 11), (12, 20)), 100, 0)
    # in flight only up to start + 10: the second batch is cut at 9, the third not taken
    assert acquired == [Acquired(0, 9, 1)]
    assert not sp.can_acquire()
    sp.acknowledge("a", 0, 4, [1], 1)
    assert sp.can_acquire()
    acquired, _ = sp.acquire("a", _batches((6, 11), (12, 20)), 100, 2)
    assert acquired == [Acquired(10, 14, 1)]


def test_control_batches_and_gaps_are_archived() -> None:
    sp = SharePartition(0, LIMITS)
    batches = [FetchedBatch(0, 1), FetchedBatch(2, 2, is_control=True), FetchedBatch(5, 6)]
    acquired, used = sp.acquire("a", batches, 100, 0)
    assert acquired == [Acquired(0, 1, 1), Acquired(5, 6, 1)]
    assert [b.base_offset for b in used] == [0, 5]
    assert [sp.records[o].state for o in (2, 3, 4)] == [RecordState.ARCHIVED] * 3
    sp.acknowledge("a", 0, 1, [1], 1)
    assert sp.start_offset == 5


def test_state_batches_round_trip() -> None:
    sp = SharePartition(0, LIMITS)
    sp.acquire("a", _batches((0, 9)), 100, 0)
    sp.acknowledge("a", 2, 3, [1], 1)
    sp.acknowledge("a", 4, 4, [2], 1)
    batches = sp.state_batches()
    # acquired records are written as AVAILABLE with their delivery count
    assert batches == [
        StateBatch(0, 1, 0, 1),
        StateBatch(2, 3, 2, 1),
        StateBatch(4, 9, 0, 1),
    ]
    again = SharePartition(sp.start_offset, LIMITS, batches=batches)
    assert again.end_offset == 10
    assert again.fetch_offset() == 0
    acquired, _ = again.acquire("b", _batches((0, 9)), 100, 0)
    assert acquired == [Acquired(0, 1, 2), Acquired(4, 9, 2)]


def test_move_start_below_the_log_start() -> None:
    sp = SharePartition(0, LIMITS)
    sp.acquire("a", _batches((0, 9)), 100, 0)
    sp.move_start(5)
    assert sp.start_offset == 5 and min(sp.records) == 5
    sp.move_start(20)
    assert sp.start_offset == 20 and sp.end_offset == 20 and not sp.records
