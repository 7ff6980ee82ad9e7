"""Broker and topic configuration: Kafka's names, defaults, synonym chains and validation."""

from __future__ import annotations

import pytest

from strom.config import (
    BrokerConfig,
    ConfigError,
    ConfigSource,
    LogConfig,
    parse_properties,
    parse_topic_overrides,
    render_overrides,
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
    hours = BrokerConfig({"log.retention.hours": "2"})
    value, source, synonyms = hours.topic_default("retention.ms")
    assert value == 2 * 3_600_000
    assert source == ConfigSource.STATIC_BROKER_CONFIG
    assert synonyms[0] == ("log.retention.hours", 2, ConfigSource.STATIC_BROKER_CONFIG)

    minutes = BrokerConfig({"log.retention.hours": "2", "log.retention.minutes": "5"})
    assert minutes.topic_default("retention.ms")[0] == 5 * 60_000

    default = BrokerConfig()
    value, source, synonyms = default.topic_default("retention.ms")
    assert value == 168 * 3_600_000
    assert source == ConfigSource.DEFAULT_CONFIG
    assert synonyms == [("log.retention.hours", 168, ConfigSource.DEFAULT_CONFIG)]


def test_topic_overrides_win_and_report_dynamic_topic_source() -> None:
    config = BrokerConfig({"log.segment.bytes": "2048"})
    resolved = config.resolve_topic(parse_topic_overrides({"segment.bytes": "4096"}))
    assert resolved["segment.bytes"].value == 4096
    assert resolved["segment.bytes"].source == ConfigSource.DYNAMIC_TOPIC_CONFIG
    assert [s[0] for s in resolved["segment.bytes"].synonyms] == ["segment.bytes", "log.segment.bytes"]
    plain = config.resolve_topic({})
    assert plain["segment.bytes"].value == 2048
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
