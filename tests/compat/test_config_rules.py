"""Broker and topic configs as Apache Kafka 4.4 accepts and refuses them, through confluent-kafka's
AdminClient (CreateTopics, IncrementalAlterConfigs, AlterConfigs, DescribeConfigs).

- A BROKER resource takes keys the broker does not know as dynamic configs (DescribeConfigs shows them
  with a null value, read-only and sensitive, type UNKNOWN); a known key that cannot change dynamically,
  or a bad value, is INVALID_REQUEST. The cluster-wide default resource "" (which librdkafka cannot name)
  is checked with a raw IncrementalAlterConfigs/DescribeConfigs.
- A TOPIC takes every key of Kafka 4.4's LogConfig with its validation (segment.bytes of at least 1 MiB,
  internal.segment.bytes below that, the tiered-storage and dead-letter keys), and refuses keys Kafka 4
  removed (message.timestamp.difference.max.ms, message.format.version) with INVALID_CONFIG.

Config changes reach Kafka's DescribeConfigs a moment after the alter returns, so reads after a change are
polled with a deadline.
"""

from __future__ import annotations

import io
import socket
import struct
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from compat_support import TopicMaker, poll_until
from confluent_kafka import KafkaException
from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    ConfigSource,
    NewTopic,
    ResourceType,
)
from kio.schema.describe_configs.v4 import request as describe_req
from kio.schema.describe_configs.v4 import response as describe_resp
from kio.schema.errors import ErrorCode
from kio.schema.incremental_alter_configs.v1 import request as alter_req
from kio.schema.incremental_alter_configs.v1 import response as alter_resp
from kio.serial import entity_reader, entity_writer
from kio.static.primitive import i8

pytestmark = pytest.mark.compat

UNKNOWN = 0  # DescribeConfigs config type of a key outside the broker's ConfigDef (KIP-569)


@pytest.fixture
def admin(broker: str) -> AdminClient:
    return AdminClient({"bootstrap.servers": broker})


@pytest.fixture
def node(admin: AdminClient) -> str:
    return str(admin.describe_cluster().result(timeout=15).nodes[0].id)


def _refusal(run: Callable[[], object]) -> tuple[int, str]:
    with pytest.raises(KafkaException) as refused:
        run()
    error = refused.value.args[0]
    return error.code(), error.str()


def _alter_broker(admin: AdminClient, node: str, key: str, value: str | None,
                  op: AlterConfigOpType = AlterConfigOpType.SET) -> None:
    resource = ConfigResource(ResourceType.BROKER, node,
                              incremental_configs=[ConfigEntry(key, value, incremental_operation=op)])
    admin.incremental_alter_configs([resource])[resource].result(timeout=15)


def _describe_broker(admin: AdminClient, node: str) -> dict[str, ConfigEntry]:
    resource = ConfigResource(ResourceType.BROKER, node)
    return admin.describe_configs([resource])[resource].result(timeout=15)


def test_unknown_broker_key_is_kept_as_a_dynamic_config(admin: AdminClient, node: str) -> None:
    key = f"compat.unknown.{uuid.uuid4().hex[:8]}"
    _alter_broker(admin, node, key, "some value")
    configs = poll_until(lambda: _describe_broker(admin, node), lambda c: key in c)
    entry = configs[key]
    assert entry.value is None  # an unknown key may be a secret: Kafka never shows its value
    assert entry.source == ConfigSource.DYNAMIC_BROKER_CONFIG.value
    assert (entry.is_read_only, entry.is_sensitive) == (True, True)
    _alter_broker(admin, node, key, None, AlterConfigOpType.DELETE)
    poll_until(lambda: _describe_broker(admin, node), lambda c: key not in c)
    assert key not in _describe_broker(admin, node)


def test_topic_key_at_broker_level_is_accepted_like_kafkajs_does(admin: AdminClient, node: str) -> None:
    """kafkajs's own admin test sets `cleanup.policy` (a topic key) on a BROKER resource."""
    resource = ConfigResource(ResourceType.BROKER, node, set_config={"cleanup.policy": "delete"})
    admin.alter_configs([resource], validate_only=True)[resource].result(timeout=15)


@pytest.mark.parametrize("key", ["num.partitions", "auto.create.topics.enable", "log.dirs", "broker.id"])
def test_static_broker_key_is_refused(admin: AdminClient, node: str, key: str) -> None:
    code, message = _refusal(lambda: _alter_broker(admin, node, key, "3"))
    assert code == ErrorCode.invalid_request
    assert message == f"Cannot update these configs dynamically: [{key}]"


def test_bad_dynamic_broker_value_is_invalid_request(admin: AdminClient, node: str) -> None:
    code, message = _refusal(lambda: _alter_broker(admin, node, "log.retention.ms", "abc"))
    assert code == ErrorCode.invalid_request
    assert message == "Invalid value abc for configuration log.retention.ms: Not a number of type LONG"
    code, message = _refusal(lambda: _alter_broker(admin, node, "log.segment.bytes", "1000"))
    assert code == ErrorCode.invalid_request
    assert message == "Invalid value 1000 for configuration log.segment.bytes: Value must be at least 1048576"


def test_append_to_an_unknown_broker_key_is_invalid_config(admin: AdminClient, node: str) -> None:
    code, message = _refusal(lambda: _alter_broker(admin, node, "compat.list", "a", AlterConfigOpType.APPEND))
    assert (code, message) == (ErrorCode.invalid_config, "Unknown config name: compat.list")


# The cluster-wide default resource "" on the wire (kio on a plain socket) -----------------------------------
def _request(broker: str, request: Any, response_type: type, api_key: int, version: int) -> Any:
    body = io.BytesIO()
    entity_writer(type(request))(body, request)
    client_id = b"config-rules"
    # request header v2: api key, version, correlation id, client id, no tagged fields
    header = struct.pack(">hhih", api_key, version, 11, len(client_id)) + client_id + b"\x00"
    frame = header + body.getvalue()
    host, port = broker.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=15) as sock:
        sock.sendall(struct.pack(">i", len(frame)) + frame)
        answer = _recv(sock, struct.unpack(">i", _recv(sock, 4))[0])
    assert struct.unpack(">i", answer[:4])[0] == 11
    return entity_reader(response_type)(memoryview(answer), 5)[0]  # after the v1 header's tags


def _recv(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        assert chunk, "the broker closed the connection"
        data += chunk
    return data


def _alter_default(broker: str, key: str, value: str | None, op: int) -> tuple[int, str | None]:
    config = alter_req.AlterableConfig(name=key, config_operation=i8(op), value=value)
    resource = alter_req.AlterConfigsResource(resource_type=i8(4), resource_name="", configs=(config,))
    request = alter_req.IncrementalAlterConfigsRequest(resources=(resource,), validate_only=False)
    answer = _request(broker, request, alter_resp.IncrementalAlterConfigsResponse, 44, 1).responses[0]
    return answer.error_code, answer.error_message


def _describe_default(broker: str) -> dict[str, Any]:
    resource = describe_req.DescribeConfigsResource(
        resource_type=i8(4), resource_name="", configuration_keys=None
    )
    request = describe_req.DescribeConfigsRequest(resources=(resource,), include_synonyms=True,
                                                  include_documentation=False)
    result = _request(broker, request, describe_resp.DescribeConfigsResponse, 32, 4).results[0]
    assert result.error_code == ErrorCode.none
    return {c.name: c for c in result.configs}


def test_cluster_default_takes_unknown_keys_and_describes_them(
    broker: str, admin: AdminClient, node: str
) -> None:
    key = f"compat.default.{uuid.uuid4().hex[:8]}"
    assert _alter_default(broker, key, "x", 0) == (ErrorCode.none, None)
    try:
        configs = poll_until(lambda: _describe_default(broker), lambda c: key in c)
        entry = configs[key]
        assert entry.value is None and entry.read_only and entry.is_sensitive
        assert entry.config_source == ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG.value
        assert entry.config_type == UNKNOWN
        assert [(s.name, s.source) for s in entry.synonyms] == [
            (key, ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG.value)
        ]
        # the broker's own description falls back to the cluster default
        on_node = poll_until(lambda: _describe_broker(admin, node), lambda c: key in c)
        assert on_node[key].source == ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG.value
        assert _alter_default(broker, "num.partitions", "3", 0) == (
            ErrorCode.invalid_request,
            "Cannot update these configs dynamically: [num.partitions]",
        )
    finally:
        assert _alter_default(broker, key, None, 1) == (ErrorCode.none, None)
    assert key not in poll_until(lambda: _describe_default(broker), lambda c: key not in c)


# Topic configs --------------------------------------------------------------------------------------
def _create(admin: AdminClient, configs: dict[str, str], validate_only: bool = True) -> str:
    name = f"compat-cfg-{uuid.uuid4().hex[:10]}"
    futures = admin.create_topics([NewTopic(name, 1, 1, config=configs)], validate_only=validate_only,
                                  operation_timeout=30, request_timeout=30)
    futures[name].result(timeout=30)
    return name


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("message.timestamp.before.max.ms", "60000"),
        ("message.timestamp.after.max.ms", "60000"),
        ("segment.bytes", "1048576"),
        ("internal.segment.bytes", "4096"),
        ("segment.index.bytes", "4096"),
        ("preallocate", "true"),
        ("unclean.leader.election.enable", "true"),
        ("remote.storage.enable", "false"),
        ("local.retention.ms", "1000"),
        ("local.retention.bytes", "1000"),
        ("remote.log.copy.disable", "true"),
        ("remote.log.delete.on.disable", "true"),
        ("remote.copy.lag.ms", "-1"),
        ("remote.copy.lag.bytes", "100"),
        ("follower.replication.throttled.replicas", "0:1,1:2"),
        ("leader.replication.throttled.replicas", "*"),
        ("max.decompressed.message.bytes", "1000"),
        ("errors.deadletterqueue.group.enable", "true"),
        ("compression.gzip.level", "9"),
        ("compression.lz4.level", "17"),
        ("compression.zstd.level", "-5"),
        ("min.cleanable.dirty.ratio", "1"),
        ("cleanup.policy", "compact,delete"),
    ],
)
def test_topic_key_kafka_accepts(admin: AdminClient, key: str, value: str) -> None:
    _create(admin, {key: value})


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("message.timestamp.difference.max.ms", "1000",
         "Unknown topic config name: message.timestamp.difference.max.ms"),
        ("message.downconversion.enable", "true", "Unknown topic config name: message.downconversion.enable"),
        ("message.format.version", "3.0", "Unknown topic config name: message.format.version"),
        ("segment.bytes", "1024",
         "Invalid value 1024 for configuration segment.bytes: Value must be at least 1048576"),
        ("remote.storage.enable", "true",
         "Tiered Storage functionality is disabled in the broker. "
         "Topic cannot be configured with remote log storage."),
        ("compression.gzip.level", "0",
         "Invalid value 0 for configuration compression.gzip.level: "
         "Value must be between 1 and 9 or equal to -1"),
        ("min.cleanable.dirty.ratio", "1.5",
         "Invalid value 1.5 for configuration min.cleanable.dirty.ratio: Value must be no more than 1"),
        ("leader.replication.throttled.replicas", "bogus",
         "Invalid value [bogus] for configuration leader.replication.throttled.replicas: "
         "leader.replication.throttled.replicas must be the literal '*' or a list of replicas "
         "in the following format: [partitionId]:[brokerId],[partitionId]:[brokerId],..."),
        ("remote.copy.lag.ms", "-2",
         "Invalid value -2 for configuration remote.copy.lag.ms: Value must be at least -1"),
        ("retention.ms", "x", "Invalid value x for configuration retention.ms: Not a number of type LONG"),
    ],
)
def test_topic_key_kafka_refuses(admin: AdminClient, key: str, value: str, message: str) -> None:
    assert _refusal(lambda: _create(admin, {key: value})) == (ErrorCode.invalid_config, message)


def test_new_topic_keys_are_described_with_kafkas_defaults(
    admin: AdminClient, make_topic: TopicMaker
) -> None:
    topic = make_topic()
    resource = ConfigResource(ResourceType.TOPIC, topic)
    configs = admin.describe_configs([resource])[resource].result(timeout=15)
    expected = {
        "max.decompressed.message.bytes": "2147483639",
        "remote.copy.lag.ms": "0",
        "remote.copy.lag.bytes": "-1",
        "errors.deadletterqueue.group.enable": "false",
        "local.retention.ms": "-2",
        "message.timestamp.before.max.ms": "9223372036854775807",
        "message.timestamp.after.max.ms": "3600000",
    }
    assert {k: configs[k].value for k in expected} == expected
    assert all(configs[k].source == ConfigSource.DEFAULT_CONFIG.value for k in expected)
    assert "message.timestamp.difference.max.ms" not in configs
    assert "internal.segment.bytes" not in configs  # described only where a topic sets it


def test_topic_key_synonyms_start_at_the_key_kafka_names(admin: AdminClient, make_topic: TopicMaker) -> None:
    """retention.ms, segment.ms and flush.ms fall back to log.retention.hours, log.roll.hours and
    log.flush.scheduler.interval.ms, but Kafka lists a topic key's broker synonyms only from the first one
    named after its own broker key (log.retention.ms, ...) on: with those unset, no synonyms, source
    DEFAULT_CONFIG (kafkajs's describeConfigs test expects exactly that for retention.ms)."""
    plain = make_topic()
    overridden = make_topic(configs={"retention.ms": "1000"})

    def described(topic: str) -> dict[str, ConfigEntry]:
        resource = ConfigResource(ResourceType.TOPIC, topic)
        return admin.describe_configs([resource])[resource].result(timeout=15)

    def synonyms(entry: ConfigEntry) -> dict[str, int]:
        return {name: synonym.source for name, synonym in entry.synonyms.items()}

    configs = described(plain)
    for key in ("retention.ms", "segment.ms", "flush.ms"):
        described_key = (key, configs[key].source, synonyms(configs[key]))
        assert described_key == (key, ConfigSource.DEFAULT_CONFIG.value, {})
    assert configs["retention.ms"].value == str(168 * 3600 * 1000)
    assert list(synonyms(configs["segment.bytes"])) == ["log.segment.bytes"]
    assert list(synonyms(configs["compression.type"])) == ["compression.type"]
    configs = poll_until(lambda: described(overridden), lambda c: c["retention.ms"].value == "1000")
    assert synonyms(configs["retention.ms"]) == {"retention.ms": ConfigSource.DYNAMIC_TOPIC_CONFIG.value}


def test_incremental_alter_of_topic_keys(admin: AdminClient, make_topic: TopicMaker) -> None:
    topic = make_topic()

    def alter(*ops: tuple[str, str | None, AlterConfigOpType]) -> None:
        entries = [ConfigEntry(k, v, incremental_operation=op) for k, v, op in ops]
        resource = ConfigResource(ResourceType.TOPIC, topic, incremental_configs=entries)
        admin.incremental_alter_configs([resource])[resource].result(timeout=15)

    alter(("internal.segment.bytes", "65536", AlterConfigOpType.SET),
          ("max.decompressed.message.bytes", "4096", AlterConfigOpType.SET),
          ("leader.replication.throttled.replicas", "0:1", AlterConfigOpType.APPEND))
    resource = ConfigResource(ResourceType.TOPIC, topic)
    configs = poll_until(lambda: admin.describe_configs([resource])[resource].result(timeout=15),
                          lambda c: "internal.segment.bytes" in c)
    assert configs["internal.segment.bytes"].value == "65536"
    assert configs["internal.segment.bytes"].source == ConfigSource.DYNAMIC_TOPIC_CONFIG.value
    assert configs["max.decompressed.message.bytes"].value == "4096"
    assert configs["leader.replication.throttled.replicas"].value == "0:1"
    assert _refusal(lambda: alter(("message.timestamp.difference.max.ms", "5", AlterConfigOpType.SET))) == (
        ErrorCode.invalid_config,
        "Unknown topic config name: message.timestamp.difference.max.ms",
    )
    assert _refusal(lambda: alter(("retention.ms", "5", AlterConfigOpType.APPEND))) == (
        ErrorCode.invalid_config,
        "Can't APPEND to key retention.ms because its type is not LIST.",
    )
    assert _refusal(lambda: alter(("min.compaction.lag.ms", "200", AlterConfigOpType.SET),
                                  ("max.compaction.lag.ms", "100", AlterConfigOpType.SET))) == (
        ErrorCode.invalid_config,
        "conflict topic config setting min.compaction.lag.ms (200) > max.compaction.lag.ms (100)",
    )
