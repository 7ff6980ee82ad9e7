"""Broker and topic configuration: Kafka's key names, types, defaults, synonyms and validation.

Configuration is data. `BrokerConfig` holds the broker's settings as given (server.properties, `--set`)
and answers typed values by Kafka's key names, falling back through Kafka's synonym chains
(`log.retention.ms` -> `log.retention.minutes` -> `log.retention.hours`). `TOPIC_CONFIGS` lists every
topic-level key with the broker key that supplies its default, as Kafka's `LogConfig` /
`ServerTopicConfigSynonyms` do, so DescribeConfigs can report sources and synonyms (KIP-226) and the storage
layer can build a `LogConfig` from a topic's overrides.

Keys, types, defaults and validation follow Apache Kafka 4.4 (its ConfigDef messages included: "Invalid
value x for configuration k: ..."): a topic key Kafka 4.4 does not know (e.g. message.format.version or
message.timestamp.difference.max.ms, removed in Kafka 4.0) is refused, segment.bytes is at least 1 MiB
(the internal key internal.segment.bytes sets smaller segments), and broker keys Kafka cannot change
dynamically are marked read-only.
"""

from __future__ import annotations

import enum
import re
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

LONG_MAX = 2**63 - 1
INT_MAX = 2**31 - 1
MIN_SEGMENT_BYTES = 1048576  # Kafka 4's lower bound of segment.bytes and log.segment.bytes


class ConfigType(enum.IntEnum):
    """DescribeConfigs v3+ config types (KIP-569)."""

    UNKNOWN = 0
    BOOLEAN = 1
    STRING = 2
    INT = 3
    SHORT = 4
    LONG = 5
    DOUBLE = 6
    LIST = 7
    CLASS = 8
    PASSWORD = 9


class ConfigSource(enum.IntEnum):
    """DescribeConfigs config sources (KIP-226)."""

    UNKNOWN = 0
    DYNAMIC_TOPIC_CONFIG = 1
    DYNAMIC_BROKER_CONFIG = 2
    DYNAMIC_DEFAULT_BROKER_CONFIG = 3
    STATIC_BROKER_CONFIG = 4
    DEFAULT_CONFIG = 5
    DYNAMIC_BROKER_LOGGER_CONFIG = 6
    CLIENT_METRICS_CONFIG = 7
    GROUP_CONFIG = 8


class ConfigError(ValueError):
    """A config key is unknown or its value does not parse or validate (INVALID_CONFIG at the edge)."""


def _parse_bool(raw: str) -> bool:
    low = raw.strip().lower()
    if low in ("true", "false"):
        return low == "true"
    raise ValueError("Expected value to be either true or false")


def _parse_list(raw: str) -> list[str]:
    return [part.strip() for part in raw.split(",") if part.strip()]


def _parse_number(typ: ConfigType) -> Callable[[str], Any]:
    """Kafka's number parsing: trimmed, and out of the type's range is "not a number" of that type."""
    low, high = _RANGES.get(typ, (None, None))

    def parse(raw: str) -> Any:
        try:
            value: Any = float(raw.strip()) if typ == ConfigType.DOUBLE else int(raw.strip())
        except ValueError:
            raise ValueError(f"Not a number of type {typ.name}") from None
        if low is not None and not low <= value <= high:
            raise ValueError(f"Not a number of type {typ.name}")
        return value

    return parse


_RANGES: dict[ConfigType, tuple[int, int]] = {
    ConfigType.INT: (-(2**31), INT_MAX),
    ConfigType.SHORT: (-(2**15), 2**15 - 1),
    ConfigType.LONG: (-(2**63), LONG_MAX),
}

_PARSERS: dict[ConfigType, Callable[[str], Any]] = {
    ConfigType.BOOLEAN: _parse_bool,
    ConfigType.STRING: lambda raw: raw,
    ConfigType.PASSWORD: lambda raw: raw,
    ConfigType.CLASS: lambda raw: raw,
    ConfigType.INT: _parse_number(ConfigType.INT),
    ConfigType.SHORT: _parse_number(ConfigType.SHORT),
    ConfigType.LONG: _parse_number(ConfigType.LONG),
    ConfigType.DOUBLE: _parse_number(ConfigType.DOUBLE),
    ConfigType.LIST: _parse_list,
}


def invalid_value(name: str, shown: Any, reason: str) -> ConfigError:
    """Kafka's ConfigException text: `Invalid value <value> for configuration <name>: <reason>`."""
    return ConfigError(f"Invalid value {shown} for configuration {name}: {reason}")


def _java_list(items: list[Any]) -> str:
    return "[" + ", ".join(str(item) for item in items) + "]"


def check_gzip_level(name: str, value: Any) -> None:
    """compression.gzip.level: 1-9, or -1 for the codec's default (Kafka's GZIP level validator)."""
    if value != -1 and not 1 <= value <= 9:
        raise invalid_value(name, value, "Value must be between 1 and 9 or equal to -1")


def check_throttled_replicas(name: str, value: Any) -> None:
    """leader/follower.replication.throttled.replicas: `*` or `partition:broker` pairs (Kafka's
    ThrottledReplicaListValidator)."""
    items = [str(item).strip() for item in value]
    if all(_REPLICA_PAIR.fullmatch(item) for item in items) or "".join(items) == "*":
        return
    raise invalid_value(
        name,
        _java_list(items),
        f"{name} must be the literal '*' or a list of replicas in the following format: "
        "[partitionId]:[brokerId],[partitionId]:[brokerId],...",
    )


_REPLICA_PAIR = re.compile(r"([0-9]+:[0-9]+)?")


@dataclass(frozen=True, slots=True)
class ConfigDef:
    """One config key: its type, default (None = no default / null) and Kafka's validator (a range, a set
    of choices, or a `check(name, value)` raising ConfigError)."""

    name: str
    type: ConfigType
    default: Any
    doc: str = ""
    minimum: float | None = None
    choices: tuple[str, ...] | None = None
    sensitive: bool = False
    read_only: bool = False
    """Not dynamically updatable (Kafka's DynamicBrokerConfig): DescribeConfigs says read-only and
    AlterConfigs refuses it."""
    maximum: float | None = None
    check: Callable[[str, Any], None] | None = None

    def parse(self, raw: Any) -> Any:
        """Parse a raw value (string from properties or the wire) and validate it; ConfigError carries
        Kafka's message."""
        if raw is None:
            return None
        if not isinstance(raw, str):
            value = raw
        else:
            try:
                value = _PARSERS[self.type](raw)
            except ValueError as exc:
                raise invalid_value(self.name, raw, str(exc)) from None
        bounds = _RANGES.get(self.type)
        if bounds is not None and not bounds[0] <= value <= bounds[1]:
            raise invalid_value(self.name, raw, f"Not a number of type {self.type.name}")
        if self.minimum is not None and value < self.minimum:
            raise invalid_value(self.name, value, f"Value must be at least {self.minimum}")
        if self.maximum is not None and value > self.maximum:
            raise invalid_value(self.name, value, f"Value must be no more than {self.maximum}")
        if self.choices is not None:
            items = value if isinstance(value, list) else [value]
            for item in items:
                if str(item) not in self.choices:
                    raise invalid_value(self.name, item, f"String must be one of: {', '.join(self.choices)}")
        if self.check is not None:
            self.check(self.name, value)
        return value

    def render(self, value: Any) -> str | None:
        """Render a typed value the way Kafka shows it in DescribeConfigs."""
        if value is None:
            return None
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, list):
            return ",".join(str(v) for v in value)
        return str(value)


_T = ConfigType
_COMPRESSION = ("uncompressed", "zstd", "lz4", "snappy", "gzip", "producer")
_TS_TYPES = ("CreateTime", "LogAppendTime")
_CLEANUP_POLICIES = ("compact", "delete")
_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")


def _defs(*items: ConfigDef) -> dict[str, ConfigDef]:
    return {item.name: item for item in items}


# `read_only` marks the keys Kafka 4.4 cannot update dynamically (AlterConfigs answers INVALID_REQUEST
# "Cannot update these configs dynamically"); Strom's own keys (zookeeper.*, metrics.port) are static too.
_RO = True

BROKER_CONFIGS: dict[str, ConfigDef] = _defs(
    # identity and listeners
    ConfigDef("node.id", _T.INT, 1, "The id of this broker", read_only=_RO),
    ConfigDef("broker.id", _T.INT, -1, "Alias of node.id", read_only=_RO),
    ConfigDef("broker.rack", _T.STRING, None, "Rack of the broker", read_only=_RO),
    ConfigDef("listeners", _T.STRING, "PLAINTEXT://127.0.0.1:9092", read_only=_RO),
    ConfigDef("advertised.listeners", _T.STRING, None, read_only=_RO),
    ConfigDef("log.dirs", _T.STRING, None, "Directories of the partition logs", read_only=_RO),
    ConfigDef("log.dir", _T.STRING, "./strom-data", read_only=_RO),
    ConfigDef("zookeeper.connect", _T.STRING, None, read_only=_RO),
    ConfigDef("zookeeper.session.timeout.ms", _T.INT, 18000, read_only=_RO),
    ConfigDef("zookeeper.connection.timeout.ms", _T.INT, None, read_only=_RO),
    ConfigDef("metrics.port", _T.INT, None, "Port of the Prometheus /metrics endpoint", read_only=_RO),
    # the largest PushTelemetry metrics payload a client may send (KIP-714)
    ConfigDef("telemetry.max.bytes", _T.INT, 1048576, minimum=1, read_only=_RO),
    # KRaft (KIP-500, KIP-595, KIP-853), Kafka 4.4's defaults. process.roles, controller.quorum.voters and
    # controller.listener.names are below with the other listener keys. A node with process.roles set must
    # have its directories formatted by `strom storage format` first.
    ConfigDef("controller.quorum.bootstrap.servers", _T.LIST, [], read_only=True),
    ConfigDef("metadata.log.dir", _T.STRING, None, "Directory of __cluster_metadata", read_only=True),
    ConfigDef("metadata.log.segment.bytes", _T.INT, 1073741824, minimum=8388608, read_only=True),
    ConfigDef("metadata.log.segment.ms", _T.LONG, 604800000, read_only=True),
    ConfigDef("metadata.max.retention.bytes", _T.LONG, 104857600, read_only=True),
    ConfigDef("metadata.max.retention.ms", _T.LONG, 604800000, read_only=True),
    ConfigDef(
        "metadata.log.max.record.bytes.between.snapshots", _T.LONG, 20971520, minimum=1, read_only=True
    ),
    ConfigDef("metadata.log.max.snapshot.interval.ms", _T.LONG, 3600000, minimum=0, read_only=True),
    ConfigDef("metadata.max.idle.interval.ms", _T.INT, 500, minimum=0, read_only=True),
    ConfigDef("controller.quorum.election.timeout.ms", _T.INT, 1000, minimum=0, read_only=True),
    ConfigDef("controller.quorum.fetch.timeout.ms", _T.INT, 2000, minimum=0, read_only=True),
    ConfigDef("controller.quorum.election.backoff.max.ms", _T.INT, 1000, minimum=0, read_only=True),
    ConfigDef("controller.quorum.retry.backoff.ms", _T.INT, 20, minimum=0, read_only=True),
    ConfigDef("controller.quorum.request.timeout.ms", _T.INT, 2000, minimum=0, read_only=True),
    ConfigDef("controller.quorum.append.linger.ms", _T.INT, 25, minimum=0, read_only=True),
    ConfigDef("controller.quorum.auto.join.enable", _T.BOOLEAN, False, read_only=True),
    ConfigDef("controller.socket.timeout.ms", _T.INT, 30000, read_only=True),
    ConfigDef("broker.session.timeout.ms", _T.INT, 9000, read_only=True),
    ConfigDef("broker.heartbeat.interval.ms", _T.INT, 2000, read_only=True),
    ConfigDef("initial.broker.registration.timeout.ms", _T.INT, 60000, read_only=True),
    ConfigDef("unstable.feature.versions.enable", _T.BOOLEAN, False, read_only=True),
    # requests
    ConfigDef("socket.request.max.bytes", _T.INT, 104857600, minimum=1, read_only=_RO),
    ConfigDef("message.max.bytes", _T.INT, 1048588, minimum=0),
    ConfigDef("max.decompressed.message.bytes", _T.INT, 2147483639, minimum=1, maximum=2147483639),
    ConfigDef("replica.fetch.max.bytes", _T.INT, 1048576, minimum=0, read_only=_RO),
    ConfigDef("fetch.max.bytes", _T.INT, 57671680, minimum=1024, read_only=_RO),
    ConfigDef("connections.max.idle.ms", _T.LONG, 600000, read_only=_RO),
    ConfigDef("max.incremental.fetch.session.cache.slots", _T.INT, 1000, minimum=0, read_only=_RO),
    # connection limits (strom.server.connection_limits; also listener.name.<l>.max.connections and
    # listener.name.<l>.max.connection.creation.rate) and the client quotas' windows (strom.security.quotas)
    ConfigDef("max.connections", _T.INT, 2147483647, minimum=0),
    ConfigDef("max.connections.per.ip", _T.INT, 2147483647, minimum=0),
    ConfigDef("max.connections.per.ip.overrides", _T.STRING, ""),
    ConfigDef("max.connection.creation.rate", _T.INT, 2147483647, minimum=0),
    ConfigDef("quota.window.num", _T.INT, 11, minimum=1, read_only=_RO),
    ConfigDef("quota.window.size.seconds", _T.INT, 1, minimum=1, read_only=_RO),
    ConfigDef("controller.quota.window.num", _T.INT, 11, minimum=1, read_only=_RO),
    ConfigDef("controller.quota.window.size.seconds", _T.INT, 1, minimum=1, read_only=_RO),
    ConfigDef("client.quota.callback.class", _T.CLASS, None, read_only=_RO),
    # topics
    ConfigDef("auto.create.topics.enable", _T.BOOLEAN, True, read_only=_RO),
    ConfigDef("num.partitions", _T.INT, 1, minimum=1, read_only=_RO),
    ConfigDef("default.replication.factor", _T.INT, 1, read_only=_RO),
    ConfigDef("delete.topic.enable", _T.BOOLEAN, True, read_only=_RO),
    ConfigDef("min.insync.replicas", _T.INT, 1, minimum=1),
    ConfigDef("unclean.leader.election.enable", _T.BOOLEAN, False),
    ConfigDef("compression.type", _T.STRING, "producer", choices=_COMPRESSION),
    ConfigDef("compression.gzip.level", _T.INT, -1, check=check_gzip_level),
    ConfigDef("compression.lz4.level", _T.INT, 9, minimum=1, maximum=17),
    ConfigDef("compression.zstd.level", _T.INT, 3, minimum=-131072, maximum=22),
    # log segments
    ConfigDef("log.segment.bytes", _T.INT, 1073741824, minimum=MIN_SEGMENT_BYTES),
    ConfigDef("log.roll.ms", _T.LONG, None),
    ConfigDef("log.roll.hours", _T.INT, 168, minimum=1, read_only=_RO),
    ConfigDef("log.roll.jitter.ms", _T.LONG, None),
    ConfigDef("log.roll.jitter.hours", _T.INT, 0, minimum=0, read_only=_RO),
    ConfigDef("log.index.size.max.bytes", _T.INT, 10485760, minimum=4),
    ConfigDef("log.index.interval.bytes", _T.INT, 4096, minimum=0),
    ConfigDef("log.preallocate", _T.BOOLEAN, False),
    ConfigDef("log.segment.delete.delay.ms", _T.LONG, 60000, minimum=0),
    ConfigDef("log.message.timestamp.type", _T.STRING, "CreateTime", choices=_TS_TYPES),
    ConfigDef("log.message.timestamp.before.max.ms", _T.LONG, LONG_MAX, minimum=0),
    ConfigDef("log.message.timestamp.after.max.ms", _T.LONG, 3600000, minimum=0),
    # retention
    ConfigDef("log.retention.ms", _T.LONG, None),
    ConfigDef("log.retention.minutes", _T.INT, None, read_only=_RO),
    ConfigDef("log.retention.hours", _T.INT, 168, read_only=_RO),
    ConfigDef("log.retention.bytes", _T.LONG, -1),
    ConfigDef("log.retention.check.interval.ms", _T.LONG, 300000, minimum=1, read_only=_RO),
    ConfigDef("log.cleanup.policy", _T.LIST, ["delete"], choices=_CLEANUP_POLICIES),
    # tiered storage (KIP-405): accepted, never acted on
    ConfigDef("log.local.retention.ms", _T.LONG, -2, minimum=-2),
    ConfigDef("log.local.retention.bytes", _T.LONG, -2, minimum=-2),
    ConfigDef("log.remote.copy.lag.ms", _T.LONG, 0, minimum=-1),
    ConfigDef("log.remote.copy.lag.bytes", _T.LONG, -1, minimum=-1),
    # flush
    ConfigDef("log.flush.interval.messages", _T.LONG, LONG_MAX, minimum=1),
    ConfigDef("log.flush.interval.ms", _T.LONG, None),
    ConfigDef("log.flush.scheduler.interval.ms", _T.LONG, LONG_MAX, read_only=_RO),
    ConfigDef("log.flush.offset.checkpoint.interval.ms", _T.INT, 60000, minimum=0, read_only=_RO),
    ConfigDef("log.flush.start.offset.checkpoint.interval.ms", _T.INT, 60000, minimum=0, read_only=_RO),
    ConfigDef("num.recovery.threads.per.data.dir", _T.INT, 2, minimum=1),
    # cleaner
    ConfigDef("log.cleaner.enable", _T.BOOLEAN, True, read_only=_RO),
    ConfigDef("log.cleaner.threads", _T.INT, 1, minimum=0),
    ConfigDef("log.cleaner.backoff.ms", _T.LONG, 15000, minimum=0),
    ConfigDef("log.cleaner.dedupe.buffer.size", _T.LONG, 134217728),
    ConfigDef("log.cleaner.io.max.bytes.per.second", _T.DOUBLE, sys.float_info.max),
    ConfigDef("log.cleaner.delete.retention.ms", _T.LONG, 86400000, minimum=0),
    ConfigDef("log.cleaner.min.compaction.lag.ms", _T.LONG, 0, minimum=0),
    ConfigDef("log.cleaner.max.compaction.lag.ms", _T.LONG, LONG_MAX, minimum=1),
    ConfigDef("log.cleaner.min.cleanable.ratio", _T.DOUBLE, 0.5, minimum=0, maximum=1),
    # replication
    ConfigDef("replica.lag.time.max.ms", _T.LONG, 30000, read_only=_RO),
    ConfigDef("replica.fetch.wait.max.ms", _T.INT, 500, read_only=_RO),
    ConfigDef("replica.fetch.min.bytes", _T.INT, 1, read_only=_RO),
    ConfigDef("replica.socket.timeout.ms", _T.INT, 30000, read_only=_RO),
    ConfigDef("num.replica.fetchers", _T.INT, 1, minimum=1),
    ConfigDef("auto.leader.rebalance.enable", _T.BOOLEAN, True, read_only=_RO),
    ConfigDef("leader.imbalance.check.interval.seconds", _T.LONG, 300, minimum=1, read_only=_RO),
    ConfigDef("leader.imbalance.per.broker.percentage", _T.INT, 10),
    ConfigDef("controlled.shutdown.enable", _T.BOOLEAN, True, read_only=_RO),
    # groups
    ConfigDef("offsets.topic.num.partitions", _T.INT, 50, minimum=1, read_only=_RO),
    ConfigDef("offsets.topic.replication.factor", _T.SHORT, 3, minimum=1, read_only=_RO),
    ConfigDef("offsets.topic.segment.bytes", _T.INT, 104857600, minimum=1, read_only=_RO),
    ConfigDef("offsets.retention.minutes", _T.INT, 10080, minimum=1, read_only=_RO),
    ConfigDef("offsets.retention.check.interval.ms", _T.LONG, 600000, minimum=1, read_only=_RO),
    ConfigDef("offset.metadata.max.bytes", _T.INT, 4096, read_only=_RO),
    ConfigDef("group.initial.rebalance.delay.ms", _T.INT, 3000, minimum=0, read_only=_RO),
    ConfigDef("group.min.session.timeout.ms", _T.INT, 6000, read_only=_RO),
    ConfigDef("group.max.session.timeout.ms", _T.INT, 1800000, read_only=_RO),
    ConfigDef("group.max.size", _T.INT, INT_MAX, minimum=1, read_only=_RO),
    # consumer groups (KIP-848)
    ConfigDef("group.consumer.session.timeout.ms", _T.INT, 45000, minimum=1, read_only=_RO),
    ConfigDef("group.consumer.min.session.timeout.ms", _T.INT, 45000, minimum=1, read_only=_RO),
    ConfigDef("group.consumer.max.session.timeout.ms", _T.INT, 60000, minimum=1, read_only=_RO),
    ConfigDef("group.consumer.heartbeat.interval.ms", _T.INT, 5000, minimum=1, read_only=_RO),
    ConfigDef("group.consumer.min.heartbeat.interval.ms", _T.INT, 5000, minimum=1, read_only=_RO),
    ConfigDef("group.consumer.max.heartbeat.interval.ms", _T.INT, 15000, minimum=1, read_only=_RO),
    ConfigDef("group.consumer.assignment.interval.ms", _T.INT, 1000, minimum=0),
    ConfigDef("group.consumer.min.assignment.interval.ms", _T.INT, 0, minimum=0, read_only=_RO),
    ConfigDef("group.consumer.max.assignment.interval.ms", _T.INT, 15000, minimum=0, read_only=_RO),
    ConfigDef("group.consumer.max.size", _T.INT, INT_MAX, minimum=1, read_only=_RO),
    ConfigDef(
        "group.consumer.assignors", _T.LIST, ["uniform", "range"], choices=("uniform", "range"), read_only=_RO
    ),
    ConfigDef("group.consumer.regex.refresh.interval.ms", _T.INT, 600000, minimum=10000, read_only=_RO),
    ConfigDef(
        "group.consumer.migration.policy",
        _T.STRING,
        "bidirectional",
        choices=("disabled", "upgrade", "downgrade", "bidirectional"),
        read_only=_RO,
    ),
    # streams groups (KIP-1071)
    ConfigDef("group.streams.session.timeout.ms", _T.INT, 45000, minimum=1, read_only=_RO),
    ConfigDef("group.streams.min.session.timeout.ms", _T.INT, 45000, minimum=1, read_only=_RO),
    ConfigDef("group.streams.max.session.timeout.ms", _T.INT, 60000, minimum=1, read_only=_RO),
    ConfigDef("group.streams.heartbeat.interval.ms", _T.INT, 5000, minimum=1, read_only=_RO),
    ConfigDef("group.streams.min.heartbeat.interval.ms", _T.INT, 5000, minimum=1, read_only=_RO),
    ConfigDef("group.streams.max.heartbeat.interval.ms", _T.INT, 15000, minimum=1, read_only=_RO),
    ConfigDef("group.streams.max.size", _T.INT, INT_MAX, minimum=1, read_only=_RO),
    ConfigDef("group.streams.num.standby.replicas", _T.INT, 0, minimum=0, read_only=_RO),
    ConfigDef("group.streams.max.standby.replicas", _T.INT, 2, minimum=0, read_only=_RO),
    ConfigDef("group.streams.initial.rebalance.delay.ms", _T.INT, 3000, minimum=0, read_only=_RO),
    ConfigDef("group.streams.assignment.interval.ms", _T.INT, 1000, minimum=0),
    ConfigDef("group.streams.min.assignment.interval.ms", _T.INT, 0, minimum=0, read_only=_RO),
    ConfigDef("group.streams.max.assignment.interval.ms", _T.INT, 15000, minimum=0, read_only=_RO),
    ConfigDef("group.streams.assignors", _T.LIST, ["sticky"], read_only=_RO),
    ConfigDef("group.streams.rack.aware.assignment.tags", _T.LIST, [], read_only=_RO),
    ConfigDef("group.streams.num.warmup.replicas", _T.INT, 2, minimum=0, read_only=_RO),
    ConfigDef("group.streams.acceptable.recovery.lag", _T.LONG, 10000, minimum=0, read_only=_RO),
    ConfigDef("group.streams.task.offset.interval.ms", _T.INT, 60000, minimum=1, read_only=_RO),
    # share groups (KIP-932) and the share coordinator
    ConfigDef("group.share.session.timeout.ms", _T.INT, 45000, minimum=1, read_only=_RO),
    ConfigDef("group.share.min.session.timeout.ms", _T.INT, 45000, minimum=1, read_only=_RO),
    ConfigDef("group.share.max.session.timeout.ms", _T.INT, 60000, minimum=1, read_only=_RO),
    ConfigDef("group.share.heartbeat.interval.ms", _T.INT, 5000, minimum=1, read_only=_RO),
    ConfigDef("group.share.min.heartbeat.interval.ms", _T.INT, 5000, minimum=1, read_only=_RO),
    ConfigDef("group.share.max.heartbeat.interval.ms", _T.INT, 15000, minimum=1, read_only=_RO),
    ConfigDef("group.share.max.size", _T.INT, 200, minimum=1, maximum=1000, read_only=_RO),
    ConfigDef(
        "group.share.record.lock.duration.ms", _T.INT, 30000, minimum=1000, maximum=3600000, read_only=_RO
    ),
    ConfigDef(
        "group.share.min.record.lock.duration.ms", _T.INT, 15000, minimum=1000, maximum=30000, read_only=_RO
    ),
    ConfigDef(
        "group.share.max.record.lock.duration.ms",
        _T.INT,
        60000,
        minimum=30000,
        maximum=3600000,
        read_only=_RO,
    ),
    ConfigDef("group.share.delivery.count.limit", _T.INT, 5, minimum=2, maximum=10, read_only=_RO),
    ConfigDef("group.share.min.delivery.count.limit", _T.INT, 2, minimum=2, maximum=5, read_only=_RO),
    ConfigDef("group.share.max.delivery.count.limit", _T.INT, 10, minimum=5, maximum=25, read_only=_RO),
    ConfigDef(
        "group.share.partition.max.record.locks", _T.INT, 2000, minimum=100, maximum=10000, read_only=_RO
    ),
    ConfigDef(
        "group.share.min.partition.max.record.locks", _T.INT, 100, minimum=100, maximum=2000, read_only=_RO
    ),
    ConfigDef(
        "group.share.max.partition.max.record.locks", _T.INT, 4000, minimum=2000, maximum=10000, read_only=_RO
    ),
    ConfigDef("group.share.assignment.interval.ms", _T.INT, 1000, minimum=0),
    ConfigDef("group.share.min.assignment.interval.ms", _T.INT, 0, minimum=0, read_only=_RO),
    ConfigDef("group.share.max.assignment.interval.ms", _T.INT, 15000, minimum=0, read_only=_RO),
    ConfigDef("group.share.assignors", _T.LIST, ["simple"], read_only=_RO),
    ConfigDef("group.share.max.share.sessions", _T.INT, 2000, minimum=1, read_only=_RO),
    ConfigDef("share.coordinator.state.topic.num.partitions", _T.INT, 50, minimum=1, read_only=_RO),
    ConfigDef("share.coordinator.state.topic.replication.factor", _T.SHORT, 3, minimum=1, read_only=_RO),
    ConfigDef("share.coordinator.state.topic.min.isr", _T.SHORT, 2, minimum=1, read_only=_RO),
    ConfigDef("share.coordinator.state.topic.segment.bytes", _T.INT, 104857600, minimum=1, read_only=_RO),
    ConfigDef(
        "share.coordinator.snapshot.update.records.per.snapshot", _T.INT, 500, minimum=0, read_only=_RO
    ),
    ConfigDef("share.coordinator.write.timeout.ms", _T.INT, 5000, minimum=1, read_only=_RO),
    # producers and transactions
    ConfigDef("producer.id.expiration.ms", _T.INT, 86400000, minimum=1),
    ConfigDef("transactional.id.expiration.ms", _T.INT, 604800000, minimum=1, read_only=_RO),
    ConfigDef("transaction.max.timeout.ms", _T.INT, 900000, minimum=1, read_only=_RO),
    ConfigDef("add.partitions.to.txn.retry.backoff.ms", _T.INT, 20, minimum=1, read_only=_RO),
    ConfigDef("add.partitions.to.txn.retry.backoff.max.ms", _T.INT, 100, minimum=0, read_only=_RO),
    ConfigDef("transaction.state.log.num.partitions", _T.INT, 50, minimum=1, read_only=_RO),
    ConfigDef("transaction.state.log.replication.factor", _T.SHORT, 3, minimum=1, read_only=_RO),
    ConfigDef("transaction.state.log.min.isr", _T.INT, 2, minimum=1, read_only=_RO),
    ConfigDef("transaction.state.log.segment.bytes", _T.INT, 104857600, minimum=1, read_only=_RO),
    ConfigDef(
        "transaction.abort.timed.out.transaction.cleanup.interval.ms", _T.INT, 10000, minimum=1, read_only=_RO
    ),
    ConfigDef(
        "transaction.remove.expired.transaction.cleanup.interval.ms",
        _T.INT,
        3600000,
        minimum=1,
        read_only=_RO,
    ),
    # accepted for compatibility with server.properties files, not used by Strom
    ConfigDef("num.network.threads", _T.INT, 3, minimum=1),
    ConfigDef("num.io.threads", _T.INT, 8, minimum=1),
    ConfigDef("socket.send.buffer.bytes", _T.INT, 102400, read_only=_RO),
    ConfigDef("socket.receive.buffer.bytes", _T.INT, 102400, read_only=_RO),
    ConfigDef("process.roles", _T.LIST, [], read_only=_RO),
    ConfigDef("controller.quorum.voters", _T.LIST, [], read_only=_RO),
    ConfigDef("controller.listener.names", _T.STRING, None, read_only=_RO),
    ConfigDef("inter.broker.listener.name", _T.STRING, None, read_only=_RO),
    ConfigDef("authorizer.class.name", _T.STRING, "", read_only=_RO),
    # listeners and TLS (strom.server.listeners, strom.security.tls); each key below may be set for one
    # listener as listener.name.<lower-cased name>.<key>. Kafka can update the ssl keys dynamically;
    # Strom builds a listener's TLS context once, at start-up, so they are read-only here.
    ConfigDef(
        "listener.security.protocol.map",
        _T.STRING,
        "SASL_SSL:SASL_SSL,PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT",
        read_only=_RO,
    ),
    ConfigDef("security.inter.broker.protocol", _T.STRING, "PLAINTEXT", choices=_PROTOCOLS, read_only=_RO),
    ConfigDef("ssl.protocol", _T.STRING, "TLSv1.3", read_only=_RO),
    ConfigDef("ssl.provider", _T.STRING, None, read_only=_RO),
    ConfigDef("ssl.enabled.protocols", _T.LIST, ["TLSv1.2", "TLSv1.3"], read_only=_RO),
    ConfigDef("ssl.cipher.suites", _T.LIST, [], read_only=_RO),
    ConfigDef("ssl.client.auth", _T.STRING, "none", choices=("required", "requested", "none"), read_only=_RO),
    ConfigDef("ssl.keystore.type", _T.STRING, "JKS", read_only=_RO),
    ConfigDef("ssl.keystore.location", _T.STRING, None, read_only=_RO),
    ConfigDef("ssl.keystore.password", _T.PASSWORD, None, sensitive=True, read_only=_RO),
    ConfigDef("ssl.key.password", _T.PASSWORD, None, sensitive=True, read_only=_RO),
    ConfigDef("ssl.keystore.key", _T.PASSWORD, None, sensitive=True, read_only=_RO),
    ConfigDef("ssl.keystore.certificate.chain", _T.PASSWORD, None, sensitive=True, read_only=_RO),
    ConfigDef("ssl.truststore.type", _T.STRING, "JKS", read_only=_RO),
    ConfigDef("ssl.truststore.location", _T.STRING, None, read_only=_RO),
    ConfigDef("ssl.truststore.password", _T.PASSWORD, None, sensitive=True, read_only=_RO),
    ConfigDef("ssl.truststore.certificates", _T.PASSWORD, None, sensitive=True, read_only=_RO),
    ConfigDef("ssl.endpoint.identification.algorithm", _T.STRING, "https", read_only=_RO),
    ConfigDef("ssl.principal.mapping.rules", _T.STRING, "DEFAULT", read_only=_RO),
    ConfigDef("ssl.keymanager.algorithm", _T.STRING, "SunX509", read_only=_RO),
    ConfigDef("ssl.trustmanager.algorithm", _T.STRING, "PKIX", read_only=_RO),
    ConfigDef("ssl.secure.random.implementation", _T.STRING, None, read_only=_RO),
    ConfigDef("ssl.engine.factory.class", _T.CLASS, None, read_only=_RO),
    ConfigDef("ssl.allow.dn.changes", _T.BOOLEAN, False, read_only=_RO),
    ConfigDef("ssl.allow.san.changes", _T.BOOLEAN, False, read_only=_RO),
    # SASL (strom.security.sasl), also per listener as listener.name.<name>.<key>; the JAAS lines are
    # listener.name.<name>.<mechanism>.sasl.jaas.config, kept as given (Kafka's server JAAS contexts)
    ConfigDef("sasl.enabled.mechanisms", _T.LIST, ["GSSAPI"], read_only=_RO),
    ConfigDef("sasl.mechanism.inter.broker.protocol", _T.STRING, "GSSAPI", read_only=_RO),
    ConfigDef("sasl.jaas.config", _T.PASSWORD, None, sensitive=True, read_only=_RO),
    ConfigDef("sasl.server.max.receive.size", _T.INT, 524288, read_only=_RO),
    ConfigDef("connections.max.reauth.ms", _T.LONG, 0, read_only=_RO),
    # OAUTHBEARER tokens validated against a JWKS (KIP-768, strom.security.sasl.jwt_validator)
    ConfigDef("sasl.oauthbearer.jwks.endpoint.url", _T.STRING, None, read_only=_RO),
    ConfigDef("sasl.oauthbearer.jwks.endpoint.refresh.ms", _T.LONG, 3600000, read_only=_RO),
    ConfigDef("sasl.oauthbearer.jwks.endpoint.retry.backoff.ms", _T.LONG, 100, read_only=_RO),
    ConfigDef("sasl.oauthbearer.jwks.endpoint.retry.backoff.max.ms", _T.LONG, 10000, read_only=_RO),
    ConfigDef("sasl.oauthbearer.expected.audience", _T.LIST, None, read_only=_RO),
    ConfigDef("sasl.oauthbearer.expected.issuer", _T.STRING, None, read_only=_RO),
    ConfigDef("sasl.oauthbearer.sub.claim.name", _T.STRING, "sub", read_only=_RO),
    ConfigDef("sasl.oauthbearer.scope.claim.name", _T.STRING, "scope", read_only=_RO),
    ConfigDef("sasl.oauthbearer.clock.skew.seconds", _T.INT, 30, read_only=_RO),
    # delegation tokens (KIP-48, strom.security.delegation_tokens): disabled without a secret key
    ConfigDef("delegation.token.secret.key", _T.PASSWORD, None, sensitive=True, read_only=_RO),
    ConfigDef("delegation.token.max.lifetime.ms", _T.LONG, 604800000, read_only=_RO),
    ConfigDef("delegation.token.expiry.time.ms", _T.LONG, 86400000, read_only=_RO),
    ConfigDef("delegation.token.expiry.check.interval.ms", _T.LONG, 3600000, read_only=_RO),
    ConfigDef("group.coordinator.rebalance.protocols", _T.LIST, ["classic", "consumer"], read_only=_RO),
    ConfigDef("share.coordinator.state.topic.replication.factor", _T.SHORT, 3, read_only=_RO),
    ConfigDef("share.coordinator.state.topic.min.isr", _T.INT, 2, read_only=_RO),
)


@dataclass(frozen=True, slots=True)
class Synonym:
    """A broker key that supplies a topic key's default; `scale` converts its unit to the topic key's."""

    name: str
    scale: int = 1


@dataclass(frozen=True, slots=True)
class TopicConfigDef:
    """A topic-level key, its own definition, and the broker keys it falls back to, in order."""

    definition: ConfigDef
    synonyms: tuple[Synonym, ...] = ()
    internal: bool = False
    """Kafka's internal keys: accepted, but described only when a topic sets them."""

    @property
    def name(self) -> str:
        return self.definition.name


def _topic(name: str, typ: ConfigType, default: Any, *synonyms: Synonym, **kw: Any) -> TopicConfigDef:
    return TopicConfigDef(ConfigDef(name, typ, default, **kw), synonyms)


_S = Synonym
_HOUR = 3_600_000
_MIN = 60_000

TOPIC_CONFIGS: dict[str, TopicConfigDef] = {
    t.name: t
    for t in (
        _topic("cleanup.policy", _T.LIST, ["delete"], _S("log.cleanup.policy"), choices=_CLEANUP_POLICIES),
        _topic("compression.type", _T.STRING, "producer", _S("compression.type"), choices=_COMPRESSION),
        _topic("delete.retention.ms", _T.LONG, 86400000, _S("log.cleaner.delete.retention.ms"), minimum=0),
        _topic("file.delete.delay.ms", _T.LONG, 60000, _S("log.segment.delete.delay.ms"), minimum=0),
        _topic("flush.messages", _T.LONG, LONG_MAX, _S("log.flush.interval.messages"), minimum=1),
        _topic(
            "flush.ms",
            _T.LONG,
            LONG_MAX,
            _S("log.flush.interval.ms"),
            _S("log.flush.scheduler.interval.ms"),
            minimum=0,
        ),
        _topic("index.interval.bytes", _T.INT, 4096, _S("log.index.interval.bytes"), minimum=0),
        _topic(
            "max.compaction.lag.ms", _T.LONG, LONG_MAX, _S("log.cleaner.max.compaction.lag.ms"), minimum=1
        ),
        _topic("max.message.bytes", _T.INT, 1048588, _S("message.max.bytes"), minimum=0),
        _topic(
            "message.timestamp.type",
            _T.STRING,
            "CreateTime",
            _S("log.message.timestamp.type"),
            choices=_TS_TYPES,
        ),
        _topic(
            "message.timestamp.before.max.ms",
            _T.LONG,
            LONG_MAX,
            _S("log.message.timestamp.before.max.ms"),
            minimum=0,
        ),
        _topic(
            "message.timestamp.after.max.ms",
            _T.LONG,
            3600000,
            _S("log.message.timestamp.after.max.ms"),
            minimum=0,
        ),
        _topic(
            "min.cleanable.dirty.ratio",
            _T.DOUBLE,
            0.5,
            _S("log.cleaner.min.cleanable.ratio"),
            minimum=0,
            maximum=1,
        ),
        _topic("min.compaction.lag.ms", _T.LONG, 0, _S("log.cleaner.min.compaction.lag.ms"), minimum=0),
        _topic("min.insync.replicas", _T.INT, 1, _S("min.insync.replicas"), minimum=1),
        _topic("preallocate", _T.BOOLEAN, False, _S("log.preallocate")),
        _topic("retention.bytes", _T.LONG, -1, _S("log.retention.bytes")),
        _topic(
            "retention.ms",
            _T.LONG,
            168 * _HOUR,
            _S("log.retention.ms"),
            _S("log.retention.minutes", _MIN),
            _S("log.retention.hours", _HOUR),
            minimum=-1,
        ),
        # Kafka 4 refuses segments under 1 MiB; internal.segment.bytes (below) is its way to smaller ones
        _topic("segment.bytes", _T.INT, 1073741824, _S("log.segment.bytes"), minimum=MIN_SEGMENT_BYTES),
        _topic("segment.index.bytes", _T.INT, 10485760, _S("log.index.size.max.bytes"), minimum=4),
        _topic(
            "segment.jitter.ms",
            _T.LONG,
            0,
            _S("log.roll.jitter.ms"),
            _S("log.roll.jitter.hours", _HOUR),
            minimum=0,
        ),
        _topic("segment.ms", _T.LONG, 168 * _HOUR, _S("log.roll.ms"), _S("log.roll.hours", _HOUR), minimum=1),
        _topic("unclean.leader.election.enable", _T.BOOLEAN, False, _S("unclean.leader.election.enable")),
        # Kafka's internal key for tests: when set it replaces segment.bytes, with no lower bound; described
        # only when a topic sets it.
        TopicConfigDef(ConfigDef("internal.segment.bytes", _T.INT, None), internal=True),
        # Accepted and described like Kafka 4.4 (DescribeConfigs lists them) though Strom does not act on
        # them: the topic-level decompression bound, codec levels (KIP-390), replication throttles, tiered
        # storage (KIP-405; remote.storage.enable=true is refused as by a broker without remote storage)
        # and the Streams dead-letter queue switch.
        _topic(
            "max.decompressed.message.bytes",
            _T.INT,
            2147483639,
            _S("max.decompressed.message.bytes"),
            minimum=1,
            maximum=2147483639,
        ),
        _topic("compression.gzip.level", _T.INT, -1, _S("compression.gzip.level"), check=check_gzip_level),
        _topic("compression.lz4.level", _T.INT, 9, _S("compression.lz4.level"), minimum=1, maximum=17),
        _topic(
            "compression.zstd.level", _T.INT, 3, _S("compression.zstd.level"), minimum=-131072, maximum=22
        ),
        _topic("follower.replication.throttled.replicas", _T.LIST, [], check=check_throttled_replicas),
        _topic("leader.replication.throttled.replicas", _T.LIST, [], check=check_throttled_replicas),
        _topic("local.retention.bytes", _T.LONG, -2, _S("log.local.retention.bytes"), minimum=-2),
        _topic("local.retention.ms", _T.LONG, -2, _S("log.local.retention.ms"), minimum=-2),
        _topic("remote.copy.lag.bytes", _T.LONG, -1, _S("log.remote.copy.lag.bytes"), minimum=-1),
        _topic("remote.copy.lag.ms", _T.LONG, 0, _S("log.remote.copy.lag.ms"), minimum=-1),
        _topic("remote.log.copy.disable", _T.BOOLEAN, False),
        _topic("remote.log.delete.on.disable", _T.BOOLEAN, False),
        _topic("remote.storage.enable", _T.BOOLEAN, False),
        _topic("errors.deadletterqueue.group.enable", _T.BOOLEAN, False),
    )
}


def parse_properties(text: str) -> dict[str, str]:
    """Parse Java .properties text (the subset server.properties files use: `k=v`, `k: v`, comments,
    backslash line continuations)."""
    result: dict[str, str] = {}
    pending = ""
    for raw_line in text.splitlines():
        line = pending + raw_line.strip()
        pending = ""
        if not line or line[0] in "#!":
            continue
        if line.endswith("\\") and not line.endswith("\\\\"):
            pending = line[:-1]
            continue
        sep_positions = [pos for pos in (line.find("="), line.find(":")) if pos >= 0]
        if not sep_positions:
            result[line] = ""
            continue
        pos = min(sep_positions)
        result[line[:pos].strip()] = line[pos + 1 :].strip()
    return result


def load_properties_file(path: str | Path) -> dict[str, str]:
    return parse_properties(Path(path).read_text(encoding="utf-8"))


@dataclass(slots=True)
class ResolvedValue:
    """A key's effective value and where it came from, for DescribeConfigs."""

    name: str
    value: Any
    source: ConfigSource
    definition: ConfigDef
    synonyms: list[tuple[str, Any, ConfigSource]] = field(default_factory=list)


class BrokerConfig:
    """The broker's static settings (server.properties plus `--set`) and dynamic overrides (KIP-226).

    Unknown keys are kept (Kafka only warns about them) so a server.properties written for Apache Kafka
    loads unchanged; only keys we define are type-checked. Dynamic overrides come in two layers, this
    broker's own and the cluster-wide defaults (resource name ""), the first winning; like Kafka, both
    take keys Strom does not know, kept as given (`get` answers their raw string).
    """

    def __init__(self, props: Mapping[str, str] | None = None) -> None:
        self._static: dict[str, Any] = {}
        self._dynamic: dict[str, Any] = {}
        self._dynamic_default: dict[str, Any] = {}
        self.unknown: dict[str, str] = {}
        for key, raw in (props or {}).items():
            definition = BROKER_CONFIGS.get(key)
            if definition is None:
                self.unknown[key] = str(raw)
                continue
            self._static[key] = definition.parse(raw)

    # typed access -------------------------------------------------------------------------------
    def get(self, name: str) -> Any:
        if name in self._dynamic:
            return self._dynamic[name]
        if name in self._dynamic_default:
            return self._dynamic_default[name]
        if name in self._static:
            return self._static[name]
        if name in self.unknown:
            return self.unknown[name]
        definition = BROKER_CONFIGS.get(name)
        if definition is None:
            raise KeyError(name)
        return definition.default

    def is_set(self, name: str) -> bool:
        return name in self._dynamic or name in self._dynamic_default or name in self._static

    def source(self, name: str) -> ConfigSource:
        if name in self._dynamic:
            return ConfigSource.DYNAMIC_BROKER_CONFIG
        if name in self._dynamic_default:
            return ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG
        if name in self._static or name in self.unknown:
            return ConfigSource.STATIC_BROKER_CONFIG
        return ConfigSource.DEFAULT_CONFIG

    def set_dynamic(self, name: str, raw: str | None, *, cluster_default: bool = False) -> None:
        """Set (or with None, remove) a dynamic override of this broker, or with `cluster_default` a
        cluster-wide default; raises ConfigError when a known key is read-only or its value invalid. An
        unknown key is kept as its raw string, as Kafka keeps it."""
        layer = self._dynamic_default if cluster_default else self._dynamic
        definition = BROKER_CONFIGS.get(name)
        if definition is not None and definition.read_only and raw is not None:
            raise ConfigError(f"Cannot update these configs dynamically: [{name}]")
        if raw is None:
            layer.pop(name, None)
        else:
            layer[name] = raw if definition is None else definition.parse(raw)

    @property
    def dynamic_overrides(self) -> dict[str, Any]:
        return dict(self._dynamic)

    @property
    def dynamic_default_overrides(self) -> dict[str, Any]:
        return dict(self._dynamic_default)

    def layers(self, name: str) -> list[tuple[Any, ConfigSource]]:
        """Every layer that gives `name` a value, highest precedence first, ending with the default
        (DescribeConfigs synonyms of a broker key, KIP-226)."""
        found: list[tuple[Any, ConfigSource]] = []
        if name in self._dynamic:
            found.append((self._dynamic[name], ConfigSource.DYNAMIC_BROKER_CONFIG))
        if name in self._dynamic_default:
            found.append((self._dynamic_default[name], ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG))
        if name in self._static:
            found.append((self._static[name], ConfigSource.STATIC_BROKER_CONFIG))
        elif name in self.unknown:
            found.append((self.unknown[name], ConfigSource.STATIC_BROKER_CONFIG))
        definition = BROKER_CONFIGS.get(name)
        if definition is not None and definition.default is not None:
            found.append((definition.default, ConfigSource.DEFAULT_CONFIG))
        return found

    def unknown_keys(self) -> list[str]:
        """Keys set in some layer that Strom does not define (static, dynamic or cluster default)."""
        keys = [*self.unknown, *self._dynamic, *self._dynamic_default]
        return [k for k in dict.fromkeys(keys) if k not in BROKER_CONFIGS]

    # derived settings ---------------------------------------------------------------------------
    @property
    def node_id(self) -> int:
        if self.is_set("node.id"):
            return int(self.get("node.id"))
        if self.is_set("broker.id") and self.get("broker.id") >= 0:
            return int(self.get("broker.id"))
        return int(self.get("node.id"))

    @property
    def log_dirs(self) -> list[Path]:
        raw = self.get("log.dirs") if self.is_set("log.dirs") else self.get("log.dir")
        return [Path(part.strip()) for part in str(raw).split(",") if part.strip()]

    @property
    def retention_check_interval_ms(self) -> int:
        return int(self.get("log.retention.check.interval.ms"))

    # topic-level resolution ----------------------------------------------------------------------
    def topic_default(self, name: str) -> tuple[Any, ConfigSource, list[tuple[str, Any, ConfigSource]]]:
        """The value a topic key takes when the topic does not override it, with the source and the broker
        synonyms DescribeConfigs reports for it.

        The value comes from the most specific broker synonym that is set (`log.retention.minutes` before
        `log.retention.hours`), else from the synonyms' defaults. The synonyms are Kafka 4.4's
        (ConfigHelper.configSynonyms): every layer of every broker synonym, layer by layer (dynamic, dynamic
        default, static, default), with the leading entries not named after the first synonym dropped; the
        source is the first synonym's, or DEFAULT_CONFIG. So `retention.ms` on a broker where only
        `log.retention.hours` is set (or defaulted) has no synonyms and source DEFAULT_CONFIG, as Kafka
        describes it, though its value follows the hours."""
        tdef = TOPIC_CONFIGS[name]
        chosen: Any = None
        found = False
        for syn in tdef.synonyms:
            if self.is_set(syn.name):
                value = self.get(syn.name)
                if value is None:
                    continue
                chosen, found = (value * syn.scale if syn.scale != 1 else value), True
                break
        if not found:
            # the first synonym with a non-null default defines the broker-wide default
            for syn in tdef.synonyms:
                default = BROKER_CONFIGS[syn.name].default
                if default is not None:
                    chosen, found = (default * syn.scale if syn.scale != 1 else default), True
                    break
        if not found:
            chosen = tdef.definition.default
        layered = [
            (syn.name, value, source)
            for syn in tdef.synonyms
            if syn.name in BROKER_CONFIGS
            for value, source in self.layers(syn.name)
            if value is not None
        ]
        layered.sort(key=lambda entry: int(entry[2]))  # stable: synonym order within a layer
        primary = tdef.synonyms[0].name if tdef.synonyms else None
        while layered and layered[0][0] != primary:
            layered.pop(0)
        source = layered[0][2] if layered else ConfigSource.DEFAULT_CONFIG
        return chosen, source, layered

    def resolve_topic(self, overrides: Mapping[str, Any]) -> dict[str, ResolvedValue]:
        """Every topic key's effective value for a topic with these (already parsed) overrides."""
        resolved: dict[str, ResolvedValue] = {}
        for name, tdef in TOPIC_CONFIGS.items():
            default, source, synonyms = self.topic_default(name)
            if name in overrides:
                value = overrides[name]
                synonyms = [(name, value, ConfigSource.DYNAMIC_TOPIC_CONFIG), *synonyms]
                resolved[name] = ResolvedValue(
                    name, value, ConfigSource.DYNAMIC_TOPIC_CONFIG, tdef.definition, synonyms
                )
            elif not tdef.internal:
                resolved[name] = ResolvedValue(name, default, source, tdef.definition, synonyms)
        return resolved

    def log_config(self, overrides: Mapping[str, Any] | None = None) -> LogConfig:
        values = {name: rv.value for name, rv in self.resolve_topic(overrides or {}).items()}
        return LogConfig.from_values(values)


def parse_topic_overrides(raw: Mapping[str, str | None]) -> dict[str, Any]:
    """Parse and validate topic-level overrides given as strings (CreateTopics, AlterConfigs), with Kafka
    4.4's rules and messages (LogConfig.validate): every key known, every value valid, then the rules
    across keys."""
    parsed: dict[str, Any] = {}
    for key, value in raw.items():
        tdef = TOPIC_CONFIGS.get(key)
        if tdef is None:
            raise ConfigError(f"Unknown topic config name: {key}")
        if value is None:
            raise ConfigError(f"Null value not supported for topic configs: {key}")
        parsed[key] = tdef.definition.parse(value)
    _check_topic_rules(parsed)
    return parsed


def _effective(parsed: Mapping[str, Any], key: str) -> Any:
    return parsed[key] if key in parsed else TOPIC_CONFIGS[key].definition.default


def _check_topic_rules(parsed: Mapping[str, Any]) -> None:
    min_lag = _effective(parsed, "min.compaction.lag.ms")
    max_lag = _effective(parsed, "max.compaction.lag.ms")
    if min_lag > max_lag:
        raise ConfigError(
            f"conflict topic config setting min.compaction.lag.ms ({min_lag}) > "
            f"max.compaction.lag.ms ({max_lag})"
        )
    if parsed.get("remote.storage.enable"):
        # Strom has no remote storage: it answers as Kafka does without remote.log.storage.system.enable
        raise ConfigError(
            "Tiered Storage functionality is disabled in the broker. "
            "Topic cannot be configured with remote log storage."
        )


def parse_stored_overrides(raw: Mapping[str, str]) -> tuple[dict[str, Any], dict[str, str]]:
    """Parse a topic's stored overrides key by key: (the valid ones, the ones left out as unknown or
    invalid). For overrides written before a rule existed (a key Kafka 4 removed, a segment.bytes under
    1 MiB): the topic keeps every other override instead of failing as a whole."""
    parsed: dict[str, Any] = {}
    skipped: dict[str, str] = {}
    for key, value in raw.items():
        tdef = TOPIC_CONFIGS.get(key)
        if tdef is None or value is None:
            skipped[key] = str(value)
            continue
        try:
            parsed[key] = tdef.definition.parse(value)
        except ConfigError:
            skipped[key] = value
    return parsed, skipped


def segment_size_override(size: int) -> dict[str, str]:
    """The topic override that gives an internal topic segments of `size` bytes (offsets.topic.segment.bytes,
    transaction.state.log.segment.bytes): segment.bytes, or internal.segment.bytes below segment.bytes'
    1 MiB minimum, which those broker keys (at least 1 byte, as in Kafka) may go."""
    key = "segment.bytes" if size >= MIN_SEGMENT_BYTES else "internal.segment.bytes"
    return {key: str(size)}


def render_overrides(overrides: Mapping[str, Any]) -> dict[str, str]:
    """Render parsed topic overrides back to Kafka's string form (for storage and the wire)."""
    out: dict[str, str] = {}
    for key, value in overrides.items():
        tdef = TOPIC_CONFIGS.get(key)
        rendered = tdef.definition.render(value) if tdef else str(value)
        if rendered is not None:
            out[key] = rendered
    return out


@dataclass(frozen=True, slots=True)
class LogConfig:
    """The effective settings one partition log runs with (Kafka's `LogConfig`), built from topic keys."""

    segment_bytes: int = 1073741824
    segment_ms: int = 168 * _HOUR
    segment_jitter_ms: int = 0
    segment_index_bytes: int = 10485760
    index_interval_bytes: int = 4096
    retention_ms: int = 168 * _HOUR
    retention_bytes: int = -1
    max_message_bytes: int = 1048588
    message_timestamp_type: str = "CreateTime"
    message_timestamp_before_max_ms: int = LONG_MAX
    message_timestamp_after_max_ms: int = 3600000
    flush_messages: int = LONG_MAX
    flush_ms: int = LONG_MAX
    file_delete_delay_ms: int = 60000
    preallocate: bool = False
    cleanup_policy: tuple[str, ...] = ("delete",)
    compression_type: str = "producer"
    delete_retention_ms: int = 86400000
    min_cleanable_dirty_ratio: float = 0.5
    min_compaction_lag_ms: int = 0
    max_compaction_lag_ms: int = LONG_MAX
    min_insync_replicas: int = 1
    unclean_leader_election_enable: bool = False

    @classmethod
    def from_values(cls, values: Mapping[str, Any]) -> LogConfig:
        """Build from topic keys by Kafka name (e.g. {"segment.bytes": 1024}); missing keys keep defaults."""
        kwargs: dict[str, Any] = {}
        for key, value in values.items():
            attr = key.replace(".", "_")
            if attr in cls.__dataclass_fields__ and value is not None:
                kwargs[attr] = tuple(value) if attr == "cleanup_policy" else value
        if values.get("internal.segment.bytes") is not None:
            kwargs["segment_bytes"] = values["internal.segment.bytes"]
        return cls(**kwargs)

    @property
    def compact(self) -> bool:
        return "compact" in self.cleanup_policy

    @property
    def delete(self) -> bool:
        return "delete" in self.cleanup_policy

    @property
    def log_append_time(self) -> bool:
        return self.message_timestamp_type == "LogAppendTime"


def merged_properties(*sources: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Merge property sources in order, later ones winning (config file, then `--set`)."""
    merged: dict[str, str] = {}
    for source in sources:
        for key, value in source:
            merged[key] = value
    return merged
