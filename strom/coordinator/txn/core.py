"""The transaction coordinator's state machine (KIP-98, KIP-360, KIP-588, KIP-890), sans-io with an injected
time.

Each transactional id has a `TxnMetadata` (producer id and epoch, timeout, state, partitions). Requests
are checked here and answered with an error code and, when state must change, a `Transition`: the
metadata to write to __transaction_state. The caller writes it, then calls `apply` (or `abandon` if the
write failed); while a transition is in flight other requests for that id answer CONCURRENT_TRANSACTIONS.
Transitions into PrepareCommit/PrepareAbort carry `send_markers`: the caller writes the markers to every
partition of the transaction, then writes `complete(...)` (CompleteCommit/CompleteAbort).

Rules, as in Kafka's TransactionCoordinator:
- InitProducerId: a new id gets a fresh producer id at epoch 0; a known one in Empty/Complete* gets its
  epoch bumped (a new producer id once the epoch is exhausted), fencing older producers; in Ongoing the
  open transaction is aborted with a bumped epoch (fence) and the answer is CONCURRENT_TRANSACTIONS (the
  client retries); in Prepare* CONCURRENT_TRANSACTIONS. KIP-360 callers passing their producer id and
  epoch get INVALID_PRODUCER_EPOCH for a foreign id and PRODUCER_FENCED for a stale epoch; a retry of a
  bump already done returns the current epoch. The timeout must be 1..transaction.max.timeout.ms
  (INVALID_TRANSACTION_TIMEOUT).
- AddPartitionsToTxn / AddOffsetsToTxn: the id must map to the producer id (INVALID_PRODUCER_ID_MAPPING)
  and epoch (PRODUCER_FENCED); in Prepare* CONCURRENT_TRANSACTIONS; otherwise the partitions join the
  (now Ongoing) transaction, and the first one starts the transaction timer. The transition records the
  client's transaction version (2 when a broker adds a partition for a Produce v12+ or TxnOffsetCommit
  v5+, KIP-890 part 2).
- Verification (KIP-890 part 1, AddPartitionsToTxn v4+ verify_only): no transition; per partition NONE
  when the transaction holds it, TRANSACTION_ABORTABLE when not; INVALID_PRODUCER_ID_MAPPING,
  PRODUCER_FENCED or (in Prepare*) CONCURRENT_TRANSACTIONS for all of them.
- EndTxn, transaction version 1 (EndTxn v4 and below): Ongoing goes to Prepare*; repeating a finished end
  answers NONE; the other end of a finished or preparing transaction, or ending an Empty one,
  INVALID_TXN_STATE; a repeat while preparing CONCURRENT_TRANSACTIONS.
- EndTxn, transaction version 2 (v5, KIP-890 part 2): every end bumps the epoch in Prepare* (the markers
  carry the new epoch, which fences the transaction's batches); the answer names the producer id and
  epoch to use next. An end at that new epoch while the markers still go out is CONCURRENT_TRANSACTIONS.
  An exhausted epoch (32766) takes the new producer id allocated here into Complete* (epoch 0). Kafka's
  table: a retry (epoch one below the current one, or the last epoch of the previous producer id after a
  rotation) of a finished end answers NONE; a current-epoch abort of an Empty or finished transaction
  writes an abort without partitions (bumping the epoch); a commit there, or the other end of a retried
  one, is INVALID_TXN_STATE; any other epoch is PRODUCER_FENCED.
- Timed out (Ongoing for longer than its timeout), or fenced by InitProducerId: aborted with a bumped
  epoch, which the server's transaction version 2 bumps once more in PrepareAbort, as Kafka does
  (`timed_out`).
- Expired ids (Empty/Complete* untouched for transactional.id.expiration.ms) are removed with a
  tombstone (`expired`).
Errors here are Kafka's PRODUCER_FENCED; the API handlers map it to INVALID_PRODUCER_EPOCH for request
versions older than KIP-588.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from strom.coordinator.group.schemas import partition_for
from strom.coordinator.txn.schemas import TxnLogValue, TxnState, decode_key, decode_value
from strom.protocol.errors import ErrorCode

__all__ = ["Outcome", "Transition", "TxnConfig", "TxnCoordinatorCore", "TxnMetadata", "TxnState"]

MAX_EPOCH = 32767
TopicPartition = tuple[str, int]
# transaction.version finalized here (KIP-890 part 2): the level timed-out and fenced aborts run at
SERVER_TRANSACTION_VERSION = 2


@dataclass(frozen=True, slots=True)
class TxnConfig:
    num_partitions: int = 50
    max_timeout_ms: int = 900000
    id_expiration_ms: int = 604800000


@dataclass(frozen=True, slots=True)
class TxnMetadata:
    transactional_id: str
    producer_id: int
    producer_epoch: int
    timeout_ms: int
    state: TxnState
    partitions: frozenset[TopicPartition] = frozenset()
    start_ms: int = -1
    update_ms: int = -1
    last_producer_id: int = -1
    last_producer_epoch: int = -1
    # KIP-890 part 2: the transaction version of the client's last transition, and the producer id an
    # exhausted epoch moves to once the prepared transaction completes
    client_transaction_version: int = 0
    next_producer_id: int = -1
    # the producer id before the transition that wrote this metadata (TransactionLogValue tag 0, which
    # Kafka 4.4 writes on every record; equal to producer_id unless the id was just rotated)
    previous_producer_id: int = -1

    @property
    def supports_epoch_bump(self) -> bool:
        return self.client_transaction_version >= 2

    def to_log_value(self) -> TxnLogValue:
        by_topic: dict[str, list[int]] = {}
        for topic, partition in sorted(self.partitions):
            by_topic.setdefault(topic, []).append(partition)
        return TxnLogValue(
            self.producer_id,
            self.producer_epoch,
            self.timeout_ms,
            self.state,
            tuple((t, tuple(ps)) for t, ps in by_topic.items()),
            self.update_ms,
            self.start_ms,
            client_transaction_version=self.client_transaction_version,
            previous_producer_id=self.previous_producer_id,
            next_producer_id=self.next_producer_id,
        )

    @classmethod
    def from_log_value(cls, transactional_id: str, value: TxnLogValue) -> TxnMetadata:
        return cls(
            transactional_id,
            value.producer_id,
            value.producer_epoch,
            value.timeout_ms,
            value.state,
            frozenset((t, p) for t, ps in value.partitions for p in ps),
            value.start_ms,
            value.last_update_ms,
            client_transaction_version=value.client_transaction_version,
            next_producer_id=value.next_producer_id,
            previous_producer_id=value.previous_producer_id,
        )


@dataclass(frozen=True, slots=True)
class Transition:
    """Metadata to write for one id; `target.state == DEAD` writes a tombstone."""

    target: TxnMetadata
    send_markers: bool = False
    coordinator_epoch: int = -1

    @property
    def commit(self) -> bool:
        return self.target.state == TxnState.PREPARE_COMMIT

    @property
    def transaction_version(self) -> int:
        """The transaction version the markers are written with (WriteTxnMarkers v2)."""
        return self.target.client_transaction_version


@dataclass(frozen=True, slots=True)
class Outcome:
    """The answer to a request: an error, and maybe a transition to write before answering."""

    error: ErrorCode
    transition: Transition | None = None
    metadata: TxnMetadata | None = None


@dataclass(slots=True)
class _Partition:
    coordinator_epoch: int = -1
    ids: set[str] = field(default_factory=set)


class TxnCoordinatorCore:
    """All transactional ids of the __transaction_state partitions this broker leads."""

    def __init__(self, config: TxnConfig, allocate_producer_id: Callable[[], int]) -> None:
        self.config = config
        self.allocate_producer_id = allocate_producer_id
        self.txns: dict[str, TxnMetadata] = {}
        self.pending: dict[str, Transition] = {}
        self.owned: dict[int, _Partition] = {}
        self.loading: dict[int, dict[str, TxnMetadata]] = {}

    # --- ownership ---------------------------------------------------------------------------------
    def partition_for(self, transactional_id: str) -> int:
        return partition_for(transactional_id, self.config.num_partitions)

    def status(self, transactional_id: str) -> ErrorCode:
        partition = self.partition_for(transactional_id)
        if partition in self.loading:
            return ErrorCode.coordinator_load_in_progress
        if partition not in self.owned:
            return ErrorCode.not_coordinator
        return ErrorCode.none

    def coordinator_epoch(self, transactional_id: str) -> int:
        owned = self.owned.get(self.partition_for(transactional_id))
        return owned.coordinator_epoch if owned is not None else -1

    def begin_loading(self, partition: int) -> None:
        self.unload(partition)
        self.loading[partition] = {}

    def load_record(self, partition: int, key: bytes | None, value: bytes | None) -> None:
        """One record of the partition's log, in order (CorruptRecordError if unreadable)."""
        if key is None or partition not in self.loading:
            return
        transactional_id = decode_key(key)
        loaded = self.loading[partition]
        if value is None:
            loaded.pop(transactional_id, None)
        else:
            loaded[transactional_id] = TxnMetadata.from_log_value(transactional_id, decode_value(value))

    def finish_loading(self, partition: int, coordinator_epoch: int) -> list[Transition]:
        """Own the loaded ids; returns the transitions of transactions left in Prepare*, whose markers
        must be (re)sent and which must then be completed."""
        loaded = self.loading.pop(partition, None)
        if loaded is None:
            return []
        owned = _Partition(coordinator_epoch, set(loaded))
        self.owned[partition] = owned
        resume = []
        for transactional_id, meta in loaded.items():
            self.txns[transactional_id] = meta
            if meta.state in (TxnState.PREPARE_COMMIT, TxnState.PREPARE_ABORT):
                resume.append(Transition(meta, True, coordinator_epoch))
        return resume

    def unload(self, partition: int) -> None:
        self.loading.pop(partition, None)
        owned = self.owned.pop(partition, None)
        if owned is None:
            return
        for transactional_id in owned.ids:
            self.txns.pop(transactional_id, None)
            self.pending.pop(transactional_id, None)

    # --- transitions -------------------------------------------------------------------------------
    def _begin(self, transition: Transition) -> Transition:
        tid = transition.target.transactional_id
        current = self.txns.get(tid)
        previous = current.producer_id if current is not None else transition.target.producer_id
        transition = dataclasses.replace(
            transition,
            target=dataclasses.replace(transition.target, previous_producer_id=previous),
            coordinator_epoch=self.coordinator_epoch(tid),
        )
        self.pending[tid] = transition
        return transition

    def apply(self, transition: Transition) -> None:
        """The transition's record is written: adopt it."""
        target = transition.target
        tid = target.transactional_id
        if self.pending.get(tid) is transition:
            del self.pending[tid]
        owned = self.owned.get(self.partition_for(tid))
        if owned is None:
            return  # unloaded meanwhile: whoever loads the partition reads the record
        if target.state == TxnState.DEAD:
            self.txns.pop(tid, None)
            owned.ids.discard(tid)
        else:
            self.txns[tid] = target
            owned.ids.add(tid)

    def abandon(self, transition: Transition) -> None:
        """The write failed: nothing changes."""
        tid = transition.target.transactional_id
        if self.pending.get(tid) is transition:
            del self.pending[tid]

    # --- requests ----------------------------------------------------------------------------------
    def init_producer_id(
        self,
        transactional_id: str,
        timeout_ms: int,
        now_ms: int,
        expected_producer_id: int = -1,
        expected_epoch: int = -1,
    ) -> Outcome:
        error = self.status(transactional_id)
        if error != ErrorCode.none:
            return Outcome(error)
        if timeout_ms <= 0 or timeout_ms > self.config.max_timeout_ms:
            return Outcome(ErrorCode.invalid_transaction_timeout)
        if transactional_id in self.pending:
            return Outcome(ErrorCode.concurrent_transactions)
        meta = self.txns.get(transactional_id)
        if meta is None:
            target = TxnMetadata(
                transactional_id,
                self.allocate_producer_id(),
                0,
                timeout_ms,
                TxnState.EMPTY,
                update_ms=now_ms,
            )
            return Outcome(ErrorCode.none, self._begin(Transition(target)))
        if expected_producer_id >= 0 and expected_producer_id not in (
            meta.producer_id,
            meta.last_producer_id,
        ):
            return Outcome(ErrorCode.invalid_producer_epoch)
        if meta.state in (TxnState.PREPARE_COMMIT, TxnState.PREPARE_ABORT):
            return Outcome(ErrorCode.concurrent_transactions)
        if meta.state == TxnState.ONGOING:
            # fence the open transaction's producer and abort it; the client retries meanwhile
            fence = self._fenced_abort(meta, now_ms)
            return Outcome(ErrorCode.concurrent_transactions, self._begin(fence))
        if expected_producer_id >= 0 and expected_epoch >= 0:
            if expected_producer_id == meta.producer_id and expected_epoch == meta.producer_epoch:
                pass  # bump below
            elif (
                expected_producer_id == meta.last_producer_id or expected_producer_id == meta.producer_id
            ) and expected_epoch == meta.last_producer_epoch:
                return Outcome(ErrorCode.none, metadata=meta)  # a retried bump: already done
            else:
                return Outcome(ErrorCode.producer_fenced)
        if meta.producer_epoch >= MAX_EPOCH - 1:
            target = dataclasses.replace(
                meta,
                producer_id=self.allocate_producer_id(),
                producer_epoch=0,
                last_producer_id=meta.producer_id,
                last_producer_epoch=meta.producer_epoch,
            )
        else:
            target = dataclasses.replace(
                meta,
                producer_epoch=meta.producer_epoch + 1,
                last_producer_id=meta.producer_id,
                last_producer_epoch=meta.producer_epoch,
            )
        target = dataclasses.replace(
            target,
            timeout_ms=timeout_ms,
            state=TxnState.EMPTY,
            partitions=frozenset(),
            start_ms=-1,
            update_ms=now_ms,
        )
        return Outcome(ErrorCode.none, self._begin(Transition(target)))

    def _check_producer(
        self, transactional_id: str, producer_id: int, epoch: int
    ) -> tuple[ErrorCode, TxnMetadata | None]:
        error = self.status(transactional_id)
        if error != ErrorCode.none:
            return error, None
        meta = self.txns.get(transactional_id)
        if meta is None or meta.producer_id != producer_id:
            return ErrorCode.invalid_producer_id_mapping, None
        if epoch != meta.producer_epoch:
            return ErrorCode.producer_fenced, None
        if transactional_id in self.pending:
            return ErrorCode.concurrent_transactions, None
        return ErrorCode.none, meta

    def add_partitions(
        self,
        transactional_id: str,
        producer_id: int,
        epoch: int,
        partitions: Iterable[TopicPartition],
        now_ms: int,
        client_transaction_version: int = 0,
    ) -> Outcome:
        error, meta = self._check_producer(transactional_id, producer_id, epoch)
        if meta is None:
            return Outcome(error)
        if meta.state in (TxnState.PREPARE_COMMIT, TxnState.PREPARE_ABORT):
            return Outcome(ErrorCode.concurrent_transactions)
        wanted = frozenset(partitions)
        if meta.state == TxnState.ONGOING and wanted <= meta.partitions:
            return Outcome(ErrorCode.none, metadata=meta)
        start = meta.start_ms if meta.state == TxnState.ONGOING else now_ms
        target = dataclasses.replace(
            meta,
            state=TxnState.ONGOING,
            partitions=meta.partitions | wanted,
            start_ms=start,
            update_ms=now_ms,
            client_transaction_version=client_transaction_version,
        )
        return Outcome(ErrorCode.none, self._begin(Transition(target)))

    def verify_partitions(
        self, transactional_id: str, producer_id: int, epoch: int, partitions: Iterable[TopicPartition]
    ) -> dict[TopicPartition, ErrorCode]:
        """KIP-890 part 1 (AddPartitionsToTxn verify_only): whether the ongoing transaction holds each
        partition (TRANSACTION_ABORTABLE when not); nothing is written."""
        wanted = list(partitions)
        error = self.status(transactional_id)
        meta = self.txns.get(transactional_id)
        if error == ErrorCode.none:
            if meta is None or meta.producer_id != producer_id:
                error = ErrorCode.invalid_producer_id_mapping
            elif meta.producer_epoch != epoch:
                error = ErrorCode.producer_fenced
            elif meta.state in (TxnState.PREPARE_COMMIT, TxnState.PREPARE_ABORT):
                error = ErrorCode.concurrent_transactions
        if error != ErrorCode.none or meta is None:
            return dict.fromkeys(wanted, error)
        pending = self.pending.get(transactional_id)
        held = meta.partitions if meta.state == TxnState.ONGOING else frozenset()
        if pending is not None and pending.target.state == TxnState.ONGOING:
            # an AddPartitionsToTxn being written: its partitions are as good as added
            held = held | pending.target.partitions
        return {tp: ErrorCode.none if tp in held else ErrorCode.transaction_abortable for tp in wanted}

    def verify_partition(
        self, transactional_id: str, producer_id: int, epoch: int, partition: TopicPartition
    ) -> ErrorCode:
        """`verify_partitions` for one partition."""
        return self.verify_partitions(transactional_id, producer_id, epoch, [partition])[partition]

    def end_txn(
        self,
        transactional_id: str,
        producer_id: int,
        epoch: int,
        commit: bool,
        now_ms: int,
        epoch_bump: bool = False,
    ) -> Outcome:
        """EndTxn; `epoch_bump` for transaction version 2 (EndTxn v5+). A successful outcome's
        `metadata` (or transition target) names the producer id and epoch the answer carries."""
        if epoch_bump:
            return self._end_txn_v2(transactional_id, producer_id, epoch, commit, now_ms)
        error, meta = self._check_producer(transactional_id, producer_id, epoch)
        if meta is None:
            return Outcome(error)
        state = meta.state
        if state == TxnState.ONGOING:
            target = dataclasses.replace(
                meta,
                state=TxnState.PREPARE_COMMIT if commit else TxnState.PREPARE_ABORT,
                update_ms=now_ms,
                client_transaction_version=0,
            )
            return Outcome(ErrorCode.none, self._begin(Transition(target, send_markers=True)))
        if (state == TxnState.COMPLETE_COMMIT and commit) or (
            state == TxnState.COMPLETE_ABORT and not commit
        ):
            return Outcome(ErrorCode.none, metadata=meta)
        if (state == TxnState.PREPARE_COMMIT and commit) or (state == TxnState.PREPARE_ABORT and not commit):
            return Outcome(ErrorCode.concurrent_transactions)
        return Outcome(ErrorCode.invalid_txn_state)

    def _end_txn_v2(
        self, transactional_id: str, producer_id: int, epoch: int, commit: bool, now_ms: int
    ) -> Outcome:
        error = self.status(transactional_id)
        if error != ErrorCode.none:
            return Outcome(error)
        meta = self.txns.get(transactional_id)
        if meta is None:
            return Outcome(ErrorCode.invalid_producer_id_mapping)
        state = meta.state
        # a retry of an end that rotated the producer id (its epoch was exhausted)
        retry_on_overflow = (
            meta.last_producer_id == producer_id and epoch == MAX_EPOCH - 1 and meta.producer_epoch == 0
        )
        # a retry of an end whose epoch bump is already stored
        retry_on_bump = meta.producer_epoch == epoch + 1
        if state in (TxnState.PREPARE_COMMIT, TxnState.PREPARE_ABORT):
            valid_epoch = retry_on_bump
        elif state in (TxnState.COMPLETE_COMMIT, TxnState.COMPLETE_ABORT):
            valid_epoch = retry_on_bump or retry_on_overflow or epoch == meta.producer_epoch
        else:
            valid_epoch = epoch == meta.producer_epoch
        retry = retry_on_bump or retry_on_overflow
        if meta.producer_id != producer_id and not retry_on_overflow:
            return Outcome(ErrorCode.invalid_producer_id_mapping)
        if state in (TxnState.PREPARE_COMMIT, TxnState.PREPARE_ABORT) and epoch == meta.producer_epoch:
            # the next transaction's end at the epoch the last end answered, while that end's markers
            # are still going out: the producer retries (Kafka 4.4 answers the same)
            return Outcome(ErrorCode.concurrent_transactions)
        if not valid_epoch:
            return Outcome(ErrorCode.producer_fenced)
        if transactional_id in self.pending:
            return Outcome(ErrorCode.concurrent_transactions)
        if state == TxnState.ONGOING:
            return self._prepare_end_v2(meta, commit, now_ms, partitions_added=True)
        if state == TxnState.COMPLETE_COMMIT:
            if commit:
                return Outcome(ErrorCode.none if retry else ErrorCode.invalid_txn_state, metadata=meta)
            if retry:
                return Outcome(ErrorCode.invalid_txn_state)
            return self._prepare_end_v2(meta, False, now_ms, partitions_added=False)
        if state == TxnState.COMPLETE_ABORT:
            if commit:
                return Outcome(ErrorCode.invalid_txn_state)
            if retry:
                return Outcome(ErrorCode.none, metadata=meta)
            return self._prepare_end_v2(meta, False, now_ms, partitions_added=False)
        if state == TxnState.PREPARE_COMMIT:
            return Outcome(ErrorCode.concurrent_transactions if commit else ErrorCode.invalid_txn_state)
        if state == TxnState.PREPARE_ABORT:
            return Outcome(ErrorCode.invalid_txn_state if commit else ErrorCode.concurrent_transactions)
        # Empty: an abort without partitions is allowed (and bumps the epoch), a commit is not
        if commit:
            return Outcome(ErrorCode.invalid_txn_state)
        return self._prepare_end_v2(meta, False, now_ms, partitions_added=False)

    def _prepare_end_v2(
        self, meta: TxnMetadata, commit: bool, now_ms: int, *, partitions_added: bool
    ) -> Outcome:
        """Prepare* with the epoch bumped (transaction version 2); an exhausted epoch also gets the
        producer id the transaction moves to once complete."""
        next_producer_id = -1
        if meta.producer_epoch >= MAX_EPOCH - 1:
            next_producer_id = self.allocate_producer_id()
        target = dataclasses.replace(
            meta,
            state=TxnState.PREPARE_COMMIT if commit else TxnState.PREPARE_ABORT,
            producer_epoch=min(meta.producer_epoch + 1, MAX_EPOCH),
            last_producer_epoch=meta.producer_epoch,
            # an abort without partitions has no start: its time is the update time, as in Kafka
            start_ms=meta.start_ms if partitions_added else now_ms,
            update_ms=now_ms,
            client_transaction_version=2,
            next_producer_id=next_producer_id,
        )
        return Outcome(ErrorCode.none, self._begin(Transition(target, send_markers=True)))

    def complete(self, prepared: TxnMetadata, now_ms: int) -> Transition | None:
        """The markers of a Prepare* transaction are written: the transition to Complete*, or None if
        the id changed hands or state meanwhile."""
        meta = self.txns.get(prepared.transactional_id)
        if meta is None or meta != prepared or prepared.transactional_id in self.pending:
            return None
        state = TxnState.COMPLETE_COMMIT if meta.state == TxnState.PREPARE_COMMIT else TxnState.COMPLETE_ABORT
        target = dataclasses.replace(meta, state=state, partitions=frozenset(), update_ms=now_ms)
        if meta.supports_epoch_bump and meta.next_producer_id >= 0:
            # the epoch ran out: the producer continues under the new id at epoch 0 (the last epoch
            # stays the one the client last saw, for retries)
            target = dataclasses.replace(
                target,
                producer_id=meta.next_producer_id,
                producer_epoch=0,
                last_producer_id=meta.producer_id,
                next_producer_id=-1,
            )
        return self._begin(Transition(target))

    def _fenced_abort(self, meta: TxnMetadata, now_ms: int) -> Transition:
        epoch = meta.producer_epoch + 1 if meta.producer_epoch < MAX_EPOCH - 1 else meta.producer_epoch
        last_epoch = -1
        if SERVER_TRANSACTION_VERSION >= 2:
            # the abort runs at the server's transaction version, whose PrepareAbort bumps once more
            last_epoch = epoch
            epoch = min(epoch + 1, MAX_EPOCH)
        target = dataclasses.replace(
            meta,
            producer_epoch=epoch,
            last_producer_id=meta.producer_id,
            last_producer_epoch=last_epoch,
            state=TxnState.PREPARE_ABORT,
            update_ms=now_ms,
            client_transaction_version=SERVER_TRANSACTION_VERSION,
            next_producer_id=-1,
        )
        return Transition(target, send_markers=True)

    # --- timers ------------------------------------------------------------------------------------
    def timed_out(self, now_ms: int) -> list[Transition]:
        """Abort (with a bumped epoch) every Ongoing transaction older than its timeout."""
        out = []
        for tid, meta in list(self.txns.items()):
            if (
                meta.state == TxnState.ONGOING
                and tid not in self.pending
                and meta.start_ms + meta.timeout_ms <= now_ms
            ):
                out.append(self._begin(self._fenced_abort(meta, now_ms)))
        return out

    def expired(self, now_ms: int) -> list[Transition]:
        """Tombstones for ids idle in Empty/Complete* for transactional.id.expiration.ms."""
        out = []
        for tid, meta in list(self.txns.items()):
            if (
                meta.state in (TxnState.EMPTY, TxnState.COMPLETE_COMMIT, TxnState.COMPLETE_ABORT)
                and tid not in self.pending
                and meta.update_ms + self.config.id_expiration_ms <= now_ms
            ):
                out.append(self._begin(Transition(dataclasses.replace(meta, state=TxnState.DEAD))))
        return out

    # --- describing --------------------------------------------------------------------------------
    def describe(self, transactional_id: str) -> tuple[ErrorCode, TxnMetadata | None]:
        error = self.status(transactional_id)
        if error != ErrorCode.none:
            return error, None
        meta = self.txns.get(transactional_id)
        if meta is None:
            return ErrorCode.transactional_id_not_found, None
        return ErrorCode.none, meta

    def listing(
        self,
        states: set[str] | None = None,
        producer_ids: set[int] | None = None,
        min_duration_ms: int = -1,
        now_ms: int = 0,
    ) -> list[TxnMetadata]:
        out = []
        for meta in self.txns.values():
            if states and meta.state.kafka_name not in states:
                continue
            if producer_ids and meta.producer_id not in producer_ids:
                continue
            if min_duration_ms >= 0 and (meta.start_ms < 0 or now_ms - meta.start_ms < min_duration_ms):
                continue
            out.append(meta)
        return out

    def next_deadline(self) -> int | None:
        deadlines = [m.start_ms + m.timeout_ms for m in self.txns.values() if m.state == TxnState.ONGOING]
        return min(deadlines) if deadlines else None
