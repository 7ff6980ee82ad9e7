"""Deadlines keyed by name, for the sans-io group state machine.

The state machine never sleeps: it schedules deadlines here (heartbeat expiry, delayed join, pending sync,
offset expiry) and its owner asks for `next_deadline()` and calls `pop_expired(now_ms)`. Rescheduling or
cancelling a key invalidates its old heap entry lazily.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)


class Timers(Generic[K]):
    def __init__(self) -> None:
        # (deadline, sequence, key): the sequence breaks ties and marks which entry of a key is live.
        self._heap: list[tuple[int, int, K]] = []
        self._live: dict[K, tuple[int, int]] = {}
        self._seq = itertools.count()

    def schedule(self, key: K, deadline_ms: int) -> None:
        seq = next(self._seq)
        self._live[key] = (deadline_ms, seq)
        heapq.heappush(self._heap, (deadline_ms, seq, key))

    def cancel(self, key: K) -> None:
        self._live.pop(key, None)

    def deadline(self, key: K) -> int | None:
        entry = self._live.get(key)
        return None if entry is None else entry[0]

    def next_deadline(self) -> int | None:
        heap = self._heap
        while heap:
            deadline, seq, key = heap[0]
            if self._live.get(key) == (deadline, seq):
                return deadline
            heapq.heappop(heap)
        return None

    def pop_expired(self, now_ms: int) -> list[K]:
        out: list[K] = []
        heap = self._heap
        while heap and heap[0][0] <= now_ms:
            deadline, seq, key = heapq.heappop(heap)
            if self._live.get(key) == (deadline, seq):
                del self._live[key]
                out.append(key)
        return out

    def __len__(self) -> int:
        return len(self._live)
