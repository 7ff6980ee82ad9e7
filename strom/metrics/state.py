"""Gauges read from the broker's state at scrape time (nothing is updated on the hot path).

- `strom_under_replicated_partitions`, `strom_offline_partitions_count`, `strom_active_controller_count`
  (Kafka's ReplicaManager.UnderReplicatedPartitions, KafkaController.OfflinePartitionsCount and
  ActiveControllerCount), from the metadata image: a partition is under-replicated when this broker leads
  it and its ISR is smaller than its replica set, offline when it has no leader.
- `strom_log_size_bytes`, `strom_log_start_offset`, `strom_log_end_offset` per partition (Kafka's Log
  Size, LogStartOffset, LogEndOffset), from the logs of this broker.
- `strom_consumer_group_committed_offset` and `strom_consumer_group_lag` per group and partition
  (high watermark minus committed offset) for the groups this broker coordinates and the partitions it
  leads.
Runs on the broker's event loop (the HTTP endpoint is served there), so it reads state without locks.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from strom.server.broker import Broker


class BrokerStateCollector(Collector):
    def __init__(self, broker: Broker) -> None:
        self.broker = broker

    def describe(self) -> list[Metric]:
        # no values at registration: the broker may not have started yet
        return []

    def collect(self) -> Iterator[Metric]:
        yield from self._cluster()
        yield from self._logs()
        yield from self._groups()

    def _cluster(self) -> Iterator[Metric]:
        backend = self.broker.metadata
        under = offline = active = 0
        if backend is not None:
            image = backend.image
            node = self.broker.node_id
            active = int(image.controller_id == node)
            for topic in image.topics.values():
                for state in topic.partitions.values():
                    if state.leader < 0:
                        offline += 1
                    elif state.leader == node and len(state.isr) < len(state.replicas):
                        under += 1
        yield GaugeMetricFamily(
            "strom_under_replicated_partitions", "Partitions led here whose ISR is short", value=under
        )
        yield GaugeMetricFamily(
            "strom_offline_partitions_count", "Partitions without a leader", value=offline
        )
        yield GaugeMetricFamily(
            "strom_active_controller_count", "1 if this broker is the controller", value=active
        )

    def _logs(self) -> Iterator[Metric]:
        labels = ["topic", "partition"]
        size = GaugeMetricFamily("strom_log_size_bytes", "Bytes of a partition's log", labels=labels)
        start = GaugeMetricFamily(
            "strom_log_start_offset", "First offset of a partition's log", labels=labels
        )
        end = GaugeMetricFamily("strom_log_end_offset", "Next offset of a partition's log", labels=labels)
        for log in self.broker.log_manager.all_logs():
            key = [log.topic, str(log.partition)]
            size.add_metric(key, log.size_in_bytes)
            start.add_metric(key, log.log_start_offset)
            end.add_metric(key, log.log_end_offset)
        yield from (size, start, end)

    def _groups(self) -> Iterator[Metric]:
        labels = ["group", "topic", "partition"]
        committed = GaugeMetricFamily(
            "strom_consumer_group_committed_offset", "A group's committed offset", labels=labels
        )
        lag = GaugeMetricFamily(
            "strom_consumer_group_lag", "High watermark minus the group's committed offset", labels=labels
        )
        coordinator = getattr(self.broker, "group_coordinator", None)
        groups = getattr(getattr(coordinator, "core", None), "groups", {})
        replicas = self.broker.replica_manager
        for group_id, group in list(groups.items()):
            for (topic, partition), entry in list(group.offsets.items()):
                key = [group_id, topic, str(partition)]
                committed.add_metric(key, entry.offset)
                part = replicas.get_partition(topic, partition)
                if part is not None and part.is_leader:
                    lag.add_metric(key, max(part.high_watermark - entry.offset, 0))
        yield from (committed, lag)
