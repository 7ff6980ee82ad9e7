"""The share coordinator core (KIP-932): __share_group_state records as Kafka 4.4 writes them, the merge
of ShareUpdate batches over a ShareSnapshot, state and leader epoch fencing, snapshots every N updates,
and replay giving back the same state; share-group records of __consumer_offsets round-trip."""

from __future__ import annotations

import uuid

from strom.coordinator.share import records as grec
from strom.coordinator.share import state_records as rec
from strom.coordinator.share.partition import StateBatch
from strom.coordinator.share.state_core import ShareStateCore, coordinator_key, java_uuid, merge_batches
from strom.coordinator.share.state_records import StateKey
from strom.protocol.errors import ErrorCode

TOPIC = uuid.UUID("12345678-1234-5678-1234-567812345678")
KEY = StateKey("g", TOPIC, 3)


def test_key_layout_and_coordinator_key() -> None:
    raw = rec.encode_key(rec.SHARE_SNAPSHOT, KEY)
    assert raw == b"\x00\x00" + b"\x00\x01g" + TOPIC.bytes + b"\x00\x00\x00\x03"
    assert rec.decode_key(raw) == (rec.SHARE_SNAPSHOT, KEY)
    assert rec.decode_key(b"\x00\x07\x00\x01g") is None
    # Kafka's Uuid.toString is URL-safe base64 without padding
    assert java_uuid(TOPIC) == "EjRWeBI0VngSNFZ4EjRWeA"
    assert coordinator_key(KEY) == "g:EjRWeBI0VngSNFZ4EjRWeA:3"


def test_values_round_trip() -> None:
    batches = (StateBatch(10, 12, 0, 2), StateBatch(13, 13, 4, 5))
    snap = rec.ShareSnapshot(1, 2, 3, 10, 1000, 2000, batches, 7)
    assert rec.decode_snapshot(rec.encode_snapshot(snap)) == snap
    update = rec.ShareUpdate(1, 3, -1, batches)
    assert rec.decode_update(rec.encode_update(update)) == update


def test_merge_batches() -> None:
    old = [StateBatch(0, 9, 0, 1)]
    new = [StateBatch(3, 4, 2, 1)]
    assert merge_batches(old, new, 0) == (
        StateBatch(0, 2, 0, 1),
        StateBatch(3, 4, 2, 1),
        StateBatch(5, 9, 0, 1),
    )
    assert merge_batches(old, new, 4) == (StateBatch(4, 4, 2, 1), StateBatch(5, 9, 0, 1))


def _replay(core: ShareStateCore, records: list[tuple[bytes, bytes | None]]) -> ShareStateCore:
    fresh = ShareStateCore(core.num_partitions, core.snapshot_every)
    partition = core.partition_for(KEY)
    fresh.begin_loading(partition)
    for key, value in records:
        fresh.load_record(partition, key, value)
    fresh.finish_loading(partition)
    return fresh


def test_initialize_write_read_and_replay() -> None:
    core = ShareStateCore(50, snapshot_every=3)
    written: list[tuple[bytes, bytes | None]] = []
    assert core.read(KEY, 0)[0] is ErrorCode.unknown_topic_or_partition
    error, records = core.initialize(KEY, 0, -1, 100)
    assert error is ErrorCode.none and rec.decode_key(records[0][0])[0] == rec.SHARE_SNAPSHOT
    written += records
    error, state, records = core.read(KEY, 5)
    assert error is ErrorCode.none and state is not None and state.leader_epoch == 5
    written += records
    error, records = core.write(KEY, 0, 5, 10, (StateBatch(10, 14, 0, 1),), -1, 200)
    assert error is ErrorCode.none and rec.decode_key(records[0][0])[0] == rec.SHARE_UPDATE
    written += records
    # the third update since the snapshot writes a whole snapshot
    error, records = core.write(KEY, 0, 5, 12, (StateBatch(12, 12, 2, 1),), -1, 300)
    assert rec.decode_key(records[0][0])[0] == rec.SHARE_SNAPSHOT
    written += records
    state = core.states[KEY]
    assert state.start_offset == 12
    assert state.batches == (StateBatch(12, 12, 2, 1), StateBatch(13, 14, 0, 1))
    replayed = _replay(core, written).states[KEY]
    assert (replayed.start_offset, replayed.batches, replayed.leader_epoch) == (12, state.batches, 5)
    # fencing: an older leader, an older state epoch
    assert core.write(KEY, 0, 4, -1, (), -1, 400)[0] is ErrorCode.fenced_leader_epoch
    assert core.initialize(KEY, 1, 0, 500)[0] is ErrorCode.none
    assert core.write(KEY, 0, 5, -1, (), -1, 600)[0] is ErrorCode.fenced_state_epoch
    records = core.delete(KEY)
    assert all(v is None for _k, v in records)
    assert _replay(core, written + records).states == {}


def test_share_group_records_round_trip() -> None:
    m = grec.MemberMetadataValue(None, "client", "/127.0.0.1", ("a", "b"))
    assert grec.decode_member_metadata(grec.encode_member_metadata(m)) == m
    a = grec.CurrentAssignmentValue(3, 2, 0, {TOPIC: frozenset({0, 1})})
    assert grec.decode_current_assignment(grec.encode_current_assignment(a)) == a
    assert grec.decode_group_metadata(grec.encode_group_metadata(4, -99)) == (4, -99)
    assert grec.decode_target_metadata(grec.encode_target_metadata(4, 123)) == 4
    target = {TOPIC: frozenset({2})}
    assert grec.decode_target_member(grec.encode_target_member(target)) == target
    s = grec.StatePartitionMetadataValue(initialized=(grec.TopicInfo(TOPIC, "t", frozenset({0, 1})),))
    assert grec.decode_state_partition_metadata(grec.encode_state_partition_metadata(s)) == s
    key = grec.member_key(grec.MEMBER_METADATA, "g", "m")
    assert key == b"\x00\x0a\x00\x01g\x00\x01m"
    assert grec.decode_key(key) == grec.ShareKey(grec.MEMBER_METADATA, "g", "m")
    group_key = grec.group_key(grec.GROUP_METADATA, "g")
    assert grec.decode_key(group_key) == grec.ShareKey(grec.GROUP_METADATA, "g")
