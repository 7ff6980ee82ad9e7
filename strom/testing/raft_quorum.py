"""A quorum of Strom KRaft controllers in processes, for tests: `strom serve --config server.properties`.

Each node gets a server.properties as Kafka's quickstart writes one for a controller (process.roles,
node.id, static controller.quorum.voters, a CONTROLLER listener on a free loopback port, log.dirs), its
directory formatted by `strom storage format` (the same code path), and runs as its own process group so
that kill -9, SIGSTOP and SIGCONT hit exactly it. `describe(node)` asks a node DescribeQuorum over the
wire; `leader()` is the leader a live node's DescribeQuorum names. Every wait has a deadline.
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
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from strom.config import BrokerConfig, load_properties_file
from strom.metadata.formatter import FormatOptions, NodeStorage, format_storage
from strom.testing.ports import free_port

__all__ = ["ControllerQuorum", "wait_for"]

REPO_ROOT = Path(__file__).resolve().parents[2]


def wait_for(predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


class ControllerQuorum:
    """`n` controllers with static voters; `settings` are extra server.properties keys for every node."""

    def __init__(
        self,
        n: int = 3,
        *,
        settings: Mapping[str, str] | None = None,
        cluster_id: str = "MkU3OEVBNTcwNTJENDM2Qg",
        root: Path | None = None,
    ) -> None:
        self.ids = list(range(1, n + 1))
        self.cluster_id = cluster_id
        self._own_root = root is None
        self.root = root or Path(tempfile.mkdtemp(prefix="strom-quorum-"))
        self.ports = {i: free_port() for i in self.ids}
        self.procs: dict[int, subprocess.Popen[bytes]] = {}
        voters = ",".join(f"{i}@127.0.0.1:{self.ports[i]}" for i in self.ids)
        for i in self.ids:
            props = {
                "process.roles": "controller",
                "node.id": str(i),
                "controller.quorum.voters": voters,
                "listeners": f"CONTROLLER://127.0.0.1:{self.ports[i]}",
                "controller.listener.names": "CONTROLLER",
                "listener.security.protocol.map": "CONTROLLER:PLAINTEXT",
                "log.dirs": str(self.data_dir(i)),
                **(settings or {}),
            }
            self.config_path(i).parent.mkdir(parents=True, exist_ok=True)
            self.config_path(i).write_text("".join(f"{k}={v}\n" for k, v in props.items()))
            config = BrokerConfig(load_properties_file(str(self.config_path(i))))
            format_storage(
                NodeStorage.from_config(config), FormatOptions(cluster_id=cluster_id), out=lambda _: None
            )

    def config_path(self, node_id: int) -> Path:
        return self.root / f"controller-{node_id}" / "server.properties"

    def data_dir(self, node_id: int) -> Path:
        return self.root / f"controller-{node_id}" / "data"

    def log_path(self, node_id: int) -> Path:
        return self.root / f"controller-{node_id}" / "controller.log"

    def address(self, node_id: int) -> str:
        return f"127.0.0.1:{self.ports[node_id]}"

    # -- processes -------------------------------------------------------------------------------------
    def start(self, node_id: int, timeout: float = 30.0) -> None:
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
        log = open(self.log_path(node_id), "ab")  # noqa: SIM115 - the child keeps writing to it
        try:
            proc = subprocess.Popen(
                argv,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                start_new_session=True,
            )
        finally:
            log.close()
        self.procs[node_id] = proc
        marker = self.ready_marker(node_id).encode()

        def ready() -> bool:
            if proc.poll() is not None:
                raise RuntimeError(
                    f"controller {node_id} exited: {self.log_path(node_id).read_text()[-2000:]}"
                )
            return marker in self.log_path(node_id).read_bytes()

        wait_for(ready, timeout, f"controller {node_id} to listen")

    def ready_marker(self, node_id: int) -> str:
        """The line a node prints once it serves."""
        return f"Strom controller {node_id} listening on"

    def start_all(self) -> ControllerQuorum:
        for i in self.ids:
            self.start(i)
        return self

    def running(self, node_id: int) -> bool:
        proc = self.procs.get(node_id)
        return proc is not None and proc.poll() is None

    def kill(self, node_id: int) -> None:
        proc = self.procs.pop(node_id)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)

    def pause(self, node_id: int) -> None:
        os.killpg(self.procs[node_id].pid, signal.SIGSTOP)

    def resume(self, node_id: int) -> None:
        os.killpg(self.procs[node_id].pid, signal.SIGCONT)

    def stop(self, node_id: int, timeout: float = 15.0) -> int | None:
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
        for node_id in list(self.procs):
            self.stop(node_id)
        if self._own_root:
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> ControllerQuorum:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- asking the quorum -----------------------------------------------------------------------------
    def describe(self, node_id: int, timeout: float = 5.0) -> Any:
        """The partition of a DescribeQuorum v2 answer from `node_id` (error_code set when not leader)."""
        return asyncio.run(self._describe(node_id, timeout))

    async def _describe(self, node_id: int, timeout: float) -> Any:
        from kio.schema.describe_quorum.v2.request import DescribeQuorumRequest, PartitionData, TopicData

        from strom.client.connection import BrokerConnection

        conn = await BrokerConnection.open("127.0.0.1", self.ports[node_id], timeout=timeout, negotiate=False)
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

    def leader(self, among: list[int] | None = None) -> tuple[int, int] | None:
        """(leader id, epoch) as the leader itself reports it, asking the running nodes in `among`."""
        for node_id in among or [i for i in self.ids if self.running(i)]:
            try:
                part = self.describe(node_id, timeout=1.0)
            except (TimeoutError, OSError, ConnectionError):
                continue
            if part.error_code == 0:
                return int(part.leader_id), int(part.leader_epoch)
        return None
