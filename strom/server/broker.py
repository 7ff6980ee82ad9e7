"""The broker process: owns the log manager, the cluster metadata backend, the replica manager, the
purgatories, the API registry and the listener, and runs them in order.

Start-up: bind the listener (so the advertised port is known even for port 0), load the logs, start the
cluster backend (which publishes the metadata image; the replica manager follows it and opens the
partitions), then accept connections. The backend is ZooKeeper (strom.cluster.zookeeper) when
zookeeper.connect is set, else the single-node local backend. Shutdown: in a cluster, first Kafka's
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
from urllib.parse import urlsplit

from strom.cluster.metadata import BrokerInfo
from strom.config import BrokerConfig
from strom.protocol.registry import ApiRegistry
from strom.server.connection import Connection
from strom.server.fetch_sessions import FetchSessionCache
from strom.server.frame_protocol import FrameProtocol
from strom.server.idle_connections import IdleConnectionSweeper
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
    ) -> None:
        from strom.apis import build_registry
        from strom.replication.replica_manager import ReplicaManager
        from strom.storage.log_manager import LogManager

        self.config = config
        self.clock = clock
        self.node_id = config.node_id
        self.registry = registry if registry is not None else build_registry()
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
        self.metadata = None  # type: ignore[assignment]  # the ClusterBackend, created in start()
        from strom.metrics import BrokerMetrics

        self.metrics = BrokerMetrics(self)
        self.shutdown_timeout = shutdown_timeout
        self._server: asyncio.base_events.Server | None = None
        self._connections: set[Connection] = set()
        self._next_connection = 0
        self._idle_sweeper: IdleConnectionSweeper | None = None
        self._bound: tuple[str, int] | None = None
        self._advertised: tuple[str, int] | None = None
        self._stopped = asyncio.Event()
        self._started = False

    # --- addresses --------------------------------------------------------------------------------
    @property
    def bound_address(self) -> tuple[str, int]:
        if self._bound is None:
            raise RuntimeError("broker not started")
        return self._bound

    @property
    def advertised_address(self) -> tuple[str, int]:
        if self._advertised is None:
            raise RuntimeError("broker not started")
        return self._advertised

    @property
    def broker_info(self) -> BrokerInfo:
        host, port = self.advertised_address
        return BrokerInfo(self.node_id, host, port, self.config.get("broker.rack"))

    def _advertise(self, bound_host: str, bound_port: int) -> tuple[str, int]:
        raw = self.config.get("advertised.listeners")
        if raw:
            _name, host, port = parse_listener(str(raw))
            if host and port:
                return host, port
        _name, host, port = parse_listener(str(self.config.get("listeners")))
        if host in ("", "0.0.0.0", "::"):
            host = socket.getfqdn()
        return host, bound_port

    # --- lifecycle --------------------------------------------------------------------------------
    async def start(self) -> None:
        from strom.cluster.local import LocalBackend

        _name, host, port = parse_listener(str(self.config.get("listeners")))
        max_request = int(self.config.get("socket.request.max.bytes"))
        self._server = await asyncio.get_running_loop().create_server(
            lambda: FrameProtocol(max_request, self._on_connection),
            host=host or None,
            port=port,
            reuse_address=True,
            start_serving=False,
        )
        sock = self._server.sockets[0]
        bound = sock.getsockname()
        self._bound = (bound[0], bound[1])
        self._advertised = self._advertise(bound[0], bound[1])
        await self.metrics.start()

        data_dir = self.config.log_dirs[0]
        data_dir.mkdir(parents=True, exist_ok=True)
        await self.log_manager.start()
        zk_connect = self.config.get("zookeeper.connect")
        if zk_connect:
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
        await self.metadata.start()
        await self.group_coordinator.start()
        await self.txn_coordinator.start()
        await self._server.start_serving()
        self._idle_sweeper = IdleConnectionSweeper(
            lambda: self._connections,
            int(self.config.get("connections.max.idle.ms")),
            asyncio.get_running_loop().time,
        )
        self._idle_sweeper.start()
        self._started = True
        log.info("broker %d listening on %s:%d", self.node_id, *self._bound)

    async def stop(self) -> None:
        """Stop accepting, finish in-flight requests, then flush and checkpoint everything."""
        if self._stopped.is_set():
            return
        self._stopped.set()
        await self._controlled_shutdown()
        if self._server is not None:
            self._server.close()
        if self._idle_sweeper is not None:
            await self._idle_sweeper.stop()
        conns = list(self._connections)
        if conns:
            await asyncio.wait(
                [asyncio.create_task(c.shutdown()) for c in conns], timeout=self.shutdown_timeout
            )
        for conn in list(self._connections):
            conn.abort()
        if self._server is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._server.wait_closed(), timeout=1.0)
        await self.replica_manager.stop_replication()
        await self.txn_coordinator.stop()
        await self.group_coordinator.stop()
        await self.replica_manager.stop()
        if self.metadata is not None:
            await self.metadata.stop()
        await self.log_manager.stop()
        await self.metrics.stop()
        log.info("broker %d stopped", self.node_id)

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
    async def _on_connection(self, stream: FrameProtocol) -> None:
        if self._stopped.is_set():
            stream.close()
            return
        self._next_connection += 1
        conn = Connection(self, stream, f"conn-{self._next_connection}")
        self._connections.add(conn)
        try:
            await conn.run()
        finally:
            self._connections.discard(conn)
