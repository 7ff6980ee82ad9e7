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

import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Self

from strom.config import BrokerConfig
from strom.server.broker import Broker
from strom.testing.loop_thread import LoopThreadContext

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


class EmbeddedBroker(LoopThreadContext):
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

    @property
    def bootstrap_servers(self) -> str:
        assert self.broker is not None, "broker not started"
        host, port = self.broker.advertised_address
        return f"{host}:{port}"

    @property
    def port(self) -> int:
        assert self.broker is not None, "broker not started"
        return self.broker.bound_address[1]

    # --- lifecycle (the sync and async context managers come from LoopThreadContext) ---------------
    async def start(self) -> Self:
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

    def _cleanup(self) -> None:
        if self._own_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)
