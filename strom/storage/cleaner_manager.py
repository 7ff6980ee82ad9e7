"""The broker's log cleaner: which log to compact next, when, and the `cleaner-offset-checkpoint`.

Kafka's LogCleaner + LogCleanerManager, for logs whose cleanup.policy contains `compact` (including
`compact,delete`, whose retention the log applies itself):

- Every log.cleaner.backoff.ms when idle, each of log.cleaner.threads workers picks the filthiest log
  not being cleaned: dirty bytes (from the cleaner checkpoint to the first uncleanable offset) over
  all cleanable bytes must exceed min.cleanable.dirty.ratio, unless the log must be cleaned now
  because its oldest dirty record is older than max.compaction.lag.ms (KIP-354) or a tombstone's
  delete horizon has passed (KIP-534). The first uncleanable offset is the lowest of the active
  segment's base, the base of the first dirty segment holding a record younger than
  min.compaction.lag.ms, and the base of the segment holding the log's owner's upper bound (the
  partition's last stable offset, min(high watermark, first unstable offset): Kafka never cleans at
  or above it, since a follower or a new leader may still truncate there and open transactions are
  not decided yet). A segment is cleanable only when all its offsets lie below that bound.
- A compacted log whose active segment is older than max.compaction.lag.ms is rolled, so its records
  become cleanable in time (Kafka rolls on that lag too).
- The pass itself (`strom.storage.cleaner.run_clean`) runs in a worker process of a `CleanerPool`
  (log.cleaner.threads processes, started once, shut down by `stop`), so its CPU work never competes
  with the event loop for the GIL; picking the log, describing its segments (`prepare_clean`) and
  swapping the cleaned segments in (`strom.storage.swap`) run on the event loop that owns the logs, so
  appends and reads never race the cleaner and the loop never waits on it. A pass that fails (a
  worker that died included) is logged, its `.cleaned` files removed, and retried after
  log.cleaner.backoff.ms.
- log.cleaner.dedupe.buffer.size is split between the workers (key budget of each pass's
  `OffsetMap`), log.cleaner.io.max.bytes.per.second between their `Throttler`s.
- After each pass the log dir's `cleaner-offset-checkpoint` (Kafka's offset checkpoint format)
  records where the dirty part now starts; a checkpoint below the log start or above the log end
  (truncation) restarts from the log start, as Kafka does.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from strom.config import LONG_MAX, BrokerConfig
from strom.storage.checkpoint import fsync_dir, read_offset_checkpoint, write_offset_checkpoint
from strom.storage.cleaner import (
    CleanerAbortedError,
    CleanerSourceChangedError,
    CleanResult,
    prepare_clean,
)
from strom.storage.cleaner_pool import CleanerPool
from strom.storage.log import Log
from strom.storage.segment import CLEANED_SUFFIX
from strom.storage.swap import SwapAbortedError, SwapStep, remove_files, swap_in

__all__ = ["CLEANER_OFFSET_CHECKPOINT", "CleanerConfig", "LogCleaner", "LogToClean", "UpperBound"]

# (topic, partition) -> the offset cleaning must stay below (the high watermark), or None: no bound
UpperBound = Callable[[str, int], "int | None"]

CLEANER_OFFSET_CHECKPOINT = "cleaner-offset-checkpoint"

_log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class CleanerConfig:
    """The broker's log.cleaner.* settings."""

    enable: bool = True
    threads: int = 1
    backoff_ms: int = 15000
    dedupe_buffer_size: int = 134217728
    io_max_bytes_per_second: float = sys.float_info.max

    @classmethod
    def from_broker(cls, config: BrokerConfig) -> CleanerConfig:
        return cls(
            enable=bool(config.get("log.cleaner.enable")),
            threads=int(config.get("log.cleaner.threads")),
            backoff_ms=int(config.get("log.cleaner.backoff.ms")),
            dedupe_buffer_size=int(config.get("log.cleaner.dedupe.buffer.size")),
            io_max_bytes_per_second=float(config.get("log.cleaner.io.max.bytes.per.second")),
        )


@dataclass(slots=True)
class LogToClean:
    log: Log
    first_dirty: int
    first_uncleanable: int
    clean_bytes: int
    dirty_bytes: int
    must_clean: bool

    @property
    def ratio(self) -> float:
        total = self.clean_bytes + self.dirty_bytes
        return self.dirty_bytes / total if total else 0.0


class LogCleaner:
    """Compacts the logs `logs()` returns; see the module docstring. Start and stop on the event loop
    that owns the logs. `upper_bound` bounds cleaning per partition (the high watermark); `pool` lets
    several cleaners share worker processes (the cleaner then leaves it running on `stop`)."""

    def __init__(
        self,
        logs: Callable[[], list[Log]],
        log_dirs: list[Path],
        config: CleanerConfig,
        *,
        clock: Callable[[], float] = time.time,
        on_swap_step: SwapStep | None = None,
        upper_bound: UpperBound | None = None,
        pool: CleanerPool | None = None,
    ) -> None:
        self._logs = logs
        self.upper_bound = upper_bound
        self._own_pool = pool is None
        self.pool = pool if pool is not None else CleanerPool(config.threads)
        self.log_dirs = [Path(d) for d in log_dirs]
        self.config = config
        self._clock = clock
        self._on_swap_step = on_swap_step
        self.checkpoints: dict[tuple[str, int], int] = {}
        self._horizons: dict[tuple[str, int], int] = {}
        self._in_progress: set[tuple[str, int]] = set()
        self._stopping = False
        self._wake: asyncio.Event | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self.passes = 0
        self.last_result: CleanResult | None = None

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)

    # checkpoints --------------------------------------------------------------------------------
    def load_checkpoints(self) -> None:
        """Read every log dir's cleaner-offset-checkpoint (blocking)."""
        for log_dir in self.log_dirs:
            try:
                self.checkpoints.update(read_offset_checkpoint(log_dir / CLEANER_OFFSET_CHECKPOINT))
            except Exception:  # a damaged checkpoint only costs a full re-clean
                _log.warning("ignoring unreadable %s", log_dir / CLEANER_OFFSET_CHECKPOINT)

    def write_checkpoints(self, only_dir: Path | None = None) -> None:
        """Write the checkpoint of every log dir (or one), for the logs that still exist (blocking)."""
        by_dir: dict[Path, dict[tuple[str, int], int]] = {d: {} for d in self.log_dirs}
        for log in self._logs():
            key = (log.topic, log.partition)
            if key in self.checkpoints:
                by_dir.setdefault(log.dir.parent, {})[key] = self.checkpoints[key]
        for log_dir, entries in by_dir.items():
            if only_dir is None or log_dir == only_dir:
                write_offset_checkpoint(log_dir / CLEANER_OFFSET_CHECKPOINT, entries)

    # choosing -----------------------------------------------------------------------------------
    def first_dirty_offset(self, log: Log) -> int:
        checkpoint = self.checkpoints.get((log.topic, log.partition))
        if checkpoint is None or checkpoint < log.log_start_offset or checkpoint > log.log_end_offset:
            return log.log_start_offset
        return checkpoint

    def cleanable(self, log: Log, now_ms: int) -> LogToClean | None:
        """What a pass over `log` would clean now, or None if it should not be cleaned yet."""
        config = log.config
        if log.closed or not config.compact:
            return None
        segments = log.segments()
        active = segments[-1]
        if (
            config.max_compaction_lag_ms < LONG_MAX
            and active.size > 0
            and now_ms - active.rolling_base_timestamp() > config.max_compaction_lag_ms
        ):
            log.roll(now_ms=now_ms)
            segments = log.segments()
        first_dirty = self.first_dirty_offset(log)
        bound = segments[-1].base_offset
        upper = self.upper_bound(log.topic, log.partition) if self.upper_bound is not None else None
        clean_bytes = dirty_bytes = 0
        must = False
        first_dirty_seen = False
        for i, segment in enumerate(segments[:-1]):
            end = segments[i + 1].base_offset
            if upper is not None and end > upper:
                bound = segment.base_offset  # holds offsets at or above the high watermark
                break
            if end <= first_dirty:
                clean_bytes += segment.size
                continue
            if config.min_compaction_lag_ms > 0 and segment.largest_timestamp() > (
                now_ms - config.min_compaction_lag_ms
            ):
                bound = segment.base_offset
                break
            if not first_dirty_seen:
                first_dirty_seen = True
                if (
                    config.max_compaction_lag_ms < LONG_MAX
                    and segment.size > 0
                    and now_ms - segment.rolling_base_timestamp() > config.max_compaction_lag_ms
                ):
                    must = True
            dirty_bytes += segment.size
        horizon = self._horizons.get((log.topic, log.partition))
        tombstones_due = horizon is not None and now_ms >= horizon and clean_bytes + dirty_bytes > 0
        # first_uncleanable may lie below first_dirty (a high watermark that moved back): then only the
        # clean part below the bound is rewritten (to drop expired tombstones)
        ltc = LogToClean(log, first_dirty, bound, clean_bytes, dirty_bytes, must)
        if tombstones_due:
            ltc.must_clean = True
            return ltc
        if dirty_bytes == 0:
            return None
        if must or ltc.ratio > config.min_cleanable_dirty_ratio or (config.min_cleanable_dirty_ratio <= 0):
            return ltc
        return None

    def grab_filthiest(self, now_ms: int | None = None) -> LogToClean | None:
        """The log to clean next (marked in progress), or None. Runs on the owning thread."""
        now = self._now_ms() if now_ms is None else now_ms
        best: LogToClean | None = None
        for log in self._logs():
            key = (log.topic, log.partition)
            if key in self._in_progress:
                continue
            ltc = self.cleanable(log, now)
            if ltc is None:
                continue
            if best is None or (ltc.must_clean, ltc.ratio) > (best.must_clean, best.ratio):
                best = ltc
        if best is not None:
            self._in_progress.add((best.log.topic, best.log.partition))
        return best

    # cleaning -----------------------------------------------------------------------------------
    async def clean(self, ltc: LogToClean) -> CleanResult | None:
        """Clean one log picked by `grab_filthiest`; None if the log changed and the pass was dropped.
        Raises what the pass raised (after removing its `.cleaned` files)."""
        log = ltc.log
        key = (log.topic, log.partition)
        now = self._now_ms()
        threads = max(1, self.config.threads)
        try:
            prepared = prepare_clean(
                log,
                ltc.first_dirty,
                ltc.first_uncleanable,
                now,
                map_bytes=self.config.dedupe_buffer_size // threads,
                io_bytes_per_second=self.config.io_max_bytes_per_second / threads,
            )
            try:
                result = await self.pool.run(prepared.job)
            except BaseException as exc:
                await asyncio.to_thread(prepared.remove_cleaned_files)
                if isinstance(exc, CleanerSourceChangedError) or (isinstance(exc, Exception) and log.closed):
                    _log.info("log cleaner pass on %s dropped: %s", log.dir.name, exc)
                    return None
                raise
            for i, group in enumerate(prepared.cleaned_groups(result)):
                try:
                    swap_in(log, group, now, self._on_swap_step)
                except SwapAbortedError as exc:
                    _log.info("log cleaner pass on %s dropped: %s", log.dir.name, exc)
                    for later in result.groups[i + 1 :]:
                        remove_files(log.dir, later.base_offset, CLEANED_SUFFIX)
                    return None
            self.checkpoints[key] = result.end_offset
            if result.next_delete_horizon is None:
                self._horizons.pop(key, None)
            else:
                self._horizons[key] = result.next_delete_horizon
            self.passes += 1
            self.last_result = result
            await asyncio.to_thread(self._persist, log)
            return result
        finally:
            self._in_progress.discard(key)

    def _persist(self, log: Log) -> None:
        if not log.closed:
            fsync_dir(log.dir)
        self.write_checkpoints(log.dir.parent)

    async def clean_once(self) -> CleanResult | None:
        """Pick and clean the filthiest log, if any (one worker iteration)."""
        ltc = self.grab_filthiest()
        if ltc is None:
            return None
        return await self.clean(ltc)

    # lifecycle ----------------------------------------------------------------------------------
    async def start(self) -> None:
        await asyncio.to_thread(self.load_checkpoints)
        if not self.config.enable or self.config.threads <= 0:
            return
        self._stopping = False
        self._wake = asyncio.Event()
        self._tasks = [
            asyncio.create_task(self._run(i), name=f"log-cleaner-{i}") for i in range(self.config.threads)
        ]

    async def stop(self) -> None:
        """Abort passes in flight (their cleaned files are removed), stop the worker processes (if this
        cleaner started them) and write the checkpoints."""
        self._stopping = True
        if self._wake is not None:
            self._wake.set()
        if self._own_pool:
            self.pool.abort()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        if self._own_pool:
            await self.pool.shutdown()
        await asyncio.to_thread(self.write_checkpoints)

    async def _run(self, index: int) -> None:
        assert self._wake is not None
        if index == 0:
            try:  # start a worker (and the fork server) now, not in the middle of the first pass
                await self.pool.start()
            except Exception:
                _log.exception("log cleaner worker did not start; the first pass will try again")
        while not self._stopping:
            cleaned = False
            try:
                ltc = self.grab_filthiest()
                if ltc is not None:
                    cleaned = await self.clean(ltc) is not None
            except CleanerAbortedError:
                return
            except Exception:  # one failing log (or a dead worker) must not stop the cleaner
                if self._stopping:
                    return
                _log.exception("log cleaner pass failed; retrying after log.cleaner.backoff.ms")
            if not cleaned and not self._stopping:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.config.backoff_ms / 1000)
