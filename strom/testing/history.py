"""A Jepsen-style history of a produce/consume run and the checker that judges it.

Clients append what they did to a `History` as they do it: `send` when a record is handed to the
producer, `ack` with the offset the broker acknowledged it at, `fail` when the producer gave up on it, and
`read` for every record a final read of each partition returned. `check(history)` then decides, in one
pass over the operations (linear, so bounded in time whatever the run produced), whether the run kept
Kafka's promises to an acks=all idempotent producer (KIP-98, KIP-679 makes it the default):

- no acknowledged record is lost: every `ack` has a `read` of the same value in its partition, at the
  offset it was acknowledged at (acks=all acknowledges only what every ISR member holds, so no leader
  election may take it away, KIP-101/KIP-279);
- no duplicate: an idempotent producer's retries are de-duplicated by producer id and sequence, so no
  value is read twice;
- order per partition: the values of one partition are read in the order they were sent (an idempotent
  producer keeps order with up to 5 requests in flight, KAFKA-5494);
- nothing is read that was never sent (a phantom), and every send is resolved by an ack or a failure.

A record that was sent and failed (or never answered) may or may not be in the log: Jepsen calls it
indeterminate, and the checker accepts either.
"""

from __future__ import annotations

import enum
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

__all__ = ["History", "Op", "OpKind", "Verdict", "check"]


class OpKind(enum.Enum):
    SEND = "send"
    ACK = "ack"
    FAIL = "fail"
    READ = "read"


@dataclass(frozen=True, slots=True)
class Op:
    """One thing a client did: `offset` is -1 for a send or a failure; `at` is the monotonic clock."""

    kind: OpKind
    partition: int
    value: bytes
    offset: int = -1
    at: float = 0.0
    detail: str = ""


class History:
    """The operations of a run in the order they happened. Safe to append from several threads (librdkafka's
    delivery callbacks run on the producing thread, readers on others)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self.ops: list[Op] = []

    def _add(self, kind: OpKind, partition: int, value: bytes, offset: int, detail: str) -> None:
        with self._lock:
            self.ops.append(Op(kind, partition, value, offset, self._clock(), detail))

    def send(self, partition: int, value: bytes) -> None:
        self._add(OpKind.SEND, partition, value, -1, "")

    def ack(self, partition: int, value: bytes, offset: int) -> None:
        self._add(OpKind.ACK, partition, value, offset, "")

    def fail(self, partition: int, value: bytes, error: str) -> None:
        self._add(OpKind.FAIL, partition, value, -1, error)

    def read(self, partition: int, value: bytes, offset: int) -> None:
        self._add(OpKind.READ, partition, value, offset, "")

    def count(self, kind: OpKind) -> int:
        with self._lock:
            return sum(1 for op in self.ops if op.kind is kind)

    def snapshot(self) -> list[Op]:
        with self._lock:
            return list(self.ops)


@dataclass
class Verdict:
    """What `check` found; `ok` when none of the promises was broken. Each list holds readable lines."""

    sent: int = 0
    acked: int = 0
    failed: int = 0
    read: int = 0
    lost: list[str] = field(default_factory=list)
    duplicated: list[str] = field(default_factory=list)
    out_of_order: list[str] = field(default_factory=list)
    moved: list[str] = field(default_factory=list)
    phantoms: list[str] = field(default_factory=list)
    unresolved: list[str] = field(default_factory=list)
    max_ack_latency_s: float = 0.0

    @property
    def ok(self) -> bool:
        return not (
            self.lost
            or self.duplicated
            or self.out_of_order
            or self.moved
            or self.phantoms
            or self.unresolved
        )

    def summary(self, limit: int = 5) -> str:
        parts = [f"sent {self.sent}, acked {self.acked}, failed {self.failed}, read {self.read}"]
        for name in ("lost", "duplicated", "out_of_order", "moved", "phantoms", "unresolved"):
            found: list[str] = getattr(self, name)
            if found:
                parts.append(f"{len(found)} {name.replace('_', ' ')}: {'; '.join(found[:limit])}")
        return ". ".join(parts)


def check(ops: Iterable[Op] | History, *, idempotent: bool = True) -> Verdict:
    """Judge a history (see the module docstring). `idempotent=False` accepts duplicates and reordering
    (a producer without idempotence may write a retried batch twice, after a later one)."""
    if isinstance(ops, History):
        ops = ops.snapshot()
    verdict = Verdict()
    send_index: dict[tuple[int, bytes], int] = {}  # (partition, value) -> position among all sends
    sent_at: dict[tuple[int, bytes], float] = {}
    resolved: set[tuple[int, bytes]] = set()
    acked: dict[tuple[int, bytes], int] = {}
    reads: dict[int, list[tuple[int, bytes]]] = {}
    for op in ops:
        key = (op.partition, op.value)
        if op.kind is OpKind.SEND:
            send_index[key] = verdict.sent
            verdict.sent += 1
            sent_at[key] = op.at
        elif op.kind is OpKind.ACK:
            verdict.acked += 1
            resolved.add(key)
            acked[key] = op.offset
            verdict.max_ack_latency_s = max(verdict.max_ack_latency_s, op.at - sent_at.get(key, op.at))
        elif op.kind is OpKind.FAIL:
            verdict.failed += 1
            resolved.add(key)
        else:
            verdict.read += 1
            reads.setdefault(op.partition, []).append((op.offset, op.value))

    for key in send_index.keys() - resolved:
        verdict.unresolved.append(f"{_show(key)} was sent and never acknowledged nor failed")

    where: dict[tuple[int, bytes], list[int]] = {}
    for partition, records in reads.items():
        last = -1
        for offset, value in sorted(records):
            key = (partition, value)
            where.setdefault(key, []).append(offset)
            position = send_index.get(key)
            if position is None:
                verdict.phantoms.append(f"{_show(key)} read at offset {offset} was never sent")
                continue
            if idempotent and position < last:
                verdict.out_of_order.append(
                    f"{_show(key)} at offset {offset} was sent before the one above it"
                )
            last = max(last, position)
    for key, offsets in where.items():
        if idempotent and len(offsets) > 1:
            verdict.duplicated.append(f"{_show(key)} read at offsets {offsets}")
    for key, offset in acked.items():
        found = where.get(key)
        if not found:
            verdict.lost.append(f"{_show(key)} acknowledged at offset {offset} is not in the log")
        elif offset not in found:
            verdict.moved.append(f"{_show(key)} acknowledged at offset {offset} is read at {found}")
    return verdict


def _show(key: tuple[int, bytes]) -> str:
    partition, value = key
    return f"partition {partition} value {value.decode(errors='replace')!r}"
