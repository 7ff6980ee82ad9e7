"""Writing KRaft snapshots of the replayed metadata and cleaning the log below them (KIP-630).

Kafka's SnapshotGenerator: a node writes a snapshot of what it has replayed once
`metadata.log.max.record.bytes.between.snapshots` bytes of the log were replayed since the last one, or
once `metadata.log.max.snapshot.interval.ms` passed (0 turns the timer off) with new records. The
snapshot is named `<end offset>-<epoch>.checkpoint` after the next offset to replay and the epoch of the
last batch in it, holds `strom.metadata.image_records` of the state (plus kraft.version and the voters,
KIP-853), and is written atomically by `strom.metadata.snapshot.write_snapshot`. The active controller and
every broker-only node snapshot their own copy, as Kafka's do.

Only committed state goes in: the active controller applies its records as it appends them, so a snapshot
waits until nothing it applied is uncommitted, and never cuts a metadata transaction (KIP-868) in two.
Older snapshots and the segments below them stay until `metadata.max.retention.bytes` /
`metadata.max.retention.ms` is exceeded (`MetadataLog.maybe_clean`, Kafka's KafkaRaftLog.maybeClean), checked
right after each snapshot and every minute (Kafka's cleaner timer). A replica that asks for an offset below
the log start is sent the snapshot (FetchSnapshot).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from strom.cluster.kraft.loader import LogReplayer
from strom.config import BrokerConfig
from strom.metadata.image_records import image_records
from strom.metadata.snapshot import write_snapshot
from strom.raft.core import RaftCore
from strom.raft.metadata_log import OffsetAndEpoch

CLEAN_INTERVAL_MS = 60_000  # Kafka's KafkaRaftClient runs its metadata log cleaner once a minute

__all__ = ["SnapshotWriter"]

log = logging.getLogger("strom.kraft.snapshots")


class SnapshotWriter:
    """`maybe_snapshot(replayer)` after every replay; returns the snapshot written, if one was."""

    def __init__(
        self, core: RaftCore, config: BrokerConfig, *, clock: Callable[[], float] = time.time
    ) -> None:
        self.core = core
        self.max_bytes = int(config.get("metadata.log.max.record.bytes.between.snapshots"))
        self.max_interval_ms = int(config.get("metadata.log.max.snapshot.interval.ms"))
        self.retention_bytes = int(config.get("metadata.max.retention.bytes"))
        self.retention_ms = int(config.get("metadata.max.retention.ms"))
        self.clock = clock
        self._bytes_at_last = 0
        self._last_ms = self._now_ms()
        self._cleaned_ms = self._last_ms

    def _now_ms(self) -> int:
        return int(self.clock() * 1000)

    def maybe_snapshot(self, replayer: LogReplayer) -> OffsetAndEpoch | None:
        snapshot = self._maybe_write(replayer)
        now = self._now_ms()
        if snapshot is not None or now - self._cleaned_ms >= CLEAN_INTERVAL_MS:
            self._cleaned_ms = now
            if self.core.log.maybe_clean(now, self.retention_bytes, self.retention_ms):
                log.info("metadata log cleaned: it starts at %d", self.core.log.start_offset)
        return snapshot

    def _maybe_write(self, replayer: LogReplayer) -> OffsetAndEpoch | None:
        state = replayer.state
        end = replayer.next_offset
        latest = self.core.log.latest_snapshot
        if end <= 0 or (latest is not None and latest.offset >= end):
            return None
        # an active controller's state may run ahead of the committed log: wait until it does not
        if state.in_transaction or state.last_offset >= end:
            return None
        now = self._now_ms()
        by_bytes = replayer.bytes_replayed - self._bytes_at_last >= self.max_bytes
        by_time = self.max_interval_ms > 0 and now - self._last_ms >= self.max_interval_ms
        if not (by_bytes or by_time):
            return None
        snapshot = OffsetAndEpoch(replayer.last_epoch, end)
        log_ = self.core.log
        kraft_version = self.core.kraft_version
        write_snapshot(
            log_.snapshot_path(snapshot),
            image_records(state),
            kraft_version=kraft_version,
            voters=self.core.voters_record if kraft_version > 0 else None,
            timestamp_ms=now,
            epoch=snapshot.epoch,
        )
        log_.snapshot_written(snapshot, now)
        self._bytes_at_last = replayer.bytes_replayed
        self._last_ms = now
        log.info("wrote metadata snapshot %d-%d", snapshot.offset, snapshot.epoch)
        return snapshot
