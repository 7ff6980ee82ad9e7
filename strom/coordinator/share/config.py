"""Share group settings (KIP-932), read from the broker's Kafka config keys with Kafka 4.4's defaults:
group.share.session.timeout.ms (45 s), group.share.heartbeat.interval.ms (5 s), group.share.max.size (200),
group.share.record.lock.duration.ms (30 s), group.share.delivery.count.limit (5),
group.share.partition.max.record.locks (2000) and group.share.max.share.sessions (2000). A group's configs
(share.session.timeout.ms, share.heartbeat.interval.ms, share.record.lock.duration.ms,
share.delivery.count.limit, share.partition.max.record.locks) replace the broker's for that group
(`for_group`); share.auto.offset.reset and share.isolation.level have no broker key (`reset_strategy`,
`read_committed`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from strom.config import BrokerConfig
from strom.coordinator.share.partition import ShareLimits
from strom.group_config import ShareAutoOffsetReset

LATEST = ShareAutoOffsetReset("latest")


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

    def for_group(self, values: Mapping[str, Any]) -> ShareGroupConfig:
        """These settings with a group's configs (strom.group_config.evaluate) in place of the broker's."""
        if not values:
            return self
        return replace(
            self,
            session_timeout_ms=values.get("share.session.timeout.ms", self.session_timeout_ms),
            heartbeat_interval_ms=values.get("share.heartbeat.interval.ms", self.heartbeat_interval_ms),
            record_lock_duration_ms=values.get("share.record.lock.duration.ms", self.record_lock_duration_ms),
            delivery_count_limit=values.get("share.delivery.count.limit", self.delivery_count_limit),
            partition_max_record_locks=values.get(
                "share.partition.max.record.locks", self.partition_max_record_locks
            ),
        )

    @staticmethod
    def reset_strategy(values: Mapping[str, Any]) -> ShareAutoOffsetReset:
        """share.auto.offset.reset of a group (Kafka's default: latest)."""
        raw = values.get("share.auto.offset.reset")
        return (ShareAutoOffsetReset.parse(raw) if raw is not None else None) or LATEST

    @staticmethod
    def read_committed(values: Mapping[str, Any]) -> bool:
        """share.isolation.level of a group is read_committed (Kafka's default: read_uncommitted)."""
        return values.get("share.isolation.level") == "read_committed"

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
