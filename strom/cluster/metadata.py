"""The cluster metadata image: brokers, topics, partition assignments and partition states.

An image is an immutable snapshot. Every change (a topic created, partitions added, configs altered)
produces a new image that replaces the old one, so readers (Metadata, the replica manager) never see a
half-applied change. The fields mirror what Kafka's MetadataResponse and LeaderAndIsr carry.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

INTERNAL_TOPICS: frozenset[str] = frozenset({"__consumer_offsets", "__transaction_state"})


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One advertised listener of a broker: its name, address and security protocol."""

    listener: str
    host: str
    port: int
    security_protocol: str = "PLAINTEXT"


@dataclass(frozen=True, slots=True)
class BrokerInfo:
    """One broker as clients see it in Metadata and DescribeCluster.

    `endpoints` are its advertised listeners; clients are answered with the endpoint of the listener they
    connected through, and brokers without that listener are left out (as Kafka does). `host`/`port` are
    the first endpoint's (Kafka's legacy registration fields). A BrokerInfo without endpoints (tests, an
    old registration) answers its host/port for every listener."""

    node_id: int
    host: str
    port: int
    rack: str | None = None
    endpoints: tuple[Endpoint, ...] = ()

    def endpoint(self, listener: str) -> Endpoint | None:
        if not self.endpoints:
            return Endpoint(listener, self.host, self.port)
        for endpoint in self.endpoints:
            if endpoint.listener == listener:
                return endpoint
        return None


@dataclass(frozen=True, slots=True)
class PartitionState:
    """Leader, epochs and replica sets of one partition (Kafka's LeaderAndIsr plus its assignment)."""

    partition: int
    leader: int
    leader_epoch: int
    replicas: tuple[int, ...]
    isr: tuple[int, ...]
    partition_epoch: int = 0
    elr: tuple[int, ...] = ()  # eligible leader replicas (KIP-966, KRaft only)
    last_known_elr: tuple[int, ...] = ()
    leader_recovery_state: int = 0  # 1: RECOVERING after an unclean election (KIP-704, KRaft only)


@dataclass(frozen=True, slots=True)
class TopicInfo:
    """A topic: its id (KIP-516), partitions by index, and its config overrides as Kafka strings.

    `partitions` and `configs` are never mutated once the image is published."""

    name: str
    topic_id: uuid.UUID
    partitions: dict[int, PartitionState]
    configs: dict[str, str] = field(default_factory=dict)
    internal: bool = False

    @property
    def replication_factor(self) -> int:
        first = self.partitions.get(0)
        return len(first.replicas) if first is not None else 0


@dataclass(frozen=True, slots=True)
class MetadataImage:
    """An immutable snapshot of cluster metadata.

    `broker_configs` holds the dynamic broker config overrides by node id (KIP-226), as Kafka strings,
    `default_broker_configs` the cluster-wide dynamic defaults (the BROKER resource named ""), and
    `group_configs` the group configs by group id (GROUP resources, strom.group_config), groups without
    any left out."""

    cluster_id: str
    controller_id: int
    brokers: dict[int, BrokerInfo]
    topics: dict[str, TopicInfo]
    broker_configs: dict[int, dict[str, str]] = field(default_factory=dict)
    default_broker_configs: dict[str, str] = field(default_factory=dict)
    group_configs: dict[str, dict[str, str]] = field(default_factory=dict)

    @classmethod
    def empty(cls, cluster_id: str = "", controller_id: int = -1) -> MetadataImage:
        return cls(cluster_id=cluster_id, controller_id=controller_id, brokers={}, topics={})

    def topic(self, name: str) -> TopicInfo | None:
        return self.topics.get(name)

    def topic_by_id(self, topic_id: uuid.UUID) -> TopicInfo | None:
        for info in self.topics.values():
            if info.topic_id == topic_id:
                return info
        return None

    def partition(self, topic: str, partition: int) -> PartitionState | None:
        info = self.topics.get(topic)
        return info.partitions.get(partition) if info is not None else None
