"""Every partition this broker holds, kept in step with the cluster metadata image.

The cluster backend calls `on_metadata_change(old, new)` after each change (and once at start-up with an
empty old image). The replica manager then opens or creates the logs of partitions assigned to this
broker (loading their producer state), pushes topic config changes to running logs, and deletes the logs
of partitions that are gone. Lookups by handlers: `get_partition(topic, partition)`.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from strom.cluster.metadata import MetadataImage, PartitionState, TopicInfo
from strom.config import ConfigError, parse_topic_overrides
from strom.replication.partition import Partition

if TYPE_CHECKING:
    from strom.server.broker import Broker

log = logging.getLogger("strom.replica_manager")

__all__ = ["ReplicaManager"]


class ReplicaManager:
    def __init__(self, broker: Broker) -> None:
        self.broker = broker
        self.partitions: dict[tuple[str, int], Partition] = {}
        self._lock = asyncio.Lock()

    def get_partition(self, topic: str, partition: int) -> Partition | None:
        return self.partitions.get((topic, partition))

    def _log_config(self, info: TopicInfo):  # type: ignore[no-untyped-def]
        try:
            overrides = parse_topic_overrides(info.configs)
        except ConfigError:
            log.warning("topic %s has invalid config overrides %s; using defaults", info.name, info.configs)
            overrides = {}
        return self.broker.config.log_config(overrides)

    def _open_partition(self, info: TopicInfo, state: PartitionState) -> Partition:
        """Blocking: open or create the log and load producer state."""
        log_manager = self.broker.log_manager
        plog = log_manager.get_or_create_log(
            info.name, state.partition, self._log_config(info), info.topic_id
        )
        part = Partition(
            info.name,
            state.partition,
            plog,
            node_id=self.broker.node_id,
            leader_epoch=state.leader_epoch,
            isr=tuple(state.isr),
            clock=self.broker.clock,
        )
        part.load_producer_state()
        return part

    async def on_metadata_change(self, old: MetadataImage, new: MetadataImage) -> None:
        async with self._lock:
            node = self.broker.node_id
            wanted: dict[tuple[str, int], tuple[TopicInfo, PartitionState]] = {}
            for info in new.topics.values():
                for state in info.partitions.values():
                    if node in state.replicas:
                        wanted[(info.name, state.partition)] = (info, state)
            # gone: deleted topics or reassigned partitions
            for key in [k for k in self.partitions if k not in wanted]:
                part = self.partitions.pop(key)
                part._wake()
                await asyncio.to_thread(self.broker.log_manager.delete_log, key[0], key[1])
            to_open = [(info, state) for key, (info, state) in wanted.items() if key not in self.partitions]
            if to_open:
                opened = await asyncio.to_thread(lambda: [self._open_partition(i, s) for i, s in to_open])
                for part in opened:
                    self.partitions[(part.topic, part.partition)] = part
            for key, (info, state) in wanted.items():
                part = self.partitions[key]
                part.leader_epoch = state.leader_epoch
                part.isr = tuple(state.isr) or (node,)
                old_info = old.topics.get(info.name)
                # dynamic broker configs (KIP-226) supply the defaults of keys a topic does not override
                if old_info is not None and (
                    old_info.configs != info.configs or old.broker_configs != new.broker_configs
                ):
                    part.log.update_config(self._log_config(info))

    async def stop(self) -> None:
        """Write a producer-state snapshot for every partition (clean shutdown)."""
        parts = list(self.partitions.values())

        def snapshot_all() -> None:
            for part in parts:
                try:
                    part.take_producer_snapshot()
                except OSError as exc:
                    log.warning("producer snapshot of %s-%d failed: %s", part.topic, part.partition, exc)

        await asyncio.to_thread(snapshot_all)
