"""`strom consume`'s batch walk: transaction markers are never records, and with the Fetch response's
aborted transactions (read_committed, KIP-98) a producer's batches are dropped from the first offset of
its aborted transaction up to its ABORT marker."""

from __future__ import annotations

from strom.cli.consume import decode_messages
from strom.protocol.control_records import build_marker
from strom.protocol.record_batch import set_base_offset
from strom.protocol.records import Record, build_batch

TS = 1_700_000_000_000


def data(base: int, pid: int, *values: str, transactional: bool = True) -> bytes:
    return build_batch(
        [Record(i, 0, None, v.encode()) for i, v in enumerate(values)],
        base_offset=base,
        base_timestamp=TS,
        producer_id=pid,
        producer_epoch=0,
        base_sequence=0,
        transactional=transactional,
    )


def marker(base: int, pid: int, commit: bool) -> bytes:
    batch = bytearray(build_marker(pid, 0, commit, 0, TS))
    set_base_offset(batch, 0, base)
    return bytes(batch)


def values(raw: bytes, start: int = 0, aborted: tuple[tuple[int, int], ...] = ()) -> list[str]:
    return [(m.value or b"").decode() for m in decode_messages("t", 0, raw, start, aborted)]


# producer 1 commits a transaction, producer 2 aborts one interleaved with it, then producer 2 commits a
# second transaction; a non-transactional batch of producer 3 sits in the middle
LOG = b"".join(
    [
        data(0, 1, "p1-a", "p1-b"),  # 0-1
        data(2, 2, "p2-aborted-1"),  # 2
        data(3, 3, "plain", transactional=False),  # 3
        data(4, 2, "p2-aborted-2", "p2-aborted-3"),  # 4-5
        marker(6, 1, commit=True),  # 6
        marker(7, 2, commit=False),  # 7
        data(8, 2, "p2-committed"),  # 8
        marker(9, 2, commit=True),  # 9
    ]
)
ABORTED = ((2, 2),)


def test_markers_are_never_records() -> None:
    assert values(LOG) == [
        "p1-a", "p1-b", "p2-aborted-1", "plain", "p2-aborted-2", "p2-aborted-3", "p2-committed",
    ]  # fmt: skip


def test_aborted_transaction_dropped_up_to_its_abort_marker() -> None:
    assert values(LOG, aborted=ABORTED) == ["p1-a", "p1-b", "plain", "p2-committed"]


def test_abort_that_began_before_the_fetch_offset_still_applies() -> None:
    # the broker lists a transaction that overlaps the fetched range even if it began before it
    assert values(LOG, start=3, aborted=ABORTED) == ["plain", "p2-committed"]
    assert values(LOG[len(data(0, 1, "p1-a", "p1-b")) :], start=2, aborted=ABORTED) == [
        "plain",
        "p2-committed",
    ]


def test_producer_batches_before_its_aborted_transaction_are_kept() -> None:
    # producer 2 committed at 0-1, then aborted from offset 3: only the later batch goes
    raw = b"".join(
        [
            data(0, 2, "kept"),
            marker(1, 2, commit=True),
            data(2, 1, "other"),
            data(3, 2, "dropped"),
            marker(4, 2, commit=False),
        ]
    )
    assert values(raw, aborted=((2, 3),)) == ["kept", "other"]


def test_two_aborted_transactions_of_one_producer() -> None:
    raw = b"".join(
        [
            data(0, 2, "x1"),
            marker(1, 2, commit=False),
            data(2, 2, "ok"),
            marker(3, 2, commit=True),
            data(4, 2, "x2"),
            marker(5, 2, commit=False),
        ]
    )
    assert values(raw, aborted=((2, 4), (2, 0))) == ["ok"]
    assert values(raw) == ["x1", "ok", "x2"]
