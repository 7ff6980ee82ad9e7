"""The history checker of strom.testing.history: each broken promise is found, and an honest run passes,
indeterminate (failed) sends included."""

from __future__ import annotations

import time

from strom.testing.history import History, check


def run(acked_offsets: dict[bytes, int], log: list[bytes], failed: tuple[bytes, ...] = ()) -> History:
    """Partition 0: every value of `acked_offsets` and `failed` is sent in that order; `log` is what a read
    of the partition returns, from offset 0."""
    history = History()
    for value in [*acked_offsets, *failed]:
        history.send(0, value)
    for value, offset in acked_offsets.items():
        history.ack(0, value, offset)
    for value in failed:
        history.fail(0, value, "Local: Message timed out")
    for offset, value in enumerate(log):
        history.read(0, value, offset)
    return history


def test_an_honest_run_passes_with_indeterminate_sends() -> None:
    verdict = check(run({b"a": 0, b"b": 1}, [b"a", b"b", b"c"], failed=(b"c", b"d")))
    assert verdict.ok, verdict.summary()
    assert (verdict.sent, verdict.acked, verdict.failed, verdict.read) == (4, 2, 2, 3)


def test_lost_acknowledged_record() -> None:
    verdict = check(run({b"a": 0, b"b": 1}, [b"a"]))
    assert not verdict.ok and len(verdict.lost) == 1 and "'b'" in verdict.lost[0]


def test_duplicate_and_reordering() -> None:
    verdict = check(run({b"a": 0, b"b": 1}, [b"a", b"b", b"a"]))
    assert len(verdict.duplicated) == 1 and len(verdict.out_of_order) == 1
    assert check(run({b"a": 0, b"b": 1}, [b"a", b"b", b"a"]), idempotent=False).ok


def test_moved_phantom_and_unresolved() -> None:
    history = run({b"a": 1}, [b"x", b"a"])
    history.send(1, b"never answered")
    verdict = check(history)
    assert len(verdict.moved) == 0 and len(verdict.phantoms) == 1 and len(verdict.unresolved) == 1
    assert len(check(run({b"a": 0}, [b"b", b"a"], failed=(b"b",))).moved) == 1
    assert "1 unresolved" in verdict.summary()


def test_partitions_are_judged_apart() -> None:
    history = History()
    for p in (0, 1):
        for n in range(3):
            history.send(p, b"%d" % n)
    for p in (1, 0):
        for n in range(3):
            history.ack(p, b"%d" % n, n)
            history.read(p, b"%d" % n, n)
    assert check(history).ok


def test_checking_is_linear() -> None:
    history = History()
    n = 200_000
    for i in range(n):
        history.send(i % 4, b"%d" % i)
    for i in range(n):
        history.ack(i % 4, b"%d" % i, i // 4)
        history.read(i % 4, b"%d" % i, i // 4)
    started = time.perf_counter()
    verdict = check(history)
    assert verdict.ok and verdict.acked == n
    assert time.perf_counter() - started < 10
