"""Admin API handlers called directly, for every version they serve, with a real LocalBackend and fake
partitions. Each response is serialized with kio's writer and read back, so a field missing or ill-typed
for some version fails here."""

from __future__ import annotations

import io
import random
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from kio.serial import entity_reader, entity_writer

from strom.apis import (
    alter_configs,
    create_partitions,
    create_topics,
    delete_records,
    delete_topics,
    describe_cluster,
    describe_configs,
    describe_log_dirs,
    incremental_alter_configs,
)
from strom.apis._admin_util import kio_module
from strom.cluster.local import LocalBackend
from strom.cluster.metadata import BrokerInfo
from strom.config import BrokerConfig, ConfigSource, LogConfig
from strom.protocol.errors import ErrorCode, OffsetOutOfRangeError

NODE = 3


@dataclass
class FakeLog:
    topic: str
    partition: int
    dir: Path
    log_start_offset: int = 0
    log_end_offset: int = 100
    size_in_bytes: int = 4096
    config: LogConfig = field(default_factory=LogConfig)
    is_future: bool = False

    def delete_records_before(self, offset: int) -> int:
        if offset > self.log_end_offset:
            raise OffsetOutOfRangeError("beyond end")
        self.log_start_offset = max(self.log_start_offset, offset)
        return self.log_start_offset


@dataclass
class FakePartition:
    log: FakeLog
    high_watermark: int = 80
    is_leader: bool = True
    moved: int = 0

    @property
    def log_start_offset(self) -> int:
        return self.log.log_start_offset

    def on_log_start_moved(self) -> None:
        self.moved += 1


class FakeReplicaManager:
    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.partitions: dict[tuple[str, int], FakePartition] = {}

    def on_change(self, old: Any, new: Any) -> None:
        for info in new.topics.values():
            for p in info.partitions:
                key = (info.name, p)
                if key not in self.partitions:
                    overrides = {"cleanup.policy": info.configs.get("cleanup.policy", "delete")}
                    cfg = LogConfig.from_values({"cleanup.policy": overrides["cleanup.policy"].split(",")})
                    self.partitions[key] = FakePartition(
                        FakeLog(info.name, p, self.log_dir / f"{info.name}-{p}", config=cfg)
                    )
        for key in [k for k in self.partitions if k[0] not in new.topics]:
            del self.partitions[key]

    def get_partition(self, topic: str, partition: int) -> FakePartition | None:
        return self.partitions.get((topic, partition))


@pytest.fixture
async def ctx_factory(tmp_path: Path) -> Any:
    config = BrokerConfig({"node.id": str(NODE), "log.dirs": str(tmp_path), "log.retention.hours": "5"})
    backend = LocalBackend(tmp_path, BrokerInfo(NODE, "127.0.0.1", 9999, "r1"), config, rng=random.Random(5))
    replicas = FakeReplicaManager(tmp_path)
    backend.add_listener(replicas.on_change)
    await backend.start()
    broker = SimpleNamespace(
        config=config,
        metadata=backend,
        node_id=NODE,
        replica_manager=replicas,
        log_manager=SimpleNamespace(
            log_dirs=[tmp_path],
            offline_dirs={},
            all_logs=lambda: [p.log for p in replicas.partitions.values()],
            all_future_logs=list,
            get_log=lambda t, p: replicas.partitions[(t, p)].log,
        ),
    )

    def make(api_key: int, version: int) -> Any:
        return SimpleNamespace(
            broker=broker,
            api_key=api_key,
            api_version=version,
            listener_name="PLAINTEXT",
            authorize=lambda *_args: True,
        )

    return make


def roundtrip(response: Any) -> Any:
    buf = io.BytesIO()
    entity_writer(type(response))(buf, response)
    parsed, _ = entity_reader(type(response))(memoryview(buf.getvalue()), 0)
    return parsed


def req(api: str, version: int, name: str, **values: Any) -> Any:
    mod = kio_module(api, version, "request")
    return getattr(mod, name)(**values)


async def call(make: Any, module: Any, version: int, request: Any) -> Any:
    return roundtrip(await module.handle(make(module.API_KEY, version), request))


def creatable(
    version: int, name: str, partitions: int = 1, rf: int = 1, configs: Any = (), assign: Any = ()
) -> Any:
    mod = kio_module("create_topics", version, "request")
    return mod.CreatableTopic(
        name=name,
        num_partitions=partitions,
        replication_factor=rf,
        assignments=tuple(mod.CreatableReplicaAssignment(partition_index=p, broker_ids=b) for p, b in assign),
        configs=tuple(mod.CreatableTopicConfig(name=k, value=v) for k, v in configs),
    )


async def create(make: Any, version: int, *topics: Any, validate_only: bool = False) -> dict[str, Any]:
    mod = kio_module("create_topics", version, "request")
    response = await call(
        make,
        create_topics,
        version,
        mod.CreateTopicsRequest(topics=topics, timeout=1000, validate_only=validate_only),
    )
    return {t.name: t for t in response.topics}


@pytest.mark.parametrize("version", range(2, 8))
async def test_create_topics_every_version(ctx_factory: Any, version: int) -> None:
    make = ctx_factory
    out = await create(
        make,
        version,
        creatable(version, "ok", 3, 1, [("retention.ms", "1000")]),
        creatable(version, "bad name"),
        creatable(version, "zero", 0),
        creatable(version, "rf", 1, 2),
        creatable(version, "cfg", 1, 1, [("retention.ms", "later")]),
        creatable(version, "dup"),
        creatable(version, "dup"),
        creatable(version, "manual", -1, -1, assign=[(0, (NODE,)), (1, (NODE,))]),
        creatable(version, "unknown-broker", -1, -1, assign=[(0, (99,))]),
    )
    assert out["ok"].error_code == ErrorCode.none
    assert out["bad name"].error_code == ErrorCode.invalid_topic_exception
    assert out["zero"].error_code == ErrorCode.invalid_partitions
    assert out["rf"].error_code == ErrorCode.invalid_replication_factor
    assert out["cfg"].error_code == ErrorCode.invalid_config
    assert out["dup"].error_code == ErrorCode.invalid_request
    assert out["manual"].error_code == ErrorCode.none
    assert out["unknown-broker"].error_code == ErrorCode.invalid_replica_assignment
    assert out["rf"].error_message and "larger than available brokers" in out["rf"].error_message
    image = make(19, version).broker.metadata.image
    assert set(image.topics) == {"ok", "manual"}
    if version >= 5:
        ok = out["ok"]
        assert (ok.num_partitions, ok.replication_factor) == (3, 1)
        configs = {c.name: c for c in ok.configs}
        assert configs["retention.ms"].value == "1000"
        assert configs["retention.ms"].config_source == ConfigSource.DYNAMIC_TOPIC_CONFIG
        assert configs["segment.ms"].config_source == ConfigSource.DEFAULT_CONFIG
        assert out["zero"].num_partitions == -1
    if version >= 7:
        assert out["ok"].topic_id == image.topics["ok"].topic_id


async def test_create_topics_defaults_and_validate_only(ctx_factory: Any) -> None:
    make = ctx_factory
    out = await create(make, 7, creatable(7, "dry", 4, 1), validate_only=True)
    assert out["dry"].error_code == ErrorCode.none and out["dry"].num_partitions == 4
    assert "dry" not in make(19, 7).broker.metadata.image.topics
    out = await create(make, 7, creatable(7, "d", -1, -1))
    assert (out["d"].num_partitions, out["d"].replication_factor) == (1, 1)
    out = await create(make, 7, creatable(7, "d", 1, 1))
    assert out["d"].error_code == ErrorCode.topic_already_exists


@pytest.mark.parametrize("version", range(1, 7))
async def test_delete_topics_every_version(ctx_factory: Any, version: int) -> None:
    make = ctx_factory
    await create(make, 7, creatable(7, "a"), creatable(7, "b"), creatable(7, "__consumer_offsets"))
    image = make(20, version).broker.metadata.image
    if version >= 6:
        mod = kio_module("delete_topics", version, "request")
        topics = (
            mod.DeleteTopicState(name="a", topic_id=None),
            mod.DeleteTopicState(name=None, topic_id=image.topics["b"].topic_id),
            mod.DeleteTopicState(name=None, topic_id=uuid.uuid4()),
            mod.DeleteTopicState(name="missing", topic_id=None),
            mod.DeleteTopicState(name="__consumer_offsets", topic_id=None),
        )
        request = mod.DeleteTopicsRequest(topics=topics, timeout=1000)
    else:
        request = req(
            "delete_topics",
            version,
            "DeleteTopicsRequest",
            topic_names=("a", "b", "missing", "__consumer_offsets"),
            timeout=1000,
        )
    response = await call(make, delete_topics, version, request)
    codes = [r.error_code for r in response.responses]
    if version >= 6:
        assert codes == [
            ErrorCode.none,
            ErrorCode.none,
            ErrorCode.unknown_topic_id,
            ErrorCode.unknown_topic_or_partition,
            ErrorCode.invalid_request,
        ]
        assert response.responses[1].name == "b"
        assert response.responses[0].topic_id == image.topics["a"].topic_id
    else:
        assert codes == [
            ErrorCode.none,
            ErrorCode.none,
            ErrorCode.unknown_topic_or_partition,
            ErrorCode.invalid_request,
        ]
    assert set(make(20, version).broker.metadata.image.topics) == {"__consumer_offsets"}


@pytest.mark.parametrize("version", range(4))
async def test_create_partitions_every_version(ctx_factory: Any, version: int) -> None:
    make = ctx_factory
    await create(make, 7, creatable(7, "g", 2), creatable(7, "h", 2))
    mod = kio_module("create_partitions", version, "request")

    def topic(name: str, count: int, assignments: Any = None) -> Any:
        return mod.CreatePartitionsTopic(
            name=name,
            count=count,
            assignments=None
            if assignments is None
            else tuple(mod.CreatePartitionsAssignment(broker_ids=a) for a in assignments),
        )

    response = await call(
        make,
        create_partitions,
        version,
        mod.CreatePartitionsRequest(
            topics=(topic("g", 4), topic("h", 1), topic("nope", 3), topic("h", 2)),
            timeout=1000,
            validate_only=False,
        ),
    )
    codes = {r.name: r.error_code for r in response.results}
    assert codes == {
        "g": ErrorCode.none,
        "h": ErrorCode.invalid_request,
        "nope": ErrorCode.unknown_topic_or_partition,
    }
    response = await call(
        make,
        create_partitions,
        version,
        mod.CreatePartitionsRequest(
            topics=(topic("h", 1), topic("g", 4), topic("g2", 1)), timeout=1000, validate_only=True
        ),
    )
    image = make(37, version).broker.metadata.image
    assert [r.error_code for r in response.results] == [
        ErrorCode.invalid_partitions,
        ErrorCode.invalid_partitions,
        ErrorCode.unknown_topic_or_partition,
    ]
    assert len(image.topics["g"].partitions) == 4 and len(image.topics["h"].partitions) == 2


def describe_request(
    version: int, resources: list[tuple[int, str, Any]], synonyms: bool = True, docs: bool = True
) -> Any:
    mod = kio_module("describe_configs", version, "request")
    return build_req(
        mod.DescribeConfigsRequest,
        resources=tuple(
            mod.DescribeConfigsResource(resource_type=t, resource_name=n, configuration_keys=k)
            for t, n, k in resources
        ),
        include_synonyms=synonyms,
        include_documentation=docs,
    )


def build_req(cls: type, **values: Any) -> Any:
    from strom.apis._admin_util import build

    return build(cls, **values)


@pytest.mark.parametrize("version", range(1, 5))
async def test_describe_configs_every_version(ctx_factory: Any, version: int) -> None:
    make = ctx_factory
    await create(
        make, 7, creatable(7, "c", 1, 1, [("retention.ms", "1000"), ("cleanup.policy", "compact,delete")])
    )
    response = await call(
        make,
        describe_configs,
        version,
        describe_request(
            version,
            [
                (2, "c", None),
                (2, "c", ("segment.ms", "no.such.key")),
                (2, "missing", None),
                (4, str(NODE), ("log.retention.hours", "log.dirs")),
                (4, "77", None),
                (4, "", None),
                (8, str(NODE), None),
            ],
        ),
    )
    topic, filtered, missing, broker, other, default, logger = response.results
    entries = {c.name: c for c in topic.configs}
    assert topic.error_code == ErrorCode.none
    assert entries["retention.ms"].value == "1000"
    assert entries["retention.ms"].config_source == ConfigSource.DYNAMIC_TOPIC_CONFIG
    assert [(s.name, s.value, s.source) for s in entries["retention.ms"].synonyms] == [
        ("retention.ms", "1000", ConfigSource.DYNAMIC_TOPIC_CONFIG),
    ]  # Kafka leaves out log.retention.hours: not named log.retention.ms (ConfigHelper.configSynonyms)
    assert entries["cleanup.policy"].value == "compact,delete"
    assert entries["segment.ms"].value == str(168 * 3600000)
    assert entries["segment.ms"].config_source == ConfigSource.DEFAULT_CONFIG
    assert [c.name for c in filtered.configs] == ["segment.ms"]
    assert missing.error_code == ErrorCode.unknown_topic_or_partition
    b = {c.name: c for c in broker.configs}
    assert set(b) == {"log.retention.hours", "log.dirs"}
    assert b["log.retention.hours"].value == "5"
    assert b["log.retention.hours"].config_source == ConfigSource.STATIC_BROKER_CONFIG
    assert b["log.dirs"].read_only
    assert other.error_code == ErrorCode.invalid_request
    assert default.error_code == ErrorCode.none and default.configs == ()
    assert logger.error_code == ErrorCode.invalid_request
    if version >= 3:
        assert entries["retention.ms"].config_type == 5  # LONG
        assert entries["cleanup.policy"].config_type == 7  # LIST


async def test_describe_configs_without_synonyms(ctx_factory: Any) -> None:
    response = await call(
        ctx_factory, describe_configs, 4, describe_request(4, [(2, "x", None)], synonyms=False, docs=False)
    )
    assert response.results[0].error_code == ErrorCode.unknown_topic_or_partition
    await create(ctx_factory, 7, creatable(7, "x"))
    response = await call(
        ctx_factory, describe_configs, 4, describe_request(4, [(2, "x", None)], synonyms=False, docs=False)
    )
    assert all(c.synonyms == () and c.documentation is None for c in response.results[0].configs)


def alter_request(
    version: int, resources: list[tuple[int, str, dict[str, str | None]]], validate_only: bool = False
) -> Any:
    mod = kio_module("alter_configs", version, "request")
    return mod.AlterConfigsRequest(
        resources=tuple(
            mod.AlterConfigsResource(
                resource_type=t,
                resource_name=n,
                configs=tuple(mod.AlterableConfig(name=k, value=v) for k, v in c.items()),
            )
            for t, n, c in resources
        ),
        validate_only=validate_only,
    )


@pytest.mark.parametrize("version", range(3))
async def test_alter_configs_every_version(ctx_factory: Any, version: int) -> None:
    make = ctx_factory
    await create(make, 7, creatable(7, "c", 1, 1, [("retention.ms", "1000")]))
    backend = make(33, version).broker.metadata
    response = await call(
        make,
        alter_configs,
        version,
        alter_request(
            version,
            [
                (2, "c", {"segment.bytes": "4194304"}),
                (2, "missing", {}),
                (4, str(NODE), {"log.retention.ms": "777"}),
                (4, str(NODE + 1), {}),
                (2, "c2", {"segment.bytes": "nope"}),
            ],
        ),
    )
    codes = [r.error_code for r in response.responses]
    assert codes == [
        ErrorCode.none,
        ErrorCode.unknown_topic_or_partition,
        ErrorCode.none,
        ErrorCode.invalid_request,
        ErrorCode.unknown_topic_or_partition,
    ]
    assert backend.image.topics["c"].configs == {"segment.bytes": "4194304"}  # full replacement
    assert make(33, version).broker.config.get("log.retention.ms") == 777
    response = await call(
        make, alter_configs, version, alter_request(version, [(2, "c", {"segment.bytes": "x"})])
    )
    assert response.responses[0].error_code == ErrorCode.invalid_config
    response = await call(
        make,
        alter_configs,
        version,
        alter_request(version, [(2, "c", {"retention.ms": "5"})], validate_only=True),
    )
    assert response.responses[0].error_code == ErrorCode.none
    assert backend.image.topics["c"].configs == {"segment.bytes": "4194304"}


def incremental_request(
    version: int,
    resources: list[tuple[int, str, list[tuple[str, int, str | None]]]],
    validate_only: bool = False,
) -> Any:
    mod = kio_module("incremental_alter_configs", version, "request")
    return mod.IncrementalAlterConfigsRequest(
        resources=tuple(
            mod.AlterConfigsResource(
                resource_type=t,
                resource_name=n,
                configs=tuple(mod.AlterableConfig(name=k, config_operation=op, value=v) for k, op, v in ops),
            )
            for t, n, ops in resources
        ),
        validate_only=validate_only,
    )


@pytest.mark.parametrize("version", range(2))
async def test_incremental_alter_configs_every_version(ctx_factory: Any, version: int) -> None:
    make = ctx_factory
    await create(make, 7, creatable(7, "c", 1, 1, [("retention.ms", "1000"), ("segment.bytes", "2097152")]))
    backend = make(44, version).broker.metadata

    async def run(*resources: Any, validate_only: bool = False) -> list[ErrorCode]:
        response = await call(
            make,
            incremental_alter_configs,
            version,
            incremental_request(version, list(resources), validate_only),
        )
        return [r.error_code for r in response.responses]

    assert await run((2, "c", [("retention.ms", 0, "5"), ("segment.bytes", 1, None)])) == [ErrorCode.none]
    assert backend.image.topics["c"].configs == {"retention.ms": "5"}
    assert await run((2, "c", [("cleanup.policy", 2, "compact")])) == [ErrorCode.none]
    assert backend.image.topics["c"].configs["cleanup.policy"] == "delete,compact"
    assert await run((2, "c", [("cleanup.policy", 2, "compact")])) == [ErrorCode.none]
    assert backend.image.topics["c"].configs["cleanup.policy"] == "delete,compact"
    assert await run((2, "c", [("cleanup.policy", 3, "delete")])) == [ErrorCode.none]
    assert backend.image.topics["c"].configs["cleanup.policy"] == "compact"
    assert await run((2, "c", [("retention.ms", 2, "5")])) == [ErrorCode.invalid_config]
    assert await run((2, "c", [("retention.ms", 0, "5"), ("retention.ms", 1, None)])) == [
        ErrorCode.invalid_request
    ]
    assert await run((2, "c", [("retention.ms", 9, "5")])) == [ErrorCode.invalid_request]
    assert await run((2, "c", [("no.such", 0, "5")])) == [ErrorCode.invalid_config]
    assert await run((2, "c", [("retention.ms", 0, "9")]), validate_only=True) == [ErrorCode.none]
    assert backend.image.topics["c"].configs["retention.ms"] == "5"
    assert await run((2, "c", []), (2, "c", [])) == [ErrorCode.invalid_request]
    assert await run((4, str(NODE), [("log.cleaner.threads", 0, "2")])) == [ErrorCode.none]
    assert await run((4, str(NODE), [("log.dirs", 0, "/x")])) == [ErrorCode.invalid_request]
    assert make(44, version).broker.config.get("log.cleaner.threads") == 2
    assert await run((4, str(NODE), [("log.cleaner.threads", 1, None)])) == [ErrorCode.none]
    assert not make(44, version).broker.config.is_set("log.cleaner.threads")


@pytest.mark.parametrize("version", range(3))
async def test_delete_records_every_version(ctx_factory: Any, version: int) -> None:
    make = ctx_factory
    await create(
        make,
        7,
        creatable(7, "r", 2),
        creatable(7, "compacted", 1, 1, [("cleanup.policy", "compact")]),
        creatable(7, "__consumer_offsets", 1, 1),
    )
    rm = make(21, version).broker.replica_manager
    mod = kio_module("delete_records", version, "request")

    def topic(name: str, *parts: tuple[int, int]) -> Any:
        return mod.DeleteRecordsTopic(
            name=name,
            partitions=tuple(mod.DeleteRecordsPartition(partition_index=p, offset=o) for p, o in parts),
        )

    response = await call(
        make,
        delete_records,
        version,
        mod.DeleteRecordsRequest(
            topics=(
                topic("r", (0, 30), (1, 81), (5, 1)),
                topic("nope", (0, 1)),
                topic("compacted", (0, 1)),
                topic("__consumer_offsets", (0, 1)),
            ),
            timeout=1000,
        ),
    )
    results = {(t.name, p.partition_index): p for t in response.topics for p in t.partitions}
    assert (results["r", 0].error_code, results["r", 0].low_watermark) == (ErrorCode.none, 30)
    assert results["r", 1].error_code == ErrorCode.offset_out_of_range
    assert results["r", 5].error_code == ErrorCode.unknown_topic_or_partition
    assert results["nope", 0].error_code == ErrorCode.unknown_topic_or_partition
    assert results["compacted", 0].error_code == ErrorCode.policy_violation
    assert results["__consumer_offsets", 0].error_code == ErrorCode.invalid_topic_exception
    assert rm.get_partition("r", 0).moved == 1
    # -1 is the high watermark; lower than the current start changes nothing
    response = await call(
        make,
        delete_records,
        version,
        mod.DeleteRecordsRequest(topics=(topic("r", (0, 10), (1, -1)),), timeout=1000),
    )
    lows = [(p.error_code, p.low_watermark) for p in response.topics[0].partitions]
    assert lows == [(ErrorCode.none, 30), (ErrorCode.none, 80)]


@pytest.mark.parametrize("version", range(3))
async def test_describe_cluster_every_version(ctx_factory: Any, version: int) -> None:
    make = ctx_factory
    mod = kio_module("describe_cluster", version, "request")
    request = build_req(
        mod.DescribeClusterRequest,
        include_cluster_authorized_operations=True,
        endpoint_type=1,
        include_fenced_brokers=False,
    )
    response = await call(make, describe_cluster, version, request)
    backend = make(60, version).broker.metadata
    assert response.error_code == ErrorCode.none
    assert response.cluster_id == backend.image.cluster_id
    assert response.controller_id == NODE
    assert [(b.broker_id, b.host, b.port, b.rack) for b in response.brokers] == [
        (NODE, "127.0.0.1", 9999, "r1")
    ]
    assert response.cluster_authorized_operations & (1 << 8)  # DESCRIBE
    if version >= 1:
        request = build_req(
            mod.DescribeClusterRequest,
            include_cluster_authorized_operations=False,
            endpoint_type=2,
            include_fenced_brokers=False,
        )
        response = await call(make, describe_cluster, version, request)
        assert response.error_code == ErrorCode.unsupported_endpoint_type


@pytest.mark.parametrize("version", range(1, 5))
async def test_describe_log_dirs_every_version(ctx_factory: Any, version: int, tmp_path: Path) -> None:
    make = ctx_factory
    await create(make, 7, creatable(7, "l", 3), creatable(7, "m", 1))
    mod = kio_module("describe_log_dirs", version, "request")
    response = await call(make, describe_log_dirs, version, mod.DescribeLogDirsRequest(topics=None))
    (result,) = response.results
    assert result.log_dir == str(tmp_path.resolve())
    assert {(t.name, p.partition_index, p.partition_size) for t in result.topics for p in t.partitions} == {
        ("l", 0, 4096),
        ("l", 1, 4096),
        ("l", 2, 4096),
        ("m", 0, 4096),
    }
    request = mod.DescribeLogDirsRequest(topics=(mod.DescribableLogDirTopic(topic="l", partitions=(1, 9)),))
    response = await call(make, describe_log_dirs, version, request)
    assert [(t.name, [p.partition_index for p in t.partitions]) for t in response.results[0].topics] == [
        ("l", [1])
    ]
    if version >= 4:
        assert response.results[0].total_bytes > 0 and response.results[0].usable_bytes >= 0
