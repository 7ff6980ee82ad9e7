"""Streams group settings (KIP-1071), read from the broker's Kafka config keys with Kafka 4.4's defaults:
group.streams.session.timeout.ms (45 s), group.streams.heartbeat.interval.ms (5 s), group.streams.max.size,
group.streams.num.standby.replicas (0), group.streams.num.warmup.replicas (2),
group.streams.acceptable.recovery.lag (10000) and group.streams.task.offset.interval.ms (60 s), the last
two told to members in every heartbeat answer, group.streams.initial.rebalance.delay.ms (3 s: how long a
group that gets its first member waits before its first target assignment) and
group.streams.assignment.interval.ms (1 s: the least time between two target assignments). A group's
configs (streams.session.timeout.ms, streams.heartbeat.interval.ms, streams.num.standby.replicas,
streams.acceptable.recovery.lag, streams.task.offset.interval.ms, streams.num.warmup.replicas,
streams.initial.rebalance.delay.ms, streams.assignment.interval.ms) replace the broker's for that group
(`for_group`); `assignment_configs` are what a target assignment was computed with, which Kafka 4.4 keeps
in the group's metadata record and compares to decide on a new assignment."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

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
    rack_aware_assignment_tags: tuple[str, ...] = ()
    initial_rebalance_delay_ms: int = 3000
    assignment_interval_ms: int = 1000

    def for_group(self, values: Mapping[str, Any]) -> StreamsGroupConfig:
        """These settings with a group's configs (strom.group_config.evaluate) in place of the broker's."""
        if not values:
            return self
        return replace(
            self,
            session_timeout_ms=values.get("streams.session.timeout.ms", self.session_timeout_ms),
            heartbeat_interval_ms=values.get("streams.heartbeat.interval.ms", self.heartbeat_interval_ms),
            num_standby_replicas=values.get("streams.num.standby.replicas", self.num_standby_replicas),
            num_warmup_replicas=values.get("streams.num.warmup.replicas", self.num_warmup_replicas),
            acceptable_recovery_lag=values.get(
                "streams.acceptable.recovery.lag", self.acceptable_recovery_lag
            ),
            rack_aware_assignment_tags=tuple(
                values.get("streams.rack.aware.assignment.tags", self.rack_aware_assignment_tags)
            ),
            task_offset_interval_ms=values.get(
                "streams.task.offset.interval.ms", self.task_offset_interval_ms
            ),
            initial_rebalance_delay_ms=values.get(
                "streams.initial.rebalance.delay.ms", self.initial_rebalance_delay_ms
            ),
            assignment_interval_ms=values.get("streams.assignment.interval.ms", self.assignment_interval_ms),
        )

    @property
    def assignment_configs(self) -> tuple[tuple[str, str], ...]:
        """The settings a target assignment depends on, as StreamsGroupMetadataValue keeps them."""
        configs = [("num.standby.replicas", str(self.num_standby_replicas))]
        if self.rack_aware_assignment_tags:
            configs.append(("rack.aware.assignment.tags", ",".join(self.rack_aware_assignment_tags)))
        return tuple(configs)

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
            rack_aware_assignment_tags=tuple(config.get("group.streams.rack.aware.assignment.tags")),
            initial_rebalance_delay_ms=config.get("group.streams.initial.rebalance.delay.ms"),
            assignment_interval_ms=config.get("group.streams.assignment.interval.ms"),
        )
