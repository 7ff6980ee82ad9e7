"""Group configs (strom.group_config): Kafka 4.4's keys, validation messages and bounds, the clamping of
effective values, and share.auto.offset.reset's by_duration parsing (Java's Duration.parse). The expected
messages are the ones a Kafka 4.4 broker answers IncrementalAlterConfigs with."""

from __future__ import annotations

import pytest

from strom.config import BrokerConfig
from strom.group_config import (
    GROUP_CONFIGS,
    ShareAutoOffsetReset,
    evaluate,
    parse_duration_ms,
    validate,
)
from strom.protocol.errors import ErrorCode, InvalidConfigError

DEFAULTS = BrokerConfig({})


def refusal(overrides: dict[str, str | None], config: BrokerConfig = DEFAULTS) -> str:
    with pytest.raises(InvalidConfigError) as caught:
        validate(overrides, config)
    assert caught.value.code == ErrorCode.invalid_config
    return str(caught.value)


def test_keys_are_kafkas_in_definition_order() -> None:
    assert list(GROUP_CONFIGS) == [
        "consumer.session.timeout.ms",
        "consumer.heartbeat.interval.ms",
        "consumer.assignment.interval.ms",
        "consumer.assignor.offload.enable",
        "share.session.timeout.ms",
        "share.heartbeat.interval.ms",
        "share.record.lock.duration.ms",
        "share.delivery.count.limit",
        "share.partition.max.record.locks",
        "share.auto.offset.reset",
        "share.isolation.level",
        "share.renew.acknowledge.enable",
        "share.assignment.interval.ms",
        "share.assignor.offload.enable",
        "streams.session.timeout.ms",
        "streams.heartbeat.interval.ms",
        "streams.num.standby.replicas",
        "streams.initial.rebalance.delay.ms",
        "streams.assignment.interval.ms",
        "streams.assignor.offload.enable",
        "streams.task.offset.interval.ms",
        "streams.num.warmup.replicas",
        "streams.rack.aware.assignment.tags",
        "streams.acceptable.recovery.lag",
        "streams.assignor.name",
        "errors.deadletterqueue.topic.name",
        "errors.deadletterqueue.copy.record.enable",
    ]
    internal = {name for name, key in GROUP_CONFIGS.items() if key.internal}
    assert internal == {
        "consumer.assignor.offload.enable",
        "share.assignor.offload.enable",
        "streams.assignor.offload.enable",
        "streams.task.offset.interval.ms",
        "streams.num.warmup.replicas",
        "streams.acceptable.recovery.lag",
    }


def test_valid_sets_are_kept_as_given() -> None:
    given = {
        "consumer.session.timeout.ms": "50000",
        "consumer.heartbeat.interval.ms": None,  # a deleted key
        "share.auto.offset.reset": "by_duration:PT1H",
        "share.isolation.level": " read_committed",
        "streams.num.standby.replicas": "2",
        "consumer.assignor.offload.enable": "false",
    }
    assert validate(given, DEFAULTS) == {k: v for k, v in given.items() if v is not None}


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"nope": "1"}, "Unknown group config name: nope"),
        (
            {"consumer.session.timeout.ms": "1000"},
            "consumer.session.timeout.ms must be in the range 45000 to 60000 inclusive.",
        ),
        (
            {"consumer.heartbeat.interval.ms": "40000"},
            "consumer.heartbeat.interval.ms must be in the range 5000 to 15000 inclusive.",
        ),
        (
            {"consumer.session.timeout.ms": "abc"},
            "Invalid value abc for configuration consumer.session.timeout.ms: Not a number of type INT",
        ),
        (
            {"consumer.session.timeout.ms": "0"},
            "Invalid value 0 for configuration consumer.session.timeout.ms: Value must be at least 1",
        ),
        (
            {"share.auto.offset.reset": "EARLIEST"},
            "Invalid value EARLIEST for configuration share.auto.offset.reset: Invalid value `EARLIEST` for "
            "configuration share.auto.offset.reset. The value must be either 'earliest', 'latest' or of the "
            "format 'by_duration:<PnDTnHnMn.nS>'.",
        ),
        (
            {"share.isolation.level": "READ_COMMITTED"},
            "Invalid value READ_COMMITTED for configuration share.isolation.level: String must be one of: "
            "read_committed, read_uncommitted",
        ),
        (
            {"share.record.lock.duration.ms": "100"},
            "Invalid value 100 for configuration share.record.lock.duration.ms: Value must be at least 1000",
        ),
        (
            {"share.record.lock.duration.ms": "70000"},
            "share.record.lock.duration.ms must be in the range 15000 to 60000 inclusive.",
        ),
        (
            {"share.delivery.count.limit": "11"},
            "share.delivery.count.limit must be in the range 2 to 10 inclusive.",
        ),
        (
            {"share.renew.acknowledge.enable": "maybe"},
            "Invalid value maybe for configuration share.renew.acknowledge.enable: Expected value to be "
            "either true or false",
        ),
        (
            {"streams.num.standby.replicas": "3"},
            "streams.num.standby.replicas must be less than or equal to 2",
        ),
        (
            {"streams.task.offset.interval.ms": "1000"},
            "streams.task.offset.interval.ms must be greater than or equal to 15000",
        ),
        (
            {"streams.assignor.name": "foo"},
            "streams.assignor.name 'foo' is not a registered task assignor. Registered assignors are: "
            "[sticky].",
        ),
        (
            {"streams.rack.aware.assignment.tags": "a,b,a"},
            "streams.rack.aware.assignment.tags must not contain duplicate tag keys.",
        ),
        (
            {"streams.rack.aware.assignment.tags": "a,,b"},
            "Configuration 'streams.rack.aware.assignment.tags' values must not be empty.",
        ),
        (
            {"errors.deadletterqueue.topic.name": "__x"},
            "errors.deadletterqueue.topic.name: DLQ topic name must not start with '__'",
        ),
    ],
)
def test_refusals_carry_kafkas_messages(overrides: dict[str, str | None], message: str) -> None:
    assert refusal(overrides) == message


def test_bounds_and_session_checks_use_the_broker_config() -> None:
    config = BrokerConfig(
        {
            "group.consumer.min.session.timeout.ms": "1000",
            "group.consumer.min.heartbeat.interval.ms": "500",
            "group.consumer.heartbeat.interval.ms": "3000",
            "group.consumer.session.timeout.ms": "10000",
            "group.streams.max.standby.replicas": "3",
        }
    )
    assert validate({"consumer.session.timeout.ms": "5001", "streams.num.standby.replicas": "3"}, config)
    greater = "consumer.session.timeout.ms must be greater than consumer.heartbeat.interval.ms"
    # the whole set is checked: a heartbeat the group sets, else the broker's (3000, then 10000)
    assert refusal({"consumer.session.timeout.ms": "4000", "consumer.heartbeat.interval.ms": "5000"}, config)
    assert refusal({"consumer.session.timeout.ms": "2000"}, config) == greater
    assert refusal({"consumer.heartbeat.interval.ms": "10000"}, config) == greater
    assert refusal({"consumer.session.timeout.ms": "5000", "consumer.heartbeat.interval.ms": "5000"}, config)


def test_evaluate_types_and_clamps_into_the_broker_bounds() -> None:
    values = evaluate(
        {
            "consumer.session.timeout.ms": "70000",
            "consumer.heartbeat.interval.ms": "6000",
            "share.auto.offset.reset": "earliest",
            "streams.num.standby.replicas": "5",
            "streams.rack.aware.assignment.tags": "zone, rack",
        },
        DEFAULTS,
        "g",
    )
    assert values == {
        "consumer.session.timeout.ms": 60000,
        "consumer.heartbeat.interval.ms": 6000,
        "share.auto.offset.reset": "earliest",
        "streams.num.standby.replicas": 2,
        "streams.rack.aware.assignment.tags": ["zone", "rack"],
    }
    assert evaluate({}, DEFAULTS) == {}


@pytest.mark.parametrize(
    ("text", "ms"),
    [
        ("PT1H", 3600000),
        ("pt1h", 3600000),
        ("P1D", 86400000),
        ("P1DT2H3M4.5S", 93784500),
        ("PT0S", 0),
        ("+PT1H", 3600000),
        ("PT1,5S", 1500),
        ("P-1DT25H", 3600000),
        ("PT0.000000001S", 0),
        ("-PT1H", None),
        ("PT-1H", None),
        (" PT1H", None),
        ("PT1.5H", None),
        ("P1W", None),
        ("PT", None),
        ("P", None),
        ("PT0.0000000001S", None),
        ("", None),
    ],
)
def test_durations_parse_as_java_does(text: str, ms: int | None) -> None:
    assert parse_duration_ms(text) == ms


def test_share_auto_offset_reset_strategies() -> None:
    assert ShareAutoOffsetReset.parse("latest") == ShareAutoOffsetReset("latest")
    assert ShareAutoOffsetReset.parse("earliest") == ShareAutoOffsetReset("earliest")
    by = ShareAutoOffsetReset.parse("by_duration:PT10S")
    assert by == ShareAutoOffsetReset("by_duration", 10000)
    assert by.timestamp_ms(50000) == 40000
    for refused in ("none", "Latest", "BY_DURATION:PT1H", "by_duration:", "by_duration", "by_duration: PT1H"):
        assert ShareAutoOffsetReset.parse(refused) is None
