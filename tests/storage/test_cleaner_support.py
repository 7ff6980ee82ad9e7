"""Helpers (no tests) for the log cleaner tests: keyed appends, reading a log back, one pass.

Every cleaner made here shares one `CleanerPool`, so the worker process starts once per test session.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable

from strom.config import LogConfig
from strom.protocol.records import Record, build_batch, decode_records
from strom.storage.cleaner import CleanResult
from strom.storage.cleaner_manager import CleanerConfig, LogCleaner, UpperBound
from strom.storage.cleaner_pool import CleanerPool
from strom.storage.log import Log

COMPACT = LogConfig(
    segment_bytes=400,
    cleanup_policy=("compact",),
    min_cleanable_dirty_ratio=0.0,
    delete_retention_ms=10_000,
    file_delete_delay_ms=0,
    index_interval_bytes=100,
)


def put(log: Log, key: bytes | None, value: bytes | None, ts: int, **kw: object) -> int:
    """Append one record as its own batch; returns its offset."""
    batch = build_batch([Record(0, 0, key, value)], base_timestamp=ts, **kw)  # type: ignore[arg-type]
    return log.append(batch, leader_epoch=0, now_ms=ts).first_offset


def put_many(log: Log, pairs: list[tuple[bytes, bytes | None]], ts: int, **kw: object) -> int:
    """Append several records as one batch; returns its first offset."""
    records = [Record(i, i, k, v) for i, (k, v) in enumerate(pairs)]
    batch = build_batch(records, base_timestamp=ts, **kw)  # type: ignore[arg-type]
    return log.append(batch, leader_epoch=0, now_ms=ts).first_offset


def read_all(log: Log, start: int = 0) -> list[tuple[int, bytes | None, bytes | None]]:
    """(offset, key, value) of every record from `start`, through Log.read like a consumer would."""
    out: list[tuple[int, bytes | None, bytes | None]] = []
    offset = max(start, log.log_start_offset)
    while offset < log.log_end_offset:
        chunk = log.read(offset, 1 << 20)
        if chunk.length == 0:
            break
        data = chunk.read_bytes()
        pos = 0
        from strom.protocol.record_batch import iter_batches

        last = offset
        for pos, header in iter_batches(data):
            for record in decode_records(memoryview(data)[pos : pos + header.size]):
                o = header.base_offset + record.offset_delta
                if o >= offset:
                    out.append((o, record.key, record.value))
            last = header.next_offset
        offset = max(last, offset + 1)
    return out


def latest(records: list[tuple[int, bytes | None, bytes | None]]) -> dict[bytes | None, bytes | None]:
    state: dict[bytes | None, bytes | None] = {}
    for _o, k, v in records:
        state[k] = v
    return state


@functools.cache
def shared_pool() -> CleanerPool:
    """One worker process for the whole session (its executor shuts down at interpreter exit)."""
    return CleanerPool(1)


def make_cleaner(
    log: Log, clock: Callable[[], float], *, upper_bound: UpperBound | None = None, **kw: object
) -> LogCleaner:
    return LogCleaner(
        lambda: [log],
        [log.dir.parent],
        CleanerConfig(**kw),  # type: ignore[arg-type]
        clock=clock,
        upper_bound=upper_bound,
        pool=shared_pool(),
    )


def clean_now(cleaner: LogCleaner) -> CleanResult | None:
    return asyncio.run(cleaner.clean_once())
