"""A KRaft cluster of Strom processes for tests: controllers and brokers, or combined nodes, each started
with `strom serve --config server.properties` from a file shaped like Kafka's KRaft examples
(config/server.properties, controller.properties, broker.properties), its directory formatted by
`strom storage format` (the same code path), in a process group of its own so kill -9, SIGSTOP and SIGCONT
hit exactly it. Every wait has a deadline.

    with KRaftCluster(controllers=3, brokers=2) as cluster:      # nodes 1-3 controllers, 4-5 brokers
        cluster.start_all(); cluster.bootstrap_servers            # "127.0.0.1:p4,127.0.0.1:p5"
    with KRaftCluster(combined=3) as cluster: ...                 # nodes 1-3 broker,controller
    KRaftCluster(controllers=1, brokers=3, format=False)          # server.properties only, unformatted
    cluster.active_controller()                                   # (leader id, epoch) from DescribeQuorum
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from strom.config import BrokerConfig, load_properties_file
from strom.metadata.formatter import FormatOptions, NodeStorage, format_storage
from strom.testing.ports import free_port
from strom.testing.raft_quorum import REPO_ROOT, wait_for

__all__ = ["KRaftCluster"]


class KRaftCluster:
    """`controllers` controller-only nodes and `brokers` broker-only nodes, or `combined` nodes with both
    roles. `settings` are extra server.properties keys for every node."""

    def __init__(
        self,
        *,
        controllers: int = 0,
        brokers: int = 0,
        combined: int = 0,
        settings: Mapping[str, str] | None = None,
        cluster_id: str = "MkU3OEVBNTcwNTJENDM2Qg",
        format: bool = True,
    ) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="strom-kraft-"))
        self.cluster_id = cluster_id
        roles: dict[int, str] = {}
        for _ in range(combined):
            roles[len(roles) + 1] = "broker,controller"
        for _ in range(controllers):
            roles[len(roles) + 1] = "controller"
        for _ in range(brokers):
            roles[len(roles) + 1] = "broker"
        self.roles = roles
        self.controller_ports = {i: free_port() for i, r in roles.items() if "controller" in r}
        self.broker_ports = {i: free_port() for i, r in roles.items() if "broker" in r}
        self.procs: dict[int, subprocess.Popen[bytes]] = {}
        self._log_start: dict[int, int] = {}
        voters = ",".join(f"{i}@127.0.0.1:{p}" for i, p in self.controller_ports.items())
        for node_id, role in roles.items():
            listeners = []
            if node_id in self.broker_ports:
                listeners.append(f"PLAINTEXT://127.0.0.1:{self.broker_ports[node_id]}")
            if node_id in self.controller_ports:
                listeners.append(f"CONTROLLER://127.0.0.1:{self.controller_ports[node_id]}")
            props = {
                "process.roles": role,
                "node.id": str(node_id),
                "controller.quorum.voters": voters,
                "listeners": ",".join(listeners),
                "controller.listener.names": "CONTROLLER",
                "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
                "log.dirs": str(self.data_dir(node_id)),
                **({"inter.broker.listener.name": "PLAINTEXT"} if "broker" in role else {}),
                **(settings or {}),
            }
            self.config_path(node_id).parent.mkdir(parents=True, exist_ok=True)
            self.config_path(node_id).write_text("".join(f"{k}={v}\n" for k, v in props.items()))
            if not format:  # the test formats the directories itself (a migration from ZooKeeper)
                continue
            config = BrokerConfig(load_properties_file(str(self.config_path(node_id))))
            format_storage(
                NodeStorage.from_config(config), FormatOptions(cluster_id=cluster_id), out=lambda _: None
            )

    # -- layout ------------------------------------------------------------------------------------------
    def config_path(self, node_id: int) -> Path:
        return self.root / f"node-{node_id}" / "server.properties"

    def data_dir(self, node_id: int) -> Path:
        return self.root / f"node-{node_id}" / "data"

    def log_path(self, node_id: int) -> Path:
        return self.root / f"node-{node_id}" / "server.log"

    @property
    def broker_ids(self) -> list[int]:
        return sorted(self.broker_ports)

    @property
    def controller_ids(self) -> list[int]:
        return sorted(self.controller_ports)

    @property
    def bootstrap_servers(self) -> str:
        return ",".join(f"127.0.0.1:{self.broker_ports[i]}" for i in self.broker_ids if self.running(i))

    @property
    def bootstrap_controllers(self) -> str:
        return ",".join(f"127.0.0.1:{p}" for p in self.controller_ports.values())

    # -- processes ---------------------------------------------------------------------------------------
    def start(self, node_id: int, *, wait: bool = True, timeout: float = 60.0) -> None:
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])),
        }
        argv = [
            sys.executable,
            "-c",
            "import sys; from strom.cli.main import main; sys.exit(main())",
            "serve",
            "--config",
            str(self.config_path(node_id)),
        ]
        log_path = self.log_path(node_id)
        self._log_start[node_id] = log_path.stat().st_size if log_path.exists() else 0
        log = open(log_path, "ab")  # noqa: SIM115 - the child keeps writing to it
        try:
            self.procs[node_id] = subprocess.Popen(
                argv,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                start_new_session=True,
            )
        finally:
            log.close()
        if wait:
            self.wait_ready(node_id, timeout)

    def wait_ready(self, node_id: int, timeout: float = 60.0) -> None:
        proc = self.procs[node_id]
        role = self.roles[node_id]
        marker = (
            f"Strom broker {node_id} listening on"
            if "broker" in role
            else f"Strom controller {node_id} listening on"
        ).encode()
        since = self._log_start.get(node_id, 0)  # the log holds every start of this node

        def ready() -> bool:
            if proc.poll() is not None:
                raise RuntimeError(f"node {node_id} exited: {self.log_path(node_id).read_text()[-3000:]}")
            return marker in self.log_path(node_id).read_bytes()[since:]

        wait_for(ready, timeout, f"node {node_id} to serve")

    def start_all(self, timeout: float = 90.0) -> KRaftCluster:
        """Controllers first (without waiting: a quorum needs a majority), then brokers."""
        for node_id in self.controller_ids:
            self.start(node_id, wait=False)
        for node_id in self.broker_ids:
            if node_id not in self.procs:
                self.start(node_id, wait=False)
        for node_id in sorted(self.procs):
            self.wait_ready(node_id, timeout)
        return self

    def running(self, node_id: int) -> bool:
        proc = self.procs.get(node_id)
        return proc is not None and proc.poll() is None

    def kill(self, node_id: int) -> None:
        proc = self.procs.pop(node_id)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)

    def stop(self, node_id: int, timeout: float = 20.0) -> int | None:
        proc = self.procs.pop(node_id, None)
        if proc is None:
            return None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGCONT)
            proc.send_signal(signal.SIGTERM)
        try:
            return proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            return proc.wait(timeout=10)

    def close(self) -> None:
        # brokers first (controlled shutdown needs the controllers), then the controllers
        for node_id in sorted(self.procs, key=lambda i: "controller" in self.roles[i]):
            self.stop(node_id)
        shutil.rmtree(self.root, ignore_errors=True)

    # -- asking the quorum -----------------------------------------------------------------------------
    def describe_quorum(self, node_id: int, timeout: float = 5.0) -> Any:
        """The partition of a DescribeQuorum v2 answer from controller `node_id` over its CONTROLLER
        listener (error_code NOT_LEADER_OR_FOLLOWER when it is not the leader)."""
        return asyncio.run(self._describe_quorum(node_id, timeout))

    async def _describe_quorum(self, node_id: int, timeout: float) -> Any:
        from kio.schema.describe_quorum.v2.request import DescribeQuorumRequest, PartitionData, TopicData

        from strom.client.connection import BrokerConnection

        port = self.controller_ports[node_id]
        conn = await BrokerConnection.open("127.0.0.1", port, timeout=timeout, negotiate=False)
        try:
            request = DescribeQuorumRequest(
                topics=(
                    TopicData(
                        topic_name="__cluster_metadata", partitions=(PartitionData(partition_index=0),)
                    ),
                )
            )
            response = await conn.request(request, timeout=timeout)
        finally:
            await conn.close()
        return response.topics[0].partitions[0]

    def active_controller(self, among: list[int] | None = None) -> tuple[int, int] | None:
        """(leader id, epoch) as the Raft leader itself reports it, asking the running controllers in
        `among`: the active controller is the quorum's leader."""
        for node_id in among or [i for i in self.controller_ids if self.running(i)]:
            if not self.running(node_id):
                continue
            try:
                part = self.describe_quorum(node_id, timeout=1.0)
            except (TimeoutError, OSError, ConnectionError):
                continue
            if part.error_code == 0:
                return int(part.leader_id), int(part.leader_epoch)
        return None

    def __enter__(self) -> KRaftCluster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
