"""Every partition this broker holds, kept in step with the cluster metadata image.

The cluster backend calls `on_metadata_change(old, new)` after each change (and once at start-up with an
empty old image). The replica manager then opens or creates the logs of partitions assigned to this
broker (loading their producer state), pushes topic config changes to running logs, and deletes the logs
of partitions that are gone. Lookups by handlers: `get_partition(topic, partition)`.

Roles follow the image (Kafka's LeaderAndIsr handling): a partition whose leader is this broker becomes
leader (a new epoch starts at its log end, followers are tracked, see partition.py); any other becomes a
follower and is handed to the `ReplicaFetcher` of its leader, which truncates it by leader epoch before
fetching (fetcher.py). A partition without a leader (offline) just waits. A periodic task shrinks the ISRs
of led partitions after replica.lag.time.max.ms; ISR changes are written through the backend's
`alter_isr` (a compare-and-set; a lost race is retried after the next image).

Topic ids (KIP-516): a partition's log records its topic's id (`partition.metadata`). A topic deleted and
re-created under the same name is another topic: when one image change does both, the old log is deleted
and a new one created. A log found on disk with another id than the image's (this broker missed the
deletion) is Kafka's InconsistentTopicIdException: the partition is not opened, so it is not served, and
the log stays on disk for an operator to look at.

JBOD (KIP-112/113): `alter_log_dir` starts moving a partition's log to another of the broker's log dirs
(a future replica copied by strom.replication.log_dir_mover, then swapped in while the partition keeps
serving), or records where a partition not yet here should be created. When a log dir fails, its
partitions go offline (`is_offline`): they leave `partitions`, their fetchers and moves stop, and Produce
and Fetch answer KAFKA_STORAGE_ERROR for them while the other dirs' partitions keep serving. They are not
re-created in another dir while the failed one is offline.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, Any

from strom.cluster.errors import InvalidTopicError
from strom.cluster.metadata import MetadataImage, PartitionState, TopicInfo
from strom.config import parse_stored_overrides
from strom.protocol.errors import ErrorCode, KafkaError, KafkaStorageError
from strom.replication.fetcher import FetcherConfig, ReplicaFetcher
from strom.replication.log_dir_mover import LogDirMover
from strom.replication.partition import Partition
from strom.storage.log import FUTURE_DIR_SUFFIX
from strom.storage.log_manager import InconsistentTopicIdError

if TYPE_CHECKING:
    from strom.server.broker import Broker

log = logging.getLogger("strom.replica_manager")

__all__ = ["ReplicaManager"]


class ReplicaManager:
    def __init__(self, broker: Broker) -> None:
        self.broker = broker
        self.partitions: dict[tuple[str, int], Partition] = {}
        self.fetchers: dict[int, ReplicaFetcher] = {}
        self._lock = asyncio.Lock()
        self._image: MetadataImage = MetadataImage.empty()
        self._isr_task: asyncio.Task[None] | None = None
        self._background: set[asyncio.Task[Any]] = set()
        self._metadata_flush: asyncio.Task[Any] | None = None
        self._metadata_flush_again = False
        self._stopping = False
        # partitions whose log dir failed (KAFKA_STORAGE_ERROR), and the moves between log dirs
        self.offline: set[tuple[str, int]] = set()
        self._seen_image = False
        self.mover = LogDirMover(broker.log_manager, self.partitions.get)
        broker.log_manager.on_dir_failure = self._on_dir_failure

    def get_partition(self, topic: str, partition: int) -> Partition | None:
        return self.partitions.get((topic, partition))

    def is_offline(self, topic: str, partition: int) -> bool:
        """The partition's log dir failed: it answers KAFKA_STORAGE_ERROR."""
        return (topic, partition) in self.offline

    @property
    def lag_time_max_ms(self) -> int:
        return int(self.broker.config.get("replica.lag.time.max.ms"))

    def _log_config(self, info: TopicInfo):  # type: ignore[no-untyped-def]
        overrides, skipped = parse_stored_overrides(info.configs)
        if skipped:
            log.warning("topic %s: ignoring unknown or invalid config overrides %s", info.name, skipped)
        return self.broker.config.log_config(overrides)

    def _open_partition(self, info: TopicInfo, state: PartitionState, is_new: bool) -> Partition | None:
        """Blocking: open or create the log and load producer state; None when the log on disk belongs to
        another topic id, or may be in a log dir that is offline (then the partition is offline)."""
        log_manager = self.broker.log_manager
        key = (info.name, state.partition)
        try:
            plog = log_manager.get_or_create_log(
                info.name, state.partition, self._log_config(info), info.topic_id, is_new=is_new
            )
        except InconsistentTopicIdError as exc:
            log.error("partition %s-%d is not served: %s", info.name, state.partition, exc)
            return None
        except (KafkaStorageError, OSError) as exc:
            log.error("partition %s-%d is offline: %s", info.name, state.partition, exc)
            self.offline.add(key)
            return None
        part = Partition(
            info.name,
            state.partition,
            plog,
            node_id=self.broker.node_id,
            leader_epoch=-1,
            leader_id=-1,
            isr=tuple(state.isr),
            replicas=tuple(state.replicas),
            clock=self.broker.clock,
        )
        part.on_storage_error = lambda exc: log_manager.fail_log_dir_of(part.log, exc)
        try:
            part.load_producer_state()
        except OSError as exc:
            log_manager.fail_log_dir_of(plog, exc)
            self.offline.add(key)
            return None
        return part

    # --- metadata ----------------------------------------------------------------------------------
    async def on_metadata_change(self, old: MetadataImage, new: MetadataImage) -> None:
        async with self._lock:
            self._image = new
            node = self.broker.node_id
            wanted: dict[tuple[str, int], tuple[TopicInfo, PartitionState]] = {}
            for info in new.topics.values():
                for state in info.partitions.values():
                    if node in state.replicas:
                        wanted[(info.name, state.partition)] = (info, state)
            # gone: deleted topics or partitions moved off this broker, and topics re-created under the
            # same name (a new topic id) since the last image
            log_manager = self.broker.log_manager
            recreated = {
                k
                for k in self.partitions
                if k in wanted and log_manager.topic_id(*k) not in (None, wanted[k][0].topic_id)
            }
            self.offline &= set(wanted)
            for key in [k for k in self.partitions if k not in wanted or k in recreated]:
                part = self.partitions.pop(key)
                await self.mover.cancel(key)
                self._unfollow(key)
                part.become_follower(PartitionState(key[1], -1, part.leader_epoch + 1, (), ()))
                await asyncio.to_thread(self.broker.log_manager.delete_log, key[0], key[1])
            # a partition that should exist already is not re-created elsewhere while a log dir is
            # offline (it may be there): new are only partitions that appear in an image after the first
            # (Kafka's isNew); those of the first image were there before this start
            first = not self._seen_image
            self._seen_image = True
            to_open = [
                (info, state, not first and (key in recreated or old.partition(*key) is None))
                for key, (info, state) in wanted.items()
                if key not in self.partitions and key not in self.offline
            ]
            if to_open:
                opened = await asyncio.to_thread(lambda: [self._open_partition(*args) for args in to_open])
                for part in opened:
                    if part is None:
                        continue
                    part.isr_proposer = self._propose_isr
                    key = (part.topic, part.partition)
                    self.partitions[key] = part
                    if log_manager.future_log(*key) is not None and not self._stopping:
                        self.mover.start(key)  # a move that a restart interrupted goes on
                self._flush_partition_metadata()
            for key, (info, state) in wanted.items():
                part = self.partitions.get(key)
                if part is None:
                    continue  # not served: its log belongs to another topic id
                self._apply_state(key, part, state)
                old_info = old.topics.get(info.name)
                # dynamic broker configs (KIP-226) supply the defaults of keys a topic does not override
                if old_info is not None and (
                    old_info.configs != info.configs
                    or old.broker_configs != new.broker_configs
                    or old.default_broker_configs != new.default_broker_configs
                ):
                    part.log.update_config(self._log_config(info))
            for leader_id in [i for i, f in self.fetchers.items() if not f.partitions]:
                await self.fetchers.pop(leader_id).stop()
            if self._isr_task is None and not self._stopping:
                self._isr_task = asyncio.create_task(self._isr_loop(), name="isr-shrink")

    def _apply_state(self, key: tuple[str, int], part: Partition, state: PartitionState) -> None:
        node = self.broker.node_id
        if state.leader == node:
            self._unfollow(key)
            part.become_leader(state)
            return
        old_leader, old_epoch = part.leader_id, part.leader_epoch
        part.become_follower(state)
        if state.leader < 0:
            self._unfollow(key)
            return
        if state.leader != old_leader or state.leader_epoch != old_epoch:
            self._unfollow(key)
            fetcher = self.fetchers.get(state.leader)
            if fetcher is None:
                fetcher = ReplicaFetcher(state.leader, self._broker_address, self._fetcher_config())
                self.fetchers[state.leader] = fetcher
                if not self._stopping:
                    fetcher.start()
            fetcher.add(part)

    # --- log dirs (JBOD) ----------------------------------------------------------------------------
    def _on_dir_failure(self, log_dir: Any, keys: list[tuple[str, int]]) -> None:
        """The log manager took `log_dir` offline: its partitions go offline (Kafka's
        handleLogDirFailure); moves into it were dropped with it."""
        for key in keys:
            self.offline.add(key)
            part = self.partitions.pop(key, None)
            self._unfollow(key)
            task = self.mover.tasks.pop(key, None)
            if task is not None:
                task.cancel()
            if part is not None:
                # waiters (acks=all, fetches) give up; nothing is read or written any more
                part.become_follower(PartitionState(key[1], -1, part.leader_epoch + 1, (), ()))
        log.error("log dir %s failed; offline partitions: %s", log_dir, sorted(keys))

    async def alter_log_dir(self, topic: str, partition: int, path: str) -> ErrorCode:
        """AlterReplicaLogDirs for one partition (Kafka's ReplicaManager.alterReplicaLogDirs): move its log
        to the log dir `path`, or remember `path` for a replica not created yet (REPLICA_NOT_AVAILABLE).
        Raises KafkaError (LOG_DIR_NOT_FOUND, KAFKA_STORAGE_ERROR, INVALID_TOPIC_EXCEPTION)."""
        log_manager = self.broker.log_manager
        key = (topic, partition)
        if len(f"{topic}-{partition}.{'0' * 32}{FUTURE_DIR_SUFFIX}") > 255:
            raise InvalidTopicError("The topic name is too long.")
        log_dir = log_manager.log_dir_for(path)
        if key in self.offline:
            raise KafkaStorageError(f"Partition {topic}-{partition} is offline")
        log_manager.set_preferred_log_dir(topic, partition, log_dir)
        part = self.partitions.get(key)
        if part is None:
            return ErrorCode.replica_not_available
        current = log_manager.future_log(topic, partition)
        if current is not None and current.dir.parent != log_dir:
            await self.mover.cancel(key)  # the destination changed: that copy is dropped
        if log_manager.offline_dirs:
            # no future replica while a dir is offline: it might hold another copy (Kafka's rule)
            raise KafkaStorageError("a log dir is offline")
        future = await asyncio.to_thread(log_manager.create_future_log, topic, partition, log_dir)
        if future is not None and not self._stopping:
            self.mover.start(key)
        return ErrorCode.none

    def _unfollow(self, key: tuple[str, int]) -> None:
        for fetcher in self.fetchers.values():
            if key in fetcher.partitions:
                fetcher.remove(key)

    def _broker_address(self, node_id: int) -> tuple[str, int] | None:
        """The leader's endpoint on the inter-broker listener (None: unknown broker or no such listener)."""
        info = self._image.brokers.get(node_id)
        endpoint = info.endpoint(self.broker.inter_broker_listener) if info is not None else None
        return None if endpoint is None else (endpoint.host, endpoint.port)

    def _fetcher_config(self) -> FetcherConfig:
        cfg = self.broker.config
        return FetcherConfig(
            self.broker.node_id,
            max_wait_ms=int(cfg.get("replica.fetch.wait.max.ms")),
            min_bytes=int(cfg.get("replica.fetch.min.bytes")),
            partition_max_bytes=int(cfg.get("replica.fetch.max.bytes")),
            backoff_s=0.1,
            timeout_s=int(cfg.get("replica.socket.timeout.ms")) / 1000,
            ssl_context=self.broker.inter_broker_ssl,
            sasl=self.broker.inter_broker_sasl,
        )

    def _flush_partition_metadata(self) -> None:
        """New logs write their partition.metadata in a worker thread once this change is applied (Kafka's
        flush-metadata-file task), so opening many partitions waits for no fsync; one task at a time,
        which picks up logs opened while it runs."""
        task = self._metadata_flush
        if task is not None and not task.done():
            self._metadata_flush_again = True  # it may have looked already: run once more after it
            return
        if self._stopping:
            return  # closing the logs writes what is pending
        self._metadata_flush_again = False
        task = asyncio.create_task(asyncio.to_thread(self.broker.log_manager.flush_pending_metadata))
        self._metadata_flush = task
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        task.add_done_callback(lambda _t: self._metadata_flush_again and self._flush_partition_metadata())

    # --- ISR ---------------------------------------------------------------------------------------
    def _propose_isr(self, part: Partition, new_isr: tuple[int, ...]) -> None:
        alter_isr = getattr(self.broker.metadata, "alter_isr", None)
        if alter_isr is None or self._stopping:
            part.isr_change_done(None)
            return
        task = asyncio.create_task(self._alter_isr(alter_isr, part, new_isr))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _alter_isr(self, alter_isr: Any, part: Partition, new_isr: tuple[int, ...]) -> None:
        epoch = part.leader_epoch
        try:
            state = await alter_isr(part.topic, part.partition, epoch, new_isr, part.partition_epoch)
        except KafkaError as exc:
            log.info("ISR change of %s-%d to %s refused: %s", part.topic, part.partition, list(new_isr), exc)
            part.isr_change_done(None)
            return
        except Exception:
            log.exception("ISR change of %s-%d failed", part.topic, part.partition)
            part.isr_change_done(None)
            return
        log.info("%s-%d: ISR now %s", part.topic, part.partition, list(state.isr))
        part.isr_change_done(state)

    async def _isr_loop(self) -> None:
        while True:
            lag = self.lag_time_max_ms
            await asyncio.sleep(max(lag / 2000, 0.05))
            now = int(self.broker.clock() * 1000)
            for part in list(self.partitions.values()):
                if part.is_leader and len(part.replicas) > 1:
                    part.maybe_shrink_isr(now, lag)

    # --- lifecycle ---------------------------------------------------------------------------------
    async def stop_replication(self) -> None:
        """Stop fetching and ISR changes (before the logs close)."""
        self._stopping = True
        await self.mover.stop()
        if self._isr_task is not None:
            self._isr_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._isr_task
            self._isr_task = None
        for fetcher in list(self.fetchers.values()):
            await fetcher.stop()
        self.fetchers.clear()
        for task in list(self._background):
            task.cancel()

    async def stop(self) -> None:
        """Stop replication, then write a producer-state snapshot for every partition (clean shutdown)."""
        await self.stop_replication()
        parts = list(self.partitions.values())

        def snapshot_all() -> None:
            for part in parts:
                try:
                    part.take_producer_snapshot()
                except OSError as exc:
                    log.warning("producer snapshot of %s-%d failed: %s", part.topic, part.partition, exc)

        await asyncio.to_thread(snapshot_all)
