"""The metadata log's retention (Kafka's KafkaRaftLog.maybeClean): snapshots and the segments below them
stay until `metadata.max.retention.bytes` (log plus snapshots) or `metadata.max.retention.ms` (a
snapshot's last contained timestamp) is exceeded; then the log start moves up to the next snapshot, one
pair at a time, and the newest snapshot always stays. A restarted node starts from the snapshot, not from
the retained records below it."""

from __future__ import annotations

from pathlib import Path

from strom.metadata.batches import build_metadata_batch
from strom.metadata.records import NoOpRecord
from strom.metadata.serde import ApiMessageAndVersion
from strom.metadata.snapshot import write_snapshot
from strom.raft.metadata_log import MetadataLog, OffsetAndEpoch

NOOP = ApiMessageAndVersion(NoOpRecord(), 0)
DAY_MS = 86_400_000


def _append(log: MetadataLog, count: int, epoch: int = 1) -> None:
    for _ in range(count):
        log.append_as_leader(
            build_metadata_batch([NOOP], base_offset=0, timestamp_ms=0, leader_epoch=epoch), epoch, 0
        )
        log.log.roll()  # one segment per batch, so that cleaning has whole segments to delete


def _snapshot(log: MetadataLog, timestamp_ms: int, epoch: int = 1) -> OffsetAndEpoch:
    snapshot = OffsetAndEpoch(epoch, log.end_offset)
    write_snapshot(
        log.snapshot_path(snapshot),
        [NOOP] * 3,
        kraft_version=0,
        voters=None,
        timestamp_ms=timestamp_ms,
        epoch=epoch,
    )
    log.snapshot_written(snapshot, timestamp_ms)
    return snapshot


def _log(tmp_path: Path) -> MetadataLog:
    return MetadataLog.open(tmp_path)


def test_within_retention_nothing_goes(tmp_path: Path) -> None:
    log = _log(tmp_path)
    _append(log, 3)
    first = _snapshot(log, 1000)
    _append(log, 3)
    second = _snapshot(log, 2000)
    assert not log.maybe_clean(3000, 104857600, 604800000)  # Kafka's defaults
    assert log.start_offset == 0 and log.snapshots == [first, second]
    log.close()


def test_the_size_limit_cleans_pair_by_pair_and_keeps_the_newest(tmp_path: Path) -> None:
    log = _log(tmp_path)
    _append(log, 3)
    first = _snapshot(log, 1000)
    _append(log, 3)
    second = _snapshot(log, 2000)
    _append(log, 2)
    third = _snapshot(log, 3000)
    batch = log.log.size_in_bytes // 8  # eight equal one-batch segments
    sizes = {s: log.snapshot_size(s) or 0 for s in (first, second, third)}
    # a limit that deleting up to the second snapshot satisfies: the second and third stay
    assert log.maybe_clean(4000, 2 * batch + sizes[second] + sizes[third], -1)
    assert log.start_offset == second.offset and log.snapshots == [second, third]
    assert not log.snapshot_path(first).exists()
    # with no room at all everything up to the newest snapshot goes, and the newest stays
    assert log.maybe_clean(4000, 0, -1)
    assert log.start_offset == third.offset and log.snapshots == [third]
    assert not log.snapshot_path(second).exists() and log.snapshot_path(third).exists()
    assert not log.maybe_clean(4000, 0, -1)  # one snapshot: nothing more
    log.close()


def test_the_age_limit_reads_the_snapshot_timestamps(tmp_path: Path) -> None:
    log = _log(tmp_path)
    _append(log, 2)
    old = _snapshot(log, 1000)
    _append(log, 2)
    recent = _snapshot(log, 5 * DAY_MS)
    log.close()
    log = _log(tmp_path)  # the timestamps come from the files now
    now = 6 * DAY_MS
    assert log.maybe_clean(now, -1, 3 * DAY_MS)  # `old` is older than three days, `recent` is not
    assert log.start_offset == recent.offset and log.snapshots == [recent]
    assert not log.snapshot_path(old).exists()
    log.close()


def test_a_reopened_log_keeps_its_retained_segments(tmp_path: Path) -> None:
    log = _log(tmp_path)
    bootstrap = _snapshot(log, 0, epoch=0)  # what `strom storage format` writes: 0-0
    _append(log, 4)
    snapshot = _snapshot(log, 1000)
    _append(log, 1)
    log.close()
    log = _log(tmp_path)
    assert log.start_offset == 0 and log.snapshots == [bootstrap, snapshot]
    assert len(list(log.iter_batches(0))) == 5
    log.close()


def test_a_fresh_replay_starts_from_the_snapshot_not_the_retained_records(tmp_path: Path) -> None:
    """What a restarted node does: load the newest snapshot, then replay the log from its end offset,
    although the records below it are still on disk (Kafka's loader does the same)."""
    import uuid

    from strom.cluster.kraft.loader import LogReplayer
    from strom.metadata.image import MetadataState
    from strom.metadata.records import TopicRecord

    def topic(name: str) -> ApiMessageAndVersion:
        return ApiMessageAndVersion(TopicRecord(name=name, topic_id=uuid.uuid4()), 0)

    log = _log(tmp_path)
    _snapshot(log, 0, epoch=0)
    log.append_as_leader(
        build_metadata_batch([topic("below")], base_offset=0, timestamp_ms=0, leader_epoch=1), 1, 0
    )
    snapshot = OffsetAndEpoch(1, log.end_offset)
    write_snapshot(
        log.snapshot_path(snapshot),
        [topic("in-snapshot")],
        kraft_version=0,
        voters=None,
        timestamp_ms=0,
        epoch=1,
    )
    log.snapshot_written(snapshot, 0)
    log.append_as_leader(
        build_metadata_batch([topic("above")], base_offset=0, timestamp_ms=0, leader_epoch=1), 1, 0
    )
    replayer = LogReplayer(log, MetadataState())
    replayer.catch_up(log.end_offset)
    assert sorted(t.name for t in replayer.state.topics.values()) == ["above", "in-snapshot"]
    assert log.start_offset == 0  # the records below the snapshot are kept, and were not replayed
    log.close()
