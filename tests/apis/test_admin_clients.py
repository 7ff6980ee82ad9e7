"""The admin APIs driven by real clients against a running broker: confluent-kafka's AdminClient
(librdkafka) and kafka-python's KafkaAdminClient."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException, Producer, TopicCollection, TopicPartition
from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    ConfigSource,
    NewPartitions,
    NewTopic,
)

from strom.testing.embedded import EmbeddedBroker

pytestmark = pytest.mark.compat

TIMEOUT = 15


@pytest.fixture(scope="module")
def broker() -> Iterator[EmbeddedBroker]:
    with EmbeddedBroker({"log.retention.hours": "100", "num.partitions": "2"}) as b:
        yield b


@pytest.fixture(scope="module")
def admin(broker: EmbeddedBroker) -> AdminClient:
    return AdminClient({"bootstrap.servers": broker.bootstrap_servers})


def name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def result(futures: dict[Any, Any], key: Any) -> Any:
    return futures[key].result(timeout=TIMEOUT)


def error_code(futures: dict[Any, Any], key: Any) -> int:
    with pytest.raises(KafkaException) as info:
        futures[key].result(timeout=TIMEOUT)
    return int(info.value.args[0].code())


def test_create_and_describe_topics(admin: AdminClient) -> None:
    t = name("created")
    futures = admin.create_topics(
        [NewTopic(t, 3, 1, config={"retention.ms": "60000"})], request_timeout=TIMEOUT
    )
    assert result(futures, t) is None
    described = admin.describe_topics(TopicCollection([t]), request_timeout=TIMEOUT)[t].result(
        timeout=TIMEOUT
    )
    assert described.name == t
    assert [p.id for p in described.partitions] == [0, 1, 2]
    assert all(len(p.replicas) == 1 and p.leader is not None for p in described.partitions)
    listed = admin.list_topics(timeout=TIMEOUT).topics
    assert len(listed[t].partitions) == 3


def test_create_errors(admin: AdminClient) -> None:
    existing = name("exists")
    result(admin.create_topics([NewTopic(existing, 1, 1)]), existing)
    futures = admin.create_topics(
        [
            NewTopic(existing, 1, 1),
            NewTopic("bad/name", 1, 1),
            NewTopic(name("rf"), 1, 3),
            NewTopic(name("cfg"), 1, 1, config={"cleanup.policy": "shred"}),
            NewTopic(name("unknowncfg"), 1, 1, config={"no.such.config": "1"}),
        ],
        request_timeout=TIMEOUT,
    )
    codes = {topic: error_code(futures, topic) for topic in futures}
    assert codes[existing] == KafkaError.TOPIC_ALREADY_EXISTS
    assert codes["bad/name"] == KafkaError.TOPIC_EXCEPTION
    assert sorted(codes.values()).count(KafkaError.INVALID_CONFIG) == 2
    assert KafkaError.INVALID_REPLICATION_FACTOR in codes.values()


def test_validate_only_creates_nothing(admin: AdminClient) -> None:
    t = name("dry")
    assert result(admin.create_topics([NewTopic(t, 2, 1)], validate_only=True), t) is None
    assert t not in admin.list_topics(timeout=TIMEOUT).topics


def test_broker_default_partitions(admin: AdminClient) -> None:
    t = name("defaults")
    result(admin.create_topics([NewTopic(t)]), t)  # -1/-1 -> num.partitions=2 (KIP-464)
    assert len(admin.list_topics(timeout=TIMEOUT).topics[t].partitions) == 2


def test_create_partitions_grow_and_refused_shrink(admin: AdminClient) -> None:
    t = name("grow")
    result(admin.create_topics([NewTopic(t, 2, 1)]), t)
    assert result(admin.create_partitions([NewPartitions(t, 5)]), t) is None
    assert len(admin.list_topics(timeout=TIMEOUT).topics[t].partitions) == 5
    assert error_code(admin.create_partitions([NewPartitions(t, 3)]), t) == KafkaError.INVALID_PARTITIONS
    assert error_code(admin.create_partitions([NewPartitions(t, 5)]), t) == KafkaError.INVALID_PARTITIONS
    assert result(admin.create_partitions([NewPartitions(t, 8)], validate_only=True), t) is None
    assert len(admin.list_topics(timeout=TIMEOUT).topics[t].partitions) == 5


def test_delete_topics(admin: AdminClient) -> None:
    t = name("doomed")
    result(admin.create_topics([NewTopic(t, 1, 1)]), t)
    assert result(admin.delete_topics([t], request_timeout=TIMEOUT), t) is None
    assert t not in admin.list_topics(timeout=TIMEOUT).topics
    missing = name("missing")
    assert error_code(admin.delete_topics([missing]), missing) == KafkaError.UNKNOWN_TOPIC_OR_PART


def describe(admin: AdminClient, resource: ConfigResource) -> dict[str, ConfigEntry]:
    futures = admin.describe_configs([resource], request_timeout=TIMEOUT)
    return result(futures, resource)


def test_describe_configs_sources_and_synonyms(admin: AdminClient, broker: EmbeddedBroker) -> None:
    t = name("described")
    result(admin.create_topics([NewTopic(t, 1, 1, config={"segment.bytes": "1048576"})]), t)
    configs = describe(admin, ConfigResource(ConfigResource.Type.TOPIC, t))
    assert configs["segment.bytes"].value == "1048576"
    assert configs["segment.bytes"].source == ConfigSource.DYNAMIC_TOPIC_CONFIG.value
    # the value follows the broker's log.retention.hours=100, but Kafka 4.4 describes only synonyms from
    # the first one named log.retention.ms on: none here, so no synonyms and source DEFAULT_CONFIG
    assert configs["retention.ms"].value == str(100 * 3600 * 1000)
    assert configs["retention.ms"].source == ConfigSource.DEFAULT_CONFIG.value
    assert configs["retention.ms"].synonyms == {}
    assert configs["cleanup.policy"].source == ConfigSource.DEFAULT_CONFIG.value
    assert {n: s.source for n, s in configs["segment.bytes"].synonyms.items()} == {
        "segment.bytes": ConfigSource.DYNAMIC_TOPIC_CONFIG.value,
        "log.segment.bytes": ConfigSource.DEFAULT_CONFIG.value,
    }
    brokers = describe(admin, ConfigResource(ConfigResource.Type.BROKER, str(broker.broker.node_id)))
    assert brokers["log.retention.hours"].value == "100"
    assert brokers["log.retention.hours"].source == ConfigSource.STATIC_BROKER_CONFIG.value
    assert brokers["log.dirs"].is_read_only
    missing = ConfigResource(ConfigResource.Type.TOPIC, name("missing"))
    futures = admin.describe_configs([missing])
    assert error_code(futures, missing) == KafkaError.UNKNOWN_TOPIC_OR_PART


@pytest.mark.filterwarnings("ignore:alter_configs has been deprecated")
def test_alter_configs_replaces_overrides(admin: AdminClient) -> None:
    t = name("altered")
    result(admin.create_topics([NewTopic(t, 1, 1, config={"segment.bytes": "1048576"})]), t)
    resource = ConfigResource(ConfigResource.Type.TOPIC, t, set_config={"retention.ms": "12345"})
    assert result(admin.alter_configs([resource]), resource) is None
    configs = describe(admin, ConfigResource(ConfigResource.Type.TOPIC, t))
    assert configs["retention.ms"].value == "12345"
    assert configs["segment.bytes"].source != ConfigSource.DYNAMIC_TOPIC_CONFIG.value
    bad = ConfigResource(ConfigResource.Type.TOPIC, t, set_config={"retention.ms": "soon"})
    assert error_code(admin.alter_configs([bad]), bad) == KafkaError.INVALID_CONFIG


def test_incremental_alter_configs(admin: AdminClient, broker: EmbeddedBroker) -> None:
    t = name("incremental")
    result(admin.create_topics([NewTopic(t, 1, 1, config={"segment.bytes": "1048576"})]), t)
    resource = ConfigResource(
        ConfigResource.Type.TOPIC,
        t,
        incremental_configs=[
            ConfigEntry("retention.ms", "999", incremental_operation=AlterConfigOpType.SET),
            ConfigEntry("cleanup.policy", "compact", incremental_operation=AlterConfigOpType.APPEND),
        ],
    )
    assert result(admin.incremental_alter_configs([resource]), resource) is None
    configs = describe(admin, ConfigResource(ConfigResource.Type.TOPIC, t))
    assert configs["retention.ms"].value == "999"
    assert configs["segment.bytes"].value == "1048576"  # untouched, unlike AlterConfigs
    assert configs["cleanup.policy"].value == "delete,compact"
    node = str(broker.broker.node_id)
    dynamic = ConfigResource(
        ConfigResource.Type.BROKER,
        node,
        incremental_configs=[
            ConfigEntry("log.cleaner.threads", "2", incremental_operation=AlterConfigOpType.SET)
        ],
    )
    assert result(admin.incremental_alter_configs([dynamic]), dynamic) is None
    brokers = describe(admin, ConfigResource(ConfigResource.Type.BROKER, node))
    assert brokers["log.cleaner.threads"].value == "2"
    assert brokers["log.cleaner.threads"].source == ConfigSource.DYNAMIC_BROKER_CONFIG.value


def test_delete_records(admin: AdminClient, broker: EmbeddedBroker) -> None:
    t = name("records")
    result(admin.create_topics([NewTopic(t, 1, 1)]), t)
    producer = Producer({"bootstrap.servers": broker.bootstrap_servers, "linger.ms": 0})
    for i in range(10):
        producer.produce(t, value=f"v{i}".encode(), partition=0)
        producer.flush(TIMEOUT)  # one batch per record, so the log start can move inside the segment
    assert producer.flush(TIMEOUT) == 0
    tp = TopicPartition(t, 0, 4)
    deleted = admin.delete_records([tp], request_timeout=TIMEOUT)[tp].result(timeout=TIMEOUT)
    assert deleted.low_watermark == 4
    tp_all = TopicPartition(t, 0, -1)  # OFFSET_END: up to the high watermark
    deleted = admin.delete_records([tp_all])[tp_all].result(timeout=TIMEOUT)
    assert deleted.low_watermark == 10
    beyond = TopicPartition(t, 0, 50)
    with pytest.raises(KafkaException) as info:
        admin.delete_records([beyond])[beyond].result(timeout=TIMEOUT)
    assert info.value.args[0].code() == KafkaError.OFFSET_OUT_OF_RANGE


def test_describe_cluster(admin: AdminClient, broker: EmbeddedBroker) -> None:
    described = admin.describe_cluster(request_timeout=TIMEOUT).result(timeout=TIMEOUT)
    assert described.cluster_id == broker.broker.metadata.image.cluster_id
    assert len(described.cluster_id) == 22
    assert described.controller.id == broker.broker.node_id
    assert [(n.id, n.port) for n in described.nodes] == [(broker.broker.node_id, broker.port)]


def test_kafka_python_admin(broker: EmbeddedBroker) -> None:
    from kafka.admin import ConfigResource as KPConfigResource
    from kafka.admin import ConfigResourceType, KafkaAdminClient
    from kafka.admin import NewPartitions as KPNewPartitions
    from kafka.admin import NewTopic as KPNewTopic
    from kafka.errors import InvalidPartitionsError, TopicAlreadyExistsError

    client = KafkaAdminClient(bootstrap_servers=broker.bootstrap_servers, request_timeout_ms=TIMEOUT * 1000)
    try:
        t = name("kp")
        client.create_topics([KPNewTopic(t, 2, 1, topic_configs={"retention.ms": "5000"})])
        assert t in client.list_topics()
        with pytest.raises(TopicAlreadyExistsError):
            client.create_topics([KPNewTopic(t, 2, 1)], raise_errors=True)
        client.create_partitions({t: KPNewPartitions(4)})
        with pytest.raises(InvalidPartitionsError):
            client.create_partitions({t: KPNewPartitions(1)}, raise_errors=True)
        described = client.describe_configs([KPConfigResource(ConfigResourceType.TOPIC, t)])
        text = repr(described)
        assert "retention.ms" in text and "5000" in text
        client.alter_configs(
            [KPConfigResource(ConfigResourceType.TOPIC, t, configs={"retention.ms": "7000"})]
        )
        assert broker.broker.metadata.image.topics[t].configs == {"retention.ms": "7000"}
        assert len(broker.broker.metadata.image.topics[t].partitions) == 4
        client.delete_topics([t])
        assert t not in client.list_topics()
    finally:
        client.close()


def test_config_changes_reach_running_logs(admin: AdminClient, broker: EmbeddedBroker) -> None:
    t = name("live")
    result(admin.create_topics([NewTopic(t, 1, 1)]), t)
    part = broker.broker.replica_manager.get_partition(t, 0)
    assert part.log.config.retention_ms == 100 * 3600 * 1000
    resource = ConfigResource(
        ConfigResource.Type.TOPIC,
        t,
        incremental_configs=[
            ConfigEntry("retention.ms", "4321", incremental_operation=AlterConfigOpType.SET)
        ],
    )
    result(admin.incremental_alter_configs([resource]), resource)
    assert part.log.config.retention_ms == 4321
    node = str(broker.broker.node_id)
    dynamic = ConfigResource(
        ConfigResource.Type.BROKER,
        node,
        incremental_configs=[
            ConfigEntry("log.segment.bytes", "2097152", incremental_operation=AlterConfigOpType.SET)
        ],
    )
    result(admin.incremental_alter_configs([dynamic]), dynamic)
    assert part.log.config.segment_bytes == 2097152  # a broker default the topic does not override
    cleanup = ConfigResource(
        ConfigResource.Type.BROKER,
        node,
        incremental_configs=[
            ConfigEntry("log.segment.bytes", None, incremental_operation=AlterConfigOpType.DELETE)
        ],
    )
    result(admin.incremental_alter_configs([cleanup]), cleanup)
    assert part.log.config.segment_bytes == 1073741824


def test_delete_topic_removes_its_log(admin: AdminClient, broker: EmbeddedBroker) -> None:
    t = name("gone")
    result(admin.create_topics([NewTopic(t, 1, 1)]), t)
    assert broker.broker.log_manager.get_log(t, 0) is not None
    result(admin.delete_topics([t]), t)
    assert broker.broker.log_manager.get_log(t, 0) is None
    assert broker.broker.replica_manager.get_partition(t, 0) is None


def test_metadata_survives_restart(tmp_path: Any) -> None:
    t = name("durable")
    with EmbeddedBroker(data_dir=tmp_path) as first:
        admin = AdminClient({"bootstrap.servers": first.bootstrap_servers})
        result(admin.create_topics([NewTopic(t, 3, 1, config={"retention.ms": "777"})]), t)
        cluster_id = first.broker.metadata.image.cluster_id
        topic_id = first.broker.metadata.image.topics[t].topic_id
    with EmbeddedBroker(data_dir=tmp_path) as second:
        image = second.broker.metadata.image
        assert image.cluster_id == cluster_id
        assert image.topics[t].topic_id == topic_id
        admin = AdminClient({"bootstrap.servers": second.bootstrap_servers})
        configs = describe(admin, ConfigResource(ConfigResource.Type.TOPIC, t))
        assert configs["retention.ms"].value == "777"
        assert len(admin.list_topics(timeout=TIMEOUT).topics[t].partitions) == 3


def test_topic_names_that_collide_on_dot_and_underscore_are_refused(admin: AdminClient) -> None:
    base = name("collide")
    dotted, underscored = f"{base}.x", f"{base}_x"
    assert result(admin.create_topics([NewTopic(dotted, 1, 1)], request_timeout=TIMEOUT), dotted) is None
    futures = admin.create_topics([NewTopic(underscored, 1, 1)], request_timeout=TIMEOUT)
    assert error_code(futures, underscored) == KafkaError.TOPIC_EXCEPTION
    assert underscored not in admin.list_topics(timeout=TIMEOUT).topics
