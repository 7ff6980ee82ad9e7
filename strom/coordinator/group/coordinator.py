"""The group coordinator's async shell: owns the sans-io `GroupCoordinatorCore`, its timers and its
partitions of __consumer_offsets.

- The internal topic is created on first use (FindCoordinator) with offsets.topic.num.partitions,
  offsets.topic.replication.factor (capped at the live broker count) and cleanup.policy=compact.
- For every partition of the topic this broker leads, the coordinator replays the log to rebuild groups
  and committed offsets; requests for its groups answer COORDINATOR_LOAD_IN_PROGRESS meanwhile and
  NOT_COORDINATOR once the partition is led elsewhere.
- Records the core emits are written through the partition's `append_as_leader` (acks=all); the core's
  continuation runs only when the write is acknowledged.
- One timer task sleeps until the core's next deadline (heartbeats, delayed joins, offset expiry).
- Consumer groups (KIP-848) see the cluster's topics through a view of the newest metadata image, rebuilt
  (with a new version, so broker-side regexes are resolved again) whenever the image changes.
- Consumer, share and streams groups read their group configs (session timeouts, heartbeat intervals,
  standby replicas) from the newest image too (strom.coordinator.group_configs.GroupConfigView).
- Transactional offset commits (TxnOffsetCommit) are written as transactional batches of the producer;
  the replay keeps a transaction's offset records aside until its marker: COMMIT applies them, ABORT
  drops them, and those of a transaction still open stay pending in the core.

All state lives on the event-loop thread; handlers call in and await futures the core completes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from strom.config import segment_size_override
from strom.coordinator.consumer.config import ConsumerGroupConfig
from strom.coordinator.consumer.group import TopicMeta, TopicsView
from strom.coordinator.group.core import AppendDone, GroupConfig, GroupCoordinatorCore, Record
from strom.coordinator.group_configs import GroupConfigView
from strom.coordinator.share.config import ShareGroupConfig
from strom.coordinator.streams.config import StreamsGroupConfig
from strom.protocol.control_records import COMMIT, marker_type
from strom.protocol.errors import ErrorCode, KafkaError
from strom.protocol.records import Record as BatchRecord
from strom.protocol.records import build_batch, decode_records

if TYPE_CHECKING:
    from strom.cluster.metadata import MetadataImage
    from strom.server.broker import Broker

log = logging.getLogger("strom.group_coordinator")

OFFSETS_TOPIC = "__consumer_offsets"
_T = TypeVar("_T")


class CoordinatorNotAvailableError(KafkaError):
    code = ErrorCode.coordinator_not_available


class GroupCoordinator:
    def __init__(self, broker: Broker, *, clock: Callable[[], float] | None = None) -> None:
        self.broker = broker
        self.clock = clock or broker.clock
        self.config = GroupConfig.from_broker_config(broker.config)
        self.core = GroupCoordinatorCore(self.config, self._append)
        self.core.leads = self._leads
        self.core.append_transactional = self._append_transactional
        self.core.consumer_config = ConsumerGroupConfig.from_broker_config(broker.config)
        self.core.topics_view = self._topics_view
        self.core.share_config = ShareGroupConfig.from_broker_config(broker.config)
        self.core.on_share_state_deleted = self._delete_share_state
        self.core.streams_config = StreamsGroupConfig.from_broker_config(broker.config)
        self.core.group_configs = GroupConfigView(lambda: broker.metadata.image, broker.config)
        self._view: tuple[Any, TopicsView] | None = None
        self._wake = asyncio.Event()
        self._timer_task: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._topic_lock = asyncio.Lock()
        self._loads: dict[int, asyncio.Task[None]] = {}

    def now_ms(self) -> int:
        return int(self.clock() * 1000)

    # --- lifecycle -----------------------------------------------------------------------------------

    async def start(self) -> None:
        self._timer_task = asyncio.create_task(self._run_timers(), name="group-coordinator-timers")
        image = self.broker.metadata.image if self.broker.metadata is not None else None
        if image is not None:
            await self.on_metadata_change(image, image)

    async def stop(self) -> None:
        for task in [self._timer_task, *self._loads.values()]:
            if task is not None:
                task.cancel()
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=5)
        for task in [self._timer_task, *self._loads.values()]:
            if task is not None:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task

    def poke(self) -> None:
        """The core may have new deadlines: let the timer task recompute its sleep."""
        self._wake.set()

    async def _run_timers(self) -> None:
        while True:
            deadline = self.core.next_deadline()
            timeout = None if deadline is None else max(0.0, deadline / 1000 - self.clock())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)
            self._wake.clear()
            try:
                self.core.tick(self.now_ms())
            except Exception:
                log.exception("group coordinator timer failed")

    # --- calling the core ----------------------------------------------------------------------------

    async def call(
        self, start: Callable[[Callable[[_T], None]], None], applied: Callable[[], None] | None = None
    ) -> _T:
        """Run a core operation that answers through a callback and wait for the answer. The core applies
        the operation synchronously in `start` (a join registers the member, a commit appends its
        records); `applied` is called then, before the wait (a rebalance, replication of the commit)."""
        fut: asyncio.Future[_T] = asyncio.get_running_loop().create_future()

        def respond(result: _T) -> None:
            if not fut.done():
                fut.set_result(result)

        start(respond)
        self.poke()
        if applied is not None:
            applied()
        return await fut

    # --- __consumer_offsets --------------------------------------------------------------------------

    async def ensure_offsets_topic(self) -> Any:
        """The TopicInfo of __consumer_offsets, creating the topic on first use."""
        backend = self.broker.metadata
        info = backend.image.topic(OFFSETS_TOPIC)
        if info is not None:
            return info
        async with self._topic_lock:
            info = backend.image.topic(OFFSETS_TOPIC)
            if info is not None:
                return info
            brokers = max(len(backend.image.brokers), 1)
            replication = min(int(self.broker.config.get("offsets.topic.replication.factor")), brokers)
            configs = {
                "cleanup.policy": "compact",
                "compression.type": "producer",
                **segment_size_override(int(self.broker.config.get("offsets.topic.segment.bytes"))),
            }
            try:
                info = await backend.create_topic(
                    OFFSETS_TOPIC, self.config.num_partitions, replication, configs
                )
            except KafkaError as exc:
                if exc.code is not ErrorCode.topic_already_exists:
                    raise CoordinatorNotAvailableError(str(exc)) from None
                info = backend.image.topic(OFFSETS_TOPIC)
            return info

    def _topics_view(self) -> TopicsView:
        image = self.broker.metadata.image
        if self._view is None or self._view[0] is not image:
            version = 0 if self._view is None else self._view[1].version + 1
            topics = [
                TopicMeta(info.topic_id, name, len(info.partitions), info.internal)
                for name, info in image.topics.items()
            ]
            self._view = (image, TopicsView(topics, version))
        return self._view[1]

    def _delete_share_state(self, group_id: str, partitions: list[tuple[Any, int]]) -> None:
        """A share group was deleted: delete its share-partitions' state at the share coordinator."""
        from strom.coordinator.share.state_records import StateKey

        persister = self.broker.share_partitions.persister

        async def delete() -> None:
            for topic_id, partition in partitions:
                await persister.delete(StateKey(group_id, topic_id, partition))

        task = asyncio.get_running_loop().create_task(delete())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _leads(self, partition: int) -> bool:
        info = self.broker.metadata.image.topic(OFFSETS_TOPIC)
        state = None if info is None else info.partitions.get(partition)
        return state is not None and state.leader == self.broker.node_id

    async def on_metadata_change(self, old: MetadataImage, new: MetadataImage) -> None:
        """Load the partitions this broker now leads; drop those it no longer leads."""
        info = new.topic(OFFSETS_TOPIC)
        node = self.broker.node_id
        led = set() if info is None else {p for p, s in info.partitions.items() if s.leader == node}
        for partition in sorted((self.core.owned | self.core.loading) - led):
            task = self._loads.pop(partition, None)
            if task is not None:
                task.cancel()
            self.core.unload(partition)
        for partition in sorted(led - self.core.owned - self.core.loading):
            self.core.begin_loading(partition)
            self._loads[partition] = asyncio.create_task(self._load(partition))

    async def _load(self, partition: int) -> None:
        try:
            part = None
            for _ in range(100):
                part = self.broker.replica_manager.get_partition(OFFSETS_TOPIC, partition)
                if part is not None:
                    break
                await asyncio.sleep(0.05)
            if part is None:
                raise CoordinatorNotAvailableError(f"{OFFSETS_TOPIC}-{partition} is not open")
            records, open_txns = await asyncio.to_thread(_read_all, part)
            for key, value in records:
                try:
                    self.core.load_record(partition, key, value)
                except KafkaError as exc:
                    log.warning("skipping unreadable record in %s-%d: %s", OFFSETS_TOPIC, partition, exc)
            self.core.finish_loading(partition, self.now_ms())
            for producer_id, txn_records in open_txns.items():
                for key, value in txn_records:
                    with contextlib.suppress(KafkaError):
                        self.core.load_pending_txn_offset(producer_id, key, value)
            log.info("loaded %s-%d (%d records)", OFFSETS_TOPIC, partition, len(records))
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("loading %s-%d failed", OFFSETS_TOPIC, partition)
            self.core.unload(partition)
        finally:
            self._loads.pop(partition, None)
            self.poke()

    def _commit_timeout_s(self) -> float:
        try:
            return int(self.broker.config.get("offsets.commit.timeout.ms")) / 1000
        except Exception:  # not a configured key: Kafka's default
            return 5.0

    def _append(self, partition: int, records: list[Record], done: AppendDone) -> None:
        task = asyncio.get_running_loop().create_task(self._write(partition, records, done))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _append_transactional(
        self, partition: int, records: list[Record], done: AppendDone, producer_id: int, producer_epoch: int
    ) -> None:
        task = asyncio.get_running_loop().create_task(
            self._write(partition, records, done, (producer_id, producer_epoch))
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def complete_txn_offsets(self, partition: int, producer_id: int, commit: bool) -> None:
        """A transaction marker was appended to a __consumer_offsets partition led here."""
        self.core.complete_txn_offsets(partition, producer_id, commit, self.now_ms())

    async def _write(
        self, partition: int, records: list[Record], done: AppendDone, producer: tuple[int, int] | None = None
    ) -> None:
        error: KafkaError | None = None
        try:
            part = self.broker.replica_manager.get_partition(OFFSETS_TOPIC, partition)
            if part is None:
                raise KafkaError(f"{OFFSETS_TOPIC}-{partition} is not here", ErrorCode.not_leader_or_follower)
            batch = build_batch(
                [BatchRecord(i, 0, key, value) for i, (key, value) in enumerate(records)],
                base_timestamp=self.now_ms(),
                producer_id=producer[0] if producer else -1,
                producer_epoch=producer[1] if producer else -1,
                transactional=producer is not None,
            )
            result = part.append_as_leader(batch, acks=-1)
            timeout = self._commit_timeout_s()
            if not await part.wait_for_high_watermark(result.last_offset + 1, timeout):
                raise KafkaError("offsets not replicated in time", ErrorCode.request_timed_out)
        except KafkaError as exc:
            error = exc
        except Exception as exc:
            log.exception("writing %s-%d failed", OFFSETS_TOPIC, partition)
            error = KafkaError(str(exc))
        try:
            done(error)
        finally:
            self.poke()


KeyValue = tuple[bytes | None, bytes | None]


def _read_all(part: Any) -> tuple[list[KeyValue], dict[int, list[KeyValue]]]:
    """Blocking: every committed record (key, value) of a partition's log, in offset order (a
    transaction's records at its COMMIT marker, aborted ones left out), and the records of transactions
    still open at the end, by producer id."""
    out: list[KeyValue] = []
    open_txns: dict[int, list[KeyValue]] = {}
    for header, data in part.log.iter_batches(part.log.log_start_offset):
        if header.is_control:
            txn = open_txns.pop(header.producer_id, None)
            try:
                commit = marker_type(data) == COMMIT
            except KafkaError:
                continue
            if txn and commit:
                out.extend(txn)
            continue
        records = [(record.key, record.value) for record in decode_records(data)]
        if header.is_transactional:
            open_txns.setdefault(header.producer_id, []).extend(records)
        else:
            out.extend(records)
    return out, open_txns
