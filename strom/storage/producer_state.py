"""Idempotent producer state of one partition (KIP-98), and Kafka's `<offset>.snapshot` files.

For each producer id the partition remembers its epoch and the metadata of its last 5 batches (first and
last sequence, first and last offset, max timestamp). A new batch is checked before it is appended:
- an older epoch than the one we know: INVALID_PRODUCER_EPOCH (the producer was fenced);
- a newer epoch, or an epoch without a batch yet (a transaction marker bumped it), must start at
  sequence 0;
- a batch whose sequences match one of the last 5 is a duplicate (answered as success with the offsets
  the first copy got); in an append of several batches the first duplicate answers for all of them and
  nothing is written, as in Kafka;
- otherwise its first sequence must follow the last one (of this append's earlier batches, else the log's;
  wrapping at 2^31-1 to 0), else OUT_OF_ORDER_SEQUENCE_NUMBER. A producer id we do not know is accepted
  at any sequence, as Kafka does since KIP-360 (its state may have been removed by retention).

Transactions (KIP-98): a producer's first transactional batch opens its transaction on this partition
(`current_txn_first_offset`); a COMMIT or ABORT marker (control batch) closes it (`complete_txn`), taking
the marker's epoch when it is newer (a fenced producer's transaction is aborted with a bumped epoch) and
refusing markers of an older producer epoch (INVALID_PRODUCER_EPOCH) or coordinator epoch
(TRANSACTION_COORDINATOR_FENCED). The first unstable offset is the smallest first offset of the open
transactions; the partition's last stable offset never passes it. An ABORT yields the `AbortedTxn`
entry for the log's aborted-transaction index.

Snapshots use Kafka's layout so the files interoperate: version int16 (1), crc uint32 (CRC-32C of what
follows), int32 count, then per producer: producer_id int64, epoch int16, last_sequence int32,
last_offset int64, offset_delta int32, timestamp int64, coordinator_epoch int32,
current_txn_first_offset int64. A snapshot named N holds the state of every batch below offset N; on load
the partition replays the batches from N to the log end. As in Kafka, one is written at every segment roll
(named after the new segment's base offset, so a crash replays only the active segment) and at clean
shutdown; the newest few are kept.
"""

from __future__ import annotations

import os
import struct
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import crc32c

from strom.protocol.control_records import COMMIT, marker_type
from strom.protocol.errors import (
    CorruptRecordError,
    ErrorCode,
    InvalidProducerEpochError,
    KafkaError,
    OutOfOrderSequenceError,
)
from strom.protocol.record_batch import BatchHeader
from strom.storage.txn_index import AbortedTxn

__all__ = [
    "SNAPSHOT_SUFFIX",
    "BatchMetadata",
    "ProducerEntry",
    "ProducerStateManager",
    "fsync_snapshot",
    "list_snapshots",
    "read_snapshot",
    "write_snapshot",
]

SNAPSHOT_SUFFIX = ".snapshot"
# one per recent segment roll: the newest bounds a crash's replay to the active segment; older ones are
# fallbacks for a snapshot torn by an OS crash or cut off by truncation
SNAPSHOTS_TO_KEEP = 3
SNAPSHOT_VERSION = 1
NUM_BATCHES_TO_RETAIN = 5
INT_MAX = 2**31 - 1

_HEAD = struct.Struct(">hI")
_COUNT = struct.Struct(">i")
_ENTRY = struct.Struct(">qhiqiqiq")


@dataclass(frozen=True, slots=True)
class BatchMetadata:
    first_seq: int
    last_seq: int
    first_offset: int
    last_offset: int
    timestamp: int


@dataclass(slots=True)
class ProducerEntry:
    producer_id: int
    epoch: int
    batches: deque[BatchMetadata] = field(default_factory=lambda: deque(maxlen=NUM_BATCHES_TO_RETAIN))
    coordinator_epoch: int = -1
    current_txn_first_offset: int = -1

    @property
    def last_seq(self) -> int:
        return self.batches[-1].last_seq if self.batches else -1

    @property
    def last_timestamp(self) -> int:
        return self.batches[-1].timestamp if self.batches else -1

    def find_duplicate(self, first_seq: int, last_seq: int) -> BatchMetadata | None:
        for meta in self.batches:
            if meta.first_seq == first_seq and meta.last_seq == last_seq:
                return meta
        return None


def _next_seq(seq: int) -> int:
    return 0 if seq == INT_MAX else seq + 1


def _last_seq_of(header: BatchHeader) -> int:
    last = header.base_sequence + header.last_offset_delta
    return last - INT_MAX - 1 if last > INT_MAX else last


class TransactionCoordinatorFencedError(KafkaError):
    code = ErrorCode.transaction_coordinator_fenced


class ProducerStateManager:
    """Producer state of one partition. Mutated only by its `Partition`, on the event loop."""

    def __init__(self, log_dir: Path) -> None:
        self.dir = Path(log_dir)
        self.producers: dict[int, ProducerEntry] = {}
        self.ongoing_txns: dict[int, int] = {}  # producer id -> first offset of its open transaction

    def first_unstable_offset(self) -> int | None:
        return min(self.ongoing_txns.values()) if self.ongoing_txns else None

    def has_ongoing_txn(self, producer_id: int, producer_epoch: int) -> bool:
        """Whether the producer's transaction at this epoch is open here. Under transaction version 2 the
        next transaction runs at a bumped epoch and may arrive before the last one's marker: it is not
        the open one (Kafka's UnifiedLog.hasOngoingTransaction)."""
        entry = self.producers.get(producer_id)
        return producer_id in self.ongoing_txns and entry is not None and entry.epoch == producer_epoch

    def check_marker(
        self, producer_id: int, producer_epoch: int, coordinator_epoch: int, *, transaction_version: int = 0
    ) -> None:
        """Refuse a marker from a fenced producer epoch or an older coordinator. Under transaction version
        2 (KIP-890 part 2) the coordinator bumped the epoch for the marker, so it must be above the
        producer's; the same epoch passes only as the retry of a marker already written (no transaction
        open, or the epoch at its maximum), as in Kafka's ProducerAppendInfo."""
        entry = self.producers.get(producer_id)
        if entry is None:
            return
        if transaction_version >= 2:
            fenced = producer_epoch <= entry.epoch
            if producer_epoch == entry.epoch and (
                producer_id not in self.ongoing_txns or producer_epoch == 32767
            ):
                fenced = False
        else:
            fenced = producer_epoch < entry.epoch
        if fenced:
            relation = "not above" if transaction_version >= 2 else "older than"
            raise InvalidProducerEpochError(
                f"marker for producer {producer_id} epoch {producer_epoch} {relation} {entry.epoch}"
            )
        if coordinator_epoch < entry.coordinator_epoch:
            raise TransactionCoordinatorFencedError(
                f"marker from coordinator epoch {coordinator_epoch} older than {entry.coordinator_epoch}"
            )

    def complete_txn(
        self, producer_id: int, producer_epoch: int, commit: bool, marker_offset: int, coordinator_epoch: int
    ) -> AbortedTxn | None:
        """A marker at `marker_offset` ends the producer's transaction; the index entry if it aborted
        a transaction that wrote here."""
        entry = self.producers.get(producer_id)
        if entry is None:
            entry = ProducerEntry(producer_id, producer_epoch)
            self.producers[producer_id] = entry
        elif producer_epoch > entry.epoch:
            # the marker fences the old epoch: its sequences no longer count
            entry.epoch = producer_epoch
            entry.batches.clear()
        entry.coordinator_epoch = max(entry.coordinator_epoch, coordinator_epoch)
        first = entry.current_txn_first_offset
        entry.current_txn_first_offset = -1
        self.ongoing_txns.pop(producer_id, None)
        if commit or first < 0:
            return None
        unstable = self.first_unstable_offset()
        lso = marker_offset + 1 if unstable is None else unstable
        return AbortedTxn(producer_id, first, marker_offset, lso)

    # --- checking and updating ---------------------------------------------------------------------
    def check(self, header: BatchHeader) -> BatchMetadata | None:
        """Validate a batch about to be appended; the earlier copy if it is a duplicate, else None."""
        return self.check_append((header,))

    def check_append(self, headers: Sequence[BatchHeader]) -> BatchMetadata | None:
        """Validate a client append's batches in order, as Kafka's analyzeAndValidateProducerState does:
        each batch must follow the one before it of the same producer, in this append or in the log. The
        first batch that repeats one of its producer's cached batches makes the whole append a retry: its
        cached metadata is returned and nothing may be written (Kafka answers the partition with it)."""
        pending: dict[int, tuple[int, int]] = {}  # producer id -> (epoch, last sequence) in this append
        for header in headers:
            if not header.has_producer_id or header.base_sequence < 0:
                continue
            pid = header.producer_id
            entry = self.producers.get(pid)
            first_seq, last_seq = header.base_sequence, _last_seq_of(header)
            if entry is not None and header.producer_epoch == entry.epoch:
                duplicate = entry.find_duplicate(first_seq, last_seq)
                if duplicate is not None:
                    return duplicate
            if pid in pending:
                epoch, prev_seq = pending[pid]
            elif entry is not None:
                epoch, prev_seq = entry.epoch, entry.last_seq
            else:
                # unknown producer: any sequence (KIP-360)
                pending[pid] = (header.producer_epoch, last_seq)
                continue
            if header.producer_epoch < epoch:
                raise InvalidProducerEpochError(
                    f"producer {pid} epoch {header.producer_epoch} is older than {epoch}"
                )
            # A known producer starts every epoch at sequence 0, also an epoch that a transaction marker
            # bumped (transaction version 2) and that has no batch yet: accepting any sequence there lets
            # a pipelined later batch overtake a refused earlier one, whose retry then fails
            # OUT_OF_ORDER_SEQUENCE_NUMBER (Kafka's ProducerAppendInfo.checkSequence).
            if header.producer_epoch > epoch:
                if first_seq != 0:
                    raise OutOfOrderSequenceError(
                        f"producer {pid} new epoch {header.producer_epoch} starts at {first_seq}"
                    )
            elif first_seq != _next_seq(prev_seq):
                raise OutOfOrderSequenceError(f"producer {pid}: sequence {first_seq} after {prev_seq}")
            pending[pid] = (header.producer_epoch, last_seq)
        return None

    def update(self, header: BatchHeader, first_offset: int, last_offset: int, timestamp: int) -> None:
        """Record an appended batch (also used when replaying the log)."""
        if not header.has_producer_id:
            return
        entry = self.producers.get(header.producer_id)
        if entry is None or header.producer_epoch > entry.epoch:
            entry = ProducerEntry(header.producer_id, header.producer_epoch)
            self.producers[header.producer_id] = entry
        if header.base_sequence >= 0:
            entry.batches.append(
                BatchMetadata(
                    header.base_sequence, _last_seq_of(header), first_offset, last_offset, timestamp
                )
            )
        if header.is_transactional and entry.current_txn_first_offset < 0:
            entry.current_txn_first_offset = first_offset
            self.ongoing_txns[header.producer_id] = first_offset

    def replay(
        self,
        batches: Iterable[tuple[BatchHeader, bytes | memoryview]],
        on_abort: Callable[[AbortedTxn], None] | None = None,
    ) -> None:
        """Rebuild state from whole batches already in the log (offsets as stored); `on_abort` sees
        the aborted transactions whose markers are replayed."""
        for header, data in batches:
            if not header.has_producer_id:
                continue
            if header.is_control:
                try:
                    commit = marker_type(data) == COMMIT
                except CorruptRecordError:
                    continue
                aborted = self.complete_txn(
                    header.producer_id, header.producer_epoch, commit, header.base_offset, -1
                )
                if aborted is not None and on_abort is not None:
                    on_abort(aborted)
            else:
                self.update(header, header.base_offset, header.last_offset, header.max_timestamp)

    # --- snapshots ---------------------------------------------------------------------------------
    def take_snapshot(self, offset: int, *, keep: int = SNAPSHOTS_TO_KEEP, sync: bool = True) -> Path:
        """Write the state as `<offset>.snapshot` (the state of every batch below `offset`) and delete all
        but the newest `keep` snapshots. `sync=False` leaves the fsync to the caller (`fsync_snapshot`):
        an unsynced snapshot lost in an OS crash fails its CRC and an older one is used instead."""
        path = write_snapshot(self.dir, offset, self.producers.values(), sync=sync)
        for old_offset, old_path in list_snapshots(self.dir)[:-keep]:
            if old_offset != offset:
                old_path.unlink(missing_ok=True)
        return path

    def latest_snapshot_offset(self) -> int | None:
        """Offset of the newest snapshot file, None if there is none."""
        snapshots = list_snapshots(self.dir)
        return snapshots[-1][0] if snapshots else None

    def load_snapshot(self, log_end_offset: int) -> int:
        """Load the newest valid snapshot at or below the log end; returns its offset (0 if none).
        Snapshots above the log end (from before a truncation) or unreadable ones are deleted."""
        self.producers.clear()
        self.ongoing_txns.clear()
        for offset, path in reversed(list_snapshots(self.dir)):
            if offset > log_end_offset:
                path.unlink(missing_ok=True)
                continue
            try:
                self.producers = read_snapshot(path)
                self.ongoing_txns = {
                    pid: e.current_txn_first_offset
                    for pid, e in self.producers.items()
                    if e.current_txn_first_offset >= 0
                }
                return offset
            except (CorruptRecordError, OSError):
                path.unlink(missing_ok=True)
        return 0

    def truncate_snapshots_above(self, offset: int) -> None:
        for snap_offset, path in list_snapshots(self.dir):
            if snap_offset > offset:
                path.unlink(missing_ok=True)


def snapshot_path(log_dir: Path, offset: int) -> Path:
    return Path(log_dir) / f"{offset:020d}{SNAPSHOT_SUFFIX}"


def list_snapshots(log_dir: Path) -> list[tuple[int, Path]]:
    found: list[tuple[int, Path]] = []
    try:
        names = os.listdir(log_dir)
    except FileNotFoundError:
        return found
    for name in names:
        if name.endswith(SNAPSHOT_SUFFIX) and name[: -len(SNAPSHOT_SUFFIX)].isdigit():
            found.append((int(name[: -len(SNAPSHOT_SUFFIX)]), Path(log_dir) / name))
    found.sort()
    return found


_NO_BATCH = BatchMetadata(-1, -1, -1, -1, -1)


def encode_snapshot(entries: Iterable[ProducerEntry]) -> bytes:
    body = bytearray()
    # an entry without batches (its epoch bumped by a marker) is kept too, as Kafka keeps it: its epoch
    # still fences older ones and its next batch must start at sequence 0
    items = list(entries)
    body += _COUNT.pack(len(items))
    for entry in items:
        last = entry.batches[-1] if entry.batches else _NO_BATCH
        body += _ENTRY.pack(
            entry.producer_id,
            entry.epoch,
            last.last_seq,
            last.last_offset,
            last.last_offset - last.first_offset,
            last.timestamp,
            entry.coordinator_epoch,
            entry.current_txn_first_offset,
        )
    crc = crc32c.crc32c(bytes(body))
    return _HEAD.pack(SNAPSHOT_VERSION, crc) + bytes(body)


def decode_snapshot(data: bytes) -> dict[int, ProducerEntry]:
    if len(data) < _HEAD.size + _COUNT.size:
        raise CorruptRecordError("producer snapshot too short")
    version, crc = _HEAD.unpack_from(data, 0)
    if version != SNAPSHOT_VERSION:
        raise CorruptRecordError(f"producer snapshot version {version}")
    if crc32c.crc32c(data[_HEAD.size :]) != crc:
        raise CorruptRecordError("producer snapshot CRC mismatch")
    (count,) = _COUNT.unpack_from(data, _HEAD.size)
    pos = _HEAD.size + _COUNT.size
    if count < 0 or pos + count * _ENTRY.size != len(data):
        raise CorruptRecordError("producer snapshot length mismatch")
    producers: dict[int, ProducerEntry] = {}
    for _ in range(count):
        pid, epoch, last_seq, last_offset, delta, ts, coord_epoch, txn_first = _ENTRY.unpack_from(data, pos)
        pos += _ENTRY.size
        entry = ProducerEntry(pid, epoch, coordinator_epoch=coord_epoch, current_txn_first_offset=txn_first)
        if last_offset >= 0:
            first_seq = last_seq - delta if last_seq >= delta else last_seq - delta + INT_MAX + 1
            entry.batches.append(BatchMetadata(first_seq, last_seq, last_offset - delta, last_offset, ts))
        producers[pid] = entry
    return producers


def write_snapshot(
    log_dir: Path, offset: int, entries: Iterable[ProducerEntry], *, sync: bool = True
) -> Path:
    path = snapshot_path(log_dir, offset)
    tmp = path.with_suffix(".snapshot.tmp")
    with open(tmp, "wb") as fh:
        fh.write(encode_snapshot(entries))
        if sync:
            fh.flush()
            os.fsync(fh.fileno())
    os.replace(tmp, path)
    return path


def fsync_snapshot(path: Path) -> None:
    """fsync a snapshot written with sync=False; a snapshot already deleted again is fine. Blocking."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def read_snapshot(path: Path) -> dict[int, ProducerEntry]:
    return decode_snapshot(Path(path).read_bytes())
