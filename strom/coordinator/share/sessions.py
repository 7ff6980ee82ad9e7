"""Share sessions (KIP-932), Kafka's ShareSessionCache: the share-partitions a member fetches from on this
broker, keyed by (group id, member id), like fetch sessions (KIP-227) but one per member.

- Epoch 0 opens a session with the request's partitions (replacing one the member had);
  SHARE_SESSION_LIMIT_REACHED once group.share.max.share.sessions are open.
- Each later request must carry the session's next epoch (it moves by one per request, wrapping from
  INT32_MAX to 1): INVALID_SHARE_SESSION_EPOCH otherwise, SHARE_SESSION_NOT_FOUND without a session. It
  adds its partitions and drops the forgotten ones.
- Epoch -1 is the member's last request: the session closes after it.
- A session belongs to the connection that opened it; when that connection goes away the session closes,
  and what its member held is released (Kafka's connection-disconnect listener).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from strom.protocol.errors import ErrorCode

INITIAL_EPOCH = 0
FINAL_EPOCH = -1
INT32_MAX = 2**31 - 1

SessionKey = tuple[str, str]  # (group id, member id)
SharePartitionKey = tuple[uuid.UUID, int]  # (topic id, partition)


@dataclass(slots=True)
class ShareSession:
    group_id: str
    member_id: str
    connection_id: str
    epoch: int = 1  # the epoch the next request must carry
    partitions: dict[SharePartitionKey, None] = field(default_factory=dict)  # in request order

    def bump(self) -> None:
        self.epoch = 1 if self.epoch == INT32_MAX else self.epoch + 1


class ShareSessionError(Exception):
    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class ShareSessionCache:
    def __init__(self, max_sessions: int = 2000) -> None:
        self.max_sessions = max_sessions
        self.sessions: dict[SessionKey, ShareSession] = {}

    def open_or_update(
        self,
        group_id: str,
        member_id: str,
        epoch: int,
        connection_id: str,
        added: list[SharePartitionKey],
        forgotten: list[SharePartitionKey],
    ) -> tuple[ShareSession, ShareSession | None]:
        """The session a request works in, and a session it replaced (whose records go back).
        Raises ShareSessionError."""
        key = (group_id, member_id)
        if epoch == INITIAL_EPOCH:
            old = self.sessions.pop(key, None)
            if len(self.sessions) >= self.max_sessions:
                if old is not None:
                    self.sessions[key] = old
                raise ShareSessionError(
                    ErrorCode.share_session_limit_reached,
                    "The limit of share sessions has been reached.",
                )
            session = ShareSession(group_id, member_id, connection_id)
            session.partitions = dict.fromkeys(added)
            self.sessions[key] = session
            return session, old
        session = self.sessions.get(key)
        if session is None:
            raise ShareSessionError(
                ErrorCode.share_session_not_found, f"Share session for member {member_id} not found."
            )
        if epoch != FINAL_EPOCH:
            if epoch != session.epoch:
                raise ShareSessionError(
                    ErrorCode.invalid_share_session_epoch,
                    f"The share session epoch {epoch} is not the expected {session.epoch}.",
                )
            session.bump()
        for tp in forgotten:
            session.partitions.pop(tp, None)
        for tp in added:
            session.partitions.setdefault(tp, None)
        session.connection_id = connection_id
        return session, None

    def close(self, group_id: str, member_id: str) -> ShareSession | None:
        return self.sessions.pop((group_id, member_id), None)

    def close_connection(self, connection_id: str) -> list[ShareSession]:
        closed = [s for s in self.sessions.values() if s.connection_id == connection_id]
        for s in closed:
            del self.sessions[(s.group_id, s.member_id)]
        return closed
