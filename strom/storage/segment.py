"""One log segment: the `<base offset>.log` file of record batches and its `.index` / `.timeindex`.

File names are the 20-digit zero-padded base offset (Kafka's LogFileUtils). The .log holds v2 record
batches exactly as they were appended (base offsets written in), back to back. Appends are written with
os.pwrite at the known end, reads with os.pread, so no code depends on a shared file position; the
read-only file object `read_file` is handed to the network layer for sendfile and is never used here for
positioned reads. A deleted segment's files are renamed to `*.deleted` and stay open (so slices being
sent remain readable) until `close()`.

Not thread-safe; owned by its Log. fsync (`flush`) may run on another thread.
"""

from __future__ import annotations

import contextlib
import io
import os
import struct
from collections.abc import Iterator
from pathlib import Path

from strom.config import LogConfig
from strom.protocol.errors import CorruptRecordError
from strom.protocol.record_batch import (
    BATCH_HEADER_SIZE,
    LOG_OVERHEAD,
    MAGIC_V2,
    BatchHeader,
    check_batch,
    parse_header,
)
from strom.storage.index import CorruptIndexError
from strom.storage.offset_index import OffsetIndex
from strom.storage.time_index import TimeIndex

LOG_SUFFIX = ".log"
INDEX_SUFFIX = ".index"
TIME_INDEX_SUFFIX = ".timeindex"
DELETED_SUFFIX = ".deleted"
CLEANED_SUFFIX = ".cleaned"
SWAP_SUFFIX = ".swap"

_SCAN_CHUNK = 16 * 1024
_RECOVERY_CHUNK = 8 * 1024 * 1024
_INT32_MAX = 2**31 - 1
# a batch bigger than this leaves few headers per chunk: the scan reads the next header alone
_BIG_BATCH = _SCAN_CHUNK // 4
# a span of headers up to this wide is read with one pread (it holds many small batches or few others)
_SPAN_READ = 8 * 1024
_LENGTH = struct.Struct(">i")  # batchLength, the int32 after the 8-byte base offset


def segment_name(base_offset: int) -> str:
    return f"{base_offset:020d}"


class Segment:
    """A .log file with its offset and time indexes. Positions are int32 in the indexes, as in Kafka."""

    def __init__(
        self, directory: Path, base_offset: int, config: LogConfig, now_ms: int, *, suffix: str = ""
    ) -> None:
        # `suffix` (e.g. ".cleaned") names files the log cleaner writes before swapping them in
        self.dir = directory
        self.base_offset = base_offset
        stem = segment_name(base_offset)
        self.log_path = directory / (stem + LOG_SUFFIX + suffix)
        self._fd = os.open(self.log_path, os.O_RDWR | os.O_CREAT, 0o644)
        self.read_file: io.FileIO = io.FileIO(self.log_path, "r")
        self.size = os.fstat(self._fd).st_size
        self.offset_index = OffsetIndex(
            directory / (stem + INDEX_SUFFIX + suffix), base_offset, config.segment_index_bytes
        )
        self.time_index = TimeIndex(
            directory / (stem + TIME_INDEX_SUFFIX + suffix), base_offset, config.segment_index_bytes
        )
        self.index_interval_bytes = config.index_interval_bytes
        self.bytes_since_last_index_entry = 0
        self.max_timestamp = -1
        self.offset_of_max_timestamp = -1
        self.next_offset = base_offset
        self.created_ms = now_ms
        self.rolling_jitter_ms = 0
        self._first_batch_max_ts: int | None = None
        self.closed = False
        self.deleted = False

    # opening ------------------------------------------------------------------------------------
    def load(self) -> bool:
        """Load indexes and find the segment's next offset and max timestamp without recovery.

        Returns False when an index is missing or fails its sanity check, so the caller recovers
        (rebuilds) the segment instead.
        """
        try:
            have_offsets = self.offset_index.load()
            have_times = self.time_index.load()
        except CorruptIndexError:
            return False
        if self.size > 0 and not (have_offsets and have_times):
            # a segment holding batches has both files at rest (made at roll, close or recovery), so a
            # missing one was lost: rebuild. An empty segment's missing indexes are simply empty (lazy).
            return False
        last_index_offset, last_position = self.offset_index.last_entry
        if last_position > self.size:
            return False
        self.next_offset = self.base_offset
        self.max_timestamp, self.offset_of_max_timestamp = self.time_index.last_entry
        if self.max_timestamp < 0:
            self.offset_of_max_timestamp = -1
        scan_from = last_position if self.offset_index.entries else 0
        end = scan_from
        since_entry = 0
        for pos, header in self.scan(scan_from):
            if since_entry > self.index_interval_bytes:
                return False  # a batch past the last entry should have been indexed: short index
            since_entry += header.size
            self.next_offset = header.next_offset
            end = pos + header.size
            if header.max_timestamp > self.max_timestamp:
                self.max_timestamp = header.max_timestamp
                self.offset_of_max_timestamp = header.last_offset
        if end != self.size:
            return False  # a tail that is not whole batches: recover
        if self.offset_index.entries and self.next_offset <= last_index_offset:
            return False
        self.bytes_since_last_index_entry = since_entry
        return True

    def recover(self, max_message_bytes: int | None = None) -> int:
        """Re-read every batch, check it, rebuild both indexes and cut the file after the last good
        batch (Kafka's LogSegment.recover). Returns the number of bytes truncated."""
        self.offset_index.clear()
        self.time_index.clear()
        self.offset_index.preallocate()
        self.time_index.preallocate()
        self.max_timestamp = -1
        self.offset_of_max_timestamp = -1
        self.bytes_since_last_index_entry = 0
        self.next_offset = self.base_offset
        self._first_batch_max_ts = None
        valid = 0
        file_size = os.fstat(self._fd).st_size
        expected_min_offset = self.base_offset
        while valid < file_size:
            chunk = os.pread(self._fd, min(_RECOVERY_CHUNK, file_size - valid), valid)
            pos = 0
            progressed = False
            while len(chunk) - pos >= LOG_OVERHEAD:
                if len(chunk) - pos < BATCH_HEADER_SIZE:
                    break
                header = parse_header(chunk, pos)
                if header.batch_length < BATCH_HEADER_SIZE - LOG_OVERHEAD or header.magic != MAGIC_V2:
                    return self._cut(valid + pos, file_size)
                if pos + header.size > len(chunk):
                    break
                try:
                    check_batch(chunk, pos, header, check_counts=False)
                except CorruptRecordError:
                    return self._cut(valid + pos, file_size)
                if (
                    header.base_offset < expected_min_offset
                    or header.last_offset - self.base_offset > _INT32_MAX
                ):
                    return self._cut(valid + pos, file_size)
                self._index_batch(valid + pos, header)
                expected_min_offset = header.next_offset
                self.next_offset = header.next_offset
                pos += header.size
                progressed = True
            if not progressed:
                # a batch bigger than the chunk: read exactly it, or stop at a torn tail
                if file_size - valid < BATCH_HEADER_SIZE:
                    break
                header = parse_header(os.pread(self._fd, BATCH_HEADER_SIZE, valid))
                if (
                    header.batch_length < BATCH_HEADER_SIZE - LOG_OVERHEAD
                    or header.magic != MAGIC_V2
                    or valid + header.size > file_size
                    or (max_message_bytes is not None and header.size > max(max_message_bytes, 1 << 30))
                ):
                    break
                whole = os.pread(self._fd, header.size, valid)
                try:
                    check_batch(whole, 0, header, check_counts=False)
                except CorruptRecordError:
                    break
                if header.base_offset < expected_min_offset:
                    break
                self._index_batch(valid, header)
                expected_min_offset = header.next_offset
                self.next_offset = header.next_offset
                valid += header.size
                continue
            valid += pos
        return self._cut(valid, file_size)

    def _cut(self, valid: int, file_size: int) -> int:
        if valid < file_size:
            os.ftruncate(self._fd, valid)
        self.size = valid
        if valid:
            # Kafka's recover resets (so creates) both indexes: a rebuilt segment with batches has both
            # files even when no entry was due; an empty one stays without (lazy, as when created)
            self.offset_index.create()
            self.time_index.create()
        return file_size - valid

    def _index_batch(self, position: int, header: BatchHeader) -> None:
        """Index bookkeeping for one batch written at `position` (same rule on append and recovery)."""
        if header.max_timestamp > self.max_timestamp:
            self.max_timestamp = header.max_timestamp
            self.offset_of_max_timestamp = header.last_offset
        if self._first_batch_max_ts is None:
            self._first_batch_max_ts = header.max_timestamp
        if self.bytes_since_last_index_entry > self.index_interval_bytes:
            self.offset_index.append(header.last_offset, position)
            self.time_index.maybe_append(self.max_timestamp, self.offset_of_max_timestamp)
            self.bytes_since_last_index_entry = 0
        self.bytes_since_last_index_entry += header.size

    # appending ----------------------------------------------------------------------------------
    def prepare_for_appends(self) -> None:
        """Make this the active segment: its index files are preallocated when the first entry creates
        them (not now: a new partition's segment gets index files only once it has entries)."""
        self.offset_index.preallocate()
        self.time_index.preallocate()

    def append(self, data: bytes | bytearray | memoryview, headers: list[BatchHeader]) -> None:
        """Write whole, validated batches at the end of the file and index them."""
        position = self.size
        written = os.pwrite(self._fd, data, position)
        if written != len(data):
            # a short write (disk full): cut back so the file never holds a partial batch
            os.ftruncate(self._fd, position)
            raise OSError(f"short write to {self.log_path}: {written} of {len(data)} bytes")
        for header in headers:
            self._index_batch(position, header)
            position += header.size
        self.size = position
        if headers:
            self.next_offset = headers[-1].next_offset

    def should_roll(self, incoming_bytes: int, max_offset: int, now_ms: int, config: LogConfig) -> bool:
        """Kafka's LogSegment.shouldRoll: size, age (segment.ms - jitter), full indexes, or offsets that
        no longer fit the 4-byte relative offset."""
        if self.size == 0:
            return False
        if self.size > config.segment_bytes - incoming_bytes:
            return True
        if now_ms - self.rolling_base_timestamp() > config.segment_ms - self.rolling_jitter_ms:
            return True
        if self.offset_index.is_full or self.time_index.is_full:
            return True
        return max_offset - self.base_offset > _INT32_MAX

    def rolling_base_timestamp(self) -> int:
        """The first batch's max timestamp, or the creation time if it has none (Kafka's rule)."""
        if self._first_batch_max_ts is None and self.size > 0:
            header = parse_header(os.pread(self._fd, BATCH_HEADER_SIZE, 0))
            self._first_batch_max_ts = header.max_timestamp
        if self._first_batch_max_ts is not None and self._first_batch_max_ts >= 0:
            return self._first_batch_max_ts
        return self.created_ms

    def on_becoming_inactive(self, *, create: bool = True) -> None:
        """On roll: trim both index files and record the final time index entry.

        Like Kafka's onBecomeInactiveSegment, which loads (so creates) both lazy indexes, this leaves
        both files on disk even when no entry was ever written, unless `create` is False (a close or
        load of a segment that needs no new files). Trimming first means the final entry lands at the
        trimmed end rather than growing a preallocated file that is then cut again."""
        self.offset_index.trim_to_entries(create=create)
        self.time_index.trim_to_entries(create=create)
        self.time_index.maybe_append(self.max_timestamp, self.offset_of_max_timestamp, final=True)

    # reading ------------------------------------------------------------------------------------
    def pread(self, length: int, position: int) -> bytes:
        return os.pread(self._fd, length, position)

    def scan(
        self,
        position: int = 0,
        end: int | None = None,
        *,
        span_end: int | None = None,
        big_batches: bool = False,
    ) -> Iterator[tuple[int, BatchHeader]]:
        """Yield (position, header) of whole batches from `position` up to `end` (default: file end).

        Reads headers, not payloads: while batches are small one pread serves many headers; after a
        batch bigger than _BIG_BATCH the next read is that header alone (61 bytes), so big batches never
        cost a chunk of payload each. A caller that knows the headers it needs all start before
        `span_end` says so: a narrow span (at most _SPAN_READ) is then read in one pread, a wide one
        starts with a lone header (a wide span between index entries means big batches), and no read
        goes past it. `big_batches` (the caller has seen big batches here) starts with a lone header."""
        limit = self.size if end is None else min(end, self.size)
        buf = b""
        buf_start = position
        if span_end is None:
            read_size = _SCAN_CHUNK
        else:
            read_size = span_end - position + BATCH_HEADER_SIZE
            if read_size > _SPAN_READ or big_batches:
                read_size = BATCH_HEADER_SIZE
        while position + BATCH_HEADER_SIZE <= limit:
            offset_in_buf = position - buf_start
            if offset_in_buf < 0 or len(buf) - offset_in_buf < BATCH_HEADER_SIZE:
                buf = os.pread(self._fd, min(max(read_size, BATCH_HEADER_SIZE), limit - position), position)
                buf_start = position
                offset_in_buf = 0
                if len(buf) < BATCH_HEADER_SIZE:
                    return
            header = parse_header(buf, offset_in_buf)
            if header.batch_length < BATCH_HEADER_SIZE - LOG_OVERHEAD or position + header.size > limit:
                return
            yield position, header
            position += header.size
            if header.size > _BIG_BATCH:
                read_size = BATCH_HEADER_SIZE
            elif span_end is None:
                read_size = _SCAN_CHUNK
            else:
                read_size = min(_SCAN_CHUNK, span_end - position + BATCH_HEADER_SIZE)

    def find_batch(self, offset: int, start_position: int = 0) -> tuple[int, BatchHeader] | None:
        """The first batch whose last offset is >= `offset`, starting the scan at the index entry.

        That batch starts at or before the next index entry's position, so the headers to read span
        at most about one index interval: a single pread when the span is small."""
        pos, following = self.offset_index.lookup_span(offset)
        pos = max(pos, start_position)
        for position, header in self.scan(pos, span_end=following if following >= pos else self.size):
            if header.last_offset >= offset:
                return position, header
        return None

    def slice_length(
        self, position: int, first: BatchHeader, max_bytes: int, upper: int, min_one: bool
    ) -> int:
        """Bytes of the longest run of whole batches from `position` (where batch `first` starts) whose
        last offsets are below `upper` and which fit in `max_bytes`; when none fits, the first batch
        alone if `min_one` (KIP-74) and it is below `upper`.

        Bounded without walking the run: the segment's next offset says whether `upper` falls inside
        it (then the index finds that batch), the size says whether the rest fits, and otherwise the
        index entry at or before `position + max_bytes` leaves at most one interval of headers to read.
        """
        if first.last_offset >= upper:
            return 0
        end = self.size
        if self.next_offset > upper:
            found = self.find_batch(upper, position)
            if found is not None:
                end = found[0]
        if end - position <= max_bytes:
            return end - position
        target = position + max_bytes
        _, from_pos = self.offset_index.lookup_position(target)
        length = self._last_boundary(max(from_pos, position), target, first.size > _BIG_BATCH) - position
        if length == 0 and min_one:
            return first.size
        return length

    def _last_boundary(self, pos: int, target: int, big_batches: bool) -> int:
        """The last batch boundary at or before `target`, walking from the batch boundary `pos` (at most
        about one index interval before it) by the 12-byte offset+length prefixes alone: one pread of
        the span when it is narrow and batches are small, else a 12-byte pread per batch."""
        buf = b""
        buf_start = pos
        while pos + LOG_OVERHEAD <= target:
            at = pos - buf_start
            if len(buf) - at < LOG_OVERHEAD:
                want = target - pos + LOG_OVERHEAD
                if big_batches or want > _SPAN_READ:
                    want = LOG_OVERHEAD
                buf = os.pread(self._fd, min(want, self.size - pos), pos)
                buf_start = pos
                at = 0
                if len(buf) < LOG_OVERHEAD:
                    break
            (batch_length,) = _LENGTH.unpack_from(buf, at + LOG_OVERHEAD - 4)
            size = batch_length + LOG_OVERHEAD
            if batch_length < BATCH_HEADER_SIZE - LOG_OVERHEAD or pos + size > target:
                break
            pos += size
            big_batches = size > _BIG_BATCH
        return pos

    def position_of(self, offset: int) -> int:
        """File position of the first batch whose last offset is >= `offset`; the size if none."""
        found = self.find_batch(offset)
        return self.size if found is None else found[0]

    def largest_timestamp(self) -> int:
        """Largest record timestamp, or the file's modification time when no batch has one (Kafka)."""
        if self.max_timestamp >= 0:
            return self.max_timestamp
        return int(os.stat(self.log_path).st_mtime * 1000) if not self.deleted else self.created_ms

    # truncation ---------------------------------------------------------------------------------
    def truncate_to(self, offset: int) -> int:
        """Remove every batch from the one holding `offset` on; returns the bytes removed."""
        found = self.find_batch(offset)
        if found is None:
            return 0
        position = found[0]
        removed = self.size - position
        self.offset_index.truncate_to(offset)
        self.time_index.truncate_to(offset)
        os.ftruncate(self._fd, position)
        self.size = position
        # rebuild the in-memory tail state from the last index entry (at most one interval to scan)
        self.max_timestamp, self.offset_of_max_timestamp = self.time_index.last_entry
        if self.max_timestamp < 0:
            self.offset_of_max_timestamp = -1
        _, scan_from = self.offset_index.last_entry
        self.next_offset = self.base_offset
        self.bytes_since_last_index_entry = 0
        for _pos, header in self.scan(scan_from):
            self.next_offset = header.next_offset
            self.bytes_since_last_index_entry += header.size
            if header.max_timestamp > self.max_timestamp:
                self.max_timestamp = header.max_timestamp
                self.offset_of_max_timestamp = header.last_offset
        if self.size == 0:
            self._first_batch_max_ts = None
        return removed

    # lifecycle ----------------------------------------------------------------------------------
    def flush(self) -> None:
        if self.closed:
            return
        try:
            os.fsync(self._fd)
            self.offset_index.flush()
            self.time_index.flush()
        except OSError:
            if not (self.closed or self.deleted):
                raise

    def close(self, *, trim: bool = True) -> None:
        """Close files; an active segment gets its final time index entry and trimmed indexes.

        A segment holding batches leaves both index files (Kafka's active segment has had them since
        its first append); an empty one that never had an entry leaves none."""
        if self.closed:
            return
        if trim and not self.deleted:
            self.on_becoming_inactive(create=self.size > 0)
        self.closed = True
        os.close(self._fd)
        self.read_file.close()
        self.offset_index.close()
        self.time_index.close()

    def rename_to_deleted(self) -> list[Path]:
        """Rename the files to `*.deleted` (Kafka's async delete); they stay open until `close`."""
        self.deleted = True
        renamed = []
        target = self.log_path.with_name(self.log_path.name + DELETED_SUFFIX)
        with contextlib.suppress(FileNotFoundError):
            os.replace(self.log_path, target)
            self.log_path = target
            renamed.append(target)
        for index in (self.offset_index, self.time_index):
            # an index never created has nothing to rename (Kafka's LazyIndex.renameTo)
            target = index.path.with_name(index.path.name + DELETED_SUFFIX)
            if index.rename(target):
                renamed.append(target)
        return renamed

    def delete_files(self) -> None:
        """Close and remove the files now."""
        self.close(trim=False)
        for path in (self.log_path, self.offset_index.path, self.time_index.path):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
