"""A dynamic KRaft quorum of Strom controller processes (KIP-853), for tests of voter changes.

Node 1 is formatted `--standalone` (the only voter of the bootstrap snapshot); every other node is formatted
`--no-initial-controllers` and starts as an observer that finds the leader through
`controller.quorum.bootstrap.servers` (node 1's listener), as Kafka's documentation has new controllers
join. The processes, logs, `describe` and `leader` are `ControllerQuorum`'s; `directory_id(node)` reads
the node's meta.properties.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from pathlib import Path

from strom.config import BrokerConfig, load_properties_file
from strom.metadata.formatter import FormatOptions, NodeStorage, format_storage
from strom.testing.ports import free_port
from strom.testing.raft_quorum import ControllerQuorum

__all__ = ["DynamicQuorum"]


class DynamicQuorum(ControllerQuorum):
    """`n` controllers: node 1 the standalone voter, nodes 2..n observers until added; then `brokers`
    broker-only nodes (`broker_ports`, `bootstrap_servers`), started with `start` like the others."""

    def __init__(
        self,
        n: int = 3,
        *,
        brokers: int = 0,
        settings: Mapping[str, str] | None = None,
        root: Path | None = None,
    ) -> None:
        super().__init__(0, root=root)
        self.ids = list(range(1, n + 1))
        self.ports = {i: free_port() for i in self.ids}
        self.broker_ports = {i: free_port() for i in range(n + 1, n + 1 + brokers)}
        self.settings = dict(settings or {})
        for i in self.broker_ports:
            self.write_config(
                i,
                **{
                    "process.roles": "broker",
                    "listeners": f"PLAINTEXT://127.0.0.1:{self.broker_ports[i]}",
                    "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
                    "inter.broker.listener.name": "PLAINTEXT",
                },
            )
            config = BrokerConfig(load_properties_file(str(self.config_path(i))))
            format_storage(
                NodeStorage.from_config(config), FormatOptions(cluster_id=self.cluster_id), out=lambda _: None
            )
        for i in self.ids:
            self.write_config(i)
            config = BrokerConfig(load_properties_file(str(self.config_path(i))))
            options = (
                FormatOptions(cluster_id=self.cluster_id, standalone=True)
                if i == 1
                else FormatOptions(cluster_id=self.cluster_id, no_initial_controllers=True)
            )
            format_storage(NodeStorage.from_config(config), options, out=lambda _: None)

    def write_config(self, node_id: int, **extra: str) -> None:
        props = {
            "process.roles": "controller",
            "node.id": str(node_id),
            "controller.quorum.bootstrap.servers": f"127.0.0.1:{self.ports[1]}",
            "listeners": f"CONTROLLER://127.0.0.1:{self.ports.get(node_id, 0)}",
            "controller.listener.names": "CONTROLLER",
            "listener.security.protocol.map": "CONTROLLER:PLAINTEXT",
            "log.dirs": str(self.data_dir(node_id)),
            **self.settings,
            **extra,
        }
        self.config_path(node_id).parent.mkdir(parents=True, exist_ok=True)
        self.config_path(node_id).write_text("".join(f"{k}={v}\n" for k, v in props.items()))

    @property
    def bootstrap_servers(self) -> str:
        return ",".join(f"127.0.0.1:{p}" for p in self.broker_ports.values())

    def ready_marker(self, node_id: int) -> str:
        role = "broker" if node_id in self.broker_ports else "controller"
        return f"Strom {role} {node_id} listening on"

    def meta(self, node_id: int) -> dict[str, str]:
        text = (self.data_dir(node_id) / "meta.properties").read_text()
        return dict(
            line.split("=", 1) for line in text.splitlines() if "=" in line and not line.startswith("#")
        )

    def directory_id(self, node_id: int) -> str:
        return self.meta(node_id)["directory.id"]

    def voter_endpoints(self, node_id: int, timeout: float = 5.0) -> dict[int, tuple[str, int]]:
        """The voters' endpoints in a DescribeQuorum v2 answer of `node_id` (its `nodes`)."""
        return asyncio.run(self._voter_endpoints(node_id, timeout))

    async def _voter_endpoints(self, node_id: int, timeout: float) -> dict[int, tuple[str, int]]:
        from kio.schema.describe_quorum.v2.request import DescribeQuorumRequest, PartitionData, TopicData

        from strom.client.connection import BrokerConnection

        conn = await BrokerConnection.open("127.0.0.1", self.ports[node_id], timeout=timeout, negotiate=False)
        try:
            topic = TopicData(topic_name="__cluster_metadata", partitions=(PartitionData(partition_index=0),))
            response = await conn.request(DescribeQuorumRequest(topics=(topic,)), timeout=timeout)
        finally:
            await conn.close()
        return {
            int(node.node_id): (node.listeners[0].host, int(node.listeners[0].port))
            for node in response.nodes
            if node.listeners
        }
