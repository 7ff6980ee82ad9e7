"""Broker and topic configuration: Kafka's names, defaults, synonym chains and validation."""

from __future__ import annotations

import pytest

from strom.config import (
    BrokerConfig,
    ConfigError,
    ConfigSource,
    LogConfig,
    parse_properties,
    parse_stored_overrides,
    parse_topic_overrides,
    render_overrides,
    segment_size_override,
)


def test_properties_parsing_handles_comments_separators_and_continuations() -> None:
    text = "# comment\n! also comment\nlog.dirs=/a,/b\nnum.partitions: 3\nlisteners = PLAINTEXT://x:1\\\n  ,B://y:2\n"
    assert parse_properties(text) == {
        "log.dirs": "/a,/b",
        "num.partitions": "3",
        "listeners": "PLAINTEXT://x:1,B://y:2",
    }


def test_broker_defaults_are_kafkas() -> None:
    config = BrokerConfig()
    assert config.get("num.partitions") == 1
    assert config.get("auto.create.topics.enable") is True
    assert config.get("socket.request.max.bytes") == 104857600
    assert config.get("log.segment.bytes") == 1073741824
    assert config.get("offsets.topic.num.partitions") == 50


def test_typed_parsing_and_validation() -> None:
    config = BrokerConfig({"num.partitions": "4", "auto.create.topics.enable": "false"})
    assert config.get("num.partitions") == 4
    assert config.get("auto.create.topics.enable") is False
    with pytest.raises(ConfigError):
        BrokerConfig({"num.partitions": "zero"})
    with pytest.raises(ConfigError):
        BrokerConfig({"num.partitions": "0"})
    with pytest.raises(ConfigError):
        BrokerConfig({"log.message.timestamp.type": "Sometimes"})


def test_unknown_broker_keys_are_kept_not_fatal() -> None:
    config = BrokerConfig({"some.plugin.setting": "x"})
    assert config.unknown == {"some.plugin.setting": "x"}


def test_retention_synonym_chain_uses_the_most_specific_key() -> None:
    # Kafka 4.4 describes only synonyms from the first one named after log.retention.ms on, so with the
    # hours (or minutes) alone the value follows them but the synonyms are empty and the source DEFAULT
    hours = BrokerConfig({"log.retention.hours": "2"})
    value, source, synonyms = hours.topic_default("retention.ms")
    assert value == 2 * 3_600_000
    assert (source, synonyms) == (ConfigSource.DEFAULT_CONFIG, [])

    minutes = BrokerConfig({"log.retention.hours": "2", "log.retention.minutes": "5"})
    assert minutes.topic_default("retention.ms")[0] == 5 * 60_000

    default = BrokerConfig()
    assert default.topic_default("retention.ms") == (168 * 3_600_000, ConfigSource.DEFAULT_CONFIG, [])

    millis = BrokerConfig({"log.retention.ms": "5000", "log.retention.hours": "2"})
    assert millis.topic_default("retention.ms") == (
        5000,
        ConfigSource.STATIC_BROKER_CONFIG,
        [
            ("log.retention.ms", 5000, ConfigSource.STATIC_BROKER_CONFIG),
            ("log.retention.hours", 2, ConfigSource.STATIC_BROKER_CONFIG),
            ("log.retention.hours", 168, ConfigSource.DEFAULT_CONFIG),
        ],
    )


def test_topic_overrides_win_and_report_dynamic_topic_source() -> None:
    config = BrokerConfig({"log.segment.bytes": str(2 << 20)})
    resolved = config.resolve_topic(parse_topic_overrides({"segment.bytes": str(4 << 20)}))
    assert resolved["segment.bytes"].value == 4 << 20
    assert resolved["segment.bytes"].source == ConfigSource.DYNAMIC_TOPIC_CONFIG
    assert [s[0] for s in resolved["segment.bytes"].synonyms] == [
        "segment.bytes", "log.segment.bytes", "log.segment.bytes"
    ]
    plain = config.resolve_topic({})
    assert plain["segment.bytes"].value == 2 << 20
    assert plain["segment.bytes"].source == ConfigSource.STATIC_BROKER_CONFIG


def test_topic_override_validation() -> None:
    with pytest.raises(ConfigError):
        parse_topic_overrides({"no.such.key": "1"})
    with pytest.raises(ConfigError):
        parse_topic_overrides({"cleanup.policy": "shred"})
    assert parse_topic_overrides({"cleanup.policy": "compact,delete"}) == {
        "cleanup.policy": ["compact", "delete"]
    }
    assert render_overrides({"cleanup.policy": ["compact", "delete"], "preallocate": True}) == {
        "cleanup.policy": "compact,delete",
        "preallocate": "true",
    }


def test_log_config_from_broker_and_topic() -> None:
    config = BrokerConfig({"log.roll.ms": "1000", "log.message.timestamp.type": "LogAppendTime"})
    log_config = config.log_config(parse_topic_overrides({"cleanup.policy": "compact"}))
    assert isinstance(log_config, LogConfig)
    assert log_config.segment_ms == 1000
    assert log_config.log_append_time
    assert log_config.compact and not log_config.delete
    assert log_config.index_interval_bytes == 4096


def test_dynamic_broker_config_overrides_static_and_refuses_read_only() -> None:
    config = BrokerConfig({"log.retention.bytes": "100"})
    config.set_dynamic("log.retention.bytes", "200")
    assert config.get("log.retention.bytes") == 200
    assert config.source("log.retention.bytes") == ConfigSource.DYNAMIC_BROKER_CONFIG
    config.set_dynamic("log.retention.bytes", None)
    assert config.get("log.retention.bytes") == 100
    with pytest.raises(ConfigError):
        config.set_dynamic("node.id", "3")


# Kafka 4.4's rules and messages (each checked against a Kafka 4.4 broker's CreateTopics answer) -------
@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("foo.bar", "1", "Unknown topic config name: foo.bar"),
        # removed in Kafka 4.0
        (
            "message.timestamp.difference.max.ms",
            "1000",
            "Unknown topic config name: message.timestamp.difference.max.ms",
        ),
        ("message.format.version", "3.0", "Unknown topic config name: message.format.version"),
        (
            "segment.bytes",
            "1024",
            "Invalid value 1024 for configuration segment.bytes: Value must be at least 1048576",
        ),
        (
            "segment.bytes",
            "abc",
            "Invalid value abc for configuration segment.bytes: Not a number of type INT",
        ),
        ("retention.ms", "-2", "Invalid value -2 for configuration retention.ms: Value must be at least -1"),
        (
            "retention.ms",
            "9223372036854775808",
            "Invalid value 9223372036854775808 for configuration retention.ms: Not a number of type LONG",
        ),
        (
            "cleanup.policy",
            "foo",
            "Invalid value foo for configuration cleanup.policy: String must be one of: compact, delete",
        ),
        (
            "preallocate",
            "yes",
            "Invalid value yes for configuration preallocate: Expected value to be either true or false",
        ),
        (
            "compression.gzip.level",
            "10",
            "Invalid value 10 for configuration compression.gzip.level: "
            "Value must be between 1 and 9 or equal to -1",
        ),
        (
            "compression.lz4.level",
            "18",
            "Invalid value 18 for configuration compression.lz4.level: Value must be no more than 17",
        ),
        (
            "compression.zstd.level",
            "23",
            "Invalid value 23 for configuration compression.zstd.level: Value must be no more than 22",
        ),
        (
            "min.cleanable.dirty.ratio",
            "1.5",
            "Invalid value 1.5 for configuration min.cleanable.dirty.ratio: Value must be no more than 1",
        ),
        (
            "follower.replication.throttled.replicas",
            "0:1, 1:x",
            "Invalid value [0:1, 1:x] for configuration follower.replication.throttled.replicas: "
            "follower.replication.throttled.replicas must be the literal '*' or a list of replicas "
            "in the following format: [partitionId]:[brokerId],[partitionId]:[brokerId],...",
        ),
        (
            "remote.copy.lag.ms",
            "-2",
            "Invalid value -2 for configuration remote.copy.lag.ms: Value must be at least -1",
        ),
        (
            "max.decompressed.message.bytes",
            "0",
            "Invalid value 0 for configuration max.decompressed.message.bytes: Value must be at least 1",
        ),
        (
            "remote.storage.enable",
            "true",
            "Tiered Storage functionality is disabled in the broker. "
            "Topic cannot be configured with remote log storage.",
        ),
    ],
)
def test_topic_keys_refused_as_kafka_refuses_them(key: str, value: str, message: str) -> None:
    with pytest.raises(ConfigError) as refused:
        parse_topic_overrides({key: value})
    assert str(refused.value) == message


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("internal.segment.bytes", "1024"),
        ("segment.bytes", " 2000000 "),
        ("cleanup.policy", ""),
        ("cleanup.policy", "compact, delete"),
        ("preallocate", "TRUE"),
        ("leader.replication.throttled.replicas", "0:1,1:1"),
        ("leader.replication.throttled.replicas", "*"),
        ("retention.bytes", "-5"),
        ("remote.copy.lag.ms", "-1"),
        ("remote.copy.lag.bytes", "7"),
        ("local.retention.ms", "1000"),
        ("max.decompressed.message.bytes", "1000"),
        ("errors.deadletterqueue.group.enable", "true"),
        ("remote.log.copy.disable", "true"),
        ("compression.gzip.level", "-1"),
    ],
)
def test_topic_keys_kafka_accepts(key: str, value: str) -> None:
    parse_topic_overrides({key: value})


def test_compaction_lag_conflict() -> None:
    with pytest.raises(ConfigError) as refused:
        parse_topic_overrides({"min.compaction.lag.ms": "200", "max.compaction.lag.ms": "100"})
    assert (
        str(refused.value)
        == "conflict topic config setting min.compaction.lag.ms (200) > max.compaction.lag.ms (100)"
    )


def test_internal_segment_bytes_replaces_segment_bytes_and_is_described_only_when_set() -> None:
    config = BrokerConfig()
    assert "internal.segment.bytes" not in config.resolve_topic({})
    overrides = parse_topic_overrides({"internal.segment.bytes": "4096", "segment.bytes": str(8 << 20)})
    assert config.log_config(overrides).segment_bytes == 4096
    assert config.resolve_topic(overrides)["internal.segment.bytes"].value == 4096
    assert segment_size_override(4096) == {"internal.segment.bytes": "4096"}
    assert segment_size_override(1 << 20) == {"segment.bytes": str(1 << 20)}


def test_stored_overrides_keep_every_valid_key() -> None:
    parsed, skipped = parse_stored_overrides(
        {"cleanup.policy": "compact", "segment.bytes": "4096", "message.timestamp.difference.max.ms": "5"}
    )
    assert parsed == {"cleanup.policy": ["compact"]}
    assert skipped == {"segment.bytes": "4096", "message.timestamp.difference.max.ms": "5"}


def test_unknown_and_cluster_default_dynamic_broker_keys() -> None:
    config = BrokerConfig({"log.retention.bytes": "100", "plugin.static.key": "s"})
    config.set_dynamic("plugin.key", "x")
    config.set_dynamic("log.retention.bytes", "300", cluster_default=True)
    config.set_dynamic("plugin.key", "y", cluster_default=True)
    assert (
        config.get("plugin.key") == "x" and config.source("plugin.key") == ConfigSource.DYNAMIC_BROKER_CONFIG
    )
    assert config.layers("plugin.key") == [
        ("x", ConfigSource.DYNAMIC_BROKER_CONFIG),
        ("y", ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG),
    ]
    assert config.get("log.retention.bytes") == 300
    assert config.source("log.retention.bytes") == ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG
    assert config.unknown_keys() == ["plugin.static.key", "plugin.key"]
    with pytest.raises(ConfigError) as refused:
        config.set_dynamic("num.partitions", "3", cluster_default=True)
    assert str(refused.value) == "Cannot update these configs dynamically: [num.partitions]"
    config.set_dynamic("log.retention.bytes", None, cluster_default=True)
    assert config.get("log.retention.bytes") == 100
