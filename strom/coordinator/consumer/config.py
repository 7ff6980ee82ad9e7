"""Consumer group settings (KIP-848), read from the broker's Kafka config keys with Kafka 4.4's defaults:
group.consumer.session.timeout.ms (45 s), group.consumer.heartbeat.interval.ms (5 s),
group.consumer.max.size, group.consumer.assignors (uniform, range; the first is the default),
group.consumer.regex.refresh.interval.ms and group.consumer.migration.policy (KIP-848's online migration
between classic and consumer groups: disabled, upgrade, downgrade or bidirectional, the default) and
group.consumer.assignment.interval.ms (1 s: the least time between two target assignments). A group's
configs (consumer.session.timeout.ms, consumer.heartbeat.interval.ms, consumer.assignment.interval.ms)
replace the broker's for that group (`for_group`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from strom.config import INT_MAX, BrokerConfig


@dataclass(frozen=True, slots=True)
class ConsumerGroupConfig:
    session_timeout_ms: int = 45000
    heartbeat_interval_ms: int = 5000
    max_size: int = INT_MAX
    assignors: tuple[str, ...] = ("uniform", "range")
    regex_refresh_interval_ms: int = 600000
    migration_policy: str = "bidirectional"
    assignment_interval_ms: int = 1000

    @property
    def upgrade_enabled(self) -> bool:
        return self.migration_policy in ("upgrade", "bidirectional")

    @property
    def downgrade_enabled(self) -> bool:
        return self.migration_policy in ("downgrade", "bidirectional")

    @property
    def default_assignor(self) -> str:
        return self.assignors[0]

    def for_group(self, values: Mapping[str, Any]) -> ConsumerGroupConfig:
        """These settings with a group's configs (strom.group_config.evaluate) in place of the broker's."""
        if not values:
            return self
        return replace(
            self,
            session_timeout_ms=values.get("consumer.session.timeout.ms", self.session_timeout_ms),
            heartbeat_interval_ms=values.get("consumer.heartbeat.interval.ms", self.heartbeat_interval_ms),
            assignment_interval_ms=values.get("consumer.assignment.interval.ms", self.assignment_interval_ms),
        )

    @classmethod
    def from_broker_config(cls, config: BrokerConfig) -> ConsumerGroupConfig:
        return cls(
            session_timeout_ms=config.get("group.consumer.session.timeout.ms"),
            heartbeat_interval_ms=config.get("group.consumer.heartbeat.interval.ms"),
            max_size=config.get("group.consumer.max.size"),
            assignors=tuple(config.get("group.consumer.assignors")),
            regex_refresh_interval_ms=config.get("group.consumer.regex.refresh.interval.ms"),
            migration_policy=str(config.get("group.consumer.migration.policy")).lower(),
            assignment_interval_ms=config.get("group.consumer.assignment.interval.ms"),
        )
