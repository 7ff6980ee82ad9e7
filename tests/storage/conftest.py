"""Shared helpers for the storage tests: a fake clock and batch builders."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from strom.config import LogConfig
from strom.protocol.records import Record, build_batch
from strom.storage.log import Log


class FakeClock:
    """A settable clock in seconds, injected wherever the storage reads time."""

    def __init__(self, start_ms: int = 1_700_000_000_000) -> None:
        self.ms = start_ms

    def __call__(self) -> float:
        return self.ms / 1000

    def advance(self, ms: int) -> None:
        self.ms += ms


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def make_batch(
    values: list[bytes], *, timestamp: int, key: bytes | None = b"k", deltas: list[int] | None = None, **kw
) -> bytes:
    records = [Record(i, (deltas[i] if deltas else 0), key, value) for i, value in enumerate(values)]
    return build_batch(records, base_timestamp=timestamp, **kw)


@pytest.fixture
def batch() -> Callable[..., bytes]:
    """`make_batch` as a fixture (test modules here are not a package)."""
    return make_batch


@pytest.fixture
def open_log(tmp_path: Path, clock: FakeClock) -> Callable[..., Log]:
    opened: list[Log] = []

    def _open(config: LogConfig | None = None, name: str = "topic-0", **kw) -> Log:
        log = Log.open(tmp_path / name, config or LogConfig(), clock=clock, **kw)
        opened.append(log)
        return log

    yield _open
    for log in opened:
        log.close()
