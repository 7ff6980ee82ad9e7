"""The transaction coordinator's async shell: owns the sans-io `TxnCoordinatorCore`, its timers and its
partitions of __transaction_state (KIP-98).

- The topic is created on first use (FindCoordinator key_type 1) with
  transaction.state.log.num.partitions, transaction.state.log.replication.factor (capped at the live
  broker count), transaction.state.log.min.isr and cleanup.policy=compact. A transactional id belongs to
  partition abs(javaHashCode(id)) % num.partitions; its coordinator is that partition's leader.
- For every partition this broker leads, the log is replayed to rebuild the transactions (requests meanwhile
  answer COORDINATOR_LOAD_IN_PROGRESS; NOT_COORDINATOR once led elsewhere). Transactions left in
  PrepareCommit/PrepareAbort get their markers (re)sent and are completed. The partition's leader epoch is
  the coordinator epoch written into markers.
- Every transition is written to the partition with acks=all before it takes effect. EndTxn answers once
  PrepareCommit/PrepareAbort is written; the markers then go to every partition (`markers.MarkerSender`,
  WriteTxnMarkers v2 naming the transaction version: under version 2 the markers carry the bumped epoch)
  and CompleteCommit/CompleteAbort is written.
- Partition leaders verify or add partitions before transactional writes (KIP-890) through
  `partition_adder.PartitionAdder` (`self.adder`), which asks this coordinator or a remote one.
- A timer aborts transactions older than their timeout (with an epoch bump that fences the producer) every
  transaction.abort.timed.out.transaction.cleanup.interval.ms, and removes ids idle for
  transactional.id.expiration.ms every transaction.remove.expired.transaction.cleanup.interval.ms.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from strom.config import segment_size_override
from strom.coordinator.txn.core import Outcome, Transition, TxnConfig, TxnCoordinatorCore, TxnMetadata
from strom.coordinator.txn.markers import MarkerSender
from strom.coordinator.txn.partition_adder import PartitionAdder
from strom.coordinator.txn.schemas import TxnState, encode_key, encode_value
from strom.protocol.errors import ErrorCode, KafkaError
from strom.protocol.records import Record as BatchRecord
from strom.protocol.records import build_batch, decode_records

if TYPE_CHECKING:
    from strom.cluster.metadata import MetadataImage
    from strom.server.broker import Broker

log = logging.getLogger("strom.txn_coordinator")

TRANSACTION_TOPIC = "__transaction_state"
WRITE_TIMEOUT_S = 5.0


class CoordinatorNotAvailableError(KafkaError):
    code = ErrorCode.coordinator_not_available


def _append_error(code: ErrorCode) -> ErrorCode:
    """What a client sees when a __transaction_state write fails (Kafka's mapping)."""
    if code in (ErrorCode.not_leader_or_follower, ErrorCode.kafka_storage_error):
        return ErrorCode.not_coordinator
    if code in (ErrorCode.message_too_large, ErrorCode.record_list_too_large):
        return ErrorCode.unknown_server_error
    return ErrorCode.coordinator_not_available


class TransactionCoordinator:
    def __init__(self, broker: Broker, *, clock: Callable[[], float] | None = None) -> None:
        self.broker = broker
        self.clock = clock or broker.clock
        config = broker.config
        self.config = TxnConfig(
            num_partitions=int(config.get("transaction.state.log.num.partitions")),
            max_timeout_ms=int(config.get("transaction.max.timeout.ms")),
            id_expiration_ms=int(config.get("transactional.id.expiration.ms")),
        )
        self.abort_interval_ms = int(
            config.get("transaction.abort.timed.out.transaction.cleanup.interval.ms")
        )
        self.expire_interval_ms = int(
            config.get("transaction.remove.expired.transaction.cleanup.interval.ms")
        )
        self.core = TxnCoordinatorCore(self.config, broker.producer_ids.allocate)
        self.markers = MarkerSender(broker)
        self.adder = PartitionAdder(broker)
        self._topic_lock = asyncio.Lock()
        self._loads: dict[int, asyncio.Task[None]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._timer_task: asyncio.Task[None] | None = None
        self._stopping = False

    def now_ms(self) -> int:
        return int(self.clock() * 1000)

    # --- lifecycle -----------------------------------------------------------------------------------
    async def start(self) -> None:
        self._timer_task = asyncio.create_task(self._run_timers(), name="txn-coordinator-timers")
        image = self.broker.metadata.image if self.broker.metadata is not None else None
        if image is not None:
            await self.on_metadata_change(image, image)

    async def stop(self) -> None:
        self._stopping = True
        tasks = [t for t in [self._timer_task, *self._loads.values(), *self._tasks] if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self.markers.close()
        await self.adder.close()

    def _spawn(self, coro: Any) -> None:
        if self._stopping:
            coro.close()
            return
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run_timers(self) -> None:
        last_expiry = self.now_ms()
        while True:
            await asyncio.sleep(self.abort_interval_ms / 1000)
            now = self.now_ms()
            try:
                for transition in self.core.timed_out(now):
                    log.info(
                        "aborting timed out transaction of %s (producer %d)",
                        transition.target.transactional_id,
                        transition.target.producer_id,
                    )
                    self._spawn(self._run(transition))
                if now - last_expiry >= self.expire_interval_ms:
                    last_expiry = now
                    for transition in self.core.expired(now):
                        self._spawn(self._run(transition))
            except Exception:
                log.exception("transaction coordinator timer failed")

    # --- __transaction_state -------------------------------------------------------------------------
    async def ensure_txn_topic(self) -> Any:
        """The TopicInfo of __transaction_state, creating the topic on first use."""
        backend = self.broker.metadata
        info = backend.image.topic(TRANSACTION_TOPIC)
        if info is not None:
            return info
        async with self._topic_lock:
            info = backend.image.topic(TRANSACTION_TOPIC)
            if info is not None:
                return info
            config = self.broker.config
            brokers = max(len(backend.image.brokers), 1)
            replication = min(int(config.get("transaction.state.log.replication.factor")), brokers)
            configs = {
                "cleanup.policy": "compact",
                "compression.type": "uncompressed",
                "min.insync.replicas": str(
                    min(int(config.get("transaction.state.log.min.isr")), replication)
                ),
                **segment_size_override(int(config.get("transaction.state.log.segment.bytes"))),
                "unclean.leader.election.enable": "false",
            }
            try:
                return await backend.create_topic(
                    TRANSACTION_TOPIC, self.config.num_partitions, replication, configs
                )
            except KafkaError as exc:
                if exc.code is not ErrorCode.topic_already_exists:
                    raise CoordinatorNotAvailableError(str(exc)) from None
                return backend.image.topic(TRANSACTION_TOPIC)

    async def on_metadata_change(self, old: MetadataImage, new: MetadataImage) -> None:
        """Load the partitions this broker now leads (or leads at a new epoch); drop the others."""
        info = new.topic(TRANSACTION_TOPIC)
        node = self.broker.node_id
        led = (
            {}
            if info is None
            else {p: s.leader_epoch for p, s in info.partitions.items() if s.leader == node}
        )
        core = self.core
        for partition in sorted((set(core.owned) | set(core.loading)) - set(led)):
            task = self._loads.pop(partition, None)
            if task is not None:
                task.cancel()
            core.unload(partition)
        for partition, epoch in sorted(led.items()):
            owned = core.owned.get(partition)
            if partition in core.loading or (owned is not None and owned.coordinator_epoch == epoch):
                continue
            core.begin_loading(partition)
            self._loads[partition] = asyncio.create_task(self._load(partition, epoch))

    async def _load(self, partition: int, epoch: int) -> None:
        try:
            part = None
            for _ in range(100):
                part = self.broker.replica_manager.get_partition(TRANSACTION_TOPIC, partition)
                if part is not None and part.is_leader:
                    break
                await asyncio.sleep(0.05)
            if part is None:
                raise CoordinatorNotAvailableError(f"{TRANSACTION_TOPIC}-{partition} is not open")
            records = await asyncio.to_thread(_read_all, part)
            for key, value in records:
                try:
                    self.core.load_record(partition, key, value)
                except KafkaError as exc:
                    log.warning("skipping unreadable record in %s-%d: %s", TRANSACTION_TOPIC, partition, exc)
            resume = self.core.finish_loading(partition, epoch)
            log.info("loaded %s-%d (%d records)", TRANSACTION_TOPIC, partition, len(records))
            for transition in resume:
                self._spawn(self._complete(transition))
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("loading %s-%d failed", TRANSACTION_TOPIC, partition)
            self.core.unload(partition)
        finally:
            self._loads.pop(partition, None)

    async def _write(self, transition: Transition) -> ErrorCode:
        target = transition.target
        partition = self.core.partition_for(target.transactional_id)
        part = self.broker.replica_manager.get_partition(TRANSACTION_TOPIC, partition)
        if part is None or not part.is_leader:
            return ErrorCode.not_coordinator
        value = None if target.state == TxnState.DEAD else encode_value(target.to_log_value())
        batch = build_batch(
            [BatchRecord(0, 0, encode_key(target.transactional_id), value)], base_timestamp=self.now_ms()
        )
        try:
            result = part.append_as_leader(batch, acks=-1)
            if not await part.wait_for_acks_all(result.last_offset, WRITE_TIMEOUT_S):
                return ErrorCode.coordinator_not_available
        except KafkaError as exc:
            return _append_error(exc.code)
        return ErrorCode.none

    async def _run(self, transition: Transition) -> ErrorCode:
        """Write a transition; on success adopt it and, for Prepare*, deliver markers in the background."""
        error = await self._write(transition)
        if error != ErrorCode.none:
            self.core.abandon(transition)
            return error
        self.core.apply(transition)
        if transition.send_markers:
            self._spawn(self._complete(transition))
        return ErrorCode.none

    async def _complete(self, transition: Transition) -> None:
        """Markers to every partition of a prepared transaction, then Complete*."""
        target = transition.target
        tid = target.transactional_id

        def still_ours() -> bool:
            return self.core.txns.get(tid) == target

        await self.markers.send(
            target.partitions,
            target.producer_id,
            target.producer_epoch,
            transition.commit,
            transition.coordinator_epoch,
            still_ours,
            transaction_version=transition.transaction_version,
        )
        while still_ours():
            completion = self.core.complete(target, self.now_ms())
            if completion is None:
                return
            if await self._run(completion) == ErrorCode.none:
                return
            await asyncio.sleep(0.1)

    async def _answer(self, outcome: Outcome) -> ErrorCode:
        if outcome.transition is None:
            return outcome.error
        written = await self._run(outcome.transition)
        return outcome.error if written == ErrorCode.none else written

    # --- requests ------------------------------------------------------------------------------------
    async def init_producer_id(self, ctx: Any, request: Any) -> Any:
        from kio.static.primitive import i16, i64

        from strom.apis._build import build, no_throttle
        from strom.protocol.registry import response_type

        cls = response_type(22, ctx.api_version)
        timeout_ms = int(request.transaction_timeout.total_seconds() * 1000)
        try:
            # the core allocates synchronously; in a cluster the ids come in blocks claimed from ZooKeeper
            await self.broker.producer_ids.ensure_available()
        except KafkaError as exc:
            log.warning("could not claim a producer id block: %s", exc)
            return build(
                cls,
                throttle_time=no_throttle(),
                error_code=ErrorCode.coordinator_load_in_progress,
                producer_id=i64(-1),
                producer_epoch=i16(-1),
            )
        outcome = self.core.init_producer_id(
            request.transactional_id,
            timeout_ms,
            self.now_ms(),
            int(getattr(request, "producer_id", -1)),
            int(getattr(request, "producer_epoch", -1)),
        )
        error = await self._answer(outcome)
        meta: TxnMetadata | None = outcome.metadata
        if outcome.transition is not None and error == ErrorCode.none:
            meta = outcome.transition.target
        if error == ErrorCode.producer_fenced and ctx.api_version < 4:
            error = ErrorCode.invalid_producer_epoch
        ok = error == ErrorCode.none and meta is not None
        return build(
            cls,
            throttle_time=no_throttle(),
            error_code=error,
            producer_id=i64(meta.producer_id if ok and meta else -1),
            producer_epoch=i16(meta.producer_epoch if ok and meta else -1),
        )

    async def add_partitions(
        self,
        transactional_id: str,
        producer_id: int,
        epoch: int,
        partitions: list[tuple[str, int]],
        client_transaction_version: int = 0,
    ) -> ErrorCode:
        outcome = self.core.add_partitions(
            transactional_id, producer_id, epoch, partitions, self.now_ms(), client_transaction_version
        )
        return await self._answer(outcome)

    async def end_txn(
        self, transactional_id: str, producer_id: int, epoch: int, commit: bool, epoch_bump: bool = False
    ) -> tuple[ErrorCode, int, int]:
        """(error, producer id, producer epoch): the id and epoch the producer continues with, which
        EndTxn v5 answers (-1, -1 with an error or below transaction version 2)."""
        outcome = self.core.end_txn(transactional_id, producer_id, epoch, commit, self.now_ms(), epoch_bump)
        error = await self._answer(outcome)
        meta = outcome.transition.target if outcome.transition is not None else outcome.metadata
        if error != ErrorCode.none or meta is None or not epoch_bump:
            return error, -1, -1
        if meta.next_producer_id >= 0:
            # the epoch ran out: the transaction completes under the new producer id at epoch 0
            return error, meta.next_producer_id, 0
        return error, meta.producer_id, meta.producer_epoch


def _read_all(part: Any) -> list[tuple[bytes | None, bytes | None]]:
    """Blocking: every record (key, value) of a partition's log, in offset order."""
    out: list[tuple[bytes | None, bytes | None]] = []
    for header, data in part.log.iter_batches(part.log.log_start_offset):
        if header.is_control:
            continue
        for record in decode_records(data):
            out.append((record.key, record.value))
    return out
