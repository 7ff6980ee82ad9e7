"""One partition on this broker: the only owner of its log, its high watermark, ISR and producer state.

Roles follow the metadata image (`become_leader` / `become_follower`, called by the replica manager).

As leader: appends (`append_as_leader`) validate the batch headers (magic 2, CRC-32C, sizes), check
max.message.bytes (MESSAGE_TOO_LARGE), run the idempotent-producer checks (KIP-98; duplicates answer with
the first copy's offsets) and append. The leader tracks every follower's log end offset (its fetch offset)
and the last time it was caught up (Kafka's rule: a fetch at or past the leader's log end offset at the
time of the previous fetch means caught up then). The high watermark is the minimum log end offset over
the ISR (the larger ISR while a change is in flight), and it advances only once every ISR follower has
fetched at or past the start offset of the leader's current epoch (KIP-101/279). The ISR shrinks when a
follower has not been caught up for replica.lag.time.max.ms, and grows when a follower reaches the high
watermark within the current epoch; both changes are proposed through the cluster backend's `alter_isr`
(a compare-and-set) and only take effect once written. acks=-1 waits for the high watermark to pass the
batch (`wait_for_high_watermark`); with an ISR smaller than min.insync.replicas it answers
NOT_ENOUGH_REPLICAS and appends nothing, and NOT_ENOUGH_REPLICAS_AFTER_APPEND if the ISR shrank below it
while waiting. Losing leadership fails the waiters with NOT_LEADER_OR_FOLLOWER.

As follower: `append_as_follower` stores the leader's batches as they are (offsets and epochs kept),
`set_follower_high_watermark` takes min(leader's high watermark, own log end offset), and
`truncate_to` cuts the log where it diverges from the leader (found by leader epoch, see fetcher.py).

Readers that wait (the fetch purgatory) register an `asyncio.Event` with `add_waiter`; every append and high
watermark move sets it.

Transactions (KIP-98): the last stable offset is min(first unstable offset, high watermark);
read_committed readers see nothing at or above it. `append_txn_marker` (the broker side of
WriteTxnMarkers) appends a COMMIT or ABORT control batch, closes the producer's transaction and records
an abort in the log's aborted-transaction index; followers do the same for the markers they copy.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from strom.cluster.metadata import PartitionState
from strom.protocol.control_records import COMMIT, build_marker, marker_type
from strom.protocol.errors import (
    CorruptRecordError,
    ErrorCode,
    KafkaError,
    KafkaStorageError,
    NotLeaderOrFollowerError,
    RecordTooLargeError,
)
from strom.protocol.record_batch import BatchHeader, iter_batches, validate_batches
from strom.storage.producer_state import ProducerStateManager, fsync_snapshot
from strom.storage.txn_index import AbortedTxn

log = logging.getLogger("strom.partition")

__all__ = [
    "AppendResult",
    "FollowerState",
    "NotEnoughReplicasAfterAppendError",
    "NotEnoughReplicasError",
    "Partition",
]

IsrProposer = Callable[["Partition", tuple[int, ...]], None]
"""Called by a leader partition to propose a new ISR; the proposer writes it (alter_isr) and reports back
through `isr_change_done`."""


class NotEnoughReplicasError(KafkaError):
    code = ErrorCode.not_enough_replicas


class NotEnoughReplicasAfterAppendError(KafkaError):
    code = ErrorCode.not_enough_replicas_after_append


@dataclass(frozen=True, slots=True)
class AppendResult:
    """What Produce answers for one partition."""

    first_offset: int
    last_offset: int
    log_append_time: int
    log_start_offset: int
    duplicate: bool = False


@dataclass(slots=True)
class FollowerState:
    """What a leader knows of one follower (Kafka's Replica)."""

    log_end_offset: int = -1
    last_caught_up_ms: int = 0
    last_fetch_leader_leo: int = -1
    last_fetch_ms: int = 0


class Partition:
    def __init__(
        self,
        topic: str,
        partition: int,
        log: Any,
        *,
        node_id: int,
        leader_epoch: int = 0,
        isr: tuple[int, ...] = (),
        clock: Callable[[], float],
        leader_id: int | None = None,
        replicas: tuple[int, ...] = (),
        partition_epoch: int = 0,
    ) -> None:
        self.topic = topic
        self.partition = partition
        self.log = log
        self.node_id = node_id
        self.leader_epoch = leader_epoch
        self.leader_id = node_id if leader_id is None else leader_id
        self.replicas: tuple[int, ...] = replicas or (node_id,)
        self.isr: tuple[int, ...] = isr or (node_id,)
        self.partition_epoch = partition_epoch
        self.clock = clock
        self.producer_state = ProducerStateManager(log.dir)
        log.on_roll = self._snapshot_at_roll
        self._first_load = True
        self.followers: dict[int, FollowerState] = {}
        self.epoch_start_offset = log.log_end_offset
        self.pending_isr: tuple[int, ...] | None = None
        self.isr_proposer: IsrProposer | None = None
        self._waiters: set[asyncio.Event] = set()
        self._hw_waiters: list[tuple[int, asyncio.Future[None]]] = []
        self.high_watermark = log.log_end_offset
        # told of an I/O error on the log (the replica manager takes its log dir offline, KIP-112)
        self.on_storage_error: Callable[[OSError], None] | None = None

    def _storage_failed(self, exc: OSError) -> KafkaStorageError:
        if self.on_storage_error is not None:
            self.on_storage_error(exc)
        return KafkaStorageError(f"I/O error on the log of {self.topic}-{self.partition}: {exc}")

    def replace_log(self, new_log: Any) -> None:
        """The partition's log moved to another log dir (JBOD, KIP-113): appends and reads use `log` from
        now on, and the producer state snapshots go to its directory, starting with one at its end (the
        old directory and its snapshots are deleted). Called on the loop thread at the swap."""
        self.log.on_roll = None
        self.log = new_log
        new_log.on_roll = self._snapshot_at_roll
        self.producer_state.dir = new_log.dir
        try:
            self.producer_state.take_snapshot(new_log.log_end_offset, sync=False)
        except OSError as exc:  # a missing snapshot costs a longer replay at the next start, no more
            log.warning("%s-%d: producer snapshot after a move failed: %s", self.topic, self.partition, exc)

    # --- state -------------------------------------------------------------------------------------
    @property
    def log_start_offset(self) -> int:
        return int(self.log.log_start_offset)

    @property
    def log_end_offset(self) -> int:
        return int(self.log.log_end_offset)

    @property
    def is_leader(self) -> bool:
        return self.leader_id == self.node_id

    def _now_ms(self) -> int:
        return int(self.clock() * 1000)

    @property
    def last_stable_offset(self) -> int:
        """read_committed readers stop here: below every open transaction and the high watermark."""
        unstable = self.producer_state.first_unstable_offset()
        hw = self.high_watermark
        return hw if unstable is None else min(unstable, hw)

    def load_producer_state(self) -> None:
        """Load the newest producer snapshot and replay the batches after it (blocking). Aborted
        transactions found in the replay that the index lacks (an unclean stop) are added to it. After an
        unclean open the snapshot must not be above the first recovered segment (Kafka recovers each
        segment from the snapshot at its base), so the recovered segments' indexes are rebuilt too."""
        bound = self.log_end_offset
        recovered = getattr(self.log, "recovered_from", None)
        if self._first_load and recovered is not None:
            bound = min(bound, recovered)
        self._first_load = False
        start = self.producer_state.load_snapshot(bound)
        start = max(start, self.log_start_offset)
        if start < self.log_end_offset:
            self.producer_state.replay(self.log.iter_batches(start), self._index_replayed_abort)

    def _index_replayed_abort(self, entry: AbortedTxn) -> None:
        if not self.log.aborted_txns.contains(entry.producer_id, entry.last_offset):
            self.log.append_aborted_txn(entry)

    def take_producer_snapshot(self) -> None:
        """Snapshot the producer state at the log end (clean shutdown), unless the newest snapshot is
        already there or the log is empty: both make the next start's replay free, and skipping them
        keeps a restart of many idle partitions from paying two fsyncs each."""
        leo = self.log_end_offset
        if leo <= self.log.log_start_offset and not self.producer_state.producers:
            return
        if self.producer_state.latest_snapshot_offset() == leo:
            return
        self.producer_state.take_snapshot(leo)

    def _snapshot_at_roll(self, base_offset: int) -> None:
        """Kafka snapshots producer state at every segment roll, named after the new segment, so a crash
        replays only the active segment. Rolls happen inside appends, before the appending batches are
        recorded, so the state is exactly that below `base_offset`. The file is small and written here on
        the loop; its fsync runs off the loop (Kafka defers it to the log flush too)."""
        try:
            path = self.producer_state.take_snapshot(base_offset, sync=False)
        except OSError as exc:  # a missing snapshot costs a longer replay, never the append
            log.warning("%s-%d: producer snapshot at roll failed: %s", self.topic, self.partition, exc)
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            fsync_snapshot(path)
            return
        loop.run_in_executor(None, fsync_snapshot, path).add_done_callback(self._fsync_done)

    def _fsync_done(self, fut: asyncio.Future[None]) -> None:
        exc = None if fut.cancelled() else fut.exception()
        if exc is not None:
            log.warning("%s-%d: producer snapshot fsync failed: %s", self.topic, self.partition, exc)

    # --- roles -------------------------------------------------------------------------------------
    def become_leader(self, state: PartitionState) -> bool:
        """Apply a state naming this broker leader; True if this is a new leadership (new epoch)."""
        new = not self.is_leader or state.leader_epoch != self.leader_epoch
        self.replicas = tuple(state.replicas) or (self.node_id,)
        # In one leader epoch only this leader changes the ISR, and it learns each change from the
        # write's answer, possibly before a metadata image read earlier is published: an older partition
        # epoch would undo that change (Kafka skips such a state too).
        if new or state.partition_epoch >= self.partition_epoch:
            self.isr = tuple(state.isr) or (self.node_id,)
            self.partition_epoch = state.partition_epoch
        if self.pending_isr is not None and self.pending_isr == self.isr:
            self.pending_isr = None
        if new:
            self.leader_id = self.node_id
            self.leader_epoch = state.leader_epoch
            leo = self.log_end_offset
            # KIP-101: the new epoch starts at our log end; followers truncate to it
            self.log.leader_epoch_cache.assign(state.leader_epoch, leo)
            self.epoch_start_offset = leo
            self.pending_isr = None
            now = self._now_ms()
            # ISR members get a full lag period from now to show up (Kafka does the same)
            self.followers = {
                r: FollowerState(last_caught_up_ms=now if r in self.isr else 0)
                for r in self.replicas
                if r != self.node_id
            }
            log.info(
                "%s-%d: leader at epoch %d from offset %d, ISR %s",
                self.topic,
                self.partition,
                self.leader_epoch,
                leo,
                list(self.isr),
            )
        else:
            for r in self.replicas:
                if r != self.node_id and r not in self.followers:
                    self.followers[r] = FollowerState()
            for r in [r for r in self.followers if r not in self.replicas]:
                del self.followers[r]
        self._advance_high_watermark()
        return new

    def become_follower(self, state: PartitionState) -> bool:
        """Apply a state naming another broker (or none) leader; True if leader or epoch changed."""
        changed = self.leader_id != state.leader or self.leader_epoch != state.leader_epoch
        was_leader = self.is_leader
        self.leader_id = state.leader
        self.leader_epoch = state.leader_epoch
        self.replicas = tuple(state.replicas)
        self.isr = tuple(state.isr)
        self.partition_epoch = state.partition_epoch
        self.pending_isr = None
        self.followers = {}
        if was_leader:
            self._fail_hw_waiters(
                NotLeaderOrFollowerError(f"{self.topic}-{self.partition}: leadership moved to {state.leader}")
            )
        self._wake()
        return changed

    # --- waiting -----------------------------------------------------------------------------------
    def add_waiter(self, event: asyncio.Event) -> None:
        self._waiters.add(event)

    def remove_waiter(self, event: asyncio.Event) -> None:
        self._waiters.discard(event)

    def _wake(self) -> None:
        for event in self._waiters:
            event.set()

    async def wait_for_high_watermark(self, offset: int, timeout: float) -> bool:
        """Wait until the high watermark reaches `offset`; False on timeout (REQUEST_TIMED_OUT).
        Raises NOT_LEADER_OR_FOLLOWER if leadership is lost meanwhile."""
        if self.high_watermark >= offset:
            return True
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        item = (offset, fut)
        self._hw_waiters.append(item)
        try:
            await asyncio.wait_for(asyncio.shield(fut), timeout)
            return True
        except TimeoutError:
            return False
        finally:
            if item in self._hw_waiters:
                self._hw_waiters.remove(item)

    def _fail_hw_waiters(self, exc: KafkaError) -> None:
        for _offset, fut in self._hw_waiters:
            if not fut.done():
                fut.set_exception(exc)

    def _set_high_watermark(self, new_hw: int) -> None:
        if new_hw == self.high_watermark:
            return
        self.high_watermark = new_hw
        for offset, fut in self._hw_waiters:
            if offset <= new_hw and not fut.done():
                fut.set_result(None)
        self._wake()

    def _maximal_isr(self) -> set[int]:
        isr = set(self.isr)
        if self.pending_isr is not None:
            isr |= set(self.pending_isr)
        return isr

    def _advance_high_watermark(self) -> None:
        if not self.is_leader:
            return
        new_hw = self.log_end_offset
        for r in self._maximal_isr():
            if r == self.node_id:
                continue
            follower = self.followers.get(r)
            # KIP-101: wait until every ISR follower has fetched within the current epoch
            if follower is None or follower.log_end_offset < self.epoch_start_offset:
                return
            new_hw = min(new_hw, follower.log_end_offset)
        if new_hw > self.high_watermark:
            self._set_high_watermark(new_hw)

    # --- leader: followers and the ISR ------------------------------------------------------------
    def update_follower_fetch(self, replica_id: int, fetch_offset: int, now_ms: int) -> None:
        """A follower fetched from `fetch_offset`: its log end offset. May advance the high watermark
        and propose adding it to the ISR."""
        if not self.is_leader:
            return
        follower = self.followers.get(replica_id)
        if follower is None:
            if replica_id not in self.replicas:
                return
            follower = self.followers[replica_id] = FollowerState()
        leo = self.log_end_offset
        if fetch_offset >= leo:
            follower.last_caught_up_ms = now_ms
        elif fetch_offset >= follower.last_fetch_leader_leo >= 0:
            follower.last_caught_up_ms = max(follower.last_caught_up_ms, follower.last_fetch_ms)
        follower.last_fetch_leader_leo = leo
        follower.last_fetch_ms = now_ms
        follower.log_end_offset = fetch_offset
        self._maybe_expand_isr(replica_id, follower)
        self._advance_high_watermark()

    def _maybe_expand_isr(self, replica_id: int, follower: FollowerState) -> None:
        if replica_id in self.isr or self.pending_isr is not None:
            return
        if follower.log_end_offset >= max(self.high_watermark, self.epoch_start_offset):
            self._propose_isr((*self.isr, replica_id))

    def maybe_shrink_isr(self, now_ms: int, lag_ms: int) -> None:
        """Drop ISR followers that have not caught up for `lag_ms` (replica.lag.time.max.ms)."""
        if not self.is_leader or self.pending_isr is not None:
            return
        out = [
            r
            for r in self.isr
            if r != self.node_id
            and now_ms - self.followers.get(r, FollowerState()).last_caught_up_ms > lag_ms
        ]
        if out:
            log.info("%s-%d: followers %s out of sync", self.topic, self.partition, out)
            self._propose_isr(tuple(r for r in self.isr if r not in out))

    def _propose_isr(self, new_isr: tuple[int, ...]) -> None:
        if self.isr_proposer is None:
            return
        self.pending_isr = new_isr
        self.isr_proposer(self, new_isr)

    def isr_change_done(self, state: PartitionState | None) -> None:
        """The outcome of a proposal: the written state, or None if it failed (retried later)."""
        self.pending_isr = None
        if state is not None and self.is_leader and state.leader_epoch == self.leader_epoch:
            self.isr = tuple(state.isr)
            self.partition_epoch = state.partition_epoch
        self._advance_high_watermark()

    # --- appending ---------------------------------------------------------------------------------
    def check_min_isr(self) -> None:
        min_isr = int(self.log.config.min_insync_replicas)
        if len(self.isr) < min_isr:
            raise NotEnoughReplicasError(
                f"ISR {list(self.isr)} of {self.topic}-{self.partition} below min.insync.replicas={min_isr}"
            )

    def append_as_leader(
        self, records: bytes | bytearray | memoryview, *, acks: int, in_place: bool = False
    ) -> AppendResult:
        """Validate and append a produce request's record set; raises KafkaError with nothing written.
        `in_place`: `records` is writable and unused afterwards, so the log rewrites it (`Log.append`)."""
        if not self.is_leader:
            raise NotLeaderOrFollowerError(
                f"broker {self.node_id} does not lead {self.topic}-{self.partition}"
            )
        if acks == -1:
            self.check_min_isr()
        headers: list[BatchHeader] = validate_batches(records)
        max_bytes = int(self.log.config.max_message_bytes)
        for header in headers:
            if header.size > max_bytes:
                raise RecordTooLargeError(
                    f"batch of {header.size} bytes over max.message.bytes {max_bytes} for {self.topic}"
                )
        duplicate = self.producer_state.check_append(headers)
        if duplicate is not None:
            # a retry: Kafka answers the whole append with the cached batch, its timestamp as append time
            first, last = duplicate.first_offset, duplicate.last_offset
            return AppendResult(first, last, duplicate.timestamp, self.log_start_offset, True)
        try:
            info = self.log.append(
                records, leader_epoch=self.leader_epoch, headers=headers, in_place=in_place
            )
        except OSError as exc:
            raise self._storage_failed(exc) from exc
        offset = int(info.first_offset)
        append_time = int(info.log_append_time)
        for header in headers:
            if header.has_producer_id:
                last = offset + header.last_offset_delta
                # the stored batch's max timestamp: the append time once the log stamped it
                timestamp = append_time if append_time >= 0 else header.max_timestamp
                self.producer_state.update(header, offset, last, timestamp)
            offset += header.last_offset_delta + 1
        self._advance_high_watermark()
        self._wake()
        return AppendResult(
            int(info.first_offset), int(info.last_offset), int(info.log_append_time), self.log_start_offset
        )

    def append_txn_marker(
        self,
        producer_id: int,
        producer_epoch: int,
        commit: bool,
        coordinator_epoch: int,
        *,
        transaction_version: int = 0,
    ) -> int:
        """Append a COMMIT/ABORT marker ending the producer's transaction; returns its offset. Raises
        INVALID_PRODUCER_EPOCH for a fenced epoch (under transaction version 2, KIP-890 part 2, an epoch
        not above the producer's), TRANSACTION_COORDINATOR_FENCED for an old coordinator,
        NOT_LEADER_OR_FOLLOWER off the leader."""
        if not self.is_leader:
            raise NotLeaderOrFollowerError(
                f"broker {self.node_id} does not lead {self.topic}-{self.partition}"
            )
        self.producer_state.check_marker(
            producer_id, producer_epoch, coordinator_epoch, transaction_version=transaction_version
        )
        batch = build_marker(producer_id, producer_epoch, commit, coordinator_epoch, self._now_ms())
        info = self.log.append(batch, leader_epoch=self.leader_epoch)
        offset = int(info.first_offset)
        aborted = self.producer_state.complete_txn(
            producer_id, producer_epoch, commit, offset, coordinator_epoch
        )
        if aborted is not None:
            self.log.append_aborted_txn(aborted)
        self._advance_high_watermark()
        self._wake()
        return offset

    async def wait_for_acks_all(self, last_offset: int, timeout: float) -> bool:
        """acks=-1 after an append: wait for the ISR; NOT_ENOUGH_REPLICAS_AFTER_APPEND if the ISR is
        now below min.insync.replicas. False on timeout."""
        done = await self.wait_for_high_watermark(last_offset + 1, timeout)
        if done and len(self.isr) < int(self.log.config.min_insync_replicas):
            raise NotEnoughReplicasAfterAppendError(
                f"ISR {list(self.isr)} of {self.topic}-{self.partition} shrank below min.insync.replicas"
            )
        return done

    # --- follower ----------------------------------------------------------------------------------
    def append_as_follower(self, records: bytes | memoryview) -> int:
        """Append the leader's whole batches as they are (offsets and epochs kept); returns bytes used."""
        view = memoryview(records)
        end = 0
        headers: list[BatchHeader] = []
        for pos, header in iter_batches(view):
            if header.base_offset < self.log_end_offset:
                # already here (an overlapping fetch after a retry); skip it
                end = pos + header.size
                continue
            if not headers:
                start = pos
            headers.append(header)
            end = pos + header.size
        if not headers:
            return end
        try:
            info = self.log.append(view[start:end], leader_epoch=-1, assign_offsets=False)
        except OSError as exc:
            raise self._storage_failed(exc) from exc
        position = start
        for header in info.headers:
            if header.has_producer_id and header.is_control:
                self._apply_copied_marker(header, view[position : position + header.size])
            elif header.has_producer_id:
                self.producer_state.update(
                    header, header.base_offset, header.last_offset, header.max_timestamp
                )
            position += header.size
        self._wake()
        return end

    def _apply_copied_marker(self, header: BatchHeader, data: memoryview) -> None:
        try:
            commit = marker_type(data) == COMMIT
        except CorruptRecordError:
            return
        aborted = self.producer_state.complete_txn(
            header.producer_id, header.producer_epoch, commit, header.base_offset, -1
        )
        if aborted is not None:
            self.log.append_aborted_txn(aborted)

    def set_follower_high_watermark(self, leader_hw: int) -> None:
        if self.is_leader:
            return
        self._set_high_watermark(max(min(leader_hw, self.log_end_offset), 0))

    def truncate_to(self, offset: int) -> None:
        """Cut the log at `offset` (divergence from the leader) and rebuild producer state."""
        if offset >= self.log_end_offset:
            return
        log.info("%s-%d: truncating from %d to %d", self.topic, self.partition, self.log_end_offset, offset)
        self.log.truncate_to(offset)
        self.on_log_truncated()
        self.load_producer_state()

    def truncate_fully_and_start_at(self, offset: int) -> None:
        self.log.truncate_fully_and_start_at(offset)
        self.producer_state.truncate_snapshots_above(-1)
        self.producer_state.producers.clear()
        self.producer_state.ongoing_txns.clear()
        self.high_watermark = offset
        self._wake()

    # --- reading -----------------------------------------------------------------------------------
    def read(
        self,
        offset: int,
        max_bytes: int,
        *,
        min_one_batch: bool = True,
        committed_only: bool = True,
        stable_only: bool = False,
    ) -> Any:
        """A slice of the log from `offset`; consumers see nothing at or above the high watermark, and
        read_committed consumers (`stable_only`) nothing at or above the last stable offset."""
        max_offset = self.high_watermark if committed_only else None
        if stable_only:
            max_offset = self.last_stable_offset
        if self.log.closed:
            raise KafkaStorageError(f"the log of {self.topic}-{self.partition} is offline")
        try:
            return self.log.read(offset, max_bytes, max_offset=max_offset, min_one_batch=min_one_batch)
        except OSError as exc:
            raise self._storage_failed(exc) from exc

    def on_log_truncated(self) -> None:
        self.high_watermark = min(self.high_watermark, self.log_end_offset)
        self.producer_state.truncate_snapshots_above(self.log_end_offset)
        self._wake()

    def on_log_start_moved(self) -> None:
        if self.high_watermark < self.log_start_offset:
            self.high_watermark = self.log_start_offset
        self._wake()
