"""A small cluster-aware Kafka client: bootstrap, metadata, routing to leaders and coordinators.

It speaks pinned, modern API versions that both Strom and Apache Kafka 4.x serve (Metadata v12, Produce v9,
Fetch v12, ListOffsets v7, CreateTopics v7, ...), which keeps the code to one request shape per API. It is the
engine of the `strom` CLI and of tests; it is not a general-purpose client (no retries beyond refreshing
metadata once, no batching across calls).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import ssl as ssl_module
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from strom.client.connection import BrokerConnection, ConnectionClosedError
from strom.protocol.errors import ErrorCode, KafkaError

if TYPE_CHECKING:
    from strom.security.sasl.client import SaslClientSettings

__all__ = ["ClusterClient", "FetchedPartition", "parse_bootstrap", "raise_for_error"]

_ZERO_UUID = uuid.UUID(int=0)


def parse_bootstrap(bootstrap: str) -> list[tuple[str, int]]:
    """'host:port[,host:port]' -> [(host, port)]; a bare host means port 9092."""
    servers: list[tuple[str, int]] = []
    for item in bootstrap.split(","):
        item = item.strip()
        if not item:
            continue
        host, _, port = item.rpartition(":")
        if not host:
            host, port = port, "9092"
        servers.append((host.strip("[]"), int(port)))
    if not servers:
        raise ValueError(f"no bootstrap servers in {bootstrap!r}")
    return servers


def raise_for_error(code: int, message: str | None = None, what: str = "") -> None:
    """Raise KafkaError for a non-zero error code from a response."""
    if code:
        error = ErrorCode(code)
        text = message or error.name.upper()
        raise KafkaError(f"{what}: {text}" if what else text, code=error)


@dataclass(frozen=True, slots=True)
class PartitionMeta:
    topic: str
    partition: int
    leader: int
    leader_epoch: int
    replicas: tuple[int, ...]
    isr: tuple[int, ...]
    offline: tuple[int, ...]
    error_code: int


@dataclass(frozen=True, slots=True)
class TopicMeta:
    name: str
    topic_id: Any
    internal: bool
    error_code: int
    partitions: dict[int, PartitionMeta]


@dataclass(frozen=True, slots=True)
class FetchedPartition:
    """One partition of a Fetch response. `aborted_transactions` is (producer id, first offset) of each
    transaction aborted within the returned range; the broker fills it only for read_committed (KIP-98)."""

    high_watermark: int
    last_stable_offset: int
    records: bytes
    aborted_transactions: tuple[tuple[int, int], ...] = ()


@dataclass(frozen=True, slots=True)
class ClusterMeta:
    cluster_id: str | None
    controller_id: int
    brokers: dict[int, tuple[str, int, str | None]]
    topics: dict[str, TopicMeta]


class ClusterClient:
    """Connections to the brokers of one cluster, opened lazily, and its latest metadata. Every connection
    goes through TLS when `ssl` is given and authenticates when `sasl` is given (a secured listener's
    settings: strom.client.security.ClientSecurity)."""

    def __init__(
        self,
        bootstrap: str,
        *,
        client_id: str = "strom-cli",
        timeout: float = 10.0,
        ssl: ssl_module.SSLContext | None = None,
        sasl: SaslClientSettings | None = None,
    ) -> None:
        self.bootstrap = parse_bootstrap(bootstrap)
        self.client_id = client_id
        self.timeout = timeout
        self.ssl = ssl
        self.sasl = sasl
        self._by_node: dict[int, BrokerConnection] = {}
        self._any: BrokerConnection | None = None
        self.meta: ClusterMeta | None = None

    async def __aenter__(self) -> ClusterClient:
        await self.any_connection()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        conns = {id(c): c for c in [*self._by_node.values(), *([self._any] if self._any else [])]}
        for conn in conns.values():
            with contextlib.suppress(Exception):
                await conn.close()
        self._by_node.clear()
        self._any = None

    async def any_connection(self) -> BrokerConnection:
        if self._any is not None and not self._any.closed:
            return self._any
        errors: list[str] = []
        closed = True  # every server accepted the connection, then closed it
        for host, port in self.bootstrap:
            try:
                self._any = await BrokerConnection.open(
                    host, port, client_id=self.client_id, timeout=self.timeout, ssl=self.ssl, sasl=self.sasl
                )
                return self._any
            except (TimeoutError, OSError) as exc:
                closed = closed and isinstance(exc, ConnectionClosedError | ConnectionResetError)
                errors.append(f"{host}:{port}: {str(exc) or type(exc).__name__}")
        error = ConnectionClosedError if closed else ConnectionError
        raise error("cannot reach any bootstrap server (" + "; ".join(errors) + ")")

    async def connection(self, node_id: int) -> BrokerConnection:
        conn = self._by_node.get(node_id)
        if conn is not None and not conn.closed:
            return conn
        if self.meta is None or node_id not in self.meta.brokers:
            await self.metadata()
        assert self.meta is not None
        if node_id not in self.meta.brokers:
            raise KafkaError(f"broker {node_id} is not in the cluster", code=ErrorCode.broker_not_available)
        host, port, _rack = self.meta.brokers[node_id]
        conn = await BrokerConnection.open(
            host, port, client_id=self.client_id, timeout=self.timeout, ssl=self.ssl, sasl=self.sasl
        )
        self._by_node[node_id] = conn
        return conn

    async def request_any(self, request: Any) -> Any:
        return await (await self.any_connection()).request(request, timeout=self.timeout + 30)

    # metadata ---------------------------------------------------------------------------------------
    async def metadata(
        self, topics: Sequence[str] | None = None, *, auto_create: bool = False
    ) -> ClusterMeta:
        from kio.schema.metadata.v12.request import MetadataRequest, MetadataRequestTopic

        request = MetadataRequest(
            topics=None
            if topics is None
            else tuple(MetadataRequestTopic(topic_id=None, name=t) for t in topics),
            allow_auto_topic_creation=auto_create,
            include_topic_authorized_operations=False,
        )
        response = await self.request_any(request)
        brokers = {int(b.node_id): (str(b.host), int(b.port), b.rack) for b in response.brokers}
        topic_map: dict[str, TopicMeta] = {}
        for t in response.topics:
            parts = {
                int(p.partition_index): PartitionMeta(
                    str(t.name),
                    int(p.partition_index),
                    int(p.leader_id),
                    int(p.leader_epoch),
                    tuple(int(r) for r in p.replica_nodes),
                    tuple(int(r) for r in p.isr_nodes),
                    tuple(int(r) for r in p.offline_replicas),
                    int(p.error_code),
                )
                for p in t.partitions
            }
            topic_map[str(t.name)] = TopicMeta(
                str(t.name), t.topic_id, bool(t.is_internal), int(t.error_code), parts
            )
        self.meta = ClusterMeta(response.cluster_id, int(response.controller_id), brokers, topic_map)
        return self.meta

    async def leader_connection(self, topic: str, partition: int) -> BrokerConnection:
        meta = await self.metadata([topic])
        tmeta = meta.topics.get(topic)
        if tmeta is None or tmeta.error_code:
            raise_for_error(
                tmeta.error_code if tmeta else ErrorCode.unknown_topic_or_partition.value,
                what=f"topic {topic}",
            )
        assert tmeta is not None
        pmeta = tmeta.partitions.get(partition)
        if pmeta is None:
            raise KafkaError(
                f"topic {topic} has no partition {partition}", code=ErrorCode.unknown_topic_or_partition
            )
        if pmeta.leader < 0:
            raise KafkaError(f"{topic}-{partition} has no leader", code=ErrorCode.leader_not_available)
        return await self.connection(pmeta.leader)

    async def controller_connection(self) -> BrokerConnection:
        meta = self.meta or await self.metadata([])
        if meta.controller_id >= 0 and meta.controller_id in meta.brokers:
            return await self.connection(meta.controller_id)
        return await self.any_connection()

    # topics -----------------------------------------------------------------------------------------
    async def create_topic(
        self,
        name: str,
        partitions: int = -1,
        replication_factor: int = -1,
        configs: dict[str, str] | None = None,
        *,
        validate_only: bool = False,
    ) -> Any:
        from kio.schema.create_topics.v7.request import (
            CreatableTopic,
            CreatableTopicConfig,
            CreateTopicsRequest,
        )

        topic = CreatableTopic(
            name=name,
            num_partitions=partitions,
            replication_factor=replication_factor,
            assignments=(),
            configs=tuple(CreatableTopicConfig(name=k, value=v) for k, v in (configs or {}).items()),
        )
        request = CreateTopicsRequest(
            topics=(topic,), timeout=datetime.timedelta(seconds=30), validate_only=validate_only
        )
        response = await (await self.controller_connection()).request(request)
        result = response.topics[0]
        raise_for_error(result.error_code, result.error_message, f"create topic {name}")
        return result

    async def delete_topic(self, name: str) -> None:
        from kio.schema.delete_topics.v6.request import DeleteTopicsRequest, DeleteTopicState

        request = DeleteTopicsRequest(
            topics=(DeleteTopicState(name=name, topic_id=_ZERO_UUID),), timeout=datetime.timedelta(seconds=30)
        )
        response = await (await self.controller_connection()).request(request)
        result = response.responses[0]
        raise_for_error(result.error_code, result.error_message, f"delete topic {name}")

    async def create_partitions(self, name: str, total: int, *, validate_only: bool = False) -> None:
        from kio.schema.create_partitions.v3.request import CreatePartitionsRequest, CreatePartitionsTopic

        request = CreatePartitionsRequest(
            topics=(CreatePartitionsTopic(name=name, count=total, assignments=None),),
            timeout=datetime.timedelta(seconds=30),
            validate_only=validate_only,
        )
        response = await (await self.controller_connection()).request(request)
        result = response.results[0]
        raise_for_error(result.error_code, result.error_message, f"alter topic {name}")

    async def list_offsets(
        self, topic: str, partitions: Iterable[int], timestamp: int
    ) -> dict[int, tuple[int, int]]:
        """{partition: (offset, timestamp)} for a timestamp (-1 latest, -2 earliest, -3 max timestamp)."""
        from kio.schema.list_offsets.v7.request import (
            ListOffsetsPartition,
            ListOffsetsRequest,
            ListOffsetsTopic,
        )

        meta = await self.metadata([topic])
        tmeta = meta.topics.get(topic)
        if tmeta is None or tmeta.error_code:
            raise_for_error(tmeta.error_code if tmeta else 3, what=f"topic {topic}")
        assert tmeta is not None
        by_leader: dict[int, list[int]] = {}
        for p in partitions:
            if p not in tmeta.partitions:
                raise KafkaError(
                    f"topic {topic} has no partition {p}", code=ErrorCode.unknown_topic_or_partition
                )
            by_leader.setdefault(tmeta.partitions[p].leader, []).append(p)
        out: dict[int, tuple[int, int]] = {}
        for leader, parts in by_leader.items():
            request = ListOffsetsRequest(
                replica_id=-1,
                isolation_level=0,
                topics=(
                    ListOffsetsTopic(
                        name=topic,
                        partitions=tuple(
                            ListOffsetsPartition(
                                partition_index=p, current_leader_epoch=-1, timestamp=timestamp
                            )
                            for p in parts
                        ),
                    ),
                ),
            )
            response = await (await self.connection(leader)).request(request)
            for t in response.topics:
                for pr in t.partitions:
                    raise_for_error(pr.error_code, what=f"{topic}-{pr.partition_index}")
                    out[int(pr.partition_index)] = (int(pr.offset), int(pr.timestamp))
        return out

    # configs ----------------------------------------------------------------------------------------
    async def describe_configs(
        self, resource_type: int, name: str, keys: Sequence[str] | None = None, *, synonyms: bool = False
    ) -> Any:
        """DescribeConfigs v4 for one resource (2 = topic, 4 = broker); returns the result entry."""
        from kio.schema.describe_configs.v4.request import DescribeConfigsRequest, DescribeConfigsResource

        request = DescribeConfigsRequest(
            resources=(
                DescribeConfigsResource(
                    resource_type=resource_type,
                    resource_name=name,
                    configuration_keys=None if keys is None else tuple(keys),
                ),
            ),
            include_synonyms=synonyms,
            include_documentation=False,
        )
        conn = await (self.connection(int(name)) if resource_type == 4 else self.controller_connection())
        response = await conn.request(request)
        result = response.results[0]
        raise_for_error(result.error_code, result.error_message, f"describe configs of {name}")
        return result

    async def alter_configs(
        self,
        resource_type: int,
        name: str,
        ops: Sequence[tuple[str, int, str | None]],
        *,
        validate_only: bool = False,
    ) -> None:
        """IncrementalAlterConfigs v1 (KIP-339): ops are (key, operation, value); 0 SET, 1 DELETE, 2 APPEND,
        3 SUBTRACT."""
        from kio.schema.incremental_alter_configs.v1.request import (
            AlterableConfig,
            AlterConfigsResource,
            IncrementalAlterConfigsRequest,
        )

        request = IncrementalAlterConfigsRequest(
            resources=(
                AlterConfigsResource(
                    resource_type=resource_type,
                    resource_name=name,
                    configs=tuple(AlterableConfig(name=k, config_operation=op, value=v) for k, op, v in ops),
                ),
            ),
            validate_only=validate_only,
        )
        conn = await (self.connection(int(name)) if resource_type == 4 else self.controller_connection())
        response = await conn.request(request)
        result = response.responses[0]
        raise_for_error(result.error_code, result.error_message, f"alter configs of {name}")

    async def describe_cluster(self) -> Any:
        from kio.schema.describe_cluster.v1.request import DescribeClusterRequest

        response = await self.request_any(
            DescribeClusterRequest(include_cluster_authorized_operations=False, endpoint_type=1)
        )
        raise_for_error(response.error_code, response.error_message, "describe cluster")
        return response

    async def describe_log_dirs(self, node_id: int) -> Any:
        from kio.schema.describe_log_dirs.v4.request import DescribeLogDirsRequest

        response = await (await self.connection(node_id)).request(DescribeLogDirsRequest(topics=None))
        raise_for_error(response.error_code, None, f"describe log dirs of broker {node_id}")
        return response

    # data -------------------------------------------------------------------------------------------
    async def produce(
        self, topic: str, partition: int, records: bytes, *, acks: int = -1, timeout_ms: int = 30000
    ) -> int:
        """Produce v9: send one partition's record batches to its leader; returns the base offset
        (-1 with acks=0, which gets no response)."""
        from kio.schema.produce.v9.request import PartitionProduceData, ProduceRequest, TopicProduceData

        request = ProduceRequest(
            transactional_id=None,
            acks=acks,
            timeout=datetime.timedelta(milliseconds=timeout_ms),
            topic_data=(
                TopicProduceData(
                    name=topic, partition_data=(PartitionProduceData(index=partition, records=records),)
                ),
            ),
        )
        conn = await self.leader_connection(topic, partition)
        if acks == 0:
            await conn.request(request, expect_response=False)
            return -1
        response = await conn.request(request, timeout=self.timeout + timeout_ms / 1000)
        result = response.responses[0].partition_responses[0]
        raise_for_error(result.error_code, result.error_message, f"produce to {topic}-{partition}")
        return int(result.base_offset)

    async def fetch(
        self,
        topic: str,
        partition: int,
        offset: int,
        *,
        max_bytes: int = 1 << 20,
        max_wait_ms: int = 500,
        isolation_level: int = 0,
    ) -> FetchedPartition:
        """Fetch v12 (sessionless) of one partition from its leader: its watermarks, record batch bytes
        and, with isolation_level 1 (read_committed), the aborted transactions among those batches."""
        from kio.schema.fetch.v12.request import FetchPartition, FetchRequest, FetchTopic

        request = FetchRequest(
            cluster_id=None,
            replica_id=-1,
            max_wait=datetime.timedelta(milliseconds=max_wait_ms),
            min_bytes=1,
            max_bytes=max_bytes,
            isolation_level=isolation_level,
            session_id=0,
            session_epoch=-1,
            topics=(
                FetchTopic(
                    topic=topic,
                    partitions=(
                        FetchPartition(
                            partition=partition,
                            current_leader_epoch=-1,
                            fetch_offset=offset,
                            last_fetched_epoch=-1,
                            log_start_offset=-1,
                            partition_max_bytes=max_bytes,
                        ),
                    ),
                ),
            ),
            forgotten_topics_data=(),
            rack_id="",
        )
        conn = await self.leader_connection(topic, partition)
        response = await conn.request(request, timeout=self.timeout + max_wait_ms / 1000)
        raise_for_error(response.error_code, what=f"fetch {topic}-{partition}")
        data = response.responses[0].partitions[0]
        raise_for_error(data.error_code, what=f"fetch {topic}-{partition} at offset {offset}")
        return FetchedPartition(
            high_watermark=int(data.high_watermark),
            last_stable_offset=int(data.last_stable_offset),
            records=bytes(data.records or b""),
            aborted_transactions=tuple(
                (int(t.producer_id), int(t.first_offset)) for t in (data.aborted_transactions or ())
            ),
        )

    # groups -----------------------------------------------------------------------------------------
    async def find_coordinator(self, group: str) -> int:
        """FindCoordinator v3 (key type 0, group): the coordinator's node id. A coordinator that is not
        available yet (its offsets partition still being created or loaded) is asked again, as Kafka's
        clients do, until the client's timeout."""
        from kio.schema.find_coordinator.v3.request import FindCoordinatorRequest

        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout
        while True:
            response = await self.request_any(FindCoordinatorRequest(key=group, key_type=0))
            retriable = response.error_code in (
                ErrorCode.coordinator_not_available,
                ErrorCode.coordinator_load_in_progress,
            )
            if not retriable or loop.time() >= deadline:
                break
            await asyncio.sleep(0.1)
        raise_for_error(response.error_code, response.error_message, f"find coordinator of group {group}")
        return int(response.node_id)

    async def coordinator_connection(self, group: str) -> BrokerConnection:
        return await self.connection(await self.find_coordinator(group))

    async def list_groups(self, states: Sequence[str] = ()) -> list[tuple[str, str, str]]:
        """ListGroups v4 (KIP-518 state filter) on every broker: [(group id, protocol type, state)]."""
        from kio.schema.list_groups.v4.request import ListGroupsRequest

        meta = self.meta or await self.metadata([])
        out: dict[str, tuple[str, str, str]] = {}
        for node in sorted(meta.brokers):
            response = await (await self.connection(node)).request(
                ListGroupsRequest(states_filter=tuple(states))
            )
            raise_for_error(response.error_code, what=f"list groups on broker {node}")
            for g in response.groups:
                out[str(g.group_id)] = (str(g.group_id), str(g.protocol_type), str(g.group_state))
        return [out[k] for k in sorted(out)]

    async def describe_group(self, group: str) -> Any:
        """DescribeGroups v5 of one group, from its coordinator (the DescribedGroup entry)."""
        from kio.schema.describe_groups.v5.request import DescribeGroupsRequest

        conn = await self.coordinator_connection(group)
        response = await conn.request(
            DescribeGroupsRequest(groups=(group,), include_authorized_operations=False)
        )
        result = response.groups[0]
        raise_for_error(result.error_code, what=f"describe group {group}")
        return result

    async def fetch_committed(self, group: str) -> dict[tuple[str, int], int]:
        """OffsetFetch v7 of every committed offset of a group: {(topic, partition): offset}."""
        from kio.schema.offset_fetch.v7.request import OffsetFetchRequest

        conn = await self.coordinator_connection(group)
        response = await conn.request(OffsetFetchRequest(group_id=group, topics=None, require_stable=False))
        raise_for_error(response.error_code, what=f"fetch offsets of group {group}")
        out: dict[tuple[str, int], int] = {}
        for t in response.topics:
            for p in t.partitions:
                raise_for_error(p.error_code, what=f"offset of {t.name}-{p.partition_index}")
                if int(p.committed_offset) >= 0:
                    out[(str(t.name), int(p.partition_index))] = int(p.committed_offset)
        return out

    async def commit_offsets(self, group: str, offsets: dict[tuple[str, int], int]) -> None:
        """OffsetCommit v8 as a simple (non-member) committer: generation -1 and no member id, which
        the coordinator accepts only while the group has no active members."""
        from kio.schema.offset_commit.v8.request import (
            OffsetCommitRequest,
            OffsetCommitRequestPartition,
            OffsetCommitRequestTopic,
        )

        by_topic: dict[str, list[tuple[int, int]]] = {}
        for (topic, partition), offset in sorted(offsets.items()):
            by_topic.setdefault(topic, []).append((partition, offset))
        request = OffsetCommitRequest(
            group_id=group,
            generation_id_or_member_epoch=-1,
            member_id="",
            group_instance_id=None,
            topics=tuple(
                OffsetCommitRequestTopic(
                    name=topic,
                    partitions=tuple(
                        OffsetCommitRequestPartition(
                            partition_index=p,
                            committed_offset=o,
                            committed_leader_epoch=-1,
                            committed_metadata="",
                        )
                        for p, o in parts
                    ),
                )
                for topic, parts in by_topic.items()
            ),
        )
        response = await (await self.coordinator_connection(group)).request(request)
        for t in response.topics:
            for p in t.partitions:
                raise_for_error(p.error_code, what=f"commit {group} {t.name}-{p.partition_index}")

    async def delete_group(self, group: str) -> None:
        """DeleteGroups v2 of one group (GROUP_NOT_EMPTY while it has members)."""
        from kio.schema.delete_groups.v2.request import DeleteGroupsRequest

        conn = await self.coordinator_connection(group)
        response = await conn.request(DeleteGroupsRequest(groups_names=(group,)))
        raise_for_error(response.results[0].error_code, what=f"delete group {group}")

    # cluster administration -------------------------------------------------------------------------
    async def _controller_request(self, request: Any, top_error: Any) -> Any:
        """Send to the controller; after NOT_CONTROLLER (it moved) look it up again and retry once."""
        response = None
        for _ in range(2):
            response = await (await self.controller_connection()).request(request)
            if int(top_error(response)) != ErrorCode.not_controller.value:
                return response
            await self.metadata([])
        return response

    async def alter_partition_reassignments(
        self, targets: dict[tuple[str, int], Sequence[int] | None]
    ) -> dict[tuple[str, int], tuple[int, str | None]]:
        """AlterPartitionReassignments v0 (KIP-455): {(topic, partition): replicas, or None to cancel}
        -> {(topic, partition): (error code, message)}."""
        from kio.schema.alter_partition_reassignments.v0.request import (
            AlterPartitionReassignmentsRequest,
            ReassignablePartition,
            ReassignableTopic,
        )

        by_topic: dict[str, list[ReassignablePartition]] = {}
        for (topic, partition), replicas in sorted(targets.items()):
            by_topic.setdefault(topic, []).append(
                ReassignablePartition(
                    partition_index=partition, replicas=None if replicas is None else tuple(replicas)
                )
            )
        request = AlterPartitionReassignmentsRequest(
            timeout=datetime.timedelta(seconds=30),
            topics=tuple(ReassignableTopic(name=t, partitions=tuple(ps)) for t, ps in by_topic.items()),
        )
        response = await self._controller_request(request, lambda r: r.error_code)
        raise_for_error(response.error_code, response.error_message, "alter partition reassignments")
        return {
            (str(t.name), int(p.partition_index)): (int(p.error_code), p.error_message)
            for t in response.responses
            for p in t.partitions
        }

    async def list_partition_reassignments(
        self, partitions: Iterable[tuple[str, int]] | None = None
    ) -> dict[tuple[str, int], tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]]:
        """ListPartitionReassignments v0: {(topic, partition): (replicas, adding, removing)} of the
        reassignments in progress (all of them, or among `partitions`)."""
        from kio.schema.list_partition_reassignments.v0.request import (
            ListPartitionReassignmentsRequest,
            ListPartitionReassignmentsTopics,
        )

        topics = None
        if partitions is not None:
            by_topic: dict[str, list[int]] = {}
            for topic, partition in partitions:
                by_topic.setdefault(topic, []).append(partition)
            topics = tuple(
                ListPartitionReassignmentsTopics(name=t, partition_indexes=tuple(ps))
                for t, ps in by_topic.items()
            )
        request = ListPartitionReassignmentsRequest(timeout=datetime.timedelta(seconds=30), topics=topics)
        response = await self._controller_request(request, lambda r: r.error_code)
        raise_for_error(response.error_code, response.error_message, "list partition reassignments")
        return {
            (str(t.name), int(p.partition_index)): (
                tuple(int(r) for r in p.replicas),
                tuple(int(r) for r in p.adding_replicas),
                tuple(int(r) for r in p.removing_replicas),
            )
            for t in response.topics
            for p in t.partitions
        }

    async def elect_leaders(
        self, election_type: int, partitions: Iterable[tuple[str, int]] | None = None
    ) -> dict[tuple[str, int], tuple[int, str | None]]:
        """ElectLeaders v2 (KIP-460): 0 preferred, 1 unclean; `partitions` None means every partition.
        -> {(topic, partition): (error code, message)}."""
        from kio.schema.elect_leaders.v2.request import ElectLeadersRequest, TopicPartitions

        topic_partitions = None
        if partitions is not None:
            by_topic: dict[str, list[int]] = {}
            for topic, partition in partitions:
                by_topic.setdefault(topic, []).append(partition)
            topic_partitions = tuple(
                TopicPartitions(topic=t, partitions=tuple(ps)) for t, ps in by_topic.items()
            )
        request = ElectLeadersRequest(
            election_type=election_type,
            topic_partitions=topic_partitions,
            timeout=datetime.timedelta(seconds=30),
        )
        response = await self._controller_request(request, lambda r: r.error_code)
        raise_for_error(response.error_code, None, "elect leaders")
        return {
            (str(t.topic), int(p.partition_id)): (int(p.error_code), p.error_message)
            for t in response.replica_election_results
            for p in t.partition_result
        }
