"""`EmbeddedKRaftNode`: one combined KRaft node (`process.roles=broker,controller`, a quorum of one voter)
in this process, for fast tests of the quorum controller and KRaft brokers: the same `ControllerServer`
and `Broker` that `strom serve` runs, on free loopback ports, its directory formatted as `strom storage
format` formats it.

    with EmbeddedKRaftNode({"authorizer.class.name": "..."}) as node:   # own event loop in a thread
        node.bootstrap_servers, node.bootstrap_controllers

Overrides use Kafka's key names over the embedded broker's dev preset. The directory is removed on exit.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Self

from strom.config import BrokerConfig
from strom.metadata.formatter import FormatOptions, NodeStorage, format_storage
from strom.raft.controller_server import ControllerServer
from strom.server.broker import Broker
from strom.testing.embedded import DEV_PRESET
from strom.testing.loop_thread import LoopThreadContext
from strom.testing.ports import free_port

__all__ = ["EmbeddedKRaftNode"]

FAST_QUORUM = {
    "controller.quorum.election.timeout.ms": "300",
    "controller.quorum.fetch.timeout.ms": "600",
    "broker.heartbeat.interval.ms": "200",
    "broker.session.timeout.ms": "3000",
}


class EmbeddedKRaftNode(LoopThreadContext):
    def __init__(
        self,
        overrides: Mapping[str, Any] | None = None,
        *,
        extra_listeners: Mapping[str, str] | None = None,
        cluster_id: str = "MkU3OEVBNTcwNTJENDM2Qg",
    ) -> None:
        """`extra_listeners`: more broker listeners by name -> security protocol (bound on free ports)."""
        self.data_dir = Path(tempfile.mkdtemp(prefix="strom-kraft-node-"))
        self.controller_port = free_port()
        extra = dict(extra_listeners or {})
        listeners = ["PLAINTEXT://127.0.0.1:0", *(f"{n}://127.0.0.1:0" for n in extra)]
        protocols = {"CONTROLLER": "PLAINTEXT", "PLAINTEXT": "PLAINTEXT", **extra}
        props = {
            **DEV_PRESET,
            **FAST_QUORUM,
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.voters": f"1@127.0.0.1:{self.controller_port}",
            "listeners": ",".join([*listeners, f"CONTROLLER://127.0.0.1:{self.controller_port}"]),
            "advertised.listeners": ",".join(listeners),
            "controller.listener.names": "CONTROLLER",
            "listener.security.protocol.map": ",".join(f"{n}:{p}" for n, p in protocols.items()),
            "inter.broker.listener.name": "PLAINTEXT",
            "log.dirs": str(self.data_dir),
        }
        props.update(
            {k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in (overrides or {}).items()}
        )
        self.config = BrokerConfig(props)
        format_storage(
            NodeStorage.from_config(self.config), FormatOptions(cluster_id=cluster_id), out=lambda _: None
        )
        self.controller: ControllerServer | None = None
        self.broker: Broker | None = None

    @property
    def bootstrap_servers(self) -> str:
        assert self.broker is not None, "node not started"
        host, port = self.broker.advertised_address
        return f"{host}:{port}"

    @property
    def bootstrap_controllers(self) -> str:
        return f"127.0.0.1:{self.controller_port}"

    async def start(self) -> Self:
        try:
            self.controller = ControllerServer(self.config)
            self.broker = Broker(self.config, raft=self.controller.raft)
            await self.controller.start()
            await self.broker.start()
        except BaseException:
            await self.stop()
            raise
        return self

    async def stop(self) -> None:
        try:
            if self.broker is not None:
                await self.broker.stop()
            if self.controller is not None:
                await self.controller.stop()
        finally:
            self.broker = self.controller = None
            shutil.rmtree(self.data_dir, ignore_errors=True)
