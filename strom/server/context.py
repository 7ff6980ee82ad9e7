"""The context every API handler receives: who asked, with which API and version, on which broker."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from strom.server.broker import Broker


@dataclass(frozen=True, slots=True)
class RequestContext:
    """One request's identity. `broker` gives handlers the config, clock, cluster metadata
    (`broker.metadata`), logs (`broker.log_manager`) and partitions (`broker.replica_manager`)."""

    broker: Broker
    api_key: int
    api_version: int
    correlation_id: int
    client_id: str | None
    client_host: str
    connection_id: str
    header_version: int = 1
    effects_applied: Callable[[], None] = lambda: None
    """Called by a handler once everything its request changes is in place and what remains is waiting
    (for replication, a fetch's min_bytes, a rebalance). The connection starts the next request's handler
    only then (or when this one returns), so a connection's requests take effect in request order, as
    in Kafka, while waits of pipelined requests overlap. Calling it again does nothing."""

    def now_ms(self) -> int:
        return int(self.broker.clock() * 1000)
