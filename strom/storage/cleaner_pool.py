"""Worker processes for the log cleaner's passes (Kafka's log.cleaner.threads cleaner threads).

A pass (`strom.storage.cleaner.run_clean`) is pure-Python CPU work; in a thread it would hold the GIL
the broker's event loop needs and stretch produce latency. So it runs in a process of a
`ProcessPoolExecutor` with log.cleaner.threads workers, made once per `LogCleaner`:

- the start method is `forkserver` (never `fork`: the broker has threads), with the cleaner modules
  preloaded in the fork server, so only the first pool of a Python process pays the interpreter start
  and imports; later pools and restarted workers are forks of it;
- a job and its result are plain data (`CleanJob`, `CleanResult`): the worker never sees a `Log`, and
  touches only the segment files it is told to read and the `.cleaned` files it writes;
- stopping sets a shared `multiprocessing.Event` the pass checks between batches, so a pass in flight
  ends at the next batch (`CleanerAbortedError`) and the pool then shuts down;
- a worker that dies (killed, out of memory) breaks the executor: the pass fails with
  `CleanerCrashedError` and the next pass runs in a new executor;
- workers ignore SIGINT (the broker decides when they stop) and exit on their own when the process
  that started them is gone (a killed broker must not leave them behind).
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import signal
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass

from strom.protocol.errors import KafkaError
from strom.storage.cleaner import AbortSignal, CleanJob, CleanResult, run_clean

__all__ = ["CleanerCrashedError", "CleanerPool"]

_START_METHOD = "forkserver"
_PRELOAD = ["strom.storage.cleaner", "strom.storage.cleaner_pool"]
_ORPHAN_CHECK_S = 1.0


class CleanerCrashedError(KafkaError):
    """A cleaner worker process died during a pass; the pass is dropped and retried later."""


@dataclass(slots=True)
class _WorkerContext:
    """What a worker process keeps between jobs: set once by the pool initializer, in the worker only."""

    abort: AbortSignal | None = None


_WORKER = _WorkerContext()  # per worker process; never written in the broker process


def _watch_parent(parent: int) -> None:
    while True:
        time.sleep(_ORPHAN_CHECK_S)
        if os.getppid() != parent:
            os._exit(0)


def _init_worker(abort: AbortSignal) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _WORKER.abort = abort
    threading.Thread(target=_watch_parent, args=(os.getppid(),), daemon=True).start()


def _clean_in_worker(job: CleanJob) -> CleanResult:
    return run_clean(job, abort=_WORKER.abort)


def _ready() -> int:
    return os.getpid()


class CleanerPool:
    """`workers` cleaner processes; `run` a job in one of them from the event loop."""

    def __init__(self, workers: int = 1) -> None:
        self.workers = max(1, workers)
        self._context = multiprocessing.get_context(_START_METHOD)
        self._abort = self._context.Event()
        self._executor: ProcessPoolExecutor | None = None
        self.crashes = 0

    def _make_executor(self) -> ProcessPoolExecutor:
        if self._executor is None:
            with contextlib.suppress(ValueError):  # only before the fork server starts
                self._context.set_forkserver_preload(_PRELOAD)
            self._executor = ProcessPoolExecutor(
                self.workers, mp_context=self._context, initializer=_init_worker, initargs=(self._abort,)
            )
        return self._executor

    async def start(self) -> None:
        """Start a worker now rather than at the first pass (the first pool pays the fork server)."""
        self._abort.clear()
        await asyncio.get_running_loop().run_in_executor(self._make_executor(), _ready)

    async def run(self, job: CleanJob) -> CleanResult:
        """Run `job` in a worker. Raises what the pass raised, or CleanerCrashedError."""
        executor = self._make_executor()
        try:
            return await asyncio.get_running_loop().run_in_executor(executor, _clean_in_worker, job)
        except BrokenProcessPool as exc:
            if self._executor is executor:
                self.crashes += 1
                self._executor = None
                executor.shutdown(wait=False, cancel_futures=True)
            raise CleanerCrashedError(f"log cleaner worker died: {exc}") from exc

    def pids(self) -> list[int]:
        """The worker processes' ids (diagnostics and tests)."""
        processes = getattr(self._executor, "_processes", None) or {}
        return [p.pid for p in processes.values() if p.pid is not None]

    def abort(self) -> None:
        """Make passes in flight stop at their next batch."""
        self._abort.set()

    async def shutdown(self) -> None:
        """Abort passes in flight and stop the workers."""
        self.abort()
        executor, self._executor = self._executor, None
        if executor is not None:
            await asyncio.to_thread(executor.shutdown, wait=True, cancel_futures=True)
        self._abort.clear()
