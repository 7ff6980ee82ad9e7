"""Idempotent producer checks and Kafka's producer snapshot format."""

from __future__ import annotations

from pathlib import Path

import pytest

from strom.protocol.errors import InvalidProducerEpochError, OutOfOrderSequenceError
from strom.protocol.record_batch import parse_header
from strom.protocol.records import Record, build_batch
from strom.storage.producer_state import ProducerStateManager, list_snapshots, read_snapshot


def _header(pid: int, epoch: int, seq: int, n: int = 3, base_offset: int = 0):  # type: ignore[no-untyped-def]
    records = [Record(i, 0, None, b"v") for i in range(n)]
    return parse_header(
        build_batch(
            records, base_offset=base_offset, producer_id=pid, producer_epoch=epoch, base_sequence=seq
        )
    )


def test_sequence_rules(tmp_path: Path) -> None:
    state = ProducerStateManager(tmp_path)
    first = _header(7, 0, 0)
    assert state.check(first) is None
    state.update(first, 0, 2, 100)
    # duplicate of the last batch
    dup = state.check(_header(7, 0, 0))
    assert dup is not None and (dup.first_offset, dup.last_offset) == (0, 2)
    with pytest.raises(OutOfOrderSequenceError):
        state.check(_header(7, 0, 5))
    nxt = _header(7, 0, 3)
    assert state.check(nxt) is None
    state.update(nxt, 3, 5, 101)
    with pytest.raises(InvalidProducerEpochError):
        state.check(_header(7, -1, 6))
    # a new epoch must start at 0
    with pytest.raises(OutOfOrderSequenceError):
        state.check(_header(7, 1, 6))
    assert state.check(_header(7, 1, 0)) is None
    # unknown producers are accepted at any sequence (KIP-360)
    assert state.check(_header(99, 0, 40)) is None


def test_fenced_epoch(tmp_path: Path) -> None:
    state = ProducerStateManager(tmp_path)
    state.update(_header(8, 3, 0), 0, 2, 1)
    with pytest.raises(InvalidProducerEpochError):
        state.check(_header(8, 2, 3))


def test_epoch_bumped_by_a_marker_starts_at_sequence_zero(tmp_path: Path) -> None:
    """Transaction version 2: the commit marker bumps the producer's epoch and forgets its sequences. The
    next transaction's first batch must be sequence 0, as in Kafka: a pipelined later batch (sequence 5)
    must not be accepted while the earlier one waits for a retry, or that retry fails
    OUT_OF_ORDER_SEQUENCE_NUMBER and the transactional producer dies."""
    state = ProducerStateManager(tmp_path)
    txn = _header(21, 4, 0)
    state.update(txn, 0, 2, 1)
    state.check_marker(21, 5, 0, transaction_version=2)
    state.complete_txn(21, 5, True, 3, 0)
    with pytest.raises(OutOfOrderSequenceError):
        state.check(_header(21, 5, 5))  # same (bumped) epoch, no batch yet
    with pytest.raises(OutOfOrderSequenceError):
        state.check(_header(21, 6, 5))  # a newer epoch
    assert state.check(_header(21, 5, 0)) is None
    # the rule and the epoch survive a restart through the producer snapshot
    state.take_snapshot(4)
    fresh = ProducerStateManager(tmp_path)
    assert fresh.load_snapshot(log_end_offset=4) == 4
    assert fresh.producers[21].epoch == 5 and not fresh.producers[21].batches
    with pytest.raises(OutOfOrderSequenceError):
        fresh.check(_header(21, 5, 5))
    with pytest.raises(InvalidProducerEpochError):
        fresh.check(_header(21, 4, 3))
    assert fresh.check(_header(21, 5, 0)) is None


def test_only_last_five_batches_are_remembered(tmp_path: Path) -> None:
    state = ProducerStateManager(tmp_path)
    for i in range(7):
        state.update(_header(1, 0, i * 3), i * 3, i * 3 + 2, i)
    assert state.check(_header(1, 0, 6)) is not None  # batch 2 of 7: still among the last five
    with pytest.raises(OutOfOrderSequenceError):
        state.check(_header(1, 0, 3))  # batch 1: forgotten, and not the next sequence


def test_snapshot_roundtrip_and_cleanup(tmp_path: Path) -> None:
    state = ProducerStateManager(tmp_path)
    state.update(_header(11, 2, 0), 10, 12, 555)
    state.update(_header(12, 0, 7, n=1), 13, 13, 556)
    state.take_snapshot(14)
    loaded = read_snapshot(tmp_path / f"{14:020d}.snapshot")
    assert set(loaded) == {11, 12}
    entry = loaded[11]
    assert (entry.epoch, entry.batches[-1].first_seq, entry.batches[-1].last_seq) == (2, 0, 2)
    assert (entry.batches[-1].first_offset, entry.batches[-1].last_offset, entry.batches[-1].timestamp) == (
        10,
        12,
        555,
    )
    fresh = ProducerStateManager(tmp_path)
    assert fresh.load_snapshot(log_end_offset=20) == 14
    assert fresh.check(_header(11, 2, 0)) is not None
    # a snapshot beyond the log end (after truncation) is dropped
    assert ProducerStateManager(tmp_path).load_snapshot(log_end_offset=5) == 0
    assert list_snapshots(tmp_path) == []


def test_corrupt_snapshot_is_ignored(tmp_path: Path) -> None:
    state = ProducerStateManager(tmp_path)
    state.update(_header(11, 0, 0), 0, 2, 1)
    path = state.take_snapshot(3)
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    fresh = ProducerStateManager(tmp_path)
    assert fresh.load_snapshot(10) == 0
    assert fresh.producers == {}


def test_append_of_several_batches_is_checked_in_order(tmp_path: Path) -> None:
    state = ProducerStateManager(tmp_path)
    state.update(_header(3, 0, 0), 0, 2, 10)
    # each batch follows the one before it in the same append
    assert state.check_append([_header(3, 0, 3), _header(3, 0, 6)]) is None
    with pytest.raises(OutOfOrderSequenceError):
        state.check_append([_header(3, 0, 3), _header(3, 0, 9)])
    # a new epoch inside the append restarts at 0; the old epoch after it is fenced
    assert state.check_append([_header(3, 0, 3), _header(3, 1, 0), _header(3, 1, 3)]) is None
    with pytest.raises(InvalidProducerEpochError):
        state.check_append([_header(3, 1, 0), _header(3, 0, 3)])
    # the first batch already in the log answers for the whole append, whatever follows it
    dup = state.check_append([_header(3, 0, 0), _header(3, 0, 99)])
    assert dup is not None and (dup.first_offset, dup.last_offset, dup.timestamp) == (0, 2, 10)
    # a producer seen first in this append takes any first sequence, then must follow it
    with pytest.raises(OutOfOrderSequenceError):
        state.check_append([_header(50, 0, 17), _header(50, 0, 21)])


def _record_replays(log: object) -> list[int]:
    """Wrap `log.iter_batches` so the test sees where each producer-state replay starts."""
    starts: list[int] = []
    real_iter = log.iter_batches  # type: ignore[attr-defined]

    def spy(start_offset: int = 0):  # type: ignore[no-untyped-def]
        starts.append(start_offset)
        return real_iter(start_offset)

    log.iter_batches = spy  # type: ignore[attr-defined]
    return starts


def _idempotent_batch(pid: int, seq: int, n: int = 3) -> bytes:
    records = [Record(i, 0, b"k", b"v" * 40) for i in range(n)]
    return build_batch(records, producer_id=pid, producer_epoch=0, base_sequence=seq)


async def test_snapshot_at_every_roll_bounds_crash_replay(tmp_path: Path) -> None:
    from strom.config import LogConfig
    from strom.replication.partition import Partition
    from strom.storage.log import Log

    log_dir = tmp_path / "t-0"
    log = Log.open(log_dir, LogConfig(segment_bytes=700))
    part = Partition("t", 0, log, node_id=1, leader_epoch=0, clock=lambda: 1000.0)
    for i in range(20):
        part.append_as_leader(_idempotent_batch(9, i * 3), acks=1)
    bases = [segment.base_offset for segment in log.segments()]
    assert len(bases) >= 5, "the test needs several rolls"
    # one snapshot per roll, named after the new segment; only the newest few are kept
    assert [offset for offset, _ in list_snapshots(log_dir)] == bases[-3:]
    newest = read_snapshot(log_dir / f"{bases[-1]:020d}.snapshot")
    assert newest[9].batches[-1].last_offset == bases[-1] - 1  # the state below the new segment
    log.flush()

    # a crash: no shutdown snapshot; recovery replays the active segment only
    reopened = Log.open(log_dir, LogConfig(segment_bytes=700), recovery_point=log.log_end_offset)
    replayed_from = _record_replays(reopened)
    after = Partition("t", 0, reopened, node_id=1, leader_epoch=0, clock=lambda: 1000.0)
    after.load_producer_state()
    assert replayed_from == [bases[-1]]
    retry = after.append_as_leader(_idempotent_batch(9, 19 * 3), acks=1)
    assert retry.duplicate and retry.last_offset == reopened.log_end_offset - 1
    with pytest.raises(OutOfOrderSequenceError):
        after.append_as_leader(_idempotent_batch(9, 99), acks=1)
    assert not after.append_as_leader(_idempotent_batch(9, 20 * 3), acks=1).duplicate
    reopened.close()
    log.close()


def test_torn_newest_snapshot_falls_back_to_an_older_one(tmp_path: Path) -> None:
    state = ProducerStateManager(tmp_path)
    state.update(_header(4, 0, 0), 0, 2, 1)
    state.take_snapshot(3, sync=False)
    state.update(_header(4, 0, 3), 3, 5, 2)
    newest = state.take_snapshot(6, sync=False)
    newest.write_bytes(newest.read_bytes()[:-5])  # an unsynced write cut by an OS crash
    fresh = ProducerStateManager(tmp_path)
    assert fresh.load_snapshot(log_end_offset=10) == 3
    assert fresh.producers[4].last_seq == 2


async def test_unclean_open_replays_from_the_first_recovered_segment(tmp_path: Path) -> None:
    """Kafka recovers each segment after the recovery point from the snapshot at its base: the replay
    must cover every recovered segment, so their aborted-transaction indexes are rebuilt too."""
    from strom.config import LogConfig
    from strom.replication.partition import Partition
    from strom.storage.log import Log

    log_dir = tmp_path / "t-0"
    log = Log.open(log_dir, LogConfig(segment_bytes=700))
    part = Partition("t", 0, log, node_id=1, leader_epoch=0, clock=lambda: 1000.0)
    for i in range(12):
        part.append_as_leader(_idempotent_batch(9, i * 3), acks=1)
    bases = [segment.base_offset for segment in log.segments()]
    assert len(bases) >= 3
    log.flush()
    log.close()
    reopened = Log.open(log_dir, LogConfig(segment_bytes=700), recovery_point=bases[-2] + 1)
    assert reopened.recovered_from == bases[-2]
    replayed_from = _record_replays(reopened)
    after = Partition("t", 0, reopened, node_id=1, leader_epoch=0, clock=lambda: 1000.0)
    after.load_producer_state()
    assert replayed_from == [bases[-2]]
    assert after.append_as_leader(_idempotent_batch(9, 11 * 3), acks=1).duplicate
    reopened.close()


def test_shutdown_snapshot_is_skipped_when_it_would_change_nothing(tmp_path: Path) -> None:
    """A clean restart of idle partitions must not pay for a snapshot each: none for an empty log, and
    none when the newest snapshot already sits at the log end."""
    from strom.config import LogConfig
    from strom.replication.partition import Partition
    from strom.storage.log import Log

    log = Log.open(tmp_path / "t-0", LogConfig())
    part = Partition("t", 0, log, node_id=1, leader_epoch=0, clock=lambda: 1000.0)
    part.take_producer_snapshot()
    assert list_snapshots(log.dir) == []
    part.append_as_leader(_idempotent_batch(9, 0), acks=1)
    part.take_producer_snapshot()
    first = list_snapshots(log.dir)
    assert [offset for offset, _ in first] == [log.log_end_offset]
    stamp = first[0][1].stat().st_mtime_ns
    part.take_producer_snapshot()
    assert list_snapshots(log.dir) == first and first[0][1].stat().st_mtime_ns == stamp
    part.append_as_leader(_idempotent_batch(9, 3), acks=1)
    part.take_producer_snapshot()
    assert [offset for offset, _ in list_snapshots(log.dir)][-1] == log.log_end_offset
    log.close()
