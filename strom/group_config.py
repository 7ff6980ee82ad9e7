"""Group configs: the GROUP config resource (type 32) of KIP-848, KIP-932 and KIP-1071, as Kafka 4.4's
GroupConfig defines it.

A group's configs are overrides, kept as Kafka strings with the cluster metadata, of settings every group
otherwise takes from the broker (`consumer.session.timeout.ms` falls back to
group.consumer.session.timeout.ms, ...) or, for the few keys with no broker key (`share.auto.offset.reset`,
`share.isolation.level`, ...), from Kafka's default. This module holds:

- `GROUP_CONFIGS`: every key in Kafka 4.4's definition order with its type, default, validator and the
  broker key it falls back to; Kafka's internal keys (`consumer.assignor.offload.enable`, ...) are accepted
  but described only when set.
- `validate(overrides, broker_config)`: a group's whole new override set checked as Kafka's
  GroupConfig.validate does (unknown names, duplicate rack tags, each value's type and validator, then the
  broker's bounds: group.consumer.min/max.session.timeout.ms, ..., session timeouts above heartbeat
  intervals, registered streams assignors, DLQ topic names), raising INVALID_CONFIG with Kafka's messages.
- `evaluate(overrides, broker_config)`: the typed values a coordinator uses, each clamped into the broker's
  current bounds (Kafka's GroupConfig.evaluate: bounds may have narrowed since the value was set).
- `broker_layers(broker_config, key)`: the broker layers behind a key, for DescribeConfigs' synonyms.
- `ShareAutoOffsetReset.parse(text)`: share.auto.offset.reset (latest, earliest, by_duration:<ISO-8601>).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from strom.config import BROKER_CONFIGS, BrokerConfig, ConfigDef, ConfigError, ConfigSource, ConfigType
from strom.protocol.errors import InvalidConfigError

__all__ = [
    "GROUP_CONFIGS",
    "GROUP_RESOURCE",
    "GroupKey",
    "ShareAutoOffsetReset",
    "broker_layers",
    "broker_value",
    "evaluate",
    "validate",
]

log = logging.getLogger("strom.group_config")

GROUP_RESOURCE = 32
"""ConfigResource.Type GROUP (DescribeConfigs, (Incremental)AlterConfigs, ConfigRecord.resource_type)."""

_T = ConfigType


# --- share.auto.offset.reset -------------------------------------------------------------------------------
# Java's Duration.parse: PnDTnHnMn.nS, letters in any case, a sign on the whole and on each number
_DURATION = re.compile(
    r"([-+]?)P(?:([-+]?[0-9]+)D)?(T(?:([-+]?[0-9]+)H)?(?:([-+]?[0-9]+)M)?(?:([-+]?[0-9]+)(?:[.,]([0-9]{0,9}))?S)?)?",
    re.IGNORECASE,
)
_LONG_MAX = 2**63 - 1


def parse_duration_ms(text: str) -> int | None:
    """An ISO-8601 duration as Java's Duration.parse reads it, in milliseconds (rounded down); None when it
    does not parse or is negative (Kafka refuses negative durations)."""
    match = _DURATION.fullmatch(text)
    if match is None or (match.group(3) is not None and len(match.group(3)) == 1):
        return None
    sign, days, _t, hours, minutes, seconds, fraction = match.groups()
    if days is None and hours is None and minutes is None and seconds is None:
        return None
    total_nanos = 0
    for number, scale in ((days, 86400), (hours, 3600), (minutes, 60), (seconds, 1)):
        if number is not None:
            value = int(number) * scale
            if abs(value) > _LONG_MAX:
                return None
            total_nanos += value * 10**9
    if fraction:
        nanos = int(fraction.ljust(9, "0"))
        total_nanos += -nanos if seconds is not None and seconds.startswith("-") else nanos
    if sign == "-":
        total_nanos = -total_nanos
    if total_nanos < 0:
        return None
    return total_nanos // 10**6


@dataclass(frozen=True, slots=True)
class ShareAutoOffsetReset:
    """share.auto.offset.reset: where a share-partition nobody consumed yet starts (KIP-932)."""

    kind: str  # "latest", "earliest" or "by_duration"
    duration_ms: int = 0

    @classmethod
    def parse(cls, text: str) -> ShareAutoOffsetReset | None:
        """Kafka's ShareGroupAutoOffsetResetStrategy.fromString; None for a value Kafka refuses."""
        if text in ("latest", "earliest"):
            return cls(text)
        prefix = "by_duration:"
        if text.startswith(prefix):
            duration = parse_duration_ms(text[len(prefix) :])
            if duration is not None:
                return cls("by_duration", duration)
        return None

    def timestamp_ms(self, now_ms: int) -> int:
        """by_duration: the time the start offset is looked up for."""
        return now_ms - self.duration_ms


def _check_auto_offset_reset(name: str, value: Any) -> None:
    if ShareAutoOffsetReset.parse(str(value)) is None:
        raise ConfigError(
            f"Invalid value {value} for configuration {name}: Invalid value `{value}` for configuration "
            f"{name}. The value must be either 'earliest', 'latest' or of the format "
            "'by_duration:<PnDTnHnMn.nS>'."
        )


def _check_list_items(name: str, value: Any) -> None:
    if any(item == "" for item in value):
        raise ConfigError(f"Configuration '{name}' values must not be empty.")


# --- the keys ----------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class GroupKey:
    """One group config: its definition, the broker key it falls back to (None: Kafka's default), and
    whether Kafka marks it internal (accepted, described only when set)."""

    definition: ConfigDef
    broker_key: str | None
    internal: bool = False

    @property
    def name(self) -> str:
        return self.definition.name


def _key(
    name: str,
    typ: ConfigType,
    default: Any,
    broker_key: str | None,
    doc: str,
    *,
    internal: bool = False,
    minimum: int | None = None,
    choices: tuple[str, ...] | None = None,
    check: Any = None,
) -> GroupKey:
    return GroupKey(
        ConfigDef(name, typ, default, doc, minimum=minimum, choices=choices, check=check),
        broker_key,
        internal,
    )


GROUP_CONFIGS: dict[str, GroupKey] = {
    k.name: k
    for k in (
        _key(
            "consumer.session.timeout.ms",
            _T.INT,
            45000,
            "group.consumer.session.timeout.ms",
            "How long a consumer group member may go without a heartbeat before it is removed.",
            minimum=1,
        ),
        _key(
            "consumer.heartbeat.interval.ms",
            _T.INT,
            5000,
            "group.consumer.heartbeat.interval.ms",
            "The heartbeat interval told to the members of a consumer group.",
            minimum=1,
        ),
        _key(
            "consumer.assignment.interval.ms",
            _T.INT,
            1000,
            "group.consumer.assignment.interval.ms",
            "The least time between two target assignments of a consumer group.",
            minimum=0,
        ),
        _key(
            "consumer.assignor.offload.enable",
            _T.BOOLEAN,
            True,
            "group.consumer.assignor.offload.enable",
            "Whether a consumer group's assignment is computed off the coordinator's thread.",
            internal=True,
        ),
        _key(
            "share.session.timeout.ms",
            _T.INT,
            45000,
            "group.share.session.timeout.ms",
            "How long a share group member may go without a heartbeat before it is removed.",
            minimum=1,
        ),
        _key(
            "share.heartbeat.interval.ms",
            _T.INT,
            5000,
            "group.share.heartbeat.interval.ms",
            "The heartbeat interval told to the members of a share group.",
            minimum=1,
        ),
        _key(
            "share.record.lock.duration.ms",
            _T.INT,
            30000,
            "group.share.record.lock.duration.ms",
            "How long a share group member holds the records it acquired.",
            minimum=1000,
        ),
        _key(
            "share.delivery.count.limit",
            _T.INT,
            5,
            "group.share.delivery.count.limit",
            "How many times a record is delivered to a share group before it is archived.",
            minimum=2,
        ),
        _key(
            "share.partition.max.record.locks",
            _T.INT,
            2000,
            "group.share.partition.max.record.locks",
            "How many records of one share-partition may be in flight at once.",
            minimum=100,
        ),
        _key(
            "share.auto.offset.reset",
            _T.STRING,
            "latest",
            None,
            "Where a share-partition nobody consumed yet starts: latest, earliest or by_duration:<ISO-8601 "
            "duration> (the first record at most that old).",
            check=_check_auto_offset_reset,
        ),
        _key(
            "share.isolation.level",
            _T.STRING,
            "read_uncommitted",
            None,
            "read_committed delivers only committed transactional records; read_uncommitted delivers all.",
            choices=("read_committed", "read_uncommitted"),
        ),
        _key(
            "share.renew.acknowledge.enable",
            _T.BOOLEAN,
            True,
            None,
            "Whether share group members may renew their acquisition locks.",
        ),
        _key(
            "share.assignment.interval.ms",
            _T.INT,
            1000,
            "group.share.assignment.interval.ms",
            "The least time between two target assignments of a share group.",
            minimum=0,
        ),
        _key(
            "share.assignor.offload.enable",
            _T.BOOLEAN,
            True,
            "group.share.assignor.offload.enable",
            "Whether a share group's assignment is computed off the coordinator's thread.",
            internal=True,
        ),
        _key(
            "streams.session.timeout.ms",
            _T.INT,
            45000,
            "group.streams.session.timeout.ms",
            "How long a streams group member may go without a heartbeat before it is removed.",
            minimum=1,
        ),
        _key(
            "streams.heartbeat.interval.ms",
            _T.INT,
            5000,
            "group.streams.heartbeat.interval.ms",
            "The heartbeat interval told to the members of a streams group.",
            minimum=1,
        ),
        _key(
            "streams.num.standby.replicas",
            _T.INT,
            0,
            "group.streams.num.standby.replicas",
            "How many standby replicas of each stateful task a streams group gets.",
            minimum=0,
        ),
        _key(
            "streams.initial.rebalance.delay.ms",
            _T.INT,
            3000,
            "group.streams.initial.rebalance.delay.ms",
            "How long a new streams group waits for more members before its first assignment.",
            minimum=0,
        ),
        _key(
            "streams.assignment.interval.ms",
            _T.INT,
            1000,
            "group.streams.assignment.interval.ms",
            "The least time between two target assignments of a streams group.",
            minimum=0,
        ),
        _key(
            "streams.assignor.offload.enable",
            _T.BOOLEAN,
            True,
            "group.streams.assignor.offload.enable",
            "Whether a streams group's assignment is computed off the coordinator's thread.",
            internal=True,
        ),
        _key(
            "streams.task.offset.interval.ms",
            _T.INT,
            60000,
            "group.streams.task.offset.interval.ms",
            "How often streams group members report their task offsets.",
            internal=True,
            minimum=1,
        ),
        _key(
            "streams.num.warmup.replicas",
            _T.INT,
            2,
            "group.streams.num.warmup.replicas",
            "The most warm-up replicas a streams group gets.",
            internal=True,
            minimum=0,
        ),
        _key(
            "streams.rack.aware.assignment.tags",
            _T.LIST,
            [],
            "group.streams.rack.aware.assignment.tags",
            "Client tag keys standby replicas are spread over.",
            check=_check_list_items,
        ),
        _key(
            "streams.acceptable.recovery.lag",
            _T.LONG,
            10000,
            "group.streams.acceptable.recovery.lag",
            "How far behind a member's task state may be for it to take the task as active.",
            internal=True,
            minimum=0,
        ),
        _key(
            "streams.assignor.name",
            _T.STRING,
            None,
            "group.streams.assignors",
            "The streams group's task assignor, one of group.streams.assignors (default: the first).",
        ),
        _key(
            "errors.deadletterqueue.topic.name",
            _T.STRING,
            "",
            None,
            "The share group's dead-letter queue topic; empty for none.",
        ),
        _key(
            "errors.deadletterqueue.copy.record.enable",
            _T.BOOLEAN,
            False,
            None,
            "Whether a record sent to the dead-letter queue topic is copied, or only described.",
        ),
    )
}

# Kafka's internal broker keys behind internal group keys, which the broker's own config does not list
INTERNAL_BROKER_KEYS: dict[str, ConfigDef] = {
    d.name: d
    for d in (
        ConfigDef("group.consumer.assignor.offload.enable", _T.BOOLEAN, True),
        ConfigDef("group.share.assignor.offload.enable", _T.BOOLEAN, True),
        ConfigDef("group.streams.assignor.offload.enable", _T.BOOLEAN, True),
        ConfigDef("group.streams.max.warmup.replicas", _T.INT, 20, minimum=0),
        ConfigDef("group.streams.min.task.offset.interval.ms", _T.INT, 15000, minimum=1),
    )
}


def _broker_definition(name: str) -> ConfigDef:
    return BROKER_CONFIGS.get(name) or INTERNAL_BROKER_KEYS[name]


def broker_layers(config: BrokerConfig, name: str) -> list[tuple[Any, ConfigSource]]:
    """Every layer that sets broker key `name`, highest first, ending with its default (typed values)."""
    definition = _broker_definition(name)
    layers: list[tuple[Any, ConfigSource]] = []
    for value, source in config.layers(name):
        if source == ConfigSource.DEFAULT_CONFIG:
            continue
        try:
            layers.append((definition.parse(value), source))
        except ConfigError:
            continue  # an internal key set to a bad value in server.properties: Kafka would not start
    layers.append((definition.default, ConfigSource.DEFAULT_CONFIG))
    return layers


def broker_value(config: BrokerConfig, name: str) -> Any:
    """The broker's current value of `name` (internal keys included)."""
    return broker_layers(config, name)[0][0]


# --- validation ------------------------------------------------------------------------------------------
_RANGES = (  # group key, broker minimum key (or None), broker maximum key (or None); Kafka's order
    (
        "consumer.heartbeat.interval.ms",
        "group.consumer.min.heartbeat.interval.ms",
        "group.consumer.max.heartbeat.interval.ms",
    ),
    (
        "consumer.session.timeout.ms",
        "group.consumer.min.session.timeout.ms",
        "group.consumer.max.session.timeout.ms",
    ),
    (
        "consumer.assignment.interval.ms",
        "group.consumer.min.assignment.interval.ms",
        "group.consumer.max.assignment.interval.ms",
    ),
    (
        "share.heartbeat.interval.ms",
        "group.share.min.heartbeat.interval.ms",
        "group.share.max.heartbeat.interval.ms",
    ),
    ("share.session.timeout.ms", "group.share.min.session.timeout.ms", "group.share.max.session.timeout.ms"),
    (
        "share.record.lock.duration.ms",
        "group.share.min.record.lock.duration.ms",
        "group.share.max.record.lock.duration.ms",
    ),
    (
        "share.delivery.count.limit",
        "group.share.min.delivery.count.limit",
        "group.share.max.delivery.count.limit",
    ),
    (
        "share.partition.max.record.locks",
        "group.share.min.partition.max.record.locks",
        "group.share.max.partition.max.record.locks",
    ),
    (
        "share.assignment.interval.ms",
        "group.share.min.assignment.interval.ms",
        "group.share.max.assignment.interval.ms",
    ),
    (
        "streams.heartbeat.interval.ms",
        "group.streams.min.heartbeat.interval.ms",
        "group.streams.max.heartbeat.interval.ms",
    ),
    (
        "streams.session.timeout.ms",
        "group.streams.min.session.timeout.ms",
        "group.streams.max.session.timeout.ms",
    ),
    ("streams.num.standby.replicas", None, "group.streams.max.standby.replicas"),
    (
        "streams.assignment.interval.ms",
        "group.streams.min.assignment.interval.ms",
        "group.streams.max.assignment.interval.ms",
    ),
    ("streams.task.offset.interval.ms", "group.streams.min.task.offset.interval.ms", None),
    ("streams.num.warmup.replicas", None, "group.streams.max.warmup.replicas"),
)

_SESSIONS = (  # session key, broker session key, heartbeat key, broker heartbeat key
    (
        "consumer.session.timeout.ms",
        "group.consumer.session.timeout.ms",
        "consumer.heartbeat.interval.ms",
        "group.consumer.heartbeat.interval.ms",
    ),
    (
        "share.session.timeout.ms",
        "group.share.session.timeout.ms",
        "share.heartbeat.interval.ms",
        "group.share.heartbeat.interval.ms",
    ),
    (
        "streams.session.timeout.ms",
        "group.streams.session.timeout.ms",
        "streams.heartbeat.interval.ms",
        "group.streams.heartbeat.interval.ms",
    ),
)


def _bound(config: BrokerConfig, key: str | None) -> int | None:
    return None if key is None else int(broker_value(config, key))


def _range_error(name: str, value: int, low: int | None, high: int | None) -> str | None:
    if low is not None and high is not None:
        if not low <= value <= high:
            return f"{name} must be in the range {low} to {high} inclusive."
    elif high is not None and value > high:
        return f"{name} must be less than or equal to {high}"
    elif low is not None and value < low:
        return f"{name} must be greater than or equal to {low}"
    return None


def _parse_one(key: GroupKey, raw: str) -> Any:
    definition = key.definition
    if definition.type == ConfigType.LIST:
        # Kafka's LIST: trimmed, split on commas with the spaces around them, empty items kept (and refused)
        items = [] if not raw.strip() else re.split(r"\s*,\s*", raw.strip())
        definition.parse(items)
        return items
    if definition.type == ConfigType.STRING:
        raw = raw.strip()  # Kafka trims STRING values before validating them
    return definition.parse(raw)


def _parse(overrides: Mapping[str, str]) -> dict[str, Any]:
    """Every value typed and checked by its own validator, in Kafka's definition order."""
    parsed: dict[str, Any] = {}
    for name, key in GROUP_CONFIGS.items():
        if name in overrides:
            try:
                parsed[name] = _parse_one(key, overrides[name])
            except ConfigError as exc:
                raise InvalidConfigError(str(exc)) from None
    return parsed


def validate(overrides: Mapping[str, str | None], config: BrokerConfig) -> dict[str, str]:
    """A group's whole new override set (None values dropped), checked as Kafka's GroupConfig.validate does
    against this broker's bounds; InvalidConfigError (INVALID_CONFIG) with Kafka's message otherwise."""
    given = {name: value for name, value in overrides.items() if value is not None}
    for name in given:
        if name not in GROUP_CONFIGS:
            raise InvalidConfigError(f"Unknown group config name: {name}")
    tags = given.get("streams.rack.aware.assignment.tags")
    if tags is not None:
        items = [] if not tags.strip() else re.split(r"\s*,\s*", tags)
        if len(set(items)) != len(items):
            raise InvalidConfigError(
                "streams.rack.aware.assignment.tags must not contain duplicate tag keys."
            )
    values = _parse(given)
    for name, low_key, high_key in _RANGES:
        if name in values:
            error = _range_error(name, values[name], _bound(config, low_key), _bound(config, high_key))
            if error is not None:
                raise InvalidConfigError(error)
    if "streams.assignor.name" in values:
        names = [str(n) for n in broker_value(config, "group.streams.assignors")]
        if values["streams.assignor.name"] not in names:
            raise InvalidConfigError(
                f"streams.assignor.name '{values['streams.assignor.name']}' is not a registered task "
                f"assignor. Registered assignors are: [{', '.join(names)}]."
            )
    for session, broker_session, heartbeat, broker_heartbeat in _SESSIONS:
        if session in values or heartbeat in values:
            session_ms = values.get(session, broker_value(config, broker_session))
            heartbeat_ms = values.get(heartbeat, broker_value(config, broker_heartbeat))
            if session_ms <= heartbeat_ms:
                raise InvalidConfigError(f"{session} must be greater than {heartbeat}")
    dlq = values.get("errors.deadletterqueue.topic.name")
    if dlq and dlq.startswith("__"):
        raise InvalidConfigError("errors.deadletterqueue.topic.name: DLQ topic name must not start with '__'")
    return given


# --- effective values ------------------------------------------------------------------------------------
def evaluate(overrides: Mapping[str, str], config: BrokerConfig, group_id: str = "") -> dict[str, Any]:
    """The typed values of a group's overrides, each clamped into the broker's current bounds with a
    warning (Kafka's GroupConfig.evaluate); keys the group does not set are left out, so callers fall back
    to the broker-wide setting. A stored value that no longer parses is left out with a warning."""
    values: dict[str, Any] = {}
    for name, key in GROUP_CONFIGS.items():
        raw = overrides.get(name)
        if raw is None:
            continue
        try:
            values[name] = _parse_one(key, raw)
        except ConfigError as exc:
            log.warning("ignoring group config %s of group '%s': %s", name, group_id, exc)
    for name, low_key, high_key in _RANGES:
        if name not in values:
            continue
        value, low, high = values[name], _bound(config, low_key), _bound(config, high_key)
        clamped = value if low is None else max(value, low)
        clamped = clamped if high is None else min(clamped, high)
        if clamped != value:
            log.warning(
                "The group config '%s' for group '%s' has value %s outside the broker's bounds; the "
                "effective value is %s.",
                name,
                group_id,
                value,
                clamped,
            )
            values[name] = clamped
    return values
