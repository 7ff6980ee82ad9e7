"""`EmbeddedBroker`: a real Strom broker (the same `Broker` class `strom serve` runs) on a free loopback
port with a temporary data directory, for tests and notebooks.

    with EmbeddedBroker({"num.partitions": "3"}) as broker:      # own event loop in a background thread
        Producer({"bootstrap.servers": broker.bootstrap_servers})

    async with EmbeddedBroker() as broker:                        # on the running event loop
        ...

Overrides use Kafka's broker key names. The dev preset turns off what slows tests down
(group.initial.rebalance.delay.ms=0, internal topics with one replica) and keeps auto-creation on.
The data directory is removed on exit unless one was given.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import threading
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

from strom.config import BrokerConfig
from strom.server.broker import Broker

__all__ = ["DEV_PRESET", "EmbeddedBroker"]

DEV_PRESET: dict[str, str] = {
    "listeners": "PLAINTEXT://127.0.0.1:0",
    "auto.create.topics.enable": "true",
    "group.initial.rebalance.delay.ms": "0",
    "offsets.topic.replication.factor": "1",
    "offsets.topic.num.partitions": "5",
    "transaction.state.log.replication.factor": "1",
    "transaction.state.log.min.isr": "1",
    "transaction.state.log.num.partitions": "5",
    "log.flush.offset.checkpoint.interval.ms": "60000",
}


class EmbeddedBroker:
    def __init__(
        self,
        overrides: Mapping[str, Any] | None = None,
        *,
        data_dir: str | Path | None = None,
        node_id: int = 1,
        port: int = 0,
    ) -> None:
        self._own_dir = data_dir is None
        self.data_dir = Path(data_dir) if data_dir is not None else Path(tempfile.mkdtemp(prefix="strom-"))
        props = dict(DEV_PRESET)
        props["listeners"] = f"PLAINTEXT://127.0.0.1:{port}"
        props["log.dirs"] = str(self.data_dir)
        props["node.id"] = str(node_id)
        props.update(
            {k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in (overrides or {}).items()}
        )
        self.config = BrokerConfig(props)
        self.broker: Broker | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    @property
    def bootstrap_servers(self) -> str:
        assert self.broker is not None, "broker not started"
        host, port = self.broker.advertised_address
        return f"{host}:{port}"

    @property
    def port(self) -> int:
        assert self.broker is not None, "broker not started"
        return self.broker.bound_address[1]

    # --- async form -------------------------------------------------------------------------------
    async def start(self) -> EmbeddedBroker:
        self.broker = Broker(self.config)
        try:
            await self.broker.start()
        except BaseException:
            await self.broker.stop()
            self._cleanup()
            raise
        return self

    async def stop(self) -> None:
        try:
            if self.broker is not None:
                await self.broker.stop()
        finally:
            self._cleanup()

    async def __aenter__(self) -> EmbeddedBroker:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # --- sync form: own loop in a background thread -----------------------------------------------
    def __enter__(self) -> EmbeddedBroker:
        loop = asyncio.new_event_loop()
        self._loop = loop
        ready = threading.Event()
        self._thread = threading.Thread(
            target=self._run_loop, args=(loop, ready), name="strom-embedded", daemon=True
        )
        self._thread.start()
        ready.wait()
        try:
            asyncio.run_coroutine_threadsafe(self.start(), loop).result(timeout=30)
        except BaseException:
            self._stop_loop()
            raise
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        assert self._loop is not None
        try:
            asyncio.run_coroutine_threadsafe(self.stop(), self._loop).result(timeout=60)
        finally:
            self._stop_loop()

    def call(self, coro: Any, timeout: float = 30) -> Any:
        """Run a coroutine on the broker's loop (sync form) and return its result."""
        assert self._loop is not None, "only in the sync form"
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=timeout)

    @staticmethod
    def _run_loop(loop: asyncio.AbstractEventLoop, ready: threading.Event) -> None:
        asyncio.set_event_loop(loop)
        loop.call_soon(ready.set)
        loop.run_forever()
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()

    def _stop_loop(self) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._loop = None
        self._thread = None

    def _cleanup(self) -> None:
        if self._own_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)
