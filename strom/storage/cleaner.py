"""Log compaction: one cleaning pass over one log (the work Kafka's LogCleaner.Cleaner does).

A pass cleans the log from its first segment up to the first uncleanable offset (the active segment's
base, or the first segment younger than min.compaction.lag.ms):

1. Build an `OffsetMap` (key -> latest offset) over the dirty part, from the cleaner checkpoint on.
   When the map is full the scan stops at a batch boundary; the rest is cleaned by a later pass.
2. Rewrite every segment below the map's end, in groups whose combined size fits segment.bytes (and
   whose offsets fit the index's int32 relative offsets), each into one `<base>.log.cleaned` file:
   - a record is kept when it is the latest of its key (its offset >= the map's offset for the key);
     records without a key are dropped, as Kafka does;
   - tombstones (null value) follow KIP-534: the first pass that keeps a tombstone stamps its batch
     with a delete horizon (now + delete.retention.ms, stored as the batch's base timestamp with
     attribute bit 6); a later pass after the horizon drops it;
   - a batch whose records all stay (and needs no horizon) is copied byte for byte; otherwise it is
     rebuilt with the same base offset, codec, producer id/epoch/base sequence, partition leader epoch,
     timestamp type and transactional flag, and its records' own offset deltas and timestamps, so
     offsets keep their gaps and consumers see the same metadata;
   - control batches are copied untouched (transactions are not implemented yet, so aborted data is
     not removed and markers are never dropped).
3. The caller swaps each group in on the thread that owns the log (`strom.storage.swap`).

Runs in a worker thread and never mutates the `Log`: it reads the old segments through file
descriptors of its own, opened by `prepare_clean` on the owning thread, so a concurrent retention,
truncation or deletion cannot pull files from under it (the swap then notices and is abandoned).
I/O is limited to log.cleaner.io.max.bytes.per.second by a `Throttler`.
"""

from __future__ import annotations

import contextlib
import os
import struct
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from strom.config import LogConfig
from strom.protocol.errors import KafkaError
from strom.protocol.record_batch import (
    BATCH_HEADER_SIZE,
    LOG_OVERHEAD,
    BatchHeader,
    parse_header,
    update_crc,
)
from strom.protocol.records import Record, build_batch, decode_records
from strom.storage.log import Log
from strom.storage.offset_map import OffsetMap
from strom.storage.segment import CLEANED_SUFFIX, Segment
from strom.storage.swap import CleanedGroup, remove_files

__all__ = [
    "DELETE_HORIZON_BIT",
    "CleanJob",
    "CleanResult",
    "CleanerAbortedError",
    "SourceSegment",
    "Throttler",
    "delete_horizon_of",
    "group_segments",
    "prepare_clean",
    "run_clean",
]

DELETE_HORIZON_BIT = 0x40  # KIP-534: the base timestamp holds the delete horizon
_TIMESTAMP_TYPE_BIT = 0x08
_ATTRIBUTES_AT = 21
_MAX_TIMESTAMP_AT = 35
_INT16 = struct.Struct(">h")
_INT64 = struct.Struct(">q")
_READ_CHUNK = 1 << 20
_WRITE_CHUNK = 1 << 20
_INT32_MAX = 2**31 - 1


class CleanerAbortedError(KafkaError):
    """The cleaner was asked to stop (broker shutdown) in the middle of a pass."""


def delete_horizon_of(header: BatchHeader) -> int | None:
    """The KIP-534 delete horizon of a batch, or None if the cleaner has not stamped one."""
    return header.base_timestamp if header.attributes & DELETE_HORIZON_BIT else None


class Throttler:
    """Keeps a worker's I/O under `rate` bytes a second by sleeping (Kafka's Throttler)."""

    def __init__(
        self,
        rate: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        check_interval_s: float = 0.1,
    ) -> None:
        self.rate = rate
        self._clock = clock
        self._sleep = sleep
        self._interval = check_interval_s
        self._start = clock()
        self._observed = 0.0
        self.slept_s = 0.0

    def maybe_throttle(self, nbytes: int) -> None:
        if self.rate <= 0 or self.rate >= 1e300:
            return
        self._observed += nbytes
        elapsed = self._clock() - self._start
        if elapsed < self._interval and self._observed < self.rate * self._interval:
            return
        needed = self._observed / self.rate
        if needed > elapsed:
            self._sleep(needed - elapsed)
            self.slept_s += needed - elapsed
        self._start = self._clock()
        self._observed = 0.0


@dataclass(slots=True)
class SourceSegment:
    """A non-active segment as the cleaner sees it: its own read-only fd and the size it had."""

    segment: Segment
    fd: int
    size: int
    base_offset: int
    end_offset: int  # the next segment's base offset (exclusive end of this segment's offsets)
    index_size: int


@dataclass(slots=True)
class CleanJob:
    log: Log
    config: LogConfig
    first_dirty: int
    first_uncleanable: int
    sources: list[SourceSegment]
    now_ms: int

    def close(self) -> None:
        for source in self.sources:
            with contextlib.suppress(OSError):
                os.close(source.fd)
        self.sources = []


@dataclass(slots=True)
class CleanResult:
    groups: list[CleanedGroup] = field(default_factory=list)
    end_offset: int = 0  # the new cleaner checkpoint: everything below is clean
    next_delete_horizon: int | None = None  # earliest horizon of a tombstone still in the log
    bytes_read: int = 0
    bytes_written: int = 0
    records_read: int = 0
    records_kept: int = 0
    elapsed_s: float = 0.0


def prepare_clean(log: Log, first_dirty: int, first_uncleanable: int, now_ms: int) -> CleanJob:
    """On the thread that owns `log`: open the non-active segments below `first_uncleanable`."""
    segments = log.segments()
    sources: list[SourceSegment] = []
    for i, segment in enumerate(segments[:-1]):
        if segment.base_offset >= first_uncleanable:
            break
        fd = os.open(segment.log_path, os.O_RDONLY)
        sources.append(
            SourceSegment(
                segment=segment,
                fd=fd,
                size=segment.size,
                base_offset=segment.base_offset,
                end_offset=segments[i + 1].base_offset,
                index_size=segment.offset_index.entries * segment.offset_index.entry_size,
            )
        )
    return CleanJob(log, log.config, first_dirty, first_uncleanable, sources, now_ms)


def _batches(source: SourceSegment, throttler: Throttler | None) -> Iterator[tuple[BatchHeader, memoryview]]:
    """Whole batches of a source segment, read in large chunks."""
    pos = 0
    while pos + BATCH_HEADER_SIZE <= source.size:
        chunk = os.pread(source.fd, min(_READ_CHUNK, source.size - pos), pos)
        if throttler is not None:
            throttler.maybe_throttle(len(chunk))
        view = memoryview(chunk)
        at = 0
        while len(view) - at >= BATCH_HEADER_SIZE:
            header = parse_header(view, at)
            if header.batch_length < BATCH_HEADER_SIZE - LOG_OVERHEAD:
                return
            if at + header.size > len(view):
                break
            yield header, view[at : at + header.size]
            at += header.size
        if at == 0:
            # one batch bigger than the chunk
            header = parse_header(view, 0)
            if pos + header.size > source.size:
                return
            whole = os.pread(source.fd, header.size, pos)
            if throttler is not None:
                throttler.maybe_throttle(len(whole))
            yield header, memoryview(whole)
            at = header.size
        pos += at


def group_segments(
    sources: list[SourceSegment], max_size: int, max_index_size: int
) -> list[list[SourceSegment]]:
    """Consecutive segments whose combined size fits `max_size`, index fits `max_index_size` and
    offsets fit int32 relative offsets (Kafka's groupSegmentsBySize)."""
    groups: list[list[SourceSegment]] = []
    rest = list(sources)
    while rest:
        group = [rest.pop(0)]
        size = group[0].size
        index_size = group[0].index_size
        while (
            rest
            and size + rest[0].size <= max_size
            and index_size + rest[0].index_size <= max_index_size
            and rest[0].end_offset - 1 - group[0].base_offset <= _INT32_MAX
        ):
            size += rest[0].size
            index_size += rest[0].index_size
            group.append(rest.pop(0))
        groups.append(group)
    return groups


def _check_abort(abort: threading.Event | None) -> None:
    if abort is not None and abort.is_set():
        raise CleanerAbortedError("log cleaner stopping")


def _build_offset_map(
    job: CleanJob,
    offset_map: OffsetMap,
    throttler: Throttler | None,
    abort: threading.Event | None,
    result: CleanResult,
) -> int:
    """Fill the map from the dirty part; returns the offset the map covers up to (exclusive)."""
    for source in job.sources:
        if source.end_offset <= job.first_dirty:
            continue
        for header, view in _batches(source, throttler):
            if header.last_offset < job.first_dirty:
                continue
            _check_abort(abort)
            if header.is_control:
                continue
            if len(offset_map) and not offset_map.room_for(header.records_count):
                return header.base_offset
            result.bytes_read += header.size
            for record in decode_records(view):
                if record.key is not None:
                    offset_map.put(record.key, header.base_offset + record.offset_delta)
    return job.first_uncleanable


def _rebuild(header: BatchHeader, kept: list[Record], horizon: int | None) -> bytes:
    """A new batch holding `kept` with the original batch's metadata (see the module docstring)."""
    base_ts = header.base_timestamp if horizon is None else horizon
    if horizon is not None and horizon != header.base_timestamp:
        records = [
            Record(
                r.offset_delta, header.base_timestamp + r.timestamp_delta - horizon, r.key, r.value, r.headers
            )
            for r in kept
        ]
    else:
        records = kept
    buf = bytearray(
        build_batch(
            records,
            base_offset=header.base_offset,
            codec=header.compression,
            base_timestamp=base_ts,
            producer_id=header.producer_id,
            producer_epoch=header.producer_epoch,
            base_sequence=header.base_sequence,
            transactional=header.is_transactional,
            partition_leader_epoch=header.partition_leader_epoch,
        )
    )
    attributes = _INT16.unpack_from(buf, _ATTRIBUTES_AT)[0]
    if header.timestamp_type == 1:
        attributes |= _TIMESTAMP_TYPE_BIT
        _INT64.pack_into(buf, _MAX_TIMESTAMP_AT, header.max_timestamp)
    if horizon is not None:
        attributes |= DELETE_HORIZON_BIT
    _INT16.pack_into(buf, _ATTRIBUTES_AT, attributes)
    update_crc(buf, 0)
    return bytes(buf)


def _filter_batch(
    header: BatchHeader,
    view: memoryview,
    offset_map: OffsetMap,
    now_ms: int,
    delete_retention_ms: int,
    result: CleanResult,
) -> tuple[bytes | memoryview | None, int | None]:
    """(batch bytes to keep or None, the delete horizon of kept tombstones or None)."""
    if header.is_control:
        return view, None
    records = decode_records(view)
    result.records_read += len(records)
    horizon = delete_horizon_of(header)
    kept: list[Record] = []
    tombstones = False
    for record in records:
        if record.key is None:
            continue
        if offset_map.get(record.key) > header.base_offset + record.offset_delta:
            continue
        if record.value is None:
            if horizon is not None and now_ms >= horizon:
                continue
            tombstones = True
        kept.append(record)
    result.records_kept += len(kept)
    if not kept:
        return None, None
    if tombstones and horizon is None:
        horizon = now_ms + delete_retention_ms
        return _rebuild(header, kept, horizon), horizon
    if len(kept) == len(records):
        return view, horizon if tombstones else None
    return _rebuild(header, kept, horizon), horizon if tombstones else None


def _clean_group(
    job: CleanJob,
    group: list[SourceSegment],
    offset_map: OffsetMap,
    throttler: Throttler | None,
    abort: threading.Event | None,
    result: CleanResult,
) -> bool:
    """Write the group's cleaned segment; returns whether anything differs from the originals."""
    log_dir = job.log.dir
    base = group[0].base_offset
    remove_files(log_dir, base, CLEANED_SUFFIX)
    cleaned = Segment(log_dir, base, job.config, job.now_ms, suffix=CLEANED_SUFFIX)
    changed = len(group) > 1
    try:
        cleaned.prepare_for_appends()
        pending = bytearray()
        headers: list[BatchHeader] = []
        for source in group:
            for header, view in _batches(source, throttler):
                _check_abort(abort)
                data, horizon = _filter_batch(
                    header, view, offset_map, job.now_ms, job.config.delete_retention_ms, result
                )
                if data is None:
                    changed = True
                    continue
                if data is not view:
                    changed = True
                    header = parse_header(data)
                if horizon is not None and (
                    result.next_delete_horizon is None or horizon < result.next_delete_horizon
                ):
                    result.next_delete_horizon = horizon
                pending += data
                headers.append(header)
                if len(pending) >= _WRITE_CHUNK:
                    cleaned.append(pending, headers)
                    result.bytes_written += len(pending)
                    if throttler is not None:
                        throttler.maybe_throttle(len(pending))
                    pending, headers = bytearray(), []
        if pending:
            cleaned.append(pending, headers)
            result.bytes_written += len(pending)
        cleaned.on_becoming_inactive()
        cleaned.flush()
    finally:
        cleaned.close(trim=False)
    # retention reads an empty segment's age from its file's mtime: carry the originals' (Kafka does)
    modified = max(os.fstat(source.fd).st_mtime for source in group)
    os.utime(cleaned.log_path, (modified, modified))
    if not changed:
        remove_files(log_dir, base, CLEANED_SUFFIX)
    return changed


def run_clean(
    job: CleanJob,
    offset_map: OffsetMap,
    *,
    throttler: Throttler | None = None,
    abort: threading.Event | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> CleanResult:
    """One cleaning pass (blocking; runs in a worker thread). The returned groups have their
    `.cleaned` files written and fsynced; swap them in with `strom.storage.swap.swap_in`."""
    started = clock()
    result = CleanResult()
    offset_map.clear()
    written: list[int] = []
    try:
        end = _build_offset_map(job, offset_map, throttler, abort, result)
        result.end_offset = max(end, job.first_dirty)
        to_clean = [s for s in job.sources if s.base_offset < result.end_offset]
        config = job.config
        for group in group_segments(to_clean, config.segment_bytes, config.segment_index_bytes):
            written.append(group[0].base_offset)
            if _clean_group(job, group, offset_map, throttler, abort, result):
                result.groups.append(
                    CleanedGroup(
                        base_offset=group[0].base_offset,
                        old=[s.segment for s in group],
                        old_sizes=[s.size for s in group],
                    )
                )
    except BaseException:
        for base in written:
            remove_files(job.log.dir, base, CLEANED_SUFFIX)
        raise
    result.elapsed_s = clock() - started
    return result
