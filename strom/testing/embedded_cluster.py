"""`EmbeddedCluster(n)`: n real Strom brokers (the `Broker` class `strom serve` runs) in this process, on
loopback, sharing one ZooKeeper, for tests that need replication, leader fail-over or several brokers.

    with EmbeddedCluster(3) as cluster:                  # own event loop in a background thread
        Producer({"bootstrap.servers": cluster.bootstrap_servers, "acks": "all"})
        cluster.stop_broker(cluster.leader("orders", 0))  # leadership moves to another ISR member
        cluster.start_broker(2)

    async with EmbeddedCluster(3) as cluster:            # on the running event loop
        await cluster.stop_broker(1)

Without `zk_connect`, the cluster starts its own ZooKeeper (`ZooKeeperServer`: Debian's package, a free
port) and uses a fresh chroot in it; a given connect string is used as is (add a chroot to share a
ZooKeeper between clusters). Brokers get node ids 1..n, the dev preset of `EmbeddedBroker` with the
internal topics (`__consumer_offsets`, `__transaction_state`) replicated min(3, n) times, a data directory
each under one temporary root, and a port chosen on first start and kept across `stop_broker` /
`start_broker`, so `bootstrap_servers` stays valid. `stop_broker` is Kafka's clean shutdown (controlled
shutdown first, then the ZooKeeper session closes), so the controller moves leadership at once.
Start-up returns once every broker sees all the others and a controller is elected. Brokers, ZooKeeper
and the temporary directories are removed on exit, also when start-up fails or is cancelled.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import tempfile
import time
import uuid
from collections.abc import Awaitable, Coroutine, Generator, Mapping
from pathlib import Path
from typing import Any, Self

from strom.config import BrokerConfig
from strom.server.broker import Broker
from strom.testing.embedded import DEV_PRESET
from strom.testing.loop_thread import LoopThreadContext
from strom.testing.zookeeper import ZooKeeperServer

__all__ = ["EmbeddedCluster", "cluster_preset"]


def cluster_preset(n: int) -> dict[str, str]:
    """The dev preset with internal topics replicated over min(3, n) brokers."""
    rf = str(min(3, n))
    return {
        **DEV_PRESET,
        "offsets.topic.replication.factor": rf,
        "transaction.state.log.replication.factor": rf,
    }


class _Done:
    """What `stop_broker` / `start_broker` return in the sync form: the work is done, awaiting is a no-op,
    so the same code runs in both forms."""

    def __await__(self) -> Generator[Any, None, None]:
        yield from ()


class EmbeddedCluster(LoopThreadContext):
    """n in-process brokers on one ZooKeeper; a sync and an async context manager."""

    thread_name = "strom-embedded-cluster"
    start_timeout = 120.0

    def __init__(
        self,
        n: int = 3,
        zk_connect: str | None = None,
        overrides: Mapping[str, Any] | None = None,
        *,
        ready_timeout: float = 30.0,
        shutdown_timeout: float = 5.0,
    ) -> None:
        if n < 1:
            raise ValueError(f"a cluster needs at least one broker, not {n}")
        self.n = n
        self.node_ids = list(range(1, n + 1))
        self.zk_connect = zk_connect
        self.zookeeper: ZooKeeperServer | None = None
        self.root: Path | None = None
        self.brokers: dict[int, Broker] = {}
        self.ports: dict[int, int] = {}
        props = cluster_preset(n)
        props.update(
            {k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in (overrides or {}).items()}
        )
        self._props = props
        self._own_zookeeper = zk_connect is None
        self._ready_timeout = ready_timeout
        self._shutdown_timeout = shutdown_timeout
        self._zk_starting: asyncio.Future[Any] | None = None

    # --- addresses and state ------------------------------------------------------------------------
    def address(self, node_id: int) -> str:
        if node_id not in self.ports:
            raise KeyError(f"broker {node_id} was never started")
        return f"127.0.0.1:{self.ports[node_id]}"

    @property
    def bootstrap_servers(self) -> str:
        """Every broker's address, stopped ones included (their ports are kept for a restart)."""
        if not self.ports:
            raise RuntimeError("cluster not started")
        return ",".join(self.address(i) for i in sorted(self.ports))

    def data_dir(self, node_id: int) -> Path:
        if self.root is None:
            raise RuntimeError("cluster not started")
        return self.root / f"broker-{node_id}"

    def config(self, node_id: int) -> BrokerConfig:
        """Broker `node_id`'s configuration: the preset, the overrides, then its own identity."""
        if self.zk_connect is None:
            raise RuntimeError("cluster not started")
        props = dict(self._props)
        props.update(
            {
                "zookeeper.connect": self.zk_connect,
                "node.id": str(node_id),
                "log.dirs": str(self.data_dir(node_id)),
                "listeners": f"PLAINTEXT://127.0.0.1:{self.ports.get(node_id, 0)}",
            }
        )
        return BrokerConfig(props)

    @property
    def controller_id(self) -> int:
        """The controller as the running brokers see it (-1 when none is known)."""
        for broker in self.brokers.values():
            if broker.metadata is not None:
                return int(broker.metadata.image.controller_id)
        return -1

    def leader(self, topic: str, partition: int = 0) -> int:
        """The partition's leader as the running brokers see it (-1 when unknown or offline)."""
        for broker in self.brokers.values():
            state = broker.metadata.image.partition(topic, partition) if broker.metadata else None
            if state is not None:
                return int(state.leader)
        return -1

    # --- lifecycle -----------------------------------------------------------------------------------
    async def start(self) -> Self:
        if self.root is not None:
            raise RuntimeError("cluster already started")
        self.root = Path(tempfile.mkdtemp(prefix="strom-cluster-"))
        try:
            if self._own_zookeeper:
                zookeeper = self.zookeeper = ZooKeeperServer()
                # shielded: if we are cancelled, stop() still waits for the start-up thread to finish
                # before it stops the server, so no JVM is left behind
                self._zk_starting = asyncio.ensure_future(asyncio.to_thread(zookeeper.start))
                await asyncio.shield(self._zk_starting)
                self.zk_connect = f"{zookeeper.connect}/strom-{uuid.uuid4().hex[:12]}"
            for node_id in self.node_ids:
                await self._launch(node_id)
            await self._wait_converged()
        except BaseException:
            await self.stop()
            raise
        return self

    async def stop(self) -> None:
        """Stop every broker, then ZooKeeper (if ours), then remove the temporary directories."""
        try:
            for node_id in sorted(self.brokers, reverse=True):
                broker = self.brokers.pop(node_id)
                with contextlib.suppress(Exception):
                    await broker.stop()
        finally:
            if self._zk_starting is not None:
                with contextlib.suppress(BaseException):
                    await self._zk_starting
                self._zk_starting = None
            if self.zookeeper is not None:
                await asyncio.to_thread(self.zookeeper.stop)
                self.zookeeper = None
            if self.root is not None:
                shutil.rmtree(self.root, ignore_errors=True)
                self.root = None
            if self._own_zookeeper:
                self.zk_connect = None

    # --- failures ------------------------------------------------------------------------------------
    def stop_broker(self, node_id: int) -> Awaitable[None]:
        """Cleanly stop broker `node_id` (controlled shutdown); returns once the running brokers no longer
        list it and have a controller. Blocks in the sync form; `await` it in the async form."""
        return self._run(self._stop_broker(node_id))

    def start_broker(self, node_id: int) -> Awaitable[None]:
        """Restart broker `node_id` on its old port and data; returns once all running brokers see each
        other (its replicas may still be catching up). Blocks in the sync form; `await` it in the async
        form."""
        return self._run(self._start_broker(node_id))

    def _run(self, coro: Coroutine[Any, Any, None]) -> Awaitable[None]:
        if self.runs_own_loop:
            self.call(coro, timeout=self._ready_timeout + self._shutdown_timeout + 30)
            return _Done()
        return coro

    async def _stop_broker(self, node_id: int) -> None:
        broker = self.brokers.pop(node_id, None)
        if broker is None:
            raise KeyError(f"broker {node_id} is not running")
        await broker.stop()
        await self._wait_converged()

    async def _start_broker(self, node_id: int) -> None:
        if node_id not in self.node_ids:
            raise KeyError(f"no broker {node_id} in this cluster (ids {self.node_ids})")
        if node_id in self.brokers:
            raise RuntimeError(f"broker {node_id} is already running")
        await self._launch(node_id)
        await self._wait_converged()

    async def _launch(self, node_id: int) -> None:
        broker = Broker(self.config(node_id), shutdown_timeout=self._shutdown_timeout)
        self.brokers[node_id] = broker
        try:
            await broker.start()
        except BaseException:
            self.brokers.pop(node_id, None)
            with contextlib.suppress(Exception):
                await broker.stop()
            raise
        self.ports[node_id] = broker.bound_address[1]

    async def _wait_converged(self) -> None:
        """Every running broker lists exactly the running brokers and names one of them controller."""
        running = set(self.brokers)
        if not running:
            return
        deadline = time.monotonic() + self._ready_timeout
        for node_id, broker in sorted(self.brokers.items()):
            backend = broker.metadata
            ok = await backend.wait_for(
                lambda image: set(image.brokers) == running and image.controller_id in running,
                max(0.0, deadline - time.monotonic()),
            )
            if not ok:
                image = backend.image
                raise TimeoutError(
                    f"broker {node_id} sees brokers {sorted(image.brokers)} and controller "
                    f"{image.controller_id}, not {sorted(running)} within {self._ready_timeout} s"
                )
