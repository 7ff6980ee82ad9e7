"""Incremental fetch sessions (KIP-227).

A consumer opens a session with session_id 0 / epoch 0 and gets a session id back; later requests send
only the partitions that changed (with epoch n+1), and the broker answers only partitions with news
(records, a changed high watermark, log start offset, or an error). Full fetches (epoch -1) use no
session. Errors: FETCH_SESSION_ID_NOT_FOUND for an unknown id, INVALID_FETCH_SESSION_EPOCH for a wrong
epoch. The cache holds at most `max.incremental.fetch.session.cache.slots` sessions, evicting the least
recently used.
"""

from __future__ import annotations

import random
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

from strom.protocol.errors import ErrorCode, KafkaError

__all__ = ["FetchSession", "FetchSessionCache", "PartitionData", "SessionError"]

FINAL_EPOCH = -1
INITIAL_EPOCH = 0


class SessionError(KafkaError):
    pass


@dataclass(slots=True)
class PartitionData:
    """What the session remembers of one partition: the client's request and what we last told it."""

    fetch_offset: int
    max_bytes: int
    log_start_offset: int = -1
    last_high_watermark: int = -1
    last_log_start_offset: int = -1


@dataclass(slots=True)
class FetchSession:
    session_id: int
    epoch: int
    partitions: OrderedDict[tuple[str, int], PartitionData] = field(default_factory=OrderedDict)
    last_used: float = 0.0


class FetchSessionCache:
    def __init__(
        self, max_slots: int, *, clock: Callable[[], float], rng: random.Random | None = None
    ) -> None:
        self.max_slots = max_slots
        self._clock = clock
        self._rng = rng or random.Random()
        self._sessions: OrderedDict[int, FetchSession] = OrderedDict()

    def __len__(self) -> int:
        return len(self._sessions)

    def create(self) -> FetchSession | None:
        """A new session, or None when the cache has no room (the fetch then runs sessionless)."""
        if self.max_slots <= 0:
            return None
        while len(self._sessions) >= self.max_slots:
            self._sessions.popitem(last=False)
        while True:
            session_id = self._rng.randint(1, 2**31 - 1)
            if session_id not in self._sessions:
                break
        session = FetchSession(session_id, INITIAL_EPOCH + 1, last_used=self._clock())
        self._sessions[session_id] = session
        return session

    def get(self, session_id: int, epoch: int) -> FetchSession:
        """The session for an incremental fetch; checks and advances its epoch."""
        session = self._sessions.get(session_id)
        if session is None:
            raise SessionError("unknown fetch session", ErrorCode.fetch_session_id_not_found)
        if epoch != session.epoch:
            raise SessionError("wrong fetch session epoch", ErrorCode.invalid_fetch_session_epoch)
        session.epoch = epoch + 1 if epoch < 2**31 - 1 else 1
        session.last_used = self._clock()
        self._sessions.move_to_end(session_id)
        return session

    def remove(self, session_id: int) -> FetchSession | None:
        return self._sessions.pop(session_id, None)
