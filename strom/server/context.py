"""The context every API handler receives: who asked (principal, host), through which listener, with
which API and version, on which broker.

Handlers ask the authorizer through `ctx.authorize(...)` (strom.security.authorizer); they never see
credentials. `listener_name` picks the endpoints Metadata, FindCoordinator and DescribeCluster answer with
(a client is told the addresses of the listener it connected through, as in Kafka).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from strom.security.authorizer import AclOperation, PatternType, ResourceType
from strom.security.principal import ANONYMOUS, KafkaPrincipal

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
    listener_name: str = "PLAINTEXT"
    security_protocol: str = "PLAINTEXT"
    principal: KafkaPrincipal = ANONYMOUS
    token_authenticated: bool = False
    """The connection authenticated with a delegation token (SCRAM `tokenauth`, KIP-48): it may not
    create, renew, expire or describe tokens."""
    forwarded: bool = False
    """Served from an Envelope (KIP-590): the forwarding broker has checked the client's connection."""
    header_version: int = 1
    effects_applied: Callable[[], None] = lambda: None
    """Called by a handler once everything its request changes is in place and what remains is waiting
    (for replication, a fetch's min_bytes, a rebalance). The connection starts the next request's handler
    only then (or when this one returns), so a connection's requests take effect in request order, as
    in Kafka, while waits of pipelined requests overlap. Calling it again does nothing."""

    request_size: int = 0
    """The request's size in bytes (header and body), what producer_byte_rate counts."""
    throttle: Callable[[int], None] = lambda _ms: None
    """Called with a throttle time (ms) a handler answered: the connection reads none of this client's
    requests for that long (KIP-219, strom.security.quotas.throttling)."""

    request_throttle: Callable[[], int] = lambda: 0
    """Counts the handler's time on the event loop so far against request_percentage and answers the
    throttle time, once (Kafka's ClientRequestQuotaManager.maybeRecordAndGetThrottleTimeMs, called while
    the response is built); the handler then mutes the connection itself (`throttle`) and writes the
    time into its response. 0 when no request quota applies (strom.security.quotas.throttling)."""

    def now_ms(self) -> int:
        return int(self.broker.clock() * 1000)

    def authorize(
        self,
        operation: AclOperation,
        resource_type: ResourceType,
        resource_name: str,
        pattern: PatternType = PatternType.LITERAL,
    ) -> bool:
        """May this request's principal, from its host, do `operation` on the resource?"""
        return self.broker.authorizer.authorize(
            self.principal, self.client_host, operation, resource_type, resource_name, pattern
        )
