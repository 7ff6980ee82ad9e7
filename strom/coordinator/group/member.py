"""One member of a classic group: identity, timeouts, supported protocols, assignment, and the replies it
is waiting for (a JoinGroup parked until the rebalance completes, a SyncGroup parked until the leader's
assignment is written)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(slots=True)
class Member:
    member_id: str
    group_instance_id: str | None
    client_id: str
    client_host: str
    rebalance_timeout_ms: int
    session_timeout_ms: int
    protocol_type: str
    protocols: list[tuple[str, bytes]]
    assignment: bytes = b""
    awaiting_join: Callable[[Any], None] | None = None
    awaiting_sync: Callable[[Any], None] | None = None
    # A member that joined for the first time in this rebalance: its heartbeat deadline is the (long)
    # new-member join timeout until the join completes (KIP-394).
    is_new: bool = False
    supports_skip_assignment: bool = False
    heartbeat_satisfied: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def is_static(self) -> bool:
        return self.group_instance_id is not None

    def protocol_names(self) -> list[str]:
        return [name for name, _ in self.protocols]

    def metadata_for(self, protocol: str) -> bytes:
        for name, metadata in self.protocols:
            if name == protocol:
                return metadata
        raise KeyError(protocol)

    def matches(self, protocols: list[tuple[str, bytes]]) -> bool:
        return self.protocols == protocols

    def vote(self, candidates: set[str]) -> str:
        """The member's most preferred protocol among the group's candidates."""
        for name, _ in self.protocols:
            if name in candidates:
                return name
        raise ValueError("member supports none of the candidate protocols")
