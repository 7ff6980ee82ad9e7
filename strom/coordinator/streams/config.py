"""Streams group settings (KIP-1071), read from the broker's Kafka config keys with Kafka 4.4's defaults:
group.streams.session.timeout.ms (45 s), group.streams.heartbeat.interval.ms (5 s), group.streams.max.size,
group.streams.num.standby.replicas (0), group.streams.num.warmup.replicas (2),
group.streams.acceptable.recovery.lag (10000) and group.streams.task.offset.interval.ms (60 s), the last
two told to members in every heartbeat answer."""

from __future__ import annotations

from dataclasses import dataclass

from strom.config import INT_MAX, BrokerConfig

ASSIGNOR = "sticky"


@dataclass(frozen=True, slots=True)
class StreamsGroupConfig:
    session_timeout_ms: int = 45000
    heartbeat_interval_ms: int = 5000
    max_size: int = INT_MAX
    num_standby_replicas: int = 0
    num_warmup_replicas: int = 2
    acceptable_recovery_lag: int = 10000
    task_offset_interval_ms: int = 60000

    @classmethod
    def from_broker_config(cls, config: BrokerConfig) -> StreamsGroupConfig:
        return cls(
            session_timeout_ms=config.get("group.streams.session.timeout.ms"),
            heartbeat_interval_ms=config.get("group.streams.heartbeat.interval.ms"),
            max_size=config.get("group.streams.max.size"),
            num_standby_replicas=config.get("group.streams.num.standby.replicas"),
            num_warmup_replicas=config.get("group.streams.num.warmup.replicas"),
            acceptable_recovery_lag=config.get("group.streams.acceptable.recovery.lag"),
            task_offset_interval_ms=config.get("group.streams.task.offset.interval.ms"),
        )
