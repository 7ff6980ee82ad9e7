"""A KRaft cluster whose nodes are Strom or Apache Kafka 4.4 processes, each started from the same
server.properties (the keys Kafka's config/controller.properties and config/broker.properties use, which
Strom reads alike). Kafka's nodes are formatted with Kafka's own `kafka-storage format`, Strom's with
`strom storage format`'s code path; every node shares the cluster id and the static voters
(controller.quorum.voters, kraft.version 0).

    with MixedCluster(controllers=3, brokers=2, kafka={1, 2, 3}) as cluster:   # Kafka quorum, Strom brokers
        cluster.start_all()
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
from collections.abc import Collection, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from strom.testing.kraft_cluster import KRaftCluster
from strom.testing.raft_quorum import wait_for

from .brokers import format_kafka_storage, kafka_node_command
from .tools import ensure_tools


class MixedCluster(KRaftCluster):
    """KRaftCluster with the nodes in `kafka` run as Apache Kafka (ToolUnavailable without Java or jars)."""

    def __init__(
        self,
        *,
        controllers: int = 0,
        brokers: int = 0,
        combined: int = 0,
        kafka: Collection[int] = (),
        settings: Mapping[str, str] | None = None,
    ) -> None:
        ensure_tools()
        kafka_node_command(Path("server.properties"))  # java and the jars are there
        super().__init__(controllers=controllers, brokers=brokers, combined=combined, settings=settings)
        self.kafka = frozenset(kafka)
        # Kafka formats its own directories (meta.properties with a directory id, and on controllers the
        # bootstrap checkpoint at Kafka's latest production metadata.version); one JVM each, side by side
        for node_id in self.kafka:
            shutil.rmtree(self.data_dir(node_id), ignore_errors=True)
        with ThreadPoolExecutor(max(1, len(self.kafka))) as pool:
            list(pool.map(lambda n: format_kafka_storage(self.config_path(n), self.cluster_id), self.kafka))

    def start(self, node_id: int, *, wait: bool = True, timeout: float = 90.0) -> None:
        if node_id not in self.kafka:
            super().start(node_id, wait=wait, timeout=timeout)
            return
        log_path = self.log_path(node_id)
        self._log_start[node_id] = log_path.stat().st_size if log_path.exists() else 0
        with open(log_path, "ab") as log:
            self.procs[node_id] = subprocess.Popen(
                kafka_node_command(self.config_path(node_id)),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=self.root,
                env=dict(os.environ),
                start_new_session=True,
            )
        if wait:
            self.wait_ready(node_id, timeout)

    def wait_ready(self, node_id: int, timeout: float = 90.0) -> None:
        if node_id not in self.kafka:
            super().wait_ready(node_id, timeout)
            return
        proc = self.procs[node_id]
        # A Kafka broker opens its listeners to clients only once the controller has unfenced it; a
        # controller opens its listener before the quorum has a leader.
        port = self.broker_ports.get(node_id) or self.controller_ports[node_id]

        def ready() -> bool:
            if proc.poll() is not None:
                raise RuntimeError(f"node {node_id} exited: {self.log_path(node_id).read_text()[-3000:]}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
            return False

        try:
            wait_for(ready, timeout, f"Kafka node {node_id} to serve", interval=0.2)
        except TimeoutError as exc:
            # the node's own log says why (not registered, fenced, no quorum); keep it in the failure
            tail = self.log_path(node_id).read_text(errors="replace")[-4000:]
            raise TimeoutError(f"{exc}; its log ends:\n{tail}") from None
