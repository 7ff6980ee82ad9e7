"""The aborted-transaction index (.txnindex), transaction markers in a partition, and the last stable
offset: what read_committed readers may see and which aborted transactions they are told about."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from strom.config import LogConfig
from strom.protocol.control_records import ABORT, COMMIT, build_marker, marker_type
from strom.protocol.errors import InvalidProducerEpochError
from strom.protocol.record_batch import parse_header
from strom.protocol.records import Record, build_batch
from strom.replication.partition import Partition
from strom.storage.log import Log
from strom.storage.producer_state import TransactionCoordinatorFencedError
from strom.storage.txn_index import ENTRY_SIZE, AbortedTxn, AbortedTxnIndex, TxnIndex, index_path

PID = 4000


def txn_batch(pid: int, values: list[bytes], seq: int, epoch: int = 0) -> bytes:
    return build_batch(
        [Record(i, 0, b"k", v) for i, v in enumerate(values)],
        base_timestamp=1_700_000_000_000,
        producer_id=pid,
        producer_epoch=epoch,
        base_sequence=seq,
        transactional=True,
    )


def plain_batch(value: bytes) -> bytes:
    return build_batch([Record(0, 0, b"k", value)], base_timestamp=1_700_000_000_000)


def test_entries_are_kafkas_34_bytes(tmp_path: Path) -> None:
    index = TxnIndex(tmp_path / "00000000000000000000.txnindex")
    index.append(AbortedTxn(7, 10, 20, 21))
    data = index.path.read_bytes()
    assert ENTRY_SIZE == 34 and len(data) == 34
    assert data == (0).to_bytes(2, "big") + b"".join(n.to_bytes(8, "big") for n in (7, 10, 20, 21))
    index.path.write_bytes(data + data[:10])  # a torn tail is ignored
    assert index.read() == [AbortedTxn(7, 10, 20, 21)]


def test_collect_truncate_drop_and_merge(tmp_path: Path) -> None:
    index = AbortedTxnIndex(tmp_path)
    index.append(0, AbortedTxn(1, 0, 5, 6))
    index.append(0, AbortedTxn(2, 3, 9, 10))
    index.append(100, AbortedTxn(3, 100, 120, 121))
    assert index.collect(0, 4) == [AbortedTxn(1, 0, 5, 6), AbortedTxn(2, 3, 9, 10)]
    assert index.collect(6, 200) == [AbortedTxn(2, 3, 9, 10), AbortedTxn(3, 100, 120, 121)]
    assert index.collect(10, 100) == []  # starts at or after the upper bound
    assert index.contains(2, 9) and not index.contains(2, 5)
    reopened = AbortedTxnIndex(tmp_path)
    reopened.load([0, 100])
    assert reopened.entries == index.entries
    index.truncate_to(9)
    assert index.entries == [AbortedTxn(1, 0, 5, 6)]
    assert not index_path(tmp_path, 100).exists()
    index.append(50, AbortedTxn(4, 50, 60, 61))
    index.merge_segments(0, [0, 50])
    assert not index_path(tmp_path, 50).exists()
    assert TxnIndex(index_path(tmp_path, 0)).read() == [AbortedTxn(1, 0, 5, 6), AbortedTxn(4, 50, 60, 61)]
    index.drop_segments([0])
    assert index.entries == [] and not index_path(tmp_path, 0).exists()


def test_marker_records() -> None:
    marker = build_marker(PID, 3, True, 9, 1234)
    header = parse_header(marker)
    assert header.is_control and header.is_transactional and header.producer_id == PID
    assert (header.producer_epoch, header.base_sequence) == (3, -1)
    assert marker_type(marker) == COMMIT
    assert marker_type(build_marker(PID, 3, False, 9, 1234)) == ABORT


@pytest.fixture
def partition(tmp_path: Path) -> Callable[[], Partition]:
    opened: list[Log] = []

    def _open() -> Partition:
        log = Log.open(tmp_path / "t-0", LogConfig(), clean_shutdown=bool(opened))
        opened.append(log)
        part = Partition("t", 0, log, node_id=1, clock=lambda: 1_700_000_000.0)
        part.load_producer_state()
        return part

    yield _open
    for log in opened:
        log.close()


def test_abort_and_commit_move_the_last_stable_offset(partition: Callable[[], Partition]) -> None:
    part = partition()
    part.append_as_leader(plain_batch(b"before"), acks=1)  # offset 0
    part.append_as_leader(txn_batch(PID, [b"a1", b"a2"], 0), acks=1)  # 1-2
    part.append_as_leader(plain_batch(b"middle"), acks=1)  # 3
    assert (part.high_watermark, part.last_stable_offset) == (4, 1)
    assert part.read(0, 1 << 20, stable_only=True).read_bytes() == plain_batch_at(part, 0)
    assert part.append_txn_marker(PID, 0, False, 5) == 4
    assert part.last_stable_offset == 5
    assert part.log.collect_aborted_txns(0, 5) == [AbortedTxn(PID, 1, 4, 5)]
    part.append_as_leader(txn_batch(PID, [b"c1"], 2), acks=1)  # 5
    assert part.last_stable_offset == 5
    assert part.append_txn_marker(PID, 0, True, 5) == 6
    assert part.last_stable_offset == 7
    assert part.log.collect_aborted_txns(5, 7) == []  # commits are not indexed


def plain_batch_at(part: Partition, offset: int) -> bytes:
    """The stored bytes of the single batch at `offset`."""
    for header, data in part.log.iter_batches(offset):
        if header.base_offset == offset:
            return bytes(data)
    raise AssertionError(offset)


def test_stale_markers_are_refused(partition: Callable[[], Partition]) -> None:
    part = partition()
    part.append_as_leader(txn_batch(PID, [b"x"], 0, epoch=2), acks=1)
    with pytest.raises(InvalidProducerEpochError):
        part.append_txn_marker(PID, 1, False, 0)
    part.append_txn_marker(PID, 3, False, 4)  # a fencing abort takes the bumped epoch
    assert part.producer_state.producers[PID].epoch == 3
    with pytest.raises(TransactionCoordinatorFencedError):
        part.append_txn_marker(PID, 3, True, 2)


def test_transaction_version_2_markers_must_bump_the_epoch(partition: Callable[[], Partition]) -> None:
    """KIP-890 part 2: the coordinator bumps the epoch for every marker, so a marker at the batches' own
    epoch is stale, unless it repeats a marker already written (Kafka's ProducerAppendInfo)."""
    part = partition()
    part.append_as_leader(txn_batch(PID, [b"x"], 0, epoch=2), acks=1)
    with pytest.raises(InvalidProducerEpochError):
        part.append_txn_marker(PID, 2, True, 0, transaction_version=2)
    part.append_txn_marker(PID, 3, True, 0, transaction_version=2)
    assert part.producer_state.producers[PID].epoch == 3 and PID not in part.producer_state.ongoing_txns
    part.append_txn_marker(PID, 3, True, 0, transaction_version=2)  # a retry: no transaction open
    # the next transaction runs at the bumped epoch, its sequences from 0
    part.append_as_leader(txn_batch(PID, [b"y"], 0, epoch=3), acks=1)
    with pytest.raises(InvalidProducerEpochError):
        part.append_txn_marker(PID, 3, False, 0, transaction_version=2)


def test_open_transaction_and_index_survive_a_restart(partition: Callable[[], Partition]) -> None:
    part = partition()
    part.append_as_leader(txn_batch(PID, [b"a"], 0), acks=1)  # 0
    part.append_txn_marker(PID, 0, False, 0)  # 1
    part.append_as_leader(txn_batch(PID + 1, [b"b"], 0), acks=1)  # 2, left open
    part.take_producer_snapshot()
    part.log.close()
    again = partition()
    assert again.last_stable_offset == 2
    assert again.log.collect_aborted_txns(0, 3) == [AbortedTxn(PID, 0, 1, 2)]


def test_replay_rebuilds_a_lost_index(partition: Callable[[], Partition], tmp_path: Path) -> None:
    part = partition()
    part.append_as_leader(txn_batch(PID, [b"a"], 0), acks=1)  # 0
    part.append_as_leader(txn_batch(PID + 1, [b"b"], 0), acks=1)  # 1
    part.append_txn_marker(PID, 0, False, 0)  # 2
    part.append_txn_marker(PID + 1, 0, False, 0)  # 3
    part.log.close()
    lost = list((tmp_path / "t-0").glob("*.txnindex"))
    assert lost
    for path in lost:  # an unclean stop lost the index; no snapshot either
        path.unlink()
    for path in (tmp_path / "t-0").glob("*.snapshot"):  # rolls write them: remove those too
        path.unlink()
    again = partition()
    assert again.log.collect_aborted_txns(0, 4) == [AbortedTxn(PID, 0, 2, 1), AbortedTxn(PID + 1, 1, 3, 4)]
    assert again.last_stable_offset == 4


def test_truncation_drops_entries_and_reopens_transactions(partition: Callable[[], Partition]) -> None:
    part = partition()
    part.append_as_leader(txn_batch(PID, [b"a"], 0), acks=1)  # 0
    part.append_txn_marker(PID, 0, False, 0)  # 1
    part.leader_id = 2  # now a follower cutting its log where it diverges from the new leader
    part.truncate_to(1)
    assert part.log.collect_aborted_txns(0, 2) == []
    assert part.producer_state.first_unstable_offset() == 0


def test_follower_copies_markers(partition: Callable[[], Partition], tmp_path: Path) -> None:
    leader = Partition(
        "t", 0, Log.open(tmp_path / "leader" / "t-0", LogConfig()), node_id=1, clock=lambda: 1.0
    )
    leader.append_as_leader(txn_batch(PID, [b"a", b"b"], 0), acks=1)
    leader.append_txn_marker(PID, 0, False, 1)
    follower = partition()
    follower.leader_id = 1
    follower.node_id = 2
    follower.append_as_follower(b"".join(bytes(data) for _, data in leader.log.iter_batches(0)))
    assert follower.log.collect_aborted_txns(0, 3) == [AbortedTxn(PID, 0, 2, 3)]
    assert follower.producer_state.first_unstable_offset() is None
    leader.log.close()
