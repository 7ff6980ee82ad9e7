"""Worker processes for the log cleaner's passes (Kafka's log.cleaner.threads cleaner threads).

A pass (`strom.storage.cleaner.run_clean`) is pure-Python CPU work; in a thread it would hold the GIL
the broker's event loop needs and stretch produce latency. So it runs in one of log.cleaner.threads
worker processes (`python -m strom.storage.cleaner_worker`), started once per `CleanerPool` and
reused for every pass:

- a job and its result are plain data (`CleanJob`, `CleanResult`), pickled over the worker's stdin and
  stdout: the worker never sees a `Log`, and touches only the segment files it is told to read and the
  `.cleaned` files it writes;
- the workers are plain interpreters, not multiprocessing children, so they never re-run the broker's
  main module and inherit none of its threads, sockets or locks;
- `abort` sends SIGUSR1 to busy workers; the pass stops at its next batch (`CleanerAbortedError`);
- a worker that dies (killed, out of memory) fails the pass with `CleanerCrashedError`; the next pass
  starts a new worker;
- a worker reading EOF on its stdin (the broker stopped the pool, or died) exits.

The blocking pipe I/O runs through `asyncio.to_thread`, so the pool is usable from any event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pickle
import signal
import struct
import subprocess
import sys
import threading
from typing import IO

from strom.protocol.errors import KafkaError
from strom.storage.cleaner import CleanJob, CleanResult

__all__ = ["CleanerCrashedError", "CleanerPool", "read_frame", "write_frame"]

_LENGTH = struct.Struct(">I")
_STOP_TIMEOUT_S = 10.0


class CleanerCrashedError(KafkaError):
    """A cleaner worker process died during a pass; the pass is dropped and retried later."""


def write_frame(out: IO[bytes], obj: object) -> None:
    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    out.write(_LENGTH.pack(len(data)) + data)
    out.flush()


def read_frame(src: IO[bytes]) -> object:
    """The next pickled object; EOFError when the other side is gone."""
    head = src.read(_LENGTH.size)
    if len(head) < _LENGTH.size:
        raise EOFError("cleaner pipe closed")
    (length,) = _LENGTH.unpack(head)
    data = src.read(length)
    if len(data) < length:
        raise EOFError("cleaner pipe closed")
    return pickle.loads(data)


class _Worker:
    def __init__(self) -> None:
        # the worker must import the same `strom` as this process, wherever that comes from
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "strom.storage.cleaner_worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
            close_fds=True,
        )
        self.busy = False
        # set once the worker has answered a frame: before that its SIGUSR1 handler may not be installed
        # yet, and SIGUSR1's default action would kill it
        self.ready = False

    @property
    def pid(self) -> int:
        return self.proc.pid

    def run(self, job: object) -> object:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        write_frame(self.proc.stdin, job)
        reply = read_frame(self.proc.stdout)
        self.ready = True
        return reply

    def stop(self, timeout: float = _STOP_TIMEOUT_S) -> None:
        with contextlib.suppress(OSError):
            if self.proc.stdin is not None:
                self.proc.stdin.close()
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()


class CleanerPool:
    """Up to `workers` cleaner processes; `run` a job in one of them from any event loop."""

    def __init__(self, workers: int = 1) -> None:
        self.workers = max(1, workers)
        self._slots = threading.Semaphore(self.workers)
        self._lock = threading.Lock()
        self._idle: list[_Worker] = []
        self._all: list[_Worker] = []
        self.crashes = 0

    def _take(self) -> _Worker:
        with self._lock:
            if self._idle:
                worker = self._idle.pop()
            else:
                worker = _Worker()
                self._all.append(worker)
            worker.busy = True
            return worker

    def _give_back(self, worker: _Worker, alive: bool) -> None:
        with self._lock:
            worker.busy = False
            if alive:
                self._idle.append(worker)
            elif worker in self._all:
                self._all.remove(worker)

    def _run_blocking(self, job: object) -> object:
        with self._slots:
            worker = self._take()
            try:
                reply = worker.run(job)
            except (EOFError, BrokenPipeError, pickle.UnpicklingError) as exc:
                self.crashes += 1
                self._give_back(worker, alive=False)
                worker.stop(timeout=1.0)
                raise CleanerCrashedError(
                    f"log cleaner worker {worker.pid} died (exit status {worker.proc.returncode})"
                ) from exc
            self._give_back(worker, alive=True)
        status, value = reply  # type: ignore[misc]
        if status == "error":
            raise value
        return value

    async def start(self) -> None:
        """Start one worker now rather than at the first pass (it takes an interpreter start)."""
        await asyncio.to_thread(self._run_blocking, None)

    async def run(self, job: CleanJob) -> CleanResult:
        """Run `job` in a worker. Raises what the pass raised, or CleanerCrashedError."""
        result = await asyncio.to_thread(self._run_blocking, job)
        assert isinstance(result, CleanResult)
        return result

    def pids(self) -> list[int]:
        """The worker processes' ids (diagnostics and tests)."""
        with self._lock:
            return [w.pid for w in self._all]

    def abort(self) -> None:
        """Make passes in flight stop at their next batch."""
        with self._lock:
            busy = [w for w in self._all if w.busy and w.ready]
        for worker in busy:
            with contextlib.suppress(ProcessLookupError):
                os.kill(worker.pid, signal.SIGUSR1)

    async def shutdown(self) -> None:
        """Abort passes in flight and stop the workers."""
        self.abort()
        with self._lock:
            workers, self._all, self._idle = self._all, [], []
        for worker in workers:
            await asyncio.to_thread(worker.stop)
