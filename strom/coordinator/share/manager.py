"""The share-partitions of the partitions this broker leads (KIP-932), Kafka's SharePartitionManager: the
async shell around `SharePartition`, for ShareFetch and ShareAcknowledge.

- A share-partition is loaded on first use from the share coordinator (ReadShareGroupState through the
  persister). A start offset of -1 (never consumed) is set by the group's share.auto.offset.reset: "latest"
  (Kafka's default) takes the high watermark, "earliest" the log start offset, "by_duration:<d>" the first
  record written at most d ago (the high watermark when there is none). A start below the log start offset
  moves up to it.
- The group's configs (strom.coordinator.group_configs) give each share-partition its acquisition lock
  duration, delivery count limit and in-flight record limit (share.record.lock.duration.ms, ...), read
  again on every fetch and acknowledgement, so a change applies to the next acquisition. With
  share.isolation.level=read_committed records are delivered only up to the last stable offset and the
  batches of aborted transactions are archived, never delivered (Kafka's read_committed share fetch).
- Every change other than an acquisition (acknowledgements, releases, expired locks, the first start
  offset) is written back (WriteShareGroupState) before the request that caused it is answered; writes of
  one share-partition go one at a time, each with its whole in-flight state. FENCED_STATE_EPOCH (the
  offsets were altered meanwhile) drops the cached share-partition, to be read again.
- One timer task expires acquisition locks at the earliest deadline.
- Share sessions (`sessions.ShareSessionCache`) close with their connection, releasing their records.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from strom.coordinator.group_configs import GroupConfigView
from strom.coordinator.share.config import ShareGroupConfig
from strom.coordinator.share.partition import Acquired, FetchedBatch, ShareLimits, SharePartition
from strom.coordinator.share.persister import Persister
from strom.coordinator.share.sessions import ShareSession, ShareSessionCache
from strom.coordinator.share.state_records import StateKey
from strom.protocol.errors import ErrorCode, KafkaError
from strom.protocol.record_batch import iter_batches

if TYPE_CHECKING:
    from strom.server.broker import Broker

log = logging.getLogger("strom.share_partitions")


@dataclass(slots=True)
class Loaded:
    share: SharePartition
    topic: str
    leader_epoch: int
    write_lock: asyncio.Lock


@dataclass(frozen=True, slots=True)
class FetchResult:
    error: ErrorCode = ErrorCode.none
    message: str | None = None
    records: bytes = b""
    acquired: tuple[Acquired, ...] = ()


class SharePartitionError(KafkaError):
    pass


def _aborted(aborted: list[Any], producer_id: int, offset: int) -> bool:
    """Whether the transactional batch of `producer_id` at `offset` belongs to an aborted transaction."""
    return any(t.producer_id == producer_id and t.first_offset <= offset <= t.last_offset for t in aborted)


class SharePartitionManager:
    def __init__(self, broker: Broker) -> None:
        self.broker = broker
        self.config = ShareGroupConfig.from_broker_config(broker.config)
        self.group_configs = GroupConfigView(lambda: broker.metadata.image, broker.config)
        self.persister = Persister(broker)
        self.sessions = ShareSessionCache(self.config.max_share_sessions)
        self.partitions: dict[StateKey, Loaded] = {}
        self._loading: dict[StateKey, asyncio.Future[Loaded]] = {}
        self._wake = asyncio.Event()
        # set whenever records may have become available to acquire (released, expired)
        self._available = asyncio.Event()
        self._timer: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    def now_ms(self) -> int:
        return int(self.broker.clock() * 1000)

    async def start(self) -> None:
        self._timer = asyncio.create_task(self._run_timers(), name="share-lock-timers")

    async def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        for task in list(self._tasks):
            task.cancel()
        await self.persister.close()

    # --- loading -------------------------------------------------------------------------------------

    def topic_name(self, topic_id: uuid.UUID) -> str | None:
        info = self.broker.metadata.image.topic_by_id(topic_id)
        return None if info is None else info.name

    async def get(self, key: StateKey) -> Loaded:
        """The loaded share-partition; SharePartitionError with the partition's error otherwise."""
        topic = self.topic_name(key.topic_id)
        if topic is None:
            raise SharePartitionError("unknown topic id", ErrorCode.unknown_topic_id)
        part = self.broker.replica_manager.get_partition(topic, key.partition)
        if part is None or not part.is_leader:
            self.partitions.pop(key, None)
            raise SharePartitionError("not the leader", ErrorCode.not_leader_or_follower)
        loaded = self.partitions.get(key)
        if loaded is not None and loaded.leader_epoch == part.leader_epoch:
            loaded.share.limits = self.limits(key.group_id)  # the group's configs may have changed
            return loaded
        pending = self._loading.get(key)
        if pending is None:
            pending = self._loading[key] = asyncio.get_running_loop().create_future()
            try:
                loaded = await self._load(key, topic, part)
                self.partitions[key] = loaded
                pending.set_result(loaded)
            except BaseException as exc:
                pending.set_exception(exc)
                pending.exception()  # retrieved: later waiters re-raise it themselves
                raise
            finally:
                self._loading.pop(key, None)
            return loaded
        return await asyncio.shield(pending)

    async def _load(self, key: StateKey, topic: str, part: Any) -> Loaded:
        result = await self.persister.read(key, part.leader_epoch)
        if result.error is ErrorCode.unknown_topic_or_partition:
            # never initialized by the group coordinator (a member fetching before its assignment
            # settled): start the state here, as an uninitialized share-partition
            error = await self.persister.initialize(key, 0, -1)
            if error is not ErrorCode.none:
                raise SharePartitionError("share state not initialized", error)
            result = await self.persister.read(key, part.leader_epoch)
        if result.error is not ErrorCode.none:
            raise SharePartitionError("reading share state failed", result.error)
        start = result.start_offset
        initial = start < 0
        if initial:
            start = self._initial_start(key.group_id, part)
        share = SharePartition(
            start, self.limits(key.group_id), state_epoch=result.state_epoch, batches=result.batches
        )
        share.move_start(part.log_start_offset)
        loaded = Loaded(share, topic, part.leader_epoch, asyncio.Lock())
        if initial:
            await self._persist(key, loaded)
        return loaded

    def limits(self, group_id: str) -> ShareLimits:
        """The lock duration, delivery count limit and in-flight record limit of a group's share-partitions:
        its group configs over the broker's."""
        return self.config.for_group(self.group_configs(group_id)).limits

    def _initial_start(self, group_id: str, part: Any) -> int:
        """Where a share-partition nobody consumed yet starts: the group's share.auto.offset.reset."""
        strategy = ShareGroupConfig.reset_strategy(self.group_configs(group_id))
        if strategy.kind == "earliest":
            return int(part.log_start_offset)
        if strategy.kind == "by_duration":
            found = part.log.fetch_offset_by_timestamp(strategy.timestamp_ms(self.now_ms()))
            if found is not None and found[0] < part.high_watermark:
                return max(int(found[0]), int(part.log_start_offset))
        return int(part.high_watermark)

    def invalidate(self, group_id: str) -> None:
        """The group's offsets were altered or deleted: read its share-partitions again."""
        for key in [k for k in self.partitions if k.group_id == group_id]:
            del self.partitions[key]

    # --- persisting ----------------------------------------------------------------------------------

    async def _persist(self, key: StateKey, loaded: Loaded) -> ErrorCode:
        async with loaded.write_lock:
            share = loaded.share
            error = await self.persister.write(
                key, share.state_epoch, loaded.leader_epoch, share.start_offset, tuple(share.state_batches())
            )
        if error in (ErrorCode.fenced_state_epoch, ErrorCode.fenced_leader_epoch):
            if self.partitions.get(key) is loaded:
                del self.partitions[key]
        elif error is not ErrorCode.none:
            log.warning("writing share state of %s failed: %s", key, error.name)
        return error

    def _persist_later(self, key: StateKey, loaded: Loaded) -> None:
        task = asyncio.get_running_loop().create_task(self._persist(key, loaded))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- fetching ------------------------------------------------------------------------------------

    def _read_batches(
        self, loaded: Loaded, key: StateKey, max_bytes: int
    ) -> list[tuple[FetchedBatch, bytes]]:
        part = self.broker.replica_manager.get_partition(loaded.topic, key.partition)
        if part is None or not part.is_leader:
            raise SharePartitionError("not the leader", ErrorCode.not_leader_or_follower)
        share = loaded.share
        if share.start_offset < part.log_start_offset:
            share.move_start(part.log_start_offset)
        offset = share.fetch_offset()
        committed = ShareGroupConfig.read_committed(self.group_configs(key.group_id))
        visible = part.last_stable_offset if committed else part.high_watermark
        if offset >= visible:
            return []
        data = part.read(offset, max_bytes, stable_only=committed).read_bytes()
        aborted = part.log.collect_aborted_txns(offset, visible) if committed else []
        out = []
        for pos, header in iter_batches(data):
            # a transaction marker, or with read_committed a batch of an aborted transaction, is archived
            archived = header.is_control or (
                header.is_transactional and _aborted(aborted, header.producer_id, header.base_offset)
            )
            fetched = FetchedBatch(header.base_offset, header.last_offset, archived)
            out.append((fetched, bytes(data[pos : pos + header.size])))
        return out

    def try_acquire(
        self, key: StateKey, loaded: Loaded, member_id: str, max_records: int, max_bytes: int
    ) -> FetchResult:
        share = loaded.share
        if not share.can_acquire():
            return FetchResult()
        batches = self._read_batches(loaded, key, max_bytes)
        if not batches:
            return FetchResult()
        by_base = {b.base_offset: raw for b, raw in batches}
        acquired, used = share.acquire(member_id, [b for b, _ in batches], max_records, self.now_ms())
        if acquired:
            self._wake.set()
        return FetchResult(records=b"".join(by_base[b.base_offset] for b in used), acquired=tuple(acquired))

    async def wait_for_records(self, keys: Iterable[StateKey], timeout_s: float) -> None:
        """Until a partition of `keys` gets new records, records are released, or `timeout_s`."""
        event = asyncio.Event()
        parts = []
        for key in keys:
            loaded = self.partitions.get(key)
            if loaded is None:
                continue
            part = self.broker.replica_manager.get_partition(loaded.topic, key.partition)
            if part is not None:
                part.add_waiter(event)
                parts.append(part)
        available = asyncio.ensure_future(self._available.wait())
        appended = asyncio.ensure_future(event.wait())
        try:
            await asyncio.wait({available, appended}, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED)
        finally:
            available.cancel()
            appended.cancel()
            for part in parts:
                part.remove_waiter(event)

    def _notify_available(self) -> None:
        self._available.set()
        self._available = asyncio.Event()

    # --- acknowledging and releasing -----------------------------------------------------------------

    async def acknowledge(
        self, key: StateKey, member_id: str, batches: list[tuple[int, int, list[int]]]
    ) -> ErrorCode:
        """Apply a partition's acknowledgement batches (all or nothing per batch) and persist."""
        try:
            loaded = await self.get(key)
        except SharePartitionError as exc:
            return exc.code
        error = ErrorCode.none
        now = self.now_ms()
        for first, last, types in batches:
            code = loaded.share.acknowledge(member_id, first, last, types, now)
            if code is not ErrorCode.none:
                error = code
        if any(t == 2 for _f, _l, types in batches for t in types):
            self._notify_available()
        written = await self._persist(key, loaded)
        return error if error is not ErrorCode.none else written

    async def release(self, session: ShareSession) -> None:
        """A member's session ended: what it holds on the session's partitions goes back."""
        for topic_id, partition in list(session.partitions):
            key = StateKey(session.group_id, topic_id, partition)
            loaded = self.partitions.get(key)
            if loaded is not None and loaded.share.release_member(session.member_id):
                self._notify_available()
                await self._persist(key, loaded)

    def connection_closed(self, connection_id: str) -> None:
        for session in self.sessions.close_connection(connection_id):
            task = asyncio.get_running_loop().create_task(self.release(session))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    # --- lock expiry ---------------------------------------------------------------------------------

    async def _run_timers(self) -> None:
        while True:
            deadlines = [d for lp in self.partitions.values() if (d := lp.share.next_deadline()) is not None]
            timeout = None if not deadlines else max(0.0, min(deadlines) / 1000 - self.broker.clock())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)
            self._wake.clear()
            now = self.now_ms()
            try:
                for key, loaded in list(self.partitions.items()):
                    deadline = loaded.share.next_deadline()
                    if deadline is not None and deadline <= now and loaded.share.expire_locks(now):
                        self._notify_available()
                        self._persist_later(key, loaded)
            except Exception:
                log.exception("share lock timer failed")
