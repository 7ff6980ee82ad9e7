"""The log cleaner's worker process: `python -m strom.storage.cleaner_worker`.

Reads pickled `CleanJob`s from stdin, runs each pass (`strom.storage.cleaner.run_clean`) and writes
back `("ok", CleanResult)` or `("error", exception)`; a `None` job is a readiness ping. Exits at EOF on
stdin. SIGUSR1 aborts the pass in flight at its next batch; SIGINT is ignored (the broker decides when
workers stop). Runs at a lower CPU priority (nice +10): cleaning is background work, and on a busy
machine the broker's event loop must get the CPU first. See `strom.storage.cleaner_pool`.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import signal
import sys
import threading

from strom.storage.cleaner import run_clean
from strom.storage.cleaner_pool import read_frame, write_frame

_NICENESS = 10


def serve() -> None:
    # the protocol owns the real stdout; anything printed goes to stderr
    out = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    sys.stdout = sys.stderr
    src = sys.stdin.buffer
    abort = threading.Event()
    signal.signal(signal.SIGUSR1, lambda _sig, _frame: abort.set())
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    with contextlib.suppress(OSError):
        os.nice(_NICENESS)
    while True:
        try:
            job = read_frame(src)
        except EOFError:
            return
        abort.clear()
        if job is None:
            write_frame(out, ("ok", None))
            continue
        try:
            reply: tuple[str, object] = ("ok", run_clean(job, abort=abort))  # type: ignore[arg-type]
        except Exception as exc:
            reply = ("error", exc)
        try:
            write_frame(out, reply)
        except (pickle.PicklingError, TypeError, AttributeError) as exc:  # an unpicklable exception
            write_frame(out, ("error", RuntimeError(f"log cleaner pass failed: {reply[1]!r} ({exc})")))


if __name__ == "__main__":
    serve()
