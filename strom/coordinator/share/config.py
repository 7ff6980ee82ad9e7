"""Share group settings (KIP-932), read from the broker's Kafka config keys with Kafka 4.4's defaults:
group.share.session.timeout.ms (45 s), group.share.heartbeat.interval.ms (5 s), group.share.max.size (200),
group.share.record.lock.duration.ms (30 s), group.share.delivery.count.limit (5),
group.share.partition.max.record.locks (2000) and group.share.max.share.sessions (2000)."""

from __future__ import annotations

from dataclasses import dataclass

from strom.config import BrokerConfig
from strom.coordinator.share.partition import ShareLimits


@dataclass(frozen=True, slots=True)
class ShareGroupConfig:
    session_timeout_ms: int = 45000
    heartbeat_interval_ms: int = 5000
    max_size: int = 200
    record_lock_duration_ms: int = 30000
    delivery_count_limit: int = 5
    partition_max_record_locks: int = 2000
    max_share_sessions: int = 2000

    @property
    def limits(self) -> ShareLimits:
        return ShareLimits(
            self.record_lock_duration_ms, self.delivery_count_limit, self.partition_max_record_locks
        )

    @classmethod
    def from_broker_config(cls, config: BrokerConfig) -> ShareGroupConfig:
        return cls(
            session_timeout_ms=config.get("group.share.session.timeout.ms"),
            heartbeat_interval_ms=config.get("group.share.heartbeat.interval.ms"),
            max_size=config.get("group.share.max.size"),
            record_lock_duration_ms=config.get("group.share.record.lock.duration.ms"),
            delivery_count_limit=config.get("group.share.delivery.count.limit"),
            partition_max_record_locks=config.get("group.share.partition.max.record.locks"),
            max_share_sessions=config.get("group.share.max.share.sessions"),
        )
