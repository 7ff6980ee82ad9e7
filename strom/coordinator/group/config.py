"""The group coordinator's settings, read from the broker's Kafka config keys (offsets.topic.num.partitions,
group.min/max.session.timeout.ms, group.initial.rebalance.delay.ms, group.max.size,
offsets.retention.minutes and offsets.retention.check.interval.ms (KIP-211), offset.metadata.max.bytes)."""

from __future__ import annotations

from dataclasses import dataclass

from strom.config import INT_MAX, BrokerConfig


@dataclass(frozen=True, slots=True)
class GroupConfig:
    num_partitions: int = 50
    min_session_timeout_ms: int = 6000
    max_session_timeout_ms: int = 1800000
    initial_rebalance_delay_ms: int = 3000
    max_size: int = INT_MAX
    # Kafka's GroupCoordinator.NewMemberJoinTimeoutMs: not a config key in Kafka either.
    new_member_join_timeout_ms: int = 300000
    offsets_retention_ms: int = 7 * 24 * 3600 * 1000
    offsets_retention_check_interval_ms: int = 600000
    offset_metadata_max_bytes: int = 4096

    @classmethod
    def from_broker_config(cls, config: BrokerConfig) -> GroupConfig:
        return cls(
            num_partitions=config.get("offsets.topic.num.partitions"),
            min_session_timeout_ms=config.get("group.min.session.timeout.ms"),
            max_session_timeout_ms=config.get("group.max.session.timeout.ms"),
            initial_rebalance_delay_ms=config.get("group.initial.rebalance.delay.ms"),
            max_size=config.get("group.max.size"),
            offsets_retention_ms=config.get("offsets.retention.minutes") * 60000,
            offsets_retention_check_interval_ms=config.get("offsets.retention.check.interval.ms"),
            offset_metadata_max_bytes=config.get("offset.metadata.max.bytes"),
        )
