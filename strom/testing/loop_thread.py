"""`LoopThreadContext`: the two ways to run an embedded test server (`EmbeddedBroker`, `EmbeddedCluster`).

A subclass implements `async start()` (which cleans up after itself when it fails or is cancelled) and an
idempotent `async stop()`. Then:

    async with server: ...   # start/stop on the running event loop
    with server: ...         # a private event loop in a daemon thread, so plain synchronous tests
                             # (confluent-kafka, kafka-python) can talk to it from the main thread

`call(coro)` runs a coroutine on the private loop from another thread and returns its result.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Coroutine
from types import TracebackType
from typing import Any, Self, TypeVar

__all__ = ["LoopThreadContext"]

T = TypeVar("T")


class LoopThreadContext:
    """Base class: sync and async context manager around `start()` / `stop()`."""

    thread_name = "strom-embedded"
    start_timeout = 30.0
    stop_timeout = 60.0

    _loop: asyncio.AbstractEventLoop | None = None
    _thread: threading.Thread | None = None

    async def start(self) -> Self:
        raise NotImplementedError

    async def stop(self) -> None:
        raise NotImplementedError

    # --- async form -------------------------------------------------------------------------------
    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # --- sync form: own loop in a background thread -----------------------------------------------
    def __enter__(self) -> Self:
        loop = asyncio.new_event_loop()
        ready = threading.Event()
        self._loop = loop
        self._thread = threading.Thread(
            target=self._run_loop, args=(loop, ready), name=self.thread_name, daemon=True
        )
        self._thread.start()
        ready.wait()
        # the timeout is applied on the loop, so a start that takes too long is cancelled there and its
        # own clean-up runs before we get the TimeoutError
        future = asyncio.run_coroutine_threadsafe(asyncio.wait_for(self.start(), self.start_timeout), loop)
        try:
            future.result()
        except BaseException:
            if not future.done():  # interrupted while waiting (KeyboardInterrupt): clean up as well
                future.cancel()
                with contextlib.suppress(BaseException):
                    asyncio.run_coroutine_threadsafe(self.stop(), loop).result(timeout=self.stop_timeout)
            self._stop_loop()
            raise
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        assert self._loop is not None, "not entered with `with`"
        try:
            asyncio.run_coroutine_threadsafe(self.stop(), self._loop).result(timeout=self.stop_timeout)
        finally:
            self._stop_loop()

    def call(self, coro: Coroutine[Any, Any, T], timeout: float = 30) -> T:
        """Run a coroutine on the private loop (sync form only) and return its result."""
        if self._loop is None:
            coro.close()
            raise RuntimeError("call() needs the sync form (`with ...`)")
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=timeout)

    @property
    def runs_own_loop(self) -> bool:
        """True when entered with `with` and called from outside the private loop's thread."""
        thread = self._thread
        return self._loop is not None and thread is not None and thread.ident != threading.get_ident()

    @staticmethod
    def _run_loop(loop: asyncio.AbstractEventLoop, ready: threading.Event) -> None:
        asyncio.set_event_loop(loop)
        loop.call_soon(ready.set)
        loop.run_forever()
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()

    def _stop_loop(self) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._loop = None
        self._thread = None
