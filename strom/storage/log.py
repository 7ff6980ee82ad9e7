"""The log of one partition: `<log dir>/<topic>-<partition>/`, Kafka's UnifiedLog/LocalLog on disk.

- Append (leader): validate batch headers (magic 2, CRC-32C, lengths, count vs lastOffsetDelta), check
  max.message.bytes, then the record rules (`strom.storage.record_validation`: timestamps within
  message.timestamp.before/after.max.ms, KIP-937, keys on compacted topics; the refusal names the bad
  records, KIP-467), then assign offsets and the leader epoch by rewriting
  header fields in one private copy (or in the caller's buffer with `in_place`), stamp LogAppendTime
  when the topic asks (new CRC), and write.
  Nothing is written if any batch is refused. Follower appends keep the leader's offsets and epochs.
- Roll on segment.bytes, segment.ms (+ jitter), full indexes or relative offsets that overflow int32.
- Read by offset returns a `LogSlice` (file, position, length) of whole batches inside one segment for
  sendfile; read by timestamp goes through the time index (ListOffsets, KIP-79; -1 latest, -2 earliest,
  -3 max timestamp per KIP-734, -4 earliest local per KIP-405).
- Retention deletes whole non-active segments (retention.ms by largest timestamp, retention.bytes, log
  start offset); DeleteRecords (KIP-107) moves the log start offset. Deleted segments are renamed to
  `.deleted` and removed after file.delete.delay.ms.
- flush.messages makes the log due for a flush once that many messages are unflushed; the append never
  fsyncs itself (it runs on the event loop): it calls `schedule_flush`, and the owner runs `flush` in a
  worker thread (without an owner, `flush_due` reports it to whoever polls).
- Recovery after an unclean stop re-reads segments from the recovery point, truncates at the first torn
  or corrupt batch and rebuilds indexes; a clean open only loads indexes.
- Aborted transactions (KIP-98) are kept in `.txnindex` files (`aborted_txns`,
  `strom.storage.txn_index`) that follow the segments through truncation, deletion and cleaner swaps;
  `collect_aborted_txns` answers a read_committed fetch. The partition's producer state adds entries
  when it appends or replays an ABORT marker.

Not thread-safe: mutate from one thread (the broker's event loop). `flush` and `delete_expired_files` may
run in a worker thread concurrently with appends (they touch only fsync and already-removed segments).
"""

from __future__ import annotations

import bisect
import os
import random
import re
import shutil
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from strom.config import LogConfig
from strom.protocol.errors import (
    KafkaError,
    KafkaStorageError,
    OffsetOutOfRangeError,
    RecordListTooLargeError,
    RecordTooLargeError,
)
from strom.protocol.record_batch import (
    BatchHeader,
    parse_header,
    set_base_offset,
    set_partition_leader_epoch,
    stamp_log_append_time,
    validate_batches,
)
from strom.protocol.records import decode_records
from strom.storage.checkpoint import fsync_dir, write_partition_metadata
from strom.storage.leader_epoch import LEADER_EPOCH_CHECKPOINT, LeaderEpochFileCache
from strom.storage.record_validation import check_records, needs_records
from strom.storage.segment import (
    CLEANED_SUFFIX,
    DELETED_SUFFIX,
    INDEX_SUFFIX,
    LOG_SUFFIX,
    TIME_INDEX_SUFFIX,
    Segment,
)
from strom.storage.swap import complete_interrupted_swaps
from strom.storage.txn_index import AbortedTxn, AbortedTxnIndex

LATEST_TIMESTAMP = -1
EARLIEST_TIMESTAMP = -2
MAX_TIMESTAMP = -3
EARLIEST_LOCAL_TIMESTAMP = -4

_DIR_NAME = re.compile(r"^(?P<topic>.+)-(?P<partition>\d+)$")
# a future replica (JBOD move, KIP-113): `<topic>-<partition>.<32 hex digits>-future`, Kafka's name
_FUTURE_DIR_NAME = re.compile(r"^(?P<topic>.+)-(?P<partition>\d+)\.[0-9a-f]{32}-future$")
FUTURE_DIR_SUFFIX = "-future"
PARTITION_METADATA = "partition.metadata"  # KIP-516: the topic id of the partition's log


class UnexpectedAppendOffsetError(KafkaError):
    """A follower append whose offsets go backwards or below the log end (Kafka's
    UnexpectedAppendOffsetException); the replica fetcher truncates and retries."""


def _writable(buf: bytes | bytearray | memoryview) -> bool:
    return isinstance(buf, bytearray) or (isinstance(buf, memoryview) and not buf.readonly)


def parse_log_dir_name(name: str, *, future: bool = False) -> tuple[str, int]:
    """(topic, partition) from `<topic>-<partition>` (with `future`: from a future replica's
    `<topic>-<partition>.<id>-future`); ValueError if it is not one."""
    match = (_FUTURE_DIR_NAME if future else _DIR_NAME).match(name)
    if match is None:
        raise ValueError(f"not a partition directory name: {name!r}")
    return match.group("topic"), int(match.group("partition"))


@dataclass(slots=True)
class AppendInfo:
    first_offset: int
    last_offset: int
    max_timestamp: int
    offset_of_max_timestamp: int
    log_append_time: int
    num_batches: int
    num_records: int
    valid_bytes: int
    headers: list[BatchHeader] = field(default_factory=list)


@dataclass(slots=True)
class LogSlice:
    """Whole batches of one segment: `length` bytes at `position` of `file` (a read-only file object
    that stays open while its segment is open, even after the segment is deleted)."""

    file: object
    position: int
    length: int
    first_offset: int

    def read_bytes(self) -> bytes:
        if self.length == 0:
            return b""
        return os.pread(self.file.fileno(), self.length, self.position)  # type: ignore[attr-defined]


class Log:
    """One partition's log; see the module docstring. Create with `Log.open`."""

    def __init__(
        self,
        directory: Path,
        config: LogConfig,
        clock: Callable[[], float],
        rng: random.Random,
    ) -> None:
        self.dir = directory
        # a future replica's log (KIP-113) lives under its own name until it replaces the current one
        self.is_future = directory.name.endswith(FUTURE_DIR_SUFFIX)
        self.topic, self.partition = parse_log_dir_name(directory.name, future=self.is_future)
        self.config = config
        self._clock = clock
        self._rng = rng
        self._segments: dict[int, Segment] = {}
        self._bases: list[int] = []
        self.log_start_offset = 0
        self.recovery_point = 0
        self.leader_epoch_cache = LeaderEpochFileCache(directory / LEADER_EPOCH_CHECKPOINT)
        self.aborted_txns = AbortedTxnIndex(directory)
        self._pending_deletes: list[tuple[int, Segment]] = []
        self._pending_lock = threading.Lock()
        self._roll_flush_offset: int | None = None
        self._dir_dirty = False
        self.last_flush_ms = 0
        self.closed = False
        # called with the new segment's base offset after every roll (the partition's producer snapshot)
        self.on_roll: Callable[[int], None] | None = None
        # called after an append that leaves flush.messages or more unflushed: the owner flushes off the
        # loop thread (the recovery point moves when that fsync completes)
        self.schedule_flush: Callable[[], None] | None = None
        # base of the first segment recovered at open (None: none was): its producer state and aborted
        # transactions are rebuilt by replaying from a snapshot at or below it
        self.recovered_from: int | None = None
        # the topic id (KIP-516) a new log's partition.metadata must hold, written (with its fsyncs) just
        # before the first append or at close, as Kafka's UnifiedLog.maybeFlushMetadataFile does: creating
        # thousands of partitions costs no fsync each, and no record is on disk without its topic id
        self.pending_topic_id: uuid.UUID | None = None
        self._metadata_lock = threading.Lock()

    # opening ------------------------------------------------------------------------------------
    @classmethod
    def open(
        cls,
        directory: Path,
        config: LogConfig,
        *,
        recovery_point: int = 0,
        log_start_offset: int = 0,
        clean_shutdown: bool = False,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
    ) -> Log:
        """Open (creating if needed) the log in `directory`; recovers unless `clean_shutdown`. Blocking."""
        directory.mkdir(parents=True, exist_ok=True)
        log = cls(directory, config, clock, rng or random.Random())
        log._load(recovery_point, log_start_offset, clean_shutdown)
        return log

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)

    def _load(self, recovery_point: int, log_start_offset: int, clean_shutdown: bool) -> None:
        now = self._now_ms()
        complete_interrupted_swaps(self.dir)  # a cleaner swap cut short by a crash
        bases: list[int] = []
        for entry in os.scandir(self.dir):
            name = entry.name
            if name.endswith((DELETED_SUFFIX, CLEANED_SUFFIX, ".tmp")):
                os.unlink(entry.path)  # leftovers of an earlier run, as Kafka removes them on start
                continue
            if name.endswith(LOG_SUFFIX):
                stem = name[: -len(LOG_SUFFIX)]
                if stem.isdigit():
                    bases.append(int(stem))
        present = set(bases)
        for entry in os.scandir(self.dir):
            for suffix in (INDEX_SUFFIX, TIME_INDEX_SUFFIX):
                stem = entry.name[: -len(suffix)]
                if entry.name.endswith(suffix) and stem.isdigit() and int(stem) not in present:
                    os.unlink(entry.path)  # an index without its log
        bases.sort()
        self._bases = bases
        recover_from = None
        if not clean_shutdown and bases:
            i = max(0, bisect.bisect_right(bases, recovery_point) - 1)
            recover_from = bases[i]
        recovered_any = False
        truncated_at: int | None = None
        for base in bases:
            segment = Segment(self.dir, base, self.config, now)
            self._segments[base] = segment
            if truncated_at is not None:
                continue
            if recover_from is not None and base >= recover_from:
                need_recovery = True
            else:
                need_recovery = not segment.load()
            if need_recovery:
                if not recovered_any:
                    self.recovered_from = base
                recovered_any = True
                truncated = segment.recover(self.config.max_message_bytes)
                for _pos, header in segment.scan(0):
                    self.leader_epoch_cache.assign(header.partition_leader_epoch, header.base_offset)
                if truncated:
                    truncated_at = base
            if base != bases[-1]:
                # trims a recovered segment's preallocated indexes; creates no file for an empty one
                segment.on_becoming_inactive(create=False)
        if truncated_at is not None:
            # everything after a torn or corrupt batch is unreachable: drop later segments (Kafka does)
            for base in [b for b in bases if b > truncated_at]:
                self._segments.pop(base).delete_files()
            self._bases = [b for b in bases if b <= truncated_at]
        if not self._bases:
            start = max(log_start_offset, 0)
            self._add_segment(Segment(self.dir, start, self.config, now))
        active = self.active_segment
        active.prepare_for_appends()
        self._set_jitter(active)
        leo = self.log_end_offset
        self.log_start_offset = min(max(log_start_offset, self._bases[0]), leo)
        if recovered_any:
            for segment in list(self._segments.values()):
                segment.flush()
            fsync_dir(self.dir)
            self.recovery_point = leo
        else:
            self.recovery_point = min(max(recovery_point, 0), leo)
        if not clean_shutdown or recovered_any:
            # after a clean shutdown the checkpoint matches the log already; rewriting it would cost an
            # fsync per partition on every restart (an epoch starting at an empty log's end is kept)
            self.leader_epoch_cache.truncate_from_end(leo)
        self.leader_epoch_cache.truncate_from_start(self.log_start_offset)
        self.aborted_txns.load(self._bases)
        self.aborted_txns.truncate_to(leo)
        self.last_flush_ms = now

    def _add_segment(self, segment: Segment) -> None:
        self._segments[segment.base_offset] = segment
        bisect.insort(self._bases, segment.base_offset)

    def _set_jitter(self, segment: Segment) -> None:
        jitter = min(self.config.segment_jitter_ms, self.config.segment_ms)
        segment.rolling_jitter_ms = self._rng.randrange(jitter) if jitter > 0 else 0

    # properties ---------------------------------------------------------------------------------
    @property
    def active_segment(self) -> Segment:
        return self._segments[self._bases[-1]]

    @property
    def log_end_offset(self) -> int:
        return self.active_segment.next_offset

    @property
    def size_in_bytes(self) -> int:
        return sum(segment.size for segment in self._segments.values())

    @property
    def segment_count(self) -> int:
        return len(self._bases)

    def segments(self) -> list[Segment]:
        return [self._segments[base] for base in self._bases]

    def _floor_segment(self, offset: int) -> Segment | None:
        i = bisect.bisect_right(self._bases, offset) - 1
        return self._segments[self._bases[i]] if i >= 0 else None

    # appending ----------------------------------------------------------------------------------
    def append(
        self,
        records: bytes | bytearray | memoryview,
        *,
        leader_epoch: int,
        assign_offsets: bool = True,
        now_ms: int | None = None,
        headers: list[BatchHeader] | None = None,
        in_place: bool = False,
    ) -> AppendInfo:
        """Validate and append a record set (one or more v2 batches); see the module docstring.

        `in_place`: the caller hands over a writable `records` it will not use again, so offsets, epochs
        and LogAppendTime are written into it instead of into a private copy (a read-only buffer is
        still copied). Follower appends (`assign_offsets=False`) rewrite nothing and never copy."""
        if self.closed:
            raise KafkaStorageError(f"log {self.dir.name} is closed")
        if self.pending_topic_id is not None:
            self.flush_metadata_file()
        if headers is None:
            headers = validate_batches(records, check_counts=assign_offsets)
        if now_ms is None:
            now_ms = self._now_ms()
        total = len(records)
        if total > self.config.segment_bytes:
            raise RecordListTooLargeError(
                f"record set of {total} bytes exceeds segment.bytes {self.config.segment_bytes}"
            )
        if assign_offsets:
            self._check_leader_rules(records, headers, now_ms)
        buf: bytearray | memoryview | bytes
        if not assign_offsets or (in_place and _writable(records)):
            buf = records
        else:
            buf = bytearray(records)
        log_append_time = -1
        if assign_offsets:
            next_offset = self.log_end_offset
            stamp = self.config.log_append_time
            if stamp:
                log_append_time = now_ms
            pos = 0
            new_headers = []
            for header in headers:
                set_base_offset(buf, pos, next_offset)  # type: ignore[arg-type]
                if leader_epoch >= 0:
                    set_partition_leader_epoch(buf, pos, leader_epoch)  # type: ignore[arg-type]
                if stamp:
                    stamp_log_append_time(buf, pos, now_ms)  # type: ignore[arg-type]
                new_headers.append(parse_header(buf, pos))
                next_offset += header.last_offset_delta + 1
                pos += header.size
            headers = new_headers
        else:
            expected = self.log_end_offset
            for header in headers:
                if header.base_offset < expected:
                    raise UnexpectedAppendOffsetError(
                        f"batch at offset {header.base_offset} is below the expected {expected}"
                    )
                expected = header.next_offset
        first_offset = headers[0].base_offset
        last_offset = headers[-1].last_offset
        segment = self.active_segment
        if last_offset - segment.base_offset > 2**31 - 1 or segment.should_roll(
            total, last_offset, now_ms, self.config
        ):
            segment = self.roll(max(first_offset, self.log_end_offset), now_ms=now_ms)
        segment.append(buf, headers)
        if assign_offsets and leader_epoch >= 0:
            self.leader_epoch_cache.assign(leader_epoch, first_offset)
        elif not assign_offsets:
            for header in headers:
                if header.partition_leader_epoch > self.leader_epoch_cache.latest_epoch:
                    self.leader_epoch_cache.assign(header.partition_leader_epoch, header.base_offset)
        max_ts, offset_of_max = -1, -1
        for header in headers:
            if header.max_timestamp > max_ts:
                max_ts, offset_of_max = header.max_timestamp, header.last_offset
        info = AppendInfo(
            first_offset=first_offset,
            last_offset=last_offset,
            max_timestamp=max_ts,
            offset_of_max_timestamp=offset_of_max,
            log_append_time=log_append_time,
            num_batches=len(headers),
            num_records=sum(h.records_count for h in headers),
            valid_bytes=total,
            headers=headers,
        )
        if self.schedule_flush is not None and self.flush_messages_due:
            self.schedule_flush()
        return info

    def _check_leader_rules(
        self, records: bytes | bytearray | memoryview, headers: list[BatchHeader], now_ms: int
    ) -> None:
        """Kafka's checks of a produced record set, batch by batch: max.message.bytes, then the record
        rules (`strom.storage.record_validation`: keys on compacted topics, timestamps), which read a
        batch's records only when a rule needs them."""
        config = self.config
        pos = 0
        for header in headers:
            if header.size > config.max_message_bytes:
                raise RecordTooLargeError(
                    f"batch of {header.size} bytes exceeds max.message.bytes {config.max_message_bytes}"
                )
            if needs_records(header, config, now_ms):
                view = memoryview(records)[pos : pos + header.size]
                check_records(view, header, config, now_ms, f"{self.topic}-{self.partition}")
            pos += header.size

    def roll(self, new_base: int | None = None, *, now_ms: int | None = None) -> Segment:
        """Start a new active segment at the log end (or `new_base`); an empty active one is kept."""
        active = self.active_segment
        base = self.log_end_offset if new_base is None else max(new_base, self.log_end_offset)
        if active.size == 0 and active.base_offset == base:
            return active
        if now_ms is None:
            now_ms = self._now_ms()
        if active.size == 0:
            # an empty active segment at a lower base (follower jump) is replaced rather than kept
            self._segments.pop(active.base_offset)
            self._bases.remove(active.base_offset)
            active.delete_files()
        else:
            active.on_becoming_inactive()
        segment = Segment(self.dir, base, self.config, now_ms)
        segment.prepare_for_appends()
        self._set_jitter(segment)
        self._add_segment(segment)
        self._roll_flush_offset = base
        self._dir_dirty = True
        if self.on_roll is not None:
            self.on_roll(base)
        return segment

    # reading ------------------------------------------------------------------------------------
    def read(
        self, start_offset: int, max_bytes: int, *, max_offset: int | None = None, min_one_batch: bool = True
    ) -> LogSlice:
        """Whole batches from the one holding `start_offset`, within one segment, at most `max_bytes`
        (unless `min_one_batch` and the first batch is bigger) and below `max_offset`."""
        leo = self.log_end_offset
        if start_offset < self.log_start_offset or start_offset > leo:
            raise OffsetOutOfRangeError(
                f"offset {start_offset} is outside [{self.log_start_offset}, {leo}] of {self.dir.name}"
            )
        upper = leo if max_offset is None else min(max_offset, leo)
        if start_offset >= upper:
            return self._empty_slice(start_offset)
        i = max(0, bisect.bisect_right(self._bases, start_offset) - 1)
        while i < len(self._bases):
            segment = self._segments[self._bases[i]]
            found = segment.find_batch(start_offset)
            if found is not None:
                return self._slice_from(segment, found[0], found[1], max_bytes, upper, min_one_batch)
            i += 1
        return self._empty_slice(start_offset)

    def _slice_from(
        self, segment: Segment, position: int, first: BatchHeader, max_bytes: int, upper: int, min_one: bool
    ) -> LogSlice:
        length = segment.slice_length(position, first, max_bytes, upper, min_one)
        return LogSlice(segment.read_file, position, length, first.base_offset)

    def _empty_slice(self, offset: int) -> LogSlice:
        active = self.active_segment
        return LogSlice(active.read_file, active.size, 0, offset)

    def iter_batches(self, start_offset: int = 0) -> Iterator[tuple[BatchHeader, memoryview]]:
        """Every whole batch whose last offset is >= `start_offset`, in order (for replays)."""
        for base in list(self._bases):
            segment = self._segments.get(base)
            if segment is None or segment.next_offset <= start_offset:
                continue
            _, pos = segment.offset_index.lookup(start_offset)
            for position, header in segment.scan(pos):
                if header.last_offset < start_offset:
                    continue
                yield header, memoryview(segment.pread(header.size, position))

    def append_aborted_txn(self, entry: AbortedTxn) -> None:
        """Record an aborted transaction in the index of the segment holding its ABORT marker."""
        segment = self._floor_segment(entry.last_offset) or self.active_segment
        self.aborted_txns.append(segment.base_offset, entry)

    def collect_aborted_txns(self, fetch_offset: int, upper_bound: int) -> list[AbortedTxn]:
        """Aborted transactions overlapping [fetch_offset, upper_bound), for read_committed fetches."""
        return self.aborted_txns.collect(fetch_offset, upper_bound)

    def fetch_offset_by_timestamp(self, timestamp: int) -> tuple[int, int, int] | None:
        """(offset, timestamp, leader epoch) for ListOffsets; None when no record qualifies."""
        cache = self.leader_epoch_cache
        if timestamp == LATEST_TIMESTAMP:
            return self.log_end_offset, -1, cache.latest_epoch
        if timestamp in (EARLIEST_TIMESTAMP, EARLIEST_LOCAL_TIMESTAMP):
            return self.log_start_offset, -1, cache.epoch_for_offset(self.log_start_offset)
        if timestamp == MAX_TIMESTAMP:
            return self._max_timestamp_offset()
        if timestamp < 0:
            return None
        for segment in self.segments():
            if segment.next_offset <= self.log_start_offset or segment.max_timestamp < timestamp:
                continue
            _, near = segment.time_index.lookup(timestamp)
            _, position = segment.offset_index.lookup(max(near, self.log_start_offset))
            for pos, header in segment.scan(position):
                if header.last_offset < self.log_start_offset or header.max_timestamp < timestamp:
                    continue
                found = self._record_at_or_after(segment, pos, header, timestamp)
                if found is not None:
                    return found
        return None

    def _record_at_or_after(
        self, segment: Segment, pos: int, header: BatchHeader, timestamp: int
    ) -> tuple[int, int, int] | None:
        epoch = header.partition_leader_epoch
        if header.timestamp_type == 1:
            offset = max(header.base_offset, self.log_start_offset)
            return offset, header.max_timestamp, epoch
        for record in decode_records(segment.pread(header.size, pos)):
            offset = header.base_offset + record.offset_delta
            ts = header.base_timestamp + record.timestamp_delta
            if ts >= timestamp and offset >= self.log_start_offset:
                return offset, ts, epoch
        return None

    def _max_timestamp_offset(self) -> tuple[int, int, int] | None:
        best: Segment | None = None
        for segment in self.segments():
            if (
                segment.size
                and segment.max_timestamp >= 0
                and (best is None or segment.max_timestamp > best.max_timestamp)
            ):
                best = segment
        if best is None:
            return None
        found = best.find_batch(best.offset_of_max_timestamp)
        if found is None:
            return None
        pos, header = found
        return self._record_at_or_after(best, pos, header, best.max_timestamp)

    def end_offset_for_epoch(self, epoch: int) -> tuple[int, int]:
        """OffsetForLeaderEpoch: (epoch, end offset), (-1, -1) when unknown."""
        return self.leader_epoch_cache.end_offset_for(epoch, self.log_end_offset)

    # truncation and deletion --------------------------------------------------------------------
    def truncate_to(self, offset: int) -> None:
        """Remove every batch from the one holding `offset` on (a follower diverging from its leader)."""
        if offset < 0:
            raise OffsetOutOfRangeError(f"cannot truncate to negative offset {offset}")
        if offset >= self.log_end_offset:
            return
        if offset < self._bases[0]:
            self.truncate_fully_and_start_at(offset)
            return
        doomed_bases = [b for b in self._bases if b > offset]
        for base in doomed_bases:
            segment = self._segments.pop(base)
            self._bases.remove(base)
            segment.delete_files()
        self.aborted_txns.drop_segments(doomed_bases)
        self.aborted_txns.truncate_to(offset)
        active = self.active_segment
        active.truncate_to(offset)
        active.prepare_for_appends()
        leo = self.log_end_offset
        self.recovery_point = min(self.recovery_point, leo)
        self.log_start_offset = min(self.log_start_offset, leo)
        self.leader_epoch_cache.truncate_from_end(leo)

    def truncate_fully_and_start_at(self, offset: int) -> None:
        """Drop every segment and start empty at `offset` (a follower far behind the leader's start)."""
        for segment in self.segments():
            segment.delete_files()
        self.aborted_txns.clear()
        self._segments.clear()
        self._bases = []
        segment = Segment(self.dir, offset, self.config, self._now_ms())
        segment.prepare_for_appends()
        self._set_jitter(segment)
        self._add_segment(segment)
        self.log_start_offset = offset
        self.recovery_point = offset
        self.leader_epoch_cache.clear()
        self._dir_dirty = True

    def delete_records_before(self, offset: int) -> int:
        """DeleteRecords: move the log start offset up to `offset` and delete the segments wholly below
        it; returns the new log start offset (the low watermark)."""
        if offset > self.log_end_offset or offset < 0:
            raise OffsetOutOfRangeError(
                f"cannot delete records before {offset}: log end is {self.log_end_offset}"
            )
        if offset > self.log_start_offset:
            self.log_start_offset = offset
            self.leader_epoch_cache.truncate_from_start(offset)
        self._delete_while(lambda seg, nxt: nxt <= self.log_start_offset, self._now_ms())
        return self.log_start_offset

    def delete_old_segments(self, now_ms: int | None = None) -> int:
        """Retention: delete whole non-active segments below the log start offset, older than
        retention.ms (by largest timestamp), or while the log exceeds retention.bytes. Returns how many."""
        if now_ms is None:
            now_ms = self._now_ms()
        deleted = self._delete_while(lambda seg, nxt: nxt <= self.log_start_offset, now_ms)
        config = self.config
        if config.delete and config.retention_ms >= 0:
            deleted += self._delete_while(
                lambda seg, nxt: now_ms - seg.largest_timestamp() > config.retention_ms, now_ms
            )
        if config.delete and config.retention_bytes >= 0:
            excess = self.size_in_bytes - config.retention_bytes

            def over_size(seg: Segment, nxt: int) -> bool:
                nonlocal excess
                if excess - seg.size >= 0:
                    excess -= seg.size
                    return True
                return False

            deleted += self._delete_while(over_size, now_ms)
        return deleted

    def _delete_while(self, predicate: Callable[[Segment, int], bool], now_ms: int) -> int:
        doomed: list[Segment] = []
        for i, base in enumerate(self._bases[:-1]):  # never the active segment
            segment = self._segments[base]
            if not predicate(segment, self._bases[i + 1]):
                break
            doomed.append(segment)
        if not doomed:
            return 0
        for segment in doomed:
            del self._segments[segment.base_offset]
        self._bases = self._bases[len(doomed) :]
        self.aborted_txns.drop_segments([segment.base_offset for segment in doomed])
        if self.log_start_offset < self._bases[0]:
            self.log_start_offset = self._bases[0]
            self.leader_epoch_cache.truncate_from_start(self.log_start_offset)
        self.recovery_point = max(self.recovery_point, self._bases[0])
        expire = now_ms + self.config.file_delete_delay_ms
        for segment in doomed:
            segment.rename_to_deleted()
            with self._pending_lock:
                self._pending_deletes.append((expire, segment))
        return len(doomed)

    def replace_segments(self, new: Segment, old: list[Segment], now_ms: int | None = None) -> None:
        """Put `new` in place of the non-active segments `old`, whose files the caller already renamed
        to `.deleted` (the log cleaner's swap, strom.storage.swap); they are removed after
        file.delete.delay.ms."""
        if now_ms is None:
            now_ms = self._now_ms()
        self.aborted_txns.merge_segments(new.base_offset, [segment.base_offset for segment in old])
        for segment in old:
            del self._segments[segment.base_offset]
            self._bases.remove(segment.base_offset)
        self._add_segment(new)
        expire = now_ms + self.config.file_delete_delay_ms
        with self._pending_lock:
            self._pending_deletes.extend((expire, segment) for segment in old)
        self._dir_dirty = True

    def delete_expired_files(self, now_ms: int | None = None) -> int:
        """Remove `.deleted` segments whose file.delete.delay.ms has passed; returns how many."""
        if now_ms is None:
            now_ms = self._now_ms()
        with self._pending_lock:
            expired = [seg for expire, seg in self._pending_deletes if expire <= now_ms]
            self._pending_deletes = [(e, s) for e, s in self._pending_deletes if e > now_ms]
        for segment in expired:
            segment.delete_files()
        return len(expired)

    @property
    def pending_deletes(self) -> int:
        with self._pending_lock:
            return len(self._pending_deletes)

    # flushing and lifecycle ---------------------------------------------------------------------
    @property
    def flush_messages_due(self) -> bool:
        """flush.messages or more messages are above the recovery point (Kafka flushes after N)."""
        unflushed = self.log_end_offset - self.recovery_point
        return unflushed > 0 and unflushed >= self.config.flush_messages

    def flush_due(self, now_ms: int) -> int | None:
        """The offset a flush should reach now (flush.messages reached, a roll happened, or flush.ms
        passed with unflushed data), or None."""
        if self.flush_messages_due:
            return self.log_end_offset
        if self._roll_flush_offset is not None:
            target = self._roll_flush_offset
            if (
                now_ms - self.last_flush_ms >= self.config.flush_ms
                and self.log_end_offset > self.recovery_point
            ):
                target = self.log_end_offset
            return target
        if self.log_end_offset > self.recovery_point and now_ms - self.last_flush_ms >= self.config.flush_ms:
            return self.log_end_offset
        return None

    def flush(self, up_to: int | None = None) -> None:
        """fsync every segment holding offsets in [recovery point, up_to) and move the recovery point.
        Blocking: call through asyncio.to_thread from the event loop."""
        target = self.log_end_offset if up_to is None else up_to
        roll_offset = self._roll_flush_offset  # read once: a roll on the loop thread may replace it
        if target <= self.recovery_point and roll_offset is None:
            return
        bases = list(self._bases)
        segments = self._segments
        for i, base in enumerate(bases):
            segment = segments.get(base)
            if segment is None or base >= target:
                continue
            upper = bases[i + 1] if i + 1 < len(bases) else None
            if upper is not None and upper <= self.recovery_point:
                continue
            segment.flush()
        if self._dir_dirty:
            self._dir_dirty = False
            fsync_dir(self.dir)
        if roll_offset is not None and roll_offset <= target and self._roll_flush_offset == roll_offset:
            self._roll_flush_offset = None
        self.recovery_point = max(self.recovery_point, min(target, self.log_end_offset))
        self.last_flush_ms = self._now_ms()

    def update_config(self, config: LogConfig) -> None:
        self.config = config
        for segment in self._segments.values():
            segment.index_interval_bytes = config.index_interval_bytes

    def flush_metadata_file(self) -> None:
        """Write the pending partition.metadata (durably), if any: from the log's owner in a worker thread
        soon after the log was created, or on the loop thread before the first append if that comes
        first (a lock keeps the two from writing at once)."""
        with self._metadata_lock:
            topic_id = self.pending_topic_id
            if topic_id is not None and not self.closed:
                write_partition_metadata(self.dir / PARTITION_METADATA, topic_id)
            self.pending_topic_id = None

    def close(self) -> None:
        """Close every segment (the active one's indexes are trimmed) and finish pending deletes."""
        if self.closed:
            return
        self.flush_metadata_file()
        self.closed = True
        for segment in self.segments():
            segment.close()
        with self._pending_lock:
            pending, self._pending_deletes = self._pending_deletes, []
        for _expire, segment in pending:
            segment.delete_files()

    def delete(self) -> None:
        """Close and remove the whole partition directory now."""
        self.pending_topic_id = None
        self.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __repr__(self) -> str:
        return (
            f"Log({self.dir.name}, start={self.log_start_offset}, end={self.log_end_offset},"
            f" segments={len(self._bases)})"
        )
