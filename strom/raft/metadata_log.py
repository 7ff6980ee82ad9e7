"""The replicated log of the quorum, `<metadata.log.dir>/__cluster_metadata-0`, and its snapshots.

Kafka's KafkaMetadataLog over an ordinary partition log: segments, indexes and `leader-epoch-checkpoint`
through `strom.storage.log.Log`, `partition.metadata` naming the metadata topic id (Kafka's
Uuid.METADATA_TOPIC_ID, `AAAAAAAAAAAAAAAAAAAAAQ`), and snapshots as `<end offset>-<epoch>.checkpoint`
files beside the segments (KIP-630; `strom storage format` writes the bootstrap one, 0-0).

The offset/epoch rules the Raft leader answers a Fetch with are Kafka's:
- `end_offset_for_epoch(epoch)`: the end of the largest epoch <= `epoch`; below the oldest epoch of the
  log it is the oldest snapshot's id (the epochs before it were cleaned away with the segments);
- `validate_offset_and_epoch(offset, epoch)`: VALID when the follower's log matches ours there, DIVERGING
  (with where to truncate to) when it does not, SNAPSHOT when the follower is below our log start offset,
  or at it with another epoch, and must fetch the snapshot instead (KafkaMetadataLog.validateOffsetAndEpoch).

Snapshots and the segments below them are kept until `metadata.max.retention.bytes` (the log's size plus
the snapshots' sizes) or `metadata.max.retention.ms` (the age of a snapshot's last contained record) is
exceeded, as Kafka's KafkaRaftLog.maybeClean does: while the oldest snapshot breaks a limit, the log start
moves up to the next snapshot, the segments wholly below it and the older snapshots go. The newest snapshot
always stays. A replica behind the log start fetches the snapshot instead (FetchSnapshot).

Not thread-safe: the Raft core owns it on the event-loop thread. The log is always recovered when it is
opened (metadata logs are small, and a torn tail must go before anyone votes on it).
"""

from __future__ import annotations

import enum
import os
import re
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from strom.config import LONG_MAX, LogConfig
from strom.metadata.batches import MetadataBatch, read_metadata_batches
from strom.metadata.errors import MetadataRecordError
from strom.metadata.snapshot import CLUSTER_METADATA_DIR, snapshot_file_name
from strom.storage.checkpoint import fsync_dir, read_partition_metadata, write_partition_metadata
from strom.storage.log import AppendInfo, Log

__all__ = [
    "METADATA_TOPIC",
    "METADATA_TOPIC_ID",
    "MetadataLog",
    "OffsetAndEpoch",
    "ValidKind",
    "metadata_log_config",
]

METADATA_TOPIC = "__cluster_metadata"
METADATA_TOPIC_ID = uuid.UUID(int=1)  # Kafka's Uuid.METADATA_TOPIC_ID
MAX_BATCH_BYTES = 8 * 1024 * 1024  # KafkaRaftClient.MAX_BATCH_SIZE_BYTES
_SNAPSHOT = re.compile(r"^(\d{20})-(\d{10})\.checkpoint$")


@dataclass(frozen=True, slots=True, order=True)
class OffsetAndEpoch:
    """Ordered by epoch first, then offset: how Raft compares the ends of two logs."""

    epoch: int
    offset: int


class ValidKind(enum.Enum):
    VALID = "valid"
    DIVERGING = "diverging"
    SNAPSHOT = "snapshot"


def metadata_log_config(segment_bytes: int = 1073741824, segment_ms: int = 604800000) -> LogConfig:
    """The metadata log's settings: Kafka's metadata.log.segment.* keys, no time-based deletion (snapshots
    bound the log instead) and no record rules beyond a batch's own checks."""
    return LogConfig(
        segment_bytes=segment_bytes,
        segment_ms=segment_ms,
        retention_ms=-1,
        retention_bytes=-1,
        max_message_bytes=MAX_BATCH_BYTES,
        message_timestamp_after_max_ms=LONG_MAX,
        file_delete_delay_ms=0,
    )


class MetadataLog:
    """`__cluster_metadata-0`: append, read, truncate, epochs and snapshots. Open with `MetadataLog.open`."""

    def __init__(self, directory: Path, log: Log) -> None:
        self.dir = directory
        self.log = log
        self._snapshots: list[OffsetAndEpoch] = []  # sorted by offset
        # each snapshot's last contained record timestamp, read once (what metadata.max.retention.ms ages)
        self._snapshot_times: dict[OffsetAndEpoch, int] = {}
        self._scan_snapshots()

    @classmethod
    def open(
        cls,
        metadata_log_dir: Path,
        config: LogConfig | None = None,
        *,
        clock: Callable[[], float] = time.time,
    ) -> MetadataLog:
        directory = metadata_log_dir / CLUSTER_METADATA_DIR
        directory.mkdir(parents=True, exist_ok=True)
        for leftover in directory.glob("*.checkpoint.part"):  # an interrupted snapshot fetch
            leftover.unlink()
        log = Log.open(directory, config or metadata_log_config(), clean_shutdown=False, clock=clock)
        meta = directory / "partition.metadata"
        if read_partition_metadata(meta) is None:
            write_partition_metadata(meta, METADATA_TOPIC_ID)
        result = cls(directory, log)
        # Kafka's log start offset is the oldest snapshot's end offset once segments below it are gone
        oldest = result.earliest_snapshot
        if oldest is not None and log.log_start_offset < oldest.offset <= log.log_end_offset:
            log.delete_records_before(oldest.offset)
        elif oldest is not None and oldest.offset > log.log_end_offset:
            log.truncate_fully_and_start_at(oldest.offset)
        return result

    def _scan_snapshots(self) -> None:
        found = []
        for path in self.dir.iterdir():
            m = _SNAPSHOT.match(path.name)
            if m:
                found.append(OffsetAndEpoch(int(m.group(2)), int(m.group(1))))
        self._snapshots = sorted(found, key=lambda s: (s.offset, s.epoch))

    # offsets and epochs --------------------------------------------------------------------------
    @property
    def start_offset(self) -> int:
        return self.log.log_start_offset

    @property
    def end_offset(self) -> int:
        return self.log.log_end_offset

    @property
    def last_fetched_epoch(self) -> int:
        """The epoch of the last batch, else of the latest snapshot, else 0 (KafkaMetadataLog)."""
        latest = self.log.leader_epoch_cache.latest_epoch
        if latest >= 0:
            return latest
        snapshot = self.latest_snapshot
        return snapshot.epoch if snapshot is not None else 0

    @property
    def end(self) -> OffsetAndEpoch:
        return OffsetAndEpoch(self.last_fetched_epoch, self.end_offset)

    def end_offset_for_epoch(self, epoch: int) -> OffsetAndEpoch:
        found_epoch, found_offset = self.log.end_offset_for_epoch(epoch)
        oldest = self.earliest_snapshot
        if found_offset < 0:
            return OffsetAndEpoch(self.last_fetched_epoch, self.end_offset)
        if oldest is not None and found_offset == oldest.offset and found_epoch < epoch:
            # the epoch is older than any the log still holds: point at the snapshot at the log start
            return oldest
        return OffsetAndEpoch(found_epoch, found_offset)

    def validate_offset_and_epoch(self, offset: int, epoch: int) -> tuple[ValidKind, OffsetAndEpoch]:
        if self.start_offset == 0 and offset == 0:
            return ValidKind.VALID, OffsetAndEpoch(0, 0)
        oldest = self.earliest_snapshot
        if (
            oldest is not None
            and oldest.offset > 0
            and (
                offset < self.start_offset
                or (offset == self.start_offset and epoch != oldest.epoch)
                or epoch < oldest.epoch
            )
        ):
            latest = self.latest_snapshot
            assert latest is not None
            return ValidKind.SNAPSHOT, latest
        end = self.end_offset_for_epoch(epoch)
        if end.epoch != epoch or end.offset < offset:
            return ValidKind.DIVERGING, end
        return ValidKind.VALID, OffsetAndEpoch(epoch, offset)

    # appends, reads, truncation ------------------------------------------------------------------
    def append_as_leader(
        self, records: bytes | bytearray, epoch: int, now_ms: int | None = None
    ) -> AppendInfo:
        """Append batches built at base offset 0: offsets are assigned and `epoch` stamped on them."""
        return self.log.append(records, leader_epoch=epoch, now_ms=now_ms)

    def append_as_follower(self, records: bytes | bytearray | memoryview) -> AppendInfo:
        """Append the leader's batches as they are (offsets and epochs kept)."""
        return self.log.append(records, leader_epoch=-1, assign_offsets=False)

    def read(self, offset: int, max_bytes: int) -> bytes:
        """Whole batches from `offset` (at least one if any), up to about `max_bytes`."""
        if offset >= self.end_offset:
            return b""
        return self.log.read(offset, max_bytes).read_bytes()

    def iter_batches(self, start_offset: int = 0) -> Iterator[MetadataBatch]:
        for _header, data in self.log.iter_batches(max(start_offset, self.start_offset)):
            yield from read_metadata_batches(data)

    def iter_control_batches(self, start_offset: int = 0) -> Iterator[MetadataBatch]:
        """The control batches only: the Raft layer reads its own records (voters, kraft.version) and never
        decodes the metadata records, so a record it cannot read stops the replay, not the quorum."""
        for header, data in self.log.iter_batches(max(start_offset, self.start_offset)):
            if header.is_control:
                yield from read_metadata_batches(data)

    def truncate_to(self, offset: int) -> None:
        self.log.truncate_to(offset)

    def truncate_to_end_offset(self, diverging: OffsetAndEpoch) -> int:
        """Truncate where the leader said our logs part (Kafka's ReplicatedLog.truncateToEndOffset);
        returns the new end offset."""
        if diverging.epoch == 0:
            offset = min(diverging.offset, self.end_offset)
        else:
            local = self.end_offset_for_epoch(diverging.epoch)
            offset = min(local.offset, diverging.offset) if local.epoch == diverging.epoch else local.offset
        self.truncate_to(offset)
        return self.end_offset

    def flush(self) -> None:
        """fsync what was appended: Raft counts an entry only once it is on disk."""
        self.log.flush()

    def close(self) -> None:
        self.log.close()

    # snapshots -------------------------------------------------------------------------------------
    @property
    def snapshots(self) -> list[OffsetAndEpoch]:
        return list(self._snapshots)

    @property
    def latest_snapshot(self) -> OffsetAndEpoch | None:
        return self._snapshots[-1] if self._snapshots else None

    @property
    def earliest_snapshot(self) -> OffsetAndEpoch | None:
        return self._snapshots[0] if self._snapshots else None

    def snapshot_path(self, snapshot: OffsetAndEpoch) -> Path:
        return self.dir / snapshot_file_name(snapshot.offset, snapshot.epoch)

    def snapshot_size(self, snapshot: OffsetAndEpoch) -> int | None:
        if snapshot not in self._snapshots:
            return None
        return self.snapshot_path(snapshot).stat().st_size

    def read_snapshot_chunk(self, snapshot: OffsetAndEpoch, position: int, max_bytes: int) -> bytes:
        with open(self.snapshot_path(snapshot), "rb") as f:
            f.seek(position)
            return f.read(max_bytes)

    def snapshot_written(self, snapshot: OffsetAndEpoch, timestamp_ms: int | None = None) -> None:
        """A complete snapshot file is in place (written by `strom.metadata.snapshot.write_snapshot`, with
        `timestamp_ms` in its header). Nothing is deleted here: `maybe_clean` does that by retention."""
        if snapshot not in self._snapshots:
            self._snapshots.append(snapshot)
            self._snapshots.sort(key=lambda s: (s.offset, s.epoch))
        if timestamp_ms is not None:
            self._snapshot_times[snapshot] = timestamp_ms

    def maybe_clean(self, now_ms: int, retention_bytes: int, retention_ms: int) -> bool:
        """Kafka's KafkaRaftLog.maybeClean: by size first, then by age (a negative limit is off). True
        when something was deleted."""
        cleaned = False
        if retention_bytes >= 0:
            sizes = {s: self.snapshot_size(s) or 0 for s in self._snapshots}
            total = sum(sizes.values())

            def over_size(snapshot: OffsetAndEpoch) -> bool:
                nonlocal total
                if self.log.size_in_bytes + total <= retention_bytes:
                    return False
                total -= sizes.get(snapshot, 0)
                return True

            cleaned |= self._clean_snapshots(over_size)
        if retention_ms >= 0:

            def too_old(snapshot: OffsetAndEpoch) -> bool:
                timestamp = self._snapshot_timestamp(snapshot)
                return timestamp is not None and now_ms - timestamp > retention_ms

            cleaned |= self._clean_snapshots(too_old)
        return cleaned

    def _clean_snapshots(self, breaks_limit: Callable[[OffsetAndEpoch], bool]) -> bool:
        # oldest first, pairwise: while the older snapshot breaks the limit, delete up to the next one
        cleaned = False
        for older, newer in zip(list(self._snapshots), list(self._snapshots)[1:], strict=False):
            if not (breaks_limit(older) and self._delete_before_snapshot(newer)):
                break
            cleaned = True
        return cleaned

    def _delete_before_snapshot(self, snapshot: OffsetAndEpoch) -> bool:
        """Kafka's deleteBeforeSnapshot: the log start moves up to `snapshot` (at most the newest one and
        the log end), the segments wholly below it and the older snapshots go."""
        latest = self.latest_snapshot
        if (
            latest is None
            or snapshot not in self._snapshots
            or not self.start_offset < snapshot.offset <= min(latest.offset, self.end_offset)
        ):
            return False
        self.log.delete_records_before(snapshot.offset)
        for older in [s for s in self._snapshots if s.offset < snapshot.offset]:
            self.snapshot_path(older).unlink(missing_ok=True)
            self._snapshots.remove(older)
            self._snapshot_times.pop(older, None)
        return True

    def _snapshot_timestamp(self, snapshot: OffsetAndEpoch) -> int | None:
        if snapshot not in self._snapshot_times:
            try:
                with open(self.snapshot_path(snapshot), "rb") as f:
                    head = f.read(12)
                    if len(head) < 12:
                        return None
                    first = head + f.read(int.from_bytes(head[8:12], "big"))
                batch = next(read_metadata_batches(first), None)
                header = batch.records[0][1].message if batch is not None and batch.records else None
            except (OSError, ValueError, MetadataRecordError):
                return None
            timestamp = getattr(header, "last_contained_log_timestamp", None)
            if timestamp is None:
                return None
            self._snapshot_times[snapshot] = int(timestamp)
        return self._snapshot_times[snapshot]

    def begin_snapshot_fetch(self, snapshot: OffsetAndEpoch) -> Path:
        """Where a snapshot fetched from the leader is written until it is whole."""
        part = self.snapshot_path(snapshot).with_name(
            snapshot_file_name(snapshot.offset, snapshot.epoch) + ".part"
        )
        part.unlink(missing_ok=True)
        return part

    def install_fetched_snapshot(self, snapshot: OffsetAndEpoch, part: Path) -> None:
        """The fetched snapshot is complete: freeze it, and restart the log at its end offset (KIP-630)."""
        fd = os.open(part, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(part, self.snapshot_path(snapshot))
        fsync_dir(self.dir)
        self.log.truncate_fully_and_start_at(snapshot.offset)
        self._snapshots = [s for s in self._snapshots if s.offset > snapshot.offset]
        for older in list(self.dir.glob("*.checkpoint")):
            m = _SNAPSHOT.match(older.name)
            if m and int(m.group(1)) < snapshot.offset:
                older.unlink()
        self._snapshots.insert(0, snapshot)
