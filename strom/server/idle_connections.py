"""Kafka's `connections.max.idle.ms`: close client connections on which no bytes have moved for that long.

Kafka's Selector keeps its channels in activity order and closes the ones idle past the limit; here one
periodic sweep walks the broker's connections (no timer per connection or request), so a connection is
closed between `max_idle` and `max_idle` plus one sweep period after its last activity. The period is a
tenth of the limit, kept between 50 ms and 10 s. A negative limit disables the sweep, as in Kafka. A
connection waiting for a response (a long-polling fetch, a produce awaiting acks) is not idle.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable
from typing import Protocol

log = logging.getLogger("strom.idle_connections")

__all__ = ["IdleConnectionSweeper", "sweep_period"]

_MIN_PERIOD_S = 0.05
_MAX_PERIOD_S = 10.0


class IdleAware(Protocol):
    def idle_since(self) -> float | None: ...

    def close_idle(self) -> None: ...


def sweep_period(max_idle_ms: int) -> float:
    """Seconds between sweeps for a limit of `max_idle_ms`."""
    return min(max(max_idle_ms / 10_000, _MIN_PERIOD_S), _MAX_PERIOD_S)


class IdleConnectionSweeper:
    """Closes connections idle longer than `max_idle_ms`; `clock` is the monotonic clock the connections
    stamp their activity with (the event loop's)."""

    def __init__(
        self,
        connections: Callable[[], Iterable[IdleAware]],
        max_idle_ms: int,
        clock: Callable[[], float],
    ) -> None:
        self._connections = connections
        self.max_idle_ms = max_idle_ms
        self._clock = clock
        self._task: asyncio.Task[None] | None = None

    @property
    def enabled(self) -> bool:
        return self.max_idle_ms >= 0

    def sweep(self) -> int:
        """Close every connection idle past the limit; returns how many were closed."""
        deadline = self._clock() - self.max_idle_ms / 1000
        closed = 0
        for conn in list(self._connections()):
            since = conn.idle_since()
            if since is not None and since < deadline:
                conn.close_idle()
                closed += 1
        if closed:
            log.debug("closed %d connections idle over %d ms", closed, self.max_idle_ms)
        return closed

    def start(self) -> None:
        if self.enabled and self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        period = sweep_period(self.max_idle_ms)
        while True:
            await asyncio.sleep(period)
            try:
                self.sweep()
            except Exception:  # never let one bad connection end the sweeping
                log.exception("idle connection sweep failed")
