"""Following `__cluster_metadata` into a `MetadataState` (Kafka's MetadataLoader).

`LogReplayer.catch_up(high_watermark)` replays every whole batch below the high watermark that the state has
not seen: committed records only, so what a broker publishes can never be undone by a new leader. A
replayer behind the log's start (the log was cleaned below a snapshot, or this node installed a snapshot it
fetched) loads the latest snapshot first. The bootstrap snapshot `strom storage format` writes (end offset
0) holds nothing of the log: its records are appended by the first active controller instead (see
controller.py), so every reader finds them in the log.

Control batches (LeaderChange, KRaftVersion, KRaftVoters) belong to the Raft layer and are skipped. A record
this Strom cannot decode (an unknown type or version, a torn body) raises out of `catch_up` before any
record of its batch is applied; the owner then stops the node (Kafka's fatal fault handler), because
replaying around it would publish a wrong image.
"""

from __future__ import annotations

import logging

from strom.metadata.image import MetadataState
from strom.metadata.snapshot import read_snapshot
from strom.raft.metadata_log import MetadataLog

__all__ = ["LogReplayer"]

log = logging.getLogger("strom.kraft")


class LogReplayer:
    """Replays committed batches of `log` into `state`; `next_offset` is the first offset not seen."""

    def __init__(self, log: MetadataLog, state: MetadataState) -> None:
        self.log = log
        self.state = state
        self.next_offset = 0
        # the epoch of the last batch replayed, and the bytes replayed: what a snapshot is named by and
        # what metadata.log.max.record.bytes.between.snapshots counts
        self.last_epoch = 0
        self.bytes_replayed = 0

    def reset(self, state: MetadataState) -> None:
        """Start again from nothing (a controller that lost leadership drops its uncommitted writes)."""
        self.state = state
        self.next_offset = 0
        self.last_epoch = 0

    def _maybe_load_snapshot(self) -> None:
        snapshot = self.log.latest_snapshot
        if snapshot is None or snapshot.offset <= self.next_offset or snapshot.offset == 0:
            return
        # below the log start the snapshot is the only way on; from nothing it is the short way (the
        # segments below it may still be there, kept by metadata.max.retention.*), as Kafka's loader does
        if self.next_offset >= self.log.start_offset and self.next_offset > 0:
            return
        content = read_snapshot(self.log.snapshot_path(snapshot))
        self.state.load_snapshot(content.records, snapshot.offset)
        self.next_offset = snapshot.offset
        self.last_epoch = snapshot.epoch
        log.info("loaded metadata snapshot %d-%d", snapshot.offset, snapshot.epoch)

    def catch_up(self, high_watermark: int) -> bool:
        """Replay up to `high_watermark` (exclusive). True if any data record was replayed."""
        if high_watermark <= self.next_offset:
            return False
        self._maybe_load_snapshot()
        replayed = False
        for batch in self.log.iter_batches(self.next_offset):
            last = batch.header.last_offset
            if last >= high_watermark:
                break
            if last < self.next_offset:
                continue
            if not batch.is_control:
                for offset, record in batch.records:
                    # the active controller already applied what it wrote itself
                    if offset >= self.next_offset and offset > self.state.last_offset:
                        self.state.replay(record, offset)
                        replayed = True
            self.next_offset = last + 1
            self.last_epoch = batch.header.partition_leader_epoch
            self.bytes_replayed += batch.header.size
        return replayed
