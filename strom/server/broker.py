"""The broker process: owns the log manager, the cluster metadata backend, the replica manager, the
purgatories, the API registry and the listeners, and runs them in order.

Listeners are Kafka's named listeners (strom.server.listeners): one server per entry of `listeners`, each
with its security (strom.security.channel: a TLS context for SSL listeners, the principal of each
connection), every connection knowing the listener it came through. The broker registers the advertised
endpoint of every listener; Metadata answers each client with the endpoints of its own listener, and
followers and the transaction markers use `inter.broker.listener.name`'s. Listener settings are checked
when the Broker is built, so a bad configuration fails before anything is bound.

Start-up: bind the listeners (so the advertised ports are known even for port 0), load the logs, start the
cluster backend (which publishes the metadata image; the replica manager follows it and opens the
partitions), then accept connections. The backend is KRaft (strom.cluster.kraft.broker) when
process.roles is set, ZooKeeper (strom.cluster.zookeeper) when zookeeper.connect is set, else the
single-node local backend. Shutdown: in a cluster, first Kafka's
controlled shutdown (leadership moves to other ISR members while this broker still serves); then stop
accepting, let every connection finish and answer the requests it already read, stop the replica fetchers,
then write producer-state snapshots, flush the logs, write checkpoints and the clean-shutdown marker
(`LogManager.stop`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from strom.cluster.metadata import BrokerInfo, Endpoint
from strom.config import BrokerConfig, ConfigError
from strom.protocol.registry import ApiRegistry
from strom.security.acl_authorizer import AclAuthorizer, authorizer_enabled
from strom.security.acl_store import AclStore, LocalAclStore
from strom.security.authorizer import AllowAll, Authorizer
from strom.security.channel import ListenerSecurity, inter_broker_ssl_context
from strom.security.delegation_tokens import TokenManager, TokenSettings
from strom.security.quotas import QuotaManager, QuotaSettings
from strom.security.quotas.store import QuotaStore, quota_store_for
from strom.security.sasl.client import SaslClientSettings
from strom.security.scram_store import ScramStore, scram_store_for
from strom.security.token_store import token_store_for
from strom.server.connection import Connection
from strom.server.connection_limits import ConnectionLimits, Verdict
from strom.server.fetch_sessions import FetchSessionCache
from strom.server.frame_protocol import FrameProtocol
from strom.server.idle_connections import IdleConnectionSweeper
from strom.server.listeners import parse_listeners
from strom.server.producer_ids import ProducerIdManager

log = logging.getLogger("strom.broker")

__all__ = ["Broker", "parse_listener"]


def parse_listener(value: str) -> tuple[str, str, int]:
    """`PLAINTEXT://host:port` -> (name, host, port); the first listener of a comma-separated list."""
    first = value.split(",")[0].strip()
    parts = urlsplit(first)
    name = (parts.scheme or "PLAINTEXT").upper()
    host = parts.hostname or ""
    port = parts.port if parts.port is not None else 9092
    return name, host, port


class Broker:
    """One Strom broker. `await start()`, then serve until `await stop()`."""

    def __init__(
        self,
        config: BrokerConfig,
        *,
        clock: Callable[[], float] = time.time,
        registry: ApiRegistry | None = None,
        shutdown_timeout: float = 10.0,
        raft: Any = None,
        on_fatal: Callable[[BaseException], None] | None = None,
    ) -> None:
        from strom.apis import build_registry
        from strom.replication.replica_manager import ReplicaManager
        from strom.storage.log_manager import LogManager

        self.config = config
        self.clock = clock
        self.node_id = config.node_id
        # ConfigError here, before anything is bound or loaded, for bad listeners or TLS settings
        self.listeners = parse_listeners(config)
        self.listener_security = {
            listener.name: ListenerSecurity.build(config, listener) for listener in self.listeners.listeners
        }
        self.inter_broker_listener = self.listeners.inter_broker
        inter = self.listeners.get(self.inter_broker_listener) or self.listeners.advertised_for(
            self.inter_broker_listener
        )
        self.inter_broker_ssl = inter_broker_ssl_context(config, inter) if inter is not None else None
        # followers and markers authenticate with sasl.mechanism.inter.broker.protocol on a SASL listener
        self.inter_broker_sasl = SaslClientSettings.inter_broker(config, inter) if inter is not None else None
        self.scram_store: ScramStore | None = None  # SCRAM credentials, in this mode's place (start())
        self.delegation_tokens: TokenManager | None = None  # delegation tokens (KIP-48; start())
        self._token_expiry: asyncio.Task[None] | None = None
        self.authorizer: Authorizer = AllowAll()
        self.acl_authorizer: AclAuthorizer | None = None
        self.acl_store: AclStore | None = None
        try:
            acls_on = authorizer_enabled(config)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        if acls_on:
            self.acl_authorizer = AclAuthorizer.from_config(config)
            self.authorizer = self.acl_authorizer
        # client quotas (their table comes from this mode's store in start()) and connection limits
        self.quotas = QuotaManager(QuotaSettings.from_config(config), clock=clock)
        self.quota_store: QuotaStore | None = None
        self.connection_limits = ConnectionLimits(
            config,
            self.inter_broker_listener,
            self.listeners.names,
            ip_rate=self.quotas.ip_connection_rate,
            clock_ms=lambda: int(time.monotonic() * 1000),
        )
        self.registry = registry if registry is not None else build_registry()
        if config.get("process.roles"):
            from strom.cluster.kraft.forwarding import forwarding_registry

            # KRaft: the admin requests the controller decides go to it in an Envelope (KIP-590)
            self.registry = forwarding_registry(self.registry)
        self.log_manager = LogManager(config.log_dirs, config, clock=clock)
        self.replica_manager = ReplicaManager(self)
        # Kafka never compacts at or above a partition's last stable offset, min(high watermark, first
        # unstable offset) (0: no partition yet, so wait)
        self.log_manager.cleanable_upper_bound = lambda topic, partition: (
            part.last_stable_offset if (part := self.replica_manager.get_partition(topic, partition)) else 0
        )
        from strom.coordinator.group.coordinator import GroupCoordinator

        self.group_coordinator = GroupCoordinator(self)
        self.fetch_sessions = FetchSessionCache(
            max_slots=int(config.get("max.incremental.fetch.session.cache.slots")), clock=clock
        )
        self.producer_ids = ProducerIdManager(config.log_dirs[0])
        from strom.coordinator.txn.coordinator import TransactionCoordinator

        self.txn_coordinator = TransactionCoordinator(self)
        from strom.coordinator.share.manager import SharePartitionManager
        from strom.coordinator.share.state_coordinator import ShareCoordinator

        # share groups (KIP-932): the share coordinator (__share_group_state) and the share-partitions
        # of the partitions led here
        self.share_coordinator = ShareCoordinator(self)
        self.share_partitions = SharePartitionManager(self)
        self.metadata = None  # type: ignore[assignment]  # the ClusterBackend, created in start()
        from strom.telemetry.manager import ClientTelemetry
        from strom.telemetry.subscriptions import FILE_NAME as CLIENT_METRICS_FILE

        # client telemetry (KIP-714): CLIENT_METRICS subscriptions and the pushed metrics, exported below
        self.client_telemetry = ClientTelemetry(
            config.log_dirs[0] / CLIENT_METRICS_FILE, clock, int(config.get("telemetry.max.bytes"))
        )
        from strom.metrics import BrokerMetrics

        self.metrics = BrokerMetrics(self)
        self.shutdown_timeout = shutdown_timeout
        # KRaft (process.roles): a combined node's Raft replica, shared with its controller half
        self._raft = raft
        self._on_fatal = on_fatal
        self._servers: list[asyncio.base_events.Server] = []
        self._connections: set[Connection] = set()
        self._next_connection = 0
        self._idle_sweeper: IdleConnectionSweeper | None = None
        self.bound_addresses: dict[str, tuple[str, int]] = {}
        self.endpoints: tuple[Endpoint, ...] = ()
        self._stopped = asyncio.Event()
        self._started = False

    # --- addresses --------------------------------------------------------------------------------
    @property
    def bound_address(self) -> tuple[str, int]:
        """Where the first listener is bound."""
        if not self.bound_addresses:
            raise RuntimeError("broker not started")
        return next(iter(self.bound_addresses.values()))

    @property
    def advertised_address(self) -> tuple[str, int]:
        """The first advertised endpoint (the one `strom serve` prints)."""
        if not self.endpoints:
            raise RuntimeError("broker not started")
        return self.endpoints[0].host, self.endpoints[0].port

    @property
    def broker_info(self) -> BrokerInfo:
        host, port = self.advertised_address
        return BrokerInfo(self.node_id, host, port, self.config.get("broker.rack"), self.endpoints)

    def _advertise(self) -> tuple[Endpoint, ...]:
        """Each advertised listener's endpoint: its port 0 is the port bound for that name, an empty or
        wildcard host the bound host or else this machine's name."""
        endpoints = []
        for listener in self.listeners.advertised:
            bound_host, bound_port = self.bound_addresses.get(listener.name, ("", 0))
            host, port = listener.host, listener.port or bound_port
            if host in ("", "0.0.0.0", "::"):
                host = bound_host if bound_host not in ("", "0.0.0.0", "::") else socket.getfqdn()
            endpoints.append(Endpoint(listener.name, host, port, listener.security_protocol))
        return tuple(endpoints)

    # --- lifecycle --------------------------------------------------------------------------------
    async def start(self) -> None:
        from strom.cluster.local import LocalBackend

        max_request = int(self.config.get("socket.request.max.bytes"))
        loop = asyncio.get_running_loop()
        try:
            for listener in self.listeners.listeners:
                if listener.name in self.listeners.controller_names:
                    continue  # a KRaft controller listener is the controller's (strom.raft.controller_server)
                security = self.listener_security[listener.name]
                server = await loop.create_server(
                    self._protocol_factory(max_request, security),
                    host=listener.host or None,
                    port=listener.port,
                    reuse_address=True,
                    start_serving=False,
                    ssl=security.ssl_context,
                )
                self._servers.append(server)
                bound = server.sockets[0].getsockname()
                self.bound_addresses[listener.name] = (bound[0], bound[1])
        except BaseException:
            for server in self._servers:
                server.close()
            raise
        self.endpoints = self._advertise()
        await self.metrics.start()

        data_dir = self.config.log_dirs[0]
        data_dir.mkdir(parents=True, exist_ok=True)
        await self.log_manager.start()
        zk_connect = self.config.get("zookeeper.connect")
        if self.config.get("process.roles"):
            from strom.cluster.kraft.broker import KRaftBackend

            self.metadata = KRaftBackend(
                self.broker_info,
                self.config,
                clock=self.clock,
                raft=self._raft,
                on_fatal=self._on_fatal,
                log_manager=self.log_manager,
            )
        elif zk_connect:
            from strom.cluster.zookeeper import ZooKeeperBackend

            self.metadata = ZooKeeperBackend(str(zk_connect), self.broker_info, self.config, clock=self.clock)
        else:
            self.metadata = LocalBackend(Path(data_dir), self.broker_info, self.config, clock=self.clock)
        claim_block = getattr(self.metadata, "claim_producer_id_block", None)
        if claim_block is not None:
            self.producer_ids.claim_block = claim_block  # cluster-wide ids, not the local file
        self.metadata.add_listener(self.replica_manager.on_metadata_change)
        self.metadata.add_listener(self.group_coordinator.on_metadata_change)
        self.metadata.add_listener(self.txn_coordinator.on_metadata_change)
        self.metadata.add_listener(self.share_coordinator.on_metadata_change)
        await self.metadata.start()
        self.scram_store = scram_store_for(self.metadata, Path(data_dir))
        self.delegation_tokens = TokenManager(
            TokenSettings.from_config(self.config), token_store_for(self.metadata, Path(data_dir)),
            lambda: int(self.clock() * 1000),
        )
        if self.delegation_tokens.enabled:
            self._token_expiry = asyncio.create_task(self.delegation_tokens.run_expiry())
        await self._start_acls(Path(data_dir))
        self.quota_store = quota_store_for(self.metadata, Path(data_dir))
        await self.quota_store.start(self.quotas.load)
        await self.group_coordinator.start()
        await self.txn_coordinator.start()
        await self.share_coordinator.start()
        await self.share_partitions.start()
        for server in self._servers:
            await server.start_serving()
        self._idle_sweeper = IdleConnectionSweeper(
            lambda: self._connections,
            int(self.config.get("connections.max.idle.ms")),
            asyncio.get_running_loop().time,
        )
        self._idle_sweeper.start()
        self._started = True
        log.info(
            "broker %d listening on %s",
            self.node_id,
            ", ".join(f"{name}://{host}:{port}" for name, (host, port) in self.bound_addresses.items()),
        )

    async def stop(self) -> None:
        """Stop accepting, finish in-flight requests, then flush and checkpoint everything."""
        if self._stopped.is_set():
            return
        self._stopped.set()
        await self._controlled_shutdown()
        for server in self._servers:
            server.close()
        if self._idle_sweeper is not None:
            await self._idle_sweeper.stop()
        if self._token_expiry is not None:
            self._token_expiry.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._token_expiry
        conns = list(self._connections)
        if conns:
            await asyncio.wait(
                [asyncio.create_task(c.shutdown()) for c in conns], timeout=self.shutdown_timeout
            )
        for conn in list(self._connections):
            conn.abort()
        for server in self._servers:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(server.wait_closed(), timeout=1.0)
        await self.replica_manager.stop_replication()
        await self.share_partitions.stop()
        await self.share_coordinator.stop()
        await self.txn_coordinator.stop()
        await self.group_coordinator.stop()
        await self.replica_manager.stop()
        if self.acl_store is not None:
            await self.acl_store.stop()
        if self.quota_store is not None:
            await self.quota_store.stop()
        if self.metadata is not None:
            await self.metadata.stop()
        await self.log_manager.stop()
        await self.metrics.stop()
        log.info("broker %d stopped", self.node_id)

    async def _start_acls(self, data_dir: Path) -> None:
        """With an ACL authorizer, load the ACLs of this mode's store before any request is served:
        the backend's own when it offers one (`acl_store()`: the KRaft backend's AccessControlEntryRecords),
        ZooKeeper's /kafka-acl tree, or the single node's acls.json."""
        if self.acl_authorizer is None:
            return
        from strom.cluster.local import LocalBackend
        from strom.cluster.zookeeper import ZooKeeperBackend

        own_store = getattr(self.metadata, "acl_store", None)
        if callable(own_store):
            self.acl_store = own_store()
        elif isinstance(self.metadata, ZooKeeperBackend):
            from strom.security.zk_acl_store import ZkAclStore

            self.acl_store = ZkAclStore(self.metadata.store.client, clock=self.clock)
        else:
            if not isinstance(self.metadata, LocalBackend):
                # a backend without a shared ACL store yet: each node keeps its own acls.json
                log.warning("broker %d keeps its ACLs in %s, not in the metadata", self.node_id, data_dir)
            self.acl_store = LocalAclStore(data_dir)
        await self.acl_store.start(self.acl_authorizer.load)

    async def _controlled_shutdown(self) -> None:
        """Kafka's controlled shutdown: while still serving, ask the controller to move leadership away
        and drop this broker from ISRs, so clients fail over without waiting for the session timeout."""
        shutdown = getattr(self.metadata, "controlled_shutdown", None)
        if shutdown is None or not self._started or not self.config.get("controlled.shutdown.enable"):
            return
        try:
            still_led = await shutdown(timeout=self.shutdown_timeout)
        except Exception as exc:  # never let it block the shutdown itself
            log.warning("controlled shutdown of broker %d failed: %r", self.node_id, exc)
            return
        if still_led:
            log.info("broker %d still leads %d partitions nobody else can take", self.node_id, len(still_led))

    async def wait_stopped(self) -> None:
        await self._stopped.wait()

    # --- connections ------------------------------------------------------------------------------
    def _protocol_factory(self, max_request: int, security: ListenerSecurity) -> Callable[[], FrameProtocol]:
        # a SASL listener's connections start capped at sasl.server.max.receive.size
        limit = security.frame_limit(max_request)
        return lambda: FrameProtocol(limit, lambda stream: self._on_connection(stream, security))

    async def _on_connection(self, stream: FrameProtocol, security: ListenerSecurity) -> None:
        # an SSL listener's connections arrive here after their TLS handshake succeeded
        if self._stopped.is_set():
            stream.close()
            return
        # KIP-612 and friends: wait for a slot, or refuse (strom.server.connection_limits)
        peer = stream.get_extra_info("peername")
        ip = str(peer[0]) if peer else ""
        listener = security.listener.name
        verdict, delay_ms = await self.connection_limits.admit(listener, ip)
        if verdict == Verdict.THROTTLED:
            log.info("%s connection from %s over its connection_creation_rate: closing in %d ms",
                     listener, ip, delay_ms)
            await asyncio.sleep(delay_ms / 1000)
            stream.close()
            return
        try:
            if verdict == Verdict.CLOSE:
                log.info("%s connection from %s refused: over max.connections.per.ip", listener, ip)
                stream.close()
                return
            await self._serve(stream, security)
        finally:
            await self.connection_limits.release(listener, ip)

    async def _serve(self, stream: FrameProtocol, security: ListenerSecurity) -> None:
        self._next_connection += 1
        try:
            conn = Connection(self, stream, f"conn-{self._next_connection}", security)
        except ValueError as exc:  # no ssl.principal.mapping.rules rule names the client certificate
            log.warning("%s connection refused: %s", security.listener.name, exc)
            stream.close()
            return
        self._connections.add(conn)
        try:
            await conn.run()
        finally:
            self._connections.discard(conn)
            # a share-group consumer's records go back to the others when its connection goes away
            self.share_partitions.connection_closed(conn.connection_id)
