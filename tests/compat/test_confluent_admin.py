"""confluent-kafka (librdkafka) AdminClient against the broker under test.

Covers CreateTopics, Metadata, DescribeConfigs (sources and defaults), AlterConfigs and
IncrementalAlterConfigs (KIP-339), CreatePartitions (growth, refused shrink), DeleteRecords (KIP-107),
DeleteTopics and DescribeCluster.
"""

from __future__ import annotations

import time

import pytest
from compat_support import TopicMaker, wait_for_topic
from confluent_kafka import (
    KafkaError,
    KafkaException,
    Producer,
    TopicCollection,
    TopicPartition,
)
from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    ConfigSource,
    NewPartitions,
    NewTopic,
    OffsetSpec,
    ResourceType,
)

pytestmark = pytest.mark.compat


@pytest.fixture
def admin(broker: str) -> AdminClient:
    return AdminClient({"bootstrap.servers": broker})


def _error_code(exc_info: pytest.ExceptionInfo[KafkaException]) -> int:
    return exc_info.value.args[0].code()


def _topic_configs(admin: AdminClient, topic: str) -> dict[str, ConfigEntry]:
    res = ConfigResource(ResourceType.TOPIC, topic)
    return admin.describe_configs([res])[res].result(timeout=15)


def _configs_once(admin: AdminClient, topic: str, key: str, value: str) -> dict[str, ConfigEntry]:
    """The topic's configs once `key` reads `value`: Kafka's broker answers DescribeConfigs from its
    metadata, which a change reaches a moment after the controller acknowledged it."""
    deadline = time.monotonic() + 15
    while (configs := _topic_configs(admin, topic))[key].value != value:
        assert time.monotonic() < deadline, f"{key} still {configs[key].value}, not {value}"
        time.sleep(0.1)
    return configs


def test_create_describe_delete_topic(admin: AdminClient, topic_name: str) -> None:
    futures = admin.create_topics([NewTopic(topic_name, 3, 1, config={"retention.ms": "123456"})])
    futures[topic_name].result(timeout=30)
    wait_for_topic(admin, topic_name, 3)

    md = admin.list_topics(topic_name, timeout=10).topics[topic_name]
    assert sorted(md.partitions) == [0, 1, 2]
    assert all(p.leader >= 0 and p.replicas == [p.leader] for p in md.partitions.values())

    configs = _topic_configs(admin, topic_name)
    assert configs["retention.ms"].value == "123456"
    assert configs["retention.ms"].source == ConfigSource.DYNAMIC_TOPIC_CONFIG.value
    assert configs["cleanup.policy"].value == "delete"
    assert configs["cleanup.policy"].source == ConfigSource.DEFAULT_CONFIG.value
    assert configs["max.message.bytes"].value == "1048588"

    again = admin.create_topics([NewTopic(topic_name, 1, 1)])
    with pytest.raises(KafkaException) as exc:
        again[topic_name].result(timeout=15)
    assert _error_code(exc) == KafkaError.TOPIC_ALREADY_EXISTS

    admin.delete_topics([topic_name], operation_timeout=30)[topic_name].result(timeout=30)
    deadline = time.monotonic() + 15
    while topic_name in admin.list_topics(timeout=10).topics and time.monotonic() < deadline:
        time.sleep(0.2)
    assert topic_name not in admin.list_topics(timeout=10).topics


def test_create_topic_refuses_bad_config(admin: AdminClient, topic_name: str) -> None:
    futures = admin.create_topics([NewTopic(topic_name, 1, 1, config={"cleanup.policy": "bogus"})])
    with pytest.raises(KafkaException) as exc:
        futures[topic_name].result(timeout=15)
    assert _error_code(exc) == KafkaError.INVALID_CONFIG
    assert topic_name not in admin.list_topics(timeout=10).topics


def test_delete_unknown_topic(admin: AdminClient, topic_name: str) -> None:
    with pytest.raises(KafkaException) as exc:
        admin.delete_topics([topic_name], operation_timeout=10)[topic_name].result(timeout=15)
    assert _error_code(exc) == KafkaError.UNKNOWN_TOPIC_OR_PART


def test_incremental_alter_configs(admin: AdminClient, topic: str) -> None:
    res = ConfigResource(ResourceType.TOPIC, topic, incremental_configs=[
        ConfigEntry("segment.ms", "3600000", incremental_operation=AlterConfigOpType.SET),
        ConfigEntry("message.timestamp.type", "LogAppendTime", incremental_operation=AlterConfigOpType.SET),
    ])
    admin.incremental_alter_configs([res])[res].result(timeout=15)
    configs = _configs_once(admin, topic, "segment.ms", "3600000")
    assert configs["segment.ms"].source == ConfigSource.DYNAMIC_TOPIC_CONFIG.value
    assert configs["message.timestamp.type"].value == "LogAppendTime"

    # DELETE falls back to the default; the other override stays.
    res = ConfigResource(ResourceType.TOPIC, topic, incremental_configs=[
        ConfigEntry("segment.ms", None, incremental_operation=AlterConfigOpType.DELETE)])
    admin.incremental_alter_configs([res])[res].result(timeout=15)
    configs = _configs_once(admin, topic, "segment.ms", str(7 * 24 * 3600 * 1000))
    assert configs["segment.ms"].source == ConfigSource.DEFAULT_CONFIG.value
    assert configs["message.timestamp.type"].value == "LogAppendTime"


@pytest.mark.filterwarnings("ignore:alter_configs has been deprecated:DeprecationWarning")
def test_legacy_alter_configs_replaces_all_overrides(admin: AdminClient, make_topic: TopicMaker) -> None:
    topic = make_topic(configs={"retention.ms": "60000"})
    res = ConfigResource(ResourceType.TOPIC, topic, set_config={"retention.bytes": "1048576"})
    admin.alter_configs([res])[res].result(timeout=15)
    configs = _configs_once(admin, topic, "retention.bytes", "1048576")
    # AlterConfigs (not incremental) replaces the whole set of overrides.
    assert configs["retention.ms"].source == ConfigSource.DEFAULT_CONFIG.value
    assert configs["retention.ms"].value == str(7 * 24 * 3600 * 1000)


def test_alter_configs_refuses_unknown_key(admin: AdminClient, topic: str) -> None:
    res = ConfigResource(ResourceType.TOPIC, topic, incremental_configs=[
        ConfigEntry("no.such.config", "1", incremental_operation=AlterConfigOpType.SET)])
    with pytest.raises(KafkaException) as exc:
        admin.incremental_alter_configs([res])[res].result(timeout=15)
    assert _error_code(exc) == KafkaError.INVALID_CONFIG


def test_create_partitions_grow_and_refuse_shrink(admin: AdminClient, topic: str) -> None:
    admin.create_partitions([NewPartitions(topic, 3)])[topic].result(timeout=30)
    wait_for_topic(admin, topic, 3)

    with pytest.raises(KafkaException) as exc:
        admin.create_partitions([NewPartitions(topic, 2)])[topic].result(timeout=15)
    assert _error_code(exc) == KafkaError.INVALID_PARTITIONS
    assert len(admin.list_topics(topic, timeout=10).topics[topic].partitions) == 3


def test_delete_records_moves_log_start(admin: AdminClient, broker: str, topic: str) -> None:
    producer = Producer({"bootstrap.servers": broker, "linger.ms": 0})
    for i in range(10):
        producer.produce(topic, value=f"v{i}".encode(), partition=0)
        producer.flush(10)  # one batch per record, so the new log start falls inside no batch
    assert len(producer) == 0

    tp = TopicPartition(topic, 0, 4)
    result = admin.delete_records([tp])[tp].result(timeout=15)
    assert result.low_watermark == 4

    earliest = admin.list_offsets({TopicPartition(topic, 0): OffsetSpec.earliest()})
    latest = admin.list_offsets({TopicPartition(topic, 0): OffsetSpec.latest()})
    assert next(iter(earliest.values())).result(timeout=15).offset == 4
    assert next(iter(latest.values())).result(timeout=15).offset == 10


def test_describe_cluster_and_topics(admin: AdminClient, broker: str, make_topic: TopicMaker) -> None:
    cluster = admin.describe_cluster().result(timeout=15)
    assert len(cluster.nodes) == 1
    assert cluster.nodes[0].port == int(broker.rsplit(":", 1)[1])
    assert cluster.cluster_id

    topic = make_topic(partitions=2)
    desc = admin.describe_topics(TopicCollection([topic]))[topic].result(timeout=15)
    assert desc.name == topic
    assert [p.id for p in desc.partitions] == [0, 1]
    assert not desc.is_internal
