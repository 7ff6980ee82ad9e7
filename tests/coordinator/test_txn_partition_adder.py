"""PartitionAdder's server-side retry (KAFKA-18654): a transaction version 2 add refused with
CONCURRENT_TRANSACTIONS (the previous transaction's markers still being written) is asked again every
add.partitions.to.txn.retry.backoff.ms for up to add.partitions.to.txn.retry.backoff.max.ms; a verify
(part 1) is never retried, and neither is any other error."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

from strom.coordinator.txn.partition_adder import PartitionAdder, produce_error
from strom.protocol.errors import ErrorCode

NODE = 1


@dataclass
class _Coordinator:
    """Answers `busy` CONCURRENT_TRANSACTIONS before NONE (or `final` forever when busy is -1)."""

    busy: int
    final: ErrorCode = ErrorCode.none
    asked: list[list[tuple[str, int]]] = field(default_factory=list)

    async def add_partitions(
        self, _tid: str, _pid: int, _epoch: int, partitions: Any, **_kw: Any
    ) -> ErrorCode:
        self.asked.append(list(partitions))
        if self.busy < 0 or len(self.asked) <= self.busy:
            return ErrorCode.concurrent_transactions
        return self.final

    @property
    def core(self) -> Any:
        return SimpleNamespace(verify_partitions=self._verify)

    def _verify(self, _tid: str, _pid: int, _epoch: int, partitions: Any) -> dict[tuple[str, int], ErrorCode]:
        self.asked.append(list(partitions))
        return dict.fromkeys(partitions, ErrorCode.concurrent_transactions)


def _adder(coordinator: _Coordinator, backoff_ms: int = 5, max_ms: int = 100) -> PartitionAdder:
    settings = {
        "add.partitions.to.txn.retry.backoff.ms": backoff_ms,
        "add.partitions.to.txn.retry.backoff.max.ms": max_ms,
    }
    txn_topic = SimpleNamespace(partitions={p: SimpleNamespace(leader=NODE) for p in range(50)})
    image = SimpleNamespace(topic=lambda name: txn_topic if name == "__transaction_state" else None)
    broker = SimpleNamespace(
        node_id=NODE,
        config=SimpleNamespace(get=settings.__getitem__),
        metadata=SimpleNamespace(image=image),
        txn_coordinator=coordinator,
    )
    return PartitionAdder(broker)  # type: ignore[arg-type]


def _add(adder: PartitionAdder, add: bool = True) -> dict[tuple[str, int], ErrorCode]:
    return asyncio.run(adder.add_or_verify("tid", 7, 0, [("t", 0), ("t", 1)], add=add))


def test_add_refused_while_markers_are_written_is_retried_until_accepted() -> None:
    coordinator = _Coordinator(busy=3)
    assert _add(_adder(coordinator)) == {("t", 0): ErrorCode.none, ("t", 1): ErrorCode.none}
    assert len(coordinator.asked) == 4


def test_add_still_refused_after_the_max_backoff_reaches_the_client_as_not_enough_replicas() -> None:
    coordinator = _Coordinator(busy=-1)
    errors = _add(_adder(coordinator, backoff_ms=20, max_ms=200))
    assert set(errors.values()) == {ErrorCode.concurrent_transactions}
    assert 2 <= len(coordinator.asked) <= 11  # the first ask plus at most one retry per 20 ms of 200 ms
    code, message = produce_error(ErrorCode.concurrent_transactions, abortable_supported=True)
    assert code == ErrorCode.not_enough_replicas
    assert message is not None and "CONCURRENT_TRANSACTIONS" in message


def test_zero_max_backoff_turns_the_retry_off() -> None:
    coordinator = _Coordinator(busy=1)
    errors = _add(_adder(coordinator, max_ms=0))
    assert set(errors.values()) == {ErrorCode.concurrent_transactions}
    assert len(coordinator.asked) == 1


def test_other_errors_and_verifications_are_not_retried() -> None:
    fenced = _Coordinator(busy=0, final=ErrorCode.producer_fenced)
    assert set(_add(_adder(fenced)).values()) == {ErrorCode.producer_fenced}
    assert len(fenced.asked) == 1
    verifying = _Coordinator(busy=-1)
    assert set(_add(_adder(verifying), add=False).values()) == {ErrorCode.concurrent_transactions}
    assert len(verifying.asked) == 1
