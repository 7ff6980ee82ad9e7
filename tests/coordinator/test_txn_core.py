"""The transaction coordinator's state machine with a fake clock, and its __transaction_state records."""

from __future__ import annotations

import itertools

import pytest

from strom.coordinator.txn.core import Outcome, Transition, TxnConfig, TxnCoordinatorCore, TxnMetadata
from strom.coordinator.txn.schemas import (
    TxnLogValue,
    TxnState,
    decode_key,
    decode_value,
    encode_key,
    encode_value,
)
from strom.protocol.errors import CorruptRecordError, ErrorCode

TID = "app-1"


class Clock:
    def __init__(self) -> None:
        self.ms = 1_000_000

    def advance(self, ms: int) -> int:
        self.ms += ms
        return self.ms


def make_core(**config: int) -> TxnCoordinatorCore:
    pids = itertools.count(1000)
    core = TxnCoordinatorCore(TxnConfig(num_partitions=3, **config), lambda: next(pids))
    for p in range(3):
        core.begin_loading(p)
        core.finish_loading(p, coordinator_epoch=7)
    return core


def written(core: TxnCoordinatorCore, outcome: Outcome) -> TxnMetadata:
    """The shell's part: the record was written, adopt it."""
    assert outcome.transition is not None, outcome
    core.apply(outcome.transition)
    return outcome.transition.target


def ongoing(core: TxnCoordinatorCore, clock: Clock, *partitions: tuple[str, int]) -> TxnMetadata:
    meta = written(core, core.init_producer_id(TID, 60000, clock.ms))
    return written(
        core, core.add_partitions(TID, meta.producer_id, meta.producer_epoch, list(partitions), clock.ms)
    )


def test_new_id_gets_producer_id_at_epoch_zero_and_bumps_on_reinit() -> None:
    core, clock = make_core(), Clock()
    first = written(core, core.init_producer_id(TID, 60000, clock.ms))
    assert (first.producer_id, first.producer_epoch, first.state) == (1000, 0, TxnState.EMPTY)
    second = written(core, core.init_producer_id(TID, 30000, clock.advance(5)))
    assert (second.producer_id, second.producer_epoch, second.timeout_ms) == (1000, 1, 30000)
    # the old epoch is fenced everywhere the coordinator checks it
    assert core.add_partitions(TID, 1000, 0, [("t", 0)], clock.ms).error == ErrorCode.producer_fenced
    assert core.end_txn(TID, 1000, 0, True, clock.ms).error == ErrorCode.producer_fenced


def test_timeout_must_be_within_the_maximum() -> None:
    core = make_core(max_timeout_ms=1000)
    assert core.init_producer_id(TID, 1001, 0).error == ErrorCode.invalid_transaction_timeout
    assert core.init_producer_id(TID, 0, 0).error == ErrorCode.invalid_transaction_timeout
    assert core.init_producer_id(TID, 1000, 0).error == ErrorCode.none


def test_pending_write_answers_concurrent_transactions_and_abandon_restores() -> None:
    core, clock = make_core(), Clock()
    meta = written(core, core.init_producer_id(TID, 60000, clock.ms))
    outcome = core.add_partitions(TID, meta.producer_id, 0, [("t", 0)], clock.ms)
    assert outcome.transition is not None
    assert core.end_txn(TID, meta.producer_id, 0, True, clock.ms).error == ErrorCode.concurrent_transactions
    core.abandon(outcome.transition)
    assert core.txns[TID].state == TxnState.EMPTY
    assert core.end_txn(TID, meta.producer_id, 0, True, clock.ms).error == ErrorCode.invalid_txn_state


def test_commit_flow_and_repeats() -> None:
    core, clock = make_core(), Clock()
    meta = ongoing(core, clock, ("t", 0), ("t", 1))
    assert meta.state == TxnState.ONGOING and meta.start_ms == clock.ms
    # adding partitions already in the transaction writes nothing
    again = core.add_partitions(TID, meta.producer_id, meta.producer_epoch, [("t", 1)], clock.ms)
    assert again.error == ErrorCode.none and again.transition is None
    outcome = core.end_txn(TID, meta.producer_id, meta.producer_epoch, True, clock.advance(10))
    assert outcome.transition is not None and outcome.transition.send_markers
    assert outcome.transition.commit and outcome.transition.coordinator_epoch == 7
    prepared = written(core, outcome)
    assert prepared.partitions == frozenset({("t", 0), ("t", 1)})
    # while markers go out: the same end is CONCURRENT_TRANSACTIONS, the other one INVALID_TXN_STATE
    assert core.end_txn(TID, meta.producer_id, 0, True, clock.ms).error == ErrorCode.concurrent_transactions
    assert core.end_txn(TID, meta.producer_id, 0, False, clock.ms).error == ErrorCode.invalid_txn_state
    assert core.add_partitions(TID, meta.producer_id, 0, [("u", 0)], clock.ms).error == (
        ErrorCode.concurrent_transactions
    )
    assert core.init_producer_id(TID, 60000, clock.ms).error == ErrorCode.concurrent_transactions
    completion = core.complete(prepared, clock.advance(5))
    assert completion is not None
    core.apply(completion)
    done = core.txns[TID]
    assert done.state == TxnState.COMPLETE_COMMIT and not done.partitions
    assert core.end_txn(TID, meta.producer_id, 0, True, clock.ms).error == ErrorCode.none
    assert core.end_txn(TID, meta.producer_id, 0, False, clock.ms).error == ErrorCode.invalid_txn_state


def test_wrong_producer_id_is_a_mapping_error() -> None:
    core, clock = make_core(), Clock()
    meta = ongoing(core, clock, ("t", 0))
    assert core.end_txn(TID, meta.producer_id + 1, 0, True, clock.ms).error == (
        ErrorCode.invalid_producer_id_mapping
    )
    assert core.add_partitions("unknown", 1, 0, [("t", 0)], clock.ms).error == (
        ErrorCode.invalid_producer_id_mapping
    )


def test_init_during_open_transaction_fences_and_aborts() -> None:
    core, clock = make_core(), Clock()
    meta = ongoing(core, clock, ("t", 0))
    outcome = core.init_producer_id(TID, 60000, clock.ms)
    assert outcome.error == ErrorCode.concurrent_transactions
    fence = written(core, outcome)
    # the fence bumps the epoch, and the abort at the server's transaction version 2 bumps it again
    assert fence.state == TxnState.PREPARE_ABORT and fence.producer_epoch == meta.producer_epoch + 2
    assert outcome.transition is not None and outcome.transition.send_markers
    assert not outcome.transition.commit and outcome.transition.transaction_version == 2
    completion = core.complete(fence, clock.ms)
    assert completion is not None
    core.apply(completion)
    retried = written(core, core.init_producer_id(TID, 60000, clock.ms))
    assert retried.producer_epoch == meta.producer_epoch + 3 and retried.state == TxnState.EMPTY


def test_kip360_expected_epoch() -> None:
    core, clock = make_core(), Clock()
    meta = written(core, core.init_producer_id(TID, 60000, clock.ms))
    bumped = written(core, core.init_producer_id(TID, 60000, clock.ms, meta.producer_id, 0))
    assert bumped.producer_epoch == 1
    # a retry of the same bump answers the current epoch without writing
    retry = core.init_producer_id(TID, 60000, clock.ms, meta.producer_id, 0)
    assert retry.error == ErrorCode.none and retry.transition is None and retry.metadata == bumped
    assert core.init_producer_id(TID, 60000, clock.ms, meta.producer_id, 5).error == ErrorCode.producer_fenced
    assert core.init_producer_id(TID, 60000, clock.ms, 424242, 1).error == ErrorCode.invalid_producer_epoch


def test_exhausted_epoch_rotates_the_producer_id() -> None:
    core, clock = make_core(), Clock()
    meta = written(core, core.init_producer_id(TID, 60000, clock.ms))
    core.txns[TID] = TxnMetadata(TID, meta.producer_id, 32766, 60000, TxnState.COMPLETE_COMMIT)
    rotated = written(core, core.init_producer_id(TID, 60000, clock.ms))
    assert rotated.producer_id != meta.producer_id and rotated.producer_epoch == 0


def test_timed_out_transaction_is_aborted_with_an_epoch_bump() -> None:
    core, clock = make_core(), Clock()
    meta = ongoing(core, clock, ("t", 0))
    assert core.next_deadline() == meta.start_ms + 60000
    assert core.timed_out(clock.advance(59999)) == []
    (transition,) = core.timed_out(clock.advance(1))
    assert transition.target.state == TxnState.PREPARE_ABORT
    assert transition.target.producer_epoch == meta.producer_epoch + 2
    assert transition.send_markers and not transition.commit
    assert core.timed_out(clock.ms) == []  # in flight: not aborted twice
    core.apply(transition)
    assert core.end_txn(TID, meta.producer_id, meta.producer_epoch, False, clock.ms).error == (
        ErrorCode.producer_fenced
    )


def test_idle_ids_expire_with_a_tombstone() -> None:
    core, clock = make_core(id_expiration_ms=1000), Clock()
    written(core, core.init_producer_id(TID, 60000, clock.ms))
    ongoing_id = "busy"
    busy = written(core, core.init_producer_id(ongoing_id, 60000, clock.ms))
    written(core, core.add_partitions(ongoing_id, busy.producer_id, 0, [("t", 0)], clock.ms))
    assert core.expired(clock.advance(999)) == []
    (tombstone,) = core.expired(clock.advance(1))
    assert tombstone.target.transactional_id == TID and tombstone.target.state == TxnState.DEAD
    core.apply(tombstone)
    assert core.describe(TID) == (ErrorCode.transactional_id_not_found, None)
    assert core.describe(ongoing_id)[0] == ErrorCode.none


def test_ownership_errors_and_replay_resumes_prepared_transactions() -> None:
    pids = itertools.count(1)
    core = TxnCoordinatorCore(TxnConfig(num_partitions=3), lambda: next(pids))
    partition = core.partition_for(TID)
    assert core.init_producer_id(TID, 1000, 0).error == ErrorCode.not_coordinator
    core.begin_loading(partition)
    assert core.init_producer_id(TID, 1000, 0).error == ErrorCode.coordinator_load_in_progress
    prepared = TxnMetadata(TID, 5, 2, 1000, TxnState.PREPARE_COMMIT, frozenset({("t", 3)}), 10, 20)
    other = TxnMetadata("gone", 6, 0, 1000, TxnState.EMPTY, update_ms=5)
    core.load_record(partition, encode_key(other.transactional_id), encode_value(other.to_log_value()))
    core.load_record(partition, encode_key(TID), encode_value(prepared.to_log_value()))
    core.load_record(partition, encode_key("gone"), None)
    (resume,) = core.finish_loading(partition, coordinator_epoch=4)
    assert resume == Transition(prepared, send_markers=True, coordinator_epoch=4)
    assert core.describe("gone")[0] in (ErrorCode.transactional_id_not_found, ErrorCode.not_coordinator)
    assert core.describe(TID) == (ErrorCode.none, prepared)
    core.unload(partition)
    assert core.describe(TID) == (ErrorCode.not_coordinator, None)


def test_verify_partition() -> None:
    core, clock = make_core(), Clock()
    meta = ongoing(core, clock, ("t", 0))
    assert core.verify_partition(TID, meta.producer_id, meta.producer_epoch, ("t", 0)) == ErrorCode.none
    # Kafka's coordinator answers (the produce side maps them for older clients)
    assert core.verify_partitions(TID, meta.producer_id, meta.producer_epoch, [("t", 0), ("t", 1)]) == {
        ("t", 0): ErrorCode.none,
        ("t", 1): ErrorCode.transaction_abortable,
    }
    assert core.verify_partition(TID, meta.producer_id, meta.producer_epoch - 1, ("t", 0)) == (
        ErrorCode.producer_fenced
    )
    assert core.verify_partition(TID, meta.producer_id + 1, meta.producer_epoch, ("t", 0)) == (
        ErrorCode.invalid_producer_id_mapping
    )
    written(core, core.end_txn(TID, meta.producer_id, meta.producer_epoch, True, clock.ms))
    assert core.verify_partition(TID, meta.producer_id, meta.producer_epoch, ("t", 0)) == (
        ErrorCode.concurrent_transactions
    )


# --- transaction version 2 (KIP-890 part 2) -------------------------------------------------------------


def test_v2_every_end_bumps_the_epoch_and_markers_carry_it() -> None:
    core, clock = make_core(), Clock()
    meta = written(core, core.init_producer_id(TID, 60000, clock.ms))
    # a broker adds the partition for a Produce v12: the transition records client version 2
    added = written(core, core.add_partitions(TID, meta.producer_id, 0, [("t", 0)], clock.ms, 2))
    assert added.client_transaction_version == 2 and added.state == TxnState.ONGOING
    outcome = core.end_txn(TID, meta.producer_id, 0, True, clock.advance(1), epoch_bump=True)
    prepared = written(core, outcome)
    assert outcome.transition is not None and outcome.transition.transaction_version == 2
    assert (prepared.state, prepared.producer_epoch, prepared.last_producer_epoch) == (
        TxnState.PREPARE_COMMIT,
        1,
        0,
    )
    # a retry while the markers go out, and the next transaction's end at the new epoch, are retried
    assert core.end_txn(TID, meta.producer_id, 0, True, clock.ms, epoch_bump=True).error == (
        ErrorCode.concurrent_transactions
    )
    assert core.end_txn(TID, meta.producer_id, 1, False, clock.ms, epoch_bump=True).error == (
        ErrorCode.concurrent_transactions
    )
    completion = core.complete(prepared, clock.ms)
    assert completion is not None
    core.apply(completion)
    retry = core.end_txn(TID, meta.producer_id, 0, True, clock.ms, epoch_bump=True)
    assert retry.error == ErrorCode.none and retry.metadata is not None
    assert retry.metadata.producer_epoch == 1
    assert core.end_txn(TID, meta.producer_id, 0, False, clock.ms, epoch_bump=True).error == (
        ErrorCode.invalid_txn_state
    )
    # the old epoch is fenced; the next transaction runs at epoch 1
    assert core.add_partitions(TID, meta.producer_id, 0, [("t", 0)], clock.ms, 2).error == (
        ErrorCode.producer_fenced
    )
    # Kafka's table: at the current epoch, a commit of a finished transaction is refused, an abort is
    # written without partitions (bumping the epoch)
    assert core.end_txn(TID, meta.producer_id, 1, True, clock.ms, epoch_bump=True).error == (
        ErrorCode.invalid_txn_state
    )
    empty_abort = written(core, core.end_txn(TID, meta.producer_id, 1, False, clock.ms, epoch_bump=True))
    assert (empty_abort.state, empty_abort.producer_epoch, empty_abort.partitions) == (
        TxnState.PREPARE_ABORT,
        2,
        frozenset(),
    )
    assert core.end_txn(TID, meta.producer_id, 5, False, clock.ms, epoch_bump=True).error == (
        ErrorCode.producer_fenced
    )


def test_v2_exhausted_epoch_moves_to_a_new_producer_id_on_completion() -> None:
    core, clock = make_core(), Clock()
    meta = written(core, core.init_producer_id(TID, 60000, clock.ms))
    core.txns[TID] = TxnMetadata(
        TID, meta.producer_id, 32766, 60000, TxnState.ONGOING, frozenset({("t", 0)}), clock.ms, clock.ms
    )
    prepared = written(core, core.end_txn(TID, meta.producer_id, 32766, True, clock.ms, epoch_bump=True))
    assert prepared.producer_epoch == 32767 and prepared.next_producer_id >= 0
    completion = core.complete(prepared, clock.ms)
    assert completion is not None
    core.apply(completion)
    done = core.txns[TID]
    assert (done.producer_id, done.producer_epoch) == (prepared.next_producer_id, 0)
    assert done.previous_producer_id == meta.producer_id and done.next_producer_id == -1
    # a retry under the old id and its last epoch answers the new id
    retry = core.end_txn(TID, meta.producer_id, 32766, True, clock.ms, epoch_bump=True)
    assert retry.error == ErrorCode.none and retry.metadata == done


def test_records_name_the_previous_producer_id_and_client_version() -> None:
    core, clock = make_core(), Clock()
    meta = written(core, core.init_producer_id(TID, 60000, clock.ms))
    added = written(core, core.add_partitions(TID, meta.producer_id, 0, [("t", 0)], clock.ms, 2))
    value = added.to_log_value()
    assert (value.previous_producer_id, value.client_transaction_version) == (meta.producer_id, 2)
    # Kafka 4.4's bytes: v1, tags 0 (previous producer id) and 2 (client transaction version)
    raw = encode_value(value)
    assert raw[:2] == b"\x00\x01"
    assert raw.endswith(b"\x02\x00\x08" + meta.producer_id.to_bytes(8, "big") + b"\x02\x02\x00\x02")
    assert decode_value(raw) == value


def test_listing_filters() -> None:
    core, clock = make_core(), Clock()
    meta = ongoing(core, clock, ("t", 0))
    written(core, core.init_producer_id("idle", 60000, clock.ms))
    assert [m.transactional_id for m in core.listing({"Ongoing"})] == [TID]
    assert {m.transactional_id for m in core.listing()} == {TID, "idle"}
    assert [m.transactional_id for m in core.listing(producer_ids={meta.producer_id})] == [TID]
    assert core.listing(min_duration_ms=500, now_ms=clock.ms + 100) == []
    assert [m.transactional_id for m in core.listing(min_duration_ms=500, now_ms=clock.ms + 600)] == [TID]


# --- records ------------------------------------------------------------------------------------------


def test_key_and_value_round_trip_in_kafka_layout() -> None:
    key = encode_key("tx")
    assert key == b"\x00\x00\x00\x02tx"
    assert decode_key(key) == "tx"
    value = TxnLogValue(42, 3, 60000, TxnState.ONGOING, (("a", (0, 2)), ("b", (1,))), 1234, 1000)
    raw = encode_value(value, version=0)
    # version 0, producer id, epoch, timeout, status, 2 topics
    assert raw[:2] == b"\x00\x00" and raw[2:10] == (42).to_bytes(8, "big") and raw[16] == 1
    assert decode_value(raw) == value
    assert decode_value(encode_value(value)) == value  # v1, as written
    empty = TxnLogValue(42, 3, 60000, TxnState.EMPTY, (), 1234, -1)
    assert b"\xff\xff\xff\xff" in encode_value(empty, version=0)  # Empty writes a null partition list
    assert decode_value(encode_value(empty, version=0)) == empty
    # Kafka 4.4's v1 bytes of an Empty record (a null compact array, tag 0 only)
    kafka = bytes.fromhex(
        "0001000000000000000000000000ea600000000001a24d2dad86ffffffffffffffff0100080000000000000000"
    )
    decoded = decode_value(kafka)
    assert (decoded.state, decoded.timeout_ms, decoded.previous_producer_id) == (TxnState.EMPTY, 60000, 0)
    assert encode_value(decoded) == kafka


def test_flexible_v1_value_is_read() -> None:
    # v1: compact strings/arrays and tagged fields (one unknown tag at the top level is skipped)
    raw = bytearray(b"\x00\x01")
    raw += (7).to_bytes(8, "big") + (1).to_bytes(2, "big") + (500).to_bytes(4, "big") + b"\x02"
    raw += b"\x02"  # one topic
    raw += b"\x02t" + b"\x02" + (4).to_bytes(4, "big") + b"\x00"  # topic "t", partitions [4], no tags
    raw += (99).to_bytes(8, "big") + (98).to_bytes(8, "big")
    raw += b"\x01" + b"\x00" + b"\x02" + b"\xab\xcd"  # one tagged field (tag 0, 2 bytes)
    assert decode_value(bytes(raw)) == TxnLogValue(7, 1, 500, TxnState.PREPARE_COMMIT, (("t", (4,)),), 99, 98)


def test_unknown_versions_are_corrupt() -> None:
    with pytest.raises(CorruptRecordError):
        decode_key(b"\x00\x05\x00\x00")
    with pytest.raises(CorruptRecordError):
        decode_value(b"\x00\x09" + bytes(40))
    assert TxnState.PREPARE_COMMIT.kafka_name == "PrepareCommit"
