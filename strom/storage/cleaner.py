"""Log compaction: one cleaning pass over one log (the work Kafka's LogCleaner.Cleaner does).

A pass cleans the log from its first segment up to the first uncleanable offset (the active segment's
base, the first segment younger than min.compaction.lag.ms, or the first segment reaching the high
watermark the log's owner allows cleaning to):

1. Build an `OffsetMap` (key -> latest offset) over the dirty part, from the cleaner checkpoint on.
   When the map is full the scan stops at a batch boundary; the rest is cleaned by a later pass.
2. Rewrite every segment below the map's end, in groups whose combined size fits segment.bytes (and
   whose offsets fit the index's int32 relative offsets), each into one `<base>.log.cleaned` file:
   - a record is kept when it is the latest of its key (its offset >= the map's offset for the key);
     records without a key are dropped, as Kafka does;
   - tombstones (null value) follow KIP-534: the first pass that keeps a tombstone stamps its batch
     with a delete horizon (now + delete.retention.ms, stored as the batch's base timestamp with
     attribute bit 6); a later pass after the horizon drops it;
   - per batch, the cheapest rewrite that is correct: a batch whose records all stay (and needs no
     horizon) is copied byte for byte; one whose records all go is dropped; otherwise the kept
     records' bytes are copied out of the (decompressed) batch into a new batch with the same header
     fields (base offset, codec, producer id/epoch/base sequence, partition leader epoch, timestamp
     type, transactional flag), re-compressed with the batch's codec. Only the first stamping of a
     delete horizon re-encodes records, because their timestamp deltas move to the new base
     timestamp. Records are scanned for their key and null-value flag only; values are never copied
     out of the buffer;
   - control batches are copied untouched (transactions are not implemented yet, so aborted data is
     not removed and markers are never dropped).
3. The caller swaps each group in on the thread that owns the log (`strom.storage.swap`).

`prepare_clean` runs on the thread that owns the `Log` and turns it into a `CleanJob` of plain data
(file paths, offsets, sizes, the config); `run_clean` needs nothing else, so it runs in a worker
process (`strom.storage.cleaner_pool`) and never touches the broker's objects: it reads the listed
`.log` files up to the sizes they had when the job was made and writes only `.cleaned` files. A
segment that retention, truncation or deletion removed meanwhile fails the pass
(`CleanerSourceChangedError`) or is caught by the swap, which is then abandoned.
I/O is limited to log.cleaner.io.max.bytes.per.second by a `Throttler`.
"""

from __future__ import annotations

import contextlib
import os
import struct
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from strom.config import LogConfig
from strom.protocol.compression import compress, decompress
from strom.protocol.errors import CorruptRecordError, KafkaError
from strom.protocol.record_batch import (
    BATCH_HEADER_SIZE,
    LOG_OVERHEAD,
    MAGIC_V2,
    BatchHeader,
    parse_header,
    update_crc,
)
from strom.protocol.records import Record, build_batch, decode_records, read_varint
from strom.storage.offset_map import OffsetMap
from strom.storage.segment import CLEANED_SUFFIX, Segment
from strom.storage.swap import CleanedGroup, remove_files

if TYPE_CHECKING:
    from strom.storage.log import Log

__all__ = [
    "DELETE_HORIZON_BIT",
    "CleanJob",
    "CleanResult",
    "CleanerAbortedError",
    "CleanerSourceChangedError",
    "PreparedClean",
    "SourceSegment",
    "Throttler",
    "WrittenGroup",
    "delete_horizon_of",
    "group_segments",
    "prepare_clean",
    "run_clean",
]

DELETE_HORIZON_BIT = 0x40  # KIP-534: the base timestamp holds the delete horizon
_TIMESTAMP_TYPE_BIT = 0x08
_ATTRIBUTES_AT = 21
_MAX_TIMESTAMP_AT = 35
_HEADER = struct.Struct(">qiibIhiqqqhii")
_INT16 = struct.Struct(">h")
_INT64 = struct.Struct(">q")
_READ_CHUNK = 1 << 20
_WRITE_CHUNK = 1 << 20
_INT32_MAX = 2**31 - 1
DEFAULT_MAP_BYTES = 128 << 20


class CleanerAbortedError(KafkaError):
    """The cleaner was asked to stop (broker shutdown) in the middle of a pass."""


class CleanerSourceChangedError(KafkaError):
    """A segment the pass was reading was removed or shortened meanwhile; the pass is dropped."""


class AbortSignal(Protocol):
    """threading.Event or multiprocessing.Event: set when the pass must stop."""

    def is_set(self) -> bool: ...


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


@dataclass(frozen=True, slots=True)
class SourceSegment:
    """A non-active segment as the pass sees it: its file and the size it had when the job was made."""

    path: str
    base_offset: int
    end_offset: int  # the next segment's base offset (exclusive end of this segment's offsets)
    size: int
    index_size: int


@dataclass(slots=True)
class CleanJob:
    """Everything a pass needs, as plain picklable data."""

    log_dir: str
    config: LogConfig
    first_dirty: int
    first_uncleanable: int
    sources: list[SourceSegment]
    now_ms: int
    map_bytes: int = DEFAULT_MAP_BYTES  # this worker's share of log.cleaner.dedupe.buffer.size
    io_bytes_per_second: float = sys.float_info.max


@dataclass(frozen=True, slots=True)
class WrittenGroup:
    """A `<base_offset>.log.cleaned` file written to replace the segments with `old_bases`."""

    base_offset: int
    old_bases: tuple[int, ...]


@dataclass(slots=True)
class CleanResult:
    groups: list[WrittenGroup] = field(default_factory=list)
    end_offset: int = 0  # the new cleaner checkpoint: everything below is clean
    next_delete_horizon: int | None = None  # earliest horizon of a tombstone still in the log
    bytes_read: int = 0
    bytes_written: int = 0
    records_read: int = 0
    records_kept: int = 0
    batches_copied: int = 0  # kept byte for byte
    batches_rebuilt: int = 0
    elapsed_s: float = 0.0


@dataclass(slots=True)
class PreparedClean:
    """A job and the `Segment` objects (with the sizes) it was made from, kept by the log's owner."""

    job: CleanJob
    segments: dict[int, tuple[Segment, int]]

    def cleaned_groups(self, result: CleanResult) -> list[CleanedGroup]:
        """The written groups as the swap wants them: the old `Segment`s and their sizes."""
        groups = []
        for written in result.groups:
            old = [self.segments[base] for base in written.old_bases]
            groups.append(CleanedGroup(written.base_offset, [s for s, _ in old], [n for _, n in old]))
        return groups

    def remove_cleaned_files(self) -> None:
        """Remove whatever `.cleaned` files a failed or abandoned pass may have left (blocking)."""
        for base in self.segments:
            with contextlib.suppress(OSError):
                remove_files(Path(self.job.log_dir), base, CLEANED_SUFFIX)


def prepare_clean(
    log: Log,
    first_dirty: int,
    first_uncleanable: int,
    now_ms: int,
    *,
    map_bytes: int = DEFAULT_MAP_BYTES,
    io_bytes_per_second: float = sys.float_info.max,
) -> PreparedClean:
    """On the thread that owns `log`: describe its non-active segments below `first_uncleanable`."""
    segments = log.segments()
    sources: list[SourceSegment] = []
    owned: dict[int, tuple[Segment, int]] = {}
    for i, segment in enumerate(segments[:-1]):
        if segment.base_offset >= first_uncleanable:
            break
        size = segment.size
        sources.append(
            SourceSegment(
                path=str(segment.log_path),
                base_offset=segment.base_offset,
                end_offset=segments[i + 1].base_offset,
                size=size,
                index_size=segment.offset_index.entries * segment.offset_index.entry_size,
            )
        )
        owned[segment.base_offset] = (segment, size)
    job = CleanJob(
        str(log.dir),
        log.config,
        first_dirty,
        first_uncleanable,
        sources,
        now_ms,
        map_bytes=map_bytes,
        io_bytes_per_second=io_bytes_per_second,
    )
    return PreparedClean(job, owned)


# ---- reading ---------------------------------------------------------------------------------------
class _Sources:
    """Read-only file descriptors of the job's segments, opened on first use by the pass."""

    def __init__(self) -> None:
        self._fds: dict[str, int] = {}

    def fd(self, source: SourceSegment) -> int:
        fd = self._fds.get(source.path)
        if fd is None:
            try:
                fd = os.open(source.path, os.O_RDONLY)
            except FileNotFoundError as exc:
                raise CleanerSourceChangedError(f"segment {source.path} was removed") from exc
            self._fds[source.path] = fd
        return fd

    def close(self) -> None:
        for fd in self._fds.values():
            with contextlib.suppress(OSError):
                os.close(fd)
        self._fds.clear()


def _pread(fd: int, length: int, position: int, source: SourceSegment) -> bytes:
    data = os.pread(fd, length, position)
    if len(data) != length:
        raise CleanerSourceChangedError(f"segment {source.path} was shortened")
    return data


def _batches(
    source: SourceSegment, fd: int, throttler: Throttler | None
) -> Iterator[tuple[BatchHeader, bytes, int]]:
    """(header, buffer, position in buffer) of every whole batch of a source, read in large chunks."""
    pos = 0
    while pos + BATCH_HEADER_SIZE <= source.size:
        chunk = _pread(fd, min(_READ_CHUNK, source.size - pos), pos, source)
        if throttler is not None:
            throttler.maybe_throttle(len(chunk))
        at = 0
        while len(chunk) - at >= BATCH_HEADER_SIZE:
            header = parse_header(chunk, at)
            if header.batch_length < BATCH_HEADER_SIZE - LOG_OVERHEAD:
                return
            if at + header.size > len(chunk):
                break
            yield header, chunk, at
            at += header.size
        if at == 0:
            # one batch bigger than the chunk
            header = parse_header(chunk, 0)
            if pos + header.size > source.size:
                return
            whole = _pread(fd, header.size, pos, source)
            if throttler is not None:
                throttler.maybe_throttle(len(whole))
            yield header, whole, 0
            at = header.size
        pos += at


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    byte = buf[pos]
    if byte < 0x80:  # one-byte varints are by far the most common: no loop
        return (byte >> 1) ^ -(byte & 1), pos + 1
    return read_varint(buf, pos)


# (start, end, offset delta, timestamp delta, key, is tombstone) of one record inside a batch body
_Scanned = tuple[int, int, int, int, bytes | None, bool]


def _body(header: BatchHeader, buf: bytes, at: int) -> tuple[bytes, int, int]:
    """The batch's records as (buffer, start, end): in place, or decompressed."""
    if header.compression:
        plain = decompress(header.compression, memoryview(buf)[at + BATCH_HEADER_SIZE : at + header.size])
        return bytes(plain), 0, len(plain)
    return buf, at + BATCH_HEADER_SIZE, at + header.size


def _scan_records(buf: bytes, pos: int, end: int, count: int) -> list[_Scanned]:
    """Key, null-value flag and position of each record; values and headers are skipped, not copied."""
    out: list[_Scanned] = []
    for _ in range(count):
        start = pos
        length, pos = _varint(buf, pos)
        record_end = pos + length
        if length < 0 or record_end > end:
            raise CorruptRecordError("record length runs past the end of its batch")
        timestamp_delta, pos = _varint(buf, pos + 1)  # + 1: attributes, unused
        offset_delta, pos = _varint(buf, pos)
        key_length, pos = _varint(buf, pos)
        key = None
        if key_length >= 0:
            key = buf[pos : pos + key_length]
            pos += key_length
        value_length, pos = _varint(buf, pos)
        out.append((start, record_end, offset_delta, timestamp_delta, key, value_length < 0))
        pos = record_end
    if pos != end:
        raise CorruptRecordError("record batch has bytes after its last record")
    return out


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


def _check_abort(abort: AbortSignal | None) -> None:
    if abort is not None and abort.is_set():
        raise CleanerAbortedError("log cleaner stopping")


def _build_offset_map(
    job: CleanJob,
    files: _Sources,
    offset_map: OffsetMap,
    throttler: Throttler | None,
    abort: AbortSignal | None,
    result: CleanResult,
) -> int:
    """Fill the map from the dirty part; returns the offset the map covers up to (exclusive)."""
    for source in job.sources:
        if source.end_offset <= job.first_dirty:
            continue
        for header, buf, at in _batches(source, files.fd(source), throttler):
            if header.last_offset < job.first_dirty:
                continue
            _check_abort(abort)
            if header.is_control:
                continue
            if len(offset_map) and not offset_map.room_for(header.records_count):
                return header.base_offset
            result.bytes_read += header.size
            body, start, end = _body(header, buf, at)
            base = header.base_offset
            put = offset_map.put
            for _s, _e, offset_delta, _t, key, _null in _scan_records(body, start, end, header.records_count):
                if key is not None:
                    put(key, base + offset_delta)
    return job.first_uncleanable


def _restamp(header: BatchHeader, view: memoryview, kept: list[_Scanned], horizon: int) -> bytes:
    """The batch with `kept` records re-encoded around `horizon` as base timestamp (KIP-534)."""
    keep = {scanned[2] for scanned in kept}
    records = [
        Record(r.offset_delta, header.base_timestamp + r.timestamp_delta - horizon, r.key, r.value, r.headers)
        for r in decode_records(view)
        if r.offset_delta in keep
    ]
    buf = bytearray(
        build_batch(
            records,
            base_offset=header.base_offset,
            codec=header.compression,
            base_timestamp=horizon,
            producer_id=header.producer_id,
            producer_epoch=header.producer_epoch,
            base_sequence=header.base_sequence,
            transactional=header.is_transactional,
            partition_leader_epoch=header.partition_leader_epoch,
        )
    )
    attributes = _INT16.unpack_from(buf, _ATTRIBUTES_AT)[0] | DELETE_HORIZON_BIT
    if header.timestamp_type == 1:
        attributes |= _TIMESTAMP_TYPE_BIT
        _INT64.pack_into(buf, _MAX_TIMESTAMP_AT, header.max_timestamp)
    _INT16.pack_into(buf, _ATTRIBUTES_AT, attributes)
    update_crc(buf, 0)
    return bytes(buf)


def _rebuild(header: BatchHeader, body: bytes, kept: list[_Scanned]) -> bytes:
    """A batch of the `kept` records' own bytes under the original header fields (same base offset and
    base timestamp, so every record's deltas stay valid)."""
    payload: bytes = b"".join([body[start:end] for start, end, *_ in kept])
    if header.compression:
        payload = bytes(compress(header.compression, payload))
    if header.timestamp_type == 1:
        max_timestamp = header.max_timestamp
    else:
        max_timestamp = header.base_timestamp + max(scanned[3] for scanned in kept)
    out = bytearray(BATCH_HEADER_SIZE)
    _HEADER.pack_into(
        out,
        0,
        header.base_offset,
        BATCH_HEADER_SIZE - LOG_OVERHEAD + len(payload),
        header.partition_leader_epoch,
        MAGIC_V2,
        0,
        header.attributes,
        max(scanned[2] for scanned in kept),
        header.base_timestamp,
        max_timestamp,
        header.producer_id,
        header.producer_epoch,
        header.base_sequence,
        len(kept),
    )
    out += payload
    update_crc(out, 0)
    return bytes(out)


def _filter_batch(
    header: BatchHeader,
    buf: bytes,
    at: int,
    offset_map: OffsetMap,
    now_ms: int,
    delete_retention_ms: int,
    result: CleanResult,
) -> tuple[bytes | memoryview | None, int | None]:
    """(batch bytes to keep or None, the delete horizon of kept tombstones or None)."""
    view = memoryview(buf)[at : at + header.size]
    if header.is_control:
        return view, None
    body, start, end = _body(header, buf, at)
    scanned = _scan_records(body, start, end, header.records_count)
    result.records_read += len(scanned)
    horizon = delete_horizon_of(header)
    base = header.base_offset
    latest = offset_map.get
    kept: list[_Scanned] = []
    tombstones = False
    for record in scanned:
        key = record[4]
        if key is None or latest(key) > base + record[2]:
            continue
        if record[5]:
            if horizon is not None and now_ms >= horizon:
                continue
            tombstones = True
        kept.append(record)
    result.records_kept += len(kept)
    if not kept:
        return None, None
    if tombstones and horizon is None:
        result.batches_rebuilt += 1
        horizon = now_ms + delete_retention_ms
        return _restamp(header, view, kept, horizon), horizon
    kept_horizon = horizon if tombstones else None
    if len(kept) == len(scanned):
        result.batches_copied += 1
        return view, kept_horizon
    result.batches_rebuilt += 1
    return _rebuild(header, body, kept), kept_horizon


def _clean_group(
    job: CleanJob,
    files: _Sources,
    group: list[SourceSegment],
    offset_map: OffsetMap,
    throttler: Throttler | None,
    abort: AbortSignal | None,
    result: CleanResult,
) -> bool:
    """Write the group's cleaned segment; returns whether anything differs from the originals."""
    log_dir = Path(job.log_dir)
    base = group[0].base_offset
    remove_files(log_dir, base, CLEANED_SUFFIX)
    cleaned = Segment(log_dir, base, job.config, job.now_ms, suffix=CLEANED_SUFFIX)
    changed = len(group) > 1
    try:
        cleaned.prepare_for_appends()
        pending = bytearray()
        headers: list[BatchHeader] = []
        for source in group:
            for header, buf, at in _batches(source, files.fd(source), throttler):
                _check_abort(abort)
                data, horizon = _filter_batch(
                    header, buf, at, offset_map, job.now_ms, job.config.delete_retention_ms, result
                )
                if data is None:
                    changed = True
                    continue
                if not isinstance(data, memoryview):
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
    modified = max(os.fstat(files.fd(source)).st_mtime for source in group)
    os.utime(cleaned.log_path, (modified, modified))
    if not changed:
        remove_files(log_dir, base, CLEANED_SUFFIX)
    return changed


def run_clean(
    job: CleanJob,
    offset_map: OffsetMap | None = None,
    *,
    throttler: Throttler | None = None,
    abort: AbortSignal | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> CleanResult:
    """One cleaning pass (blocking; runs in a cleaner worker process). The returned groups have their
    `.cleaned` files written and fsynced; swap them in with `strom.storage.swap.swap_in`. On any
    error the `.cleaned` files this pass wrote are removed."""
    started = clock()
    result = CleanResult()
    if offset_map is None:
        offset_map = OffsetMap(job.map_bytes)
    offset_map.clear()
    if throttler is None and job.io_bytes_per_second < 1e300:
        throttler = Throttler(job.io_bytes_per_second)
    files = _Sources()
    written: list[int] = []
    try:
        end = _build_offset_map(job, files, offset_map, throttler, abort, result)
        result.end_offset = max(end, job.first_dirty)
        to_clean = [s for s in job.sources if s.base_offset < result.end_offset]
        config = job.config
        for group in group_segments(to_clean, config.segment_bytes, config.segment_index_bytes):
            written.append(group[0].base_offset)
            if _clean_group(job, files, group, offset_map, throttler, abort, result):
                result.groups.append(WrittenGroup(group[0].base_offset, tuple(s.base_offset for s in group)))
    except BaseException:
        for base in written:
            with contextlib.suppress(OSError):
                remove_files(Path(job.log_dir), base, CLEANED_SUFFIX)
        raise
    finally:
        files.close()
    result.elapsed_s = clock() - started
    return result
