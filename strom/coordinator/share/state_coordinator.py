"""The share coordinator's async shell (KIP-932): owns the sans-io `ShareStateCore` and this broker's
partitions of __share_group_state.

- The topic is created on first use (FindCoordinator key type 2, or a share-partition leader persisting
  state) with share.coordinator.state.topic.num.partitions, .replication.factor (capped at the live broker
  count), .segment.bytes and min.insync.replicas from .min.isr, as Kafka creates it (cleanup.policy
  delete, retention forever: the newest snapshot of each key is what counts).
- Each partition this broker leads is replayed before it serves (COORDINATOR_LOAD_IN_PROGRESS meanwhile,
  NOT_COORDINATOR for partitions led elsewhere).
- Records are appended with acks=all and answered once replicated; a failed write reloads the partition
  from its log, since the core applied the change already.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from strom.config import segment_size_override
from strom.coordinator.group.coordinator import CoordinatorNotAvailableError, _read_all
from strom.coordinator.share.partition import StateBatch
from strom.coordinator.share.state_core import Record, ShareState, ShareStateCore
from strom.coordinator.share.state_records import StateKey
from strom.protocol.errors import ErrorCode, KafkaError
from strom.protocol.records import Record as BatchRecord
from strom.protocol.records import build_batch

if TYPE_CHECKING:
    from strom.cluster.metadata import MetadataImage
    from strom.server.broker import Broker

log = logging.getLogger("strom.share_coordinator")

STATE_TOPIC = "__share_group_state"


def _setting(broker: Broker, key: str, default: int) -> int:
    try:
        return int(broker.config.get(key))
    except Exception:  # a key this broker's config does not define: Kafka's default
        return default


class ShareCoordinator:
    def __init__(self, broker: Broker, *, clock: Callable[[], float] | None = None) -> None:
        self.broker = broker
        self.clock = clock or broker.clock
        self.core = ShareStateCore(
            _setting(broker, "share.coordinator.state.topic.num.partitions", 50),
            _setting(broker, "share.coordinator.snapshot.update.records.per.snapshot", 500),
        )
        self._topic_lock = asyncio.Lock()
        self._loads: dict[int, asyncio.Task[None]] = {}

    def now_ms(self) -> int:
        return int(self.clock() * 1000)

    async def start(self) -> None:
        image = self.broker.metadata.image if self.broker.metadata is not None else None
        if image is not None:
            await self.on_metadata_change(image, image)

    async def stop(self) -> None:
        for task in list(self._loads.values()):
            task.cancel()

    async def ensure_state_topic(self) -> Any:
        """The TopicInfo of __share_group_state, creating the topic on first use."""
        backend = self.broker.metadata
        info = backend.image.topic(STATE_TOPIC)
        if info is not None:
            return info
        async with self._topic_lock:
            info = backend.image.topic(STATE_TOPIC)
            if info is not None:
                return info
            brokers = max(len(backend.image.brokers), 1)
            replication = min(
                _setting(self.broker, "share.coordinator.state.topic.replication.factor", 3), brokers
            )
            min_isr = min(_setting(self.broker, "share.coordinator.state.topic.min.isr", 2), replication)
            configs = {
                "cleanup.policy": "delete",
                "retention.ms": "-1",
                "min.insync.replicas": str(min_isr),
                **segment_size_override(
                    _setting(self.broker, "share.coordinator.state.topic.segment.bytes", 104857600)
                ),
            }
            try:
                info = await backend.create_topic(STATE_TOPIC, self.core.num_partitions, replication, configs)
            except KafkaError as exc:
                if exc.code is not ErrorCode.topic_already_exists:
                    raise CoordinatorNotAvailableError(str(exc)) from None
                info = backend.image.topic(STATE_TOPIC)
            return info

    async def on_metadata_change(self, old: MetadataImage, new: MetadataImage) -> None:
        info = new.topic(STATE_TOPIC)
        node = self.broker.node_id
        led = set() if info is None else {p for p, s in info.partitions.items() if s.leader == node}
        for partition in sorted((self.core.owned | self.core.loading) - led):
            task = self._loads.pop(partition, None)
            if task is not None:
                task.cancel()
            self.core.unload(partition)
        for partition in sorted(led - self.core.owned - self.core.loading):
            self._begin_load(partition)

    def _begin_load(self, partition: int) -> None:
        self.core.begin_loading(partition)
        self._loads[partition] = asyncio.create_task(self._load(partition))

    async def _load(self, partition: int) -> None:
        try:
            part = None
            for _ in range(100):
                part = self.broker.replica_manager.get_partition(STATE_TOPIC, partition)
                if part is not None:
                    break
                await asyncio.sleep(0.05)
            if part is None:
                raise CoordinatorNotAvailableError(f"{STATE_TOPIC}-{partition} is not open")
            records, _open = await asyncio.to_thread(_read_all, part)
            for key, value in records:
                try:
                    self.core.load_record(partition, key, value)
                except KafkaError as exc:
                    log.warning("skipping unreadable record in %s-%d: %s", STATE_TOPIC, partition, exc)
            self.core.finish_loading(partition)
            log.info("loaded %s-%d (%d records)", STATE_TOPIC, partition, len(records))
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("loading %s-%d failed", STATE_TOPIC, partition)
            self.core.unload(partition)
        finally:
            self._loads.pop(partition, None)

    async def wait_loaded(self, key: StateKey, timeout: float = 5.0) -> ErrorCode:
        """The key's status, after waiting (bounded) for a load of its partition in progress."""
        partition = self.core.partition_for(key)
        task = self._loads.get(partition)
        if task is not None:
            with contextlib.suppress(TimeoutError, asyncio.CancelledError, Exception):
                await asyncio.wait_for(asyncio.shield(task), timeout)
        return self.core.status(key)

    async def write_records(self, key: StateKey, records: list[Record]) -> ErrorCode:
        """Append `records` to the key's partition with acks=all; the error a state API answers."""
        if not records:
            return ErrorCode.none
        partition = self.core.partition_for(key)
        try:
            part = self.broker.replica_manager.get_partition(STATE_TOPIC, partition)
            if part is None or not part.is_leader:
                raise KafkaError(f"{STATE_TOPIC}-{partition} is not led here", ErrorCode.not_coordinator)
            batch = build_batch(
                [BatchRecord(i, 0, k, v) for i, (k, v) in enumerate(records)], base_timestamp=self.now_ms()
            )
            result = part.append_as_leader(batch, acks=-1)
            timeout = _setting(self.broker, "share.coordinator.write.timeout.ms", 5000) / 1000
            if not await part.wait_for_high_watermark(result.last_offset + 1, timeout):
                raise KafkaError("share state not replicated in time", ErrorCode.request_timed_out)
            return ErrorCode.none
        except Exception as exc:
            log.warning("writing %s-%d failed: %s", STATE_TOPIC, partition, exc)
            # the core applied the change already: rebuild this partition's state from its log
            if partition in self.core.owned:
                self.core.unload(partition)
                self._begin_load(partition)
            code = exc.code if isinstance(exc, KafkaError) else ErrorCode.unknown_server_error
            if code in (ErrorCode.not_leader_or_follower, ErrorCode.not_coordinator):
                return ErrorCode.not_coordinator
            return ErrorCode.coordinator_not_available

    # --- the state APIs, for their handlers and for the local persister ------------------------------

    async def initialize_state(self, key: StateKey, state_epoch: int, start_offset: int) -> ErrorCode:
        status = await self.wait_loaded(key)
        if status is not ErrorCode.none:
            return status
        error, records = self.core.initialize(key, state_epoch, start_offset, self.now_ms())
        return error if error is not ErrorCode.none else await self.write_records(key, records)

    async def write_state(
        self,
        key: StateKey,
        state_epoch: int,
        leader_epoch: int,
        start_offset: int,
        batches: tuple[StateBatch, ...],
        delivery_complete_count: int = -1,
    ) -> ErrorCode:
        status = await self.wait_loaded(key)
        if status is not ErrorCode.none:
            return status
        error, records = self.core.write(
            key, state_epoch, leader_epoch, start_offset, batches, delivery_complete_count, self.now_ms()
        )
        return error if error is not ErrorCode.none else await self.write_records(key, records)

    async def read_state(self, key: StateKey, leader_epoch: int) -> tuple[ErrorCode, ShareState | None]:
        status = await self.wait_loaded(key)
        if status is not ErrorCode.none:
            return status, None
        error, state, records = self.core.read(key, leader_epoch)
        if error is ErrorCode.none and records:
            error = await self.write_records(key, records)
        return error, state if error is ErrorCode.none else None

    async def read_summary(self, key: StateKey) -> tuple[ErrorCode, ShareState | None]:
        status = await self.wait_loaded(key)
        if status is not ErrorCode.none:
            return status, None
        return self.core.summary(key)

    async def delete_state(self, key: StateKey) -> ErrorCode:
        status = await self.wait_loaded(key)
        if status is not ErrorCode.none:
            return status
        return await self.write_records(key, self.core.delete(key))
