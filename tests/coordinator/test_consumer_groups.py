"""The consumer-group (KIP-848) state machine driven with a fake clock: epochs, reconciliation, leaving,
fencing, static membership, validation, offsets with member epochs, records and replay."""

from __future__ import annotations

import uuid

import pytest

from strom.coordinator.consumer import records as rec
from strom.coordinator.consumer.assignors import range_, uniform
from strom.coordinator.consumer.member import MemberState
from strom.coordinator.group.results import CommitRequest, OffsetToCommit
from strom.protocol.errors import ErrorCode
from tests.coordinator.consumer_harness import ConsumerHarness
from tests.coordinator.harness import Box

E = ErrorCode
T7 = uuid.UUID(int=7)


def test_first_member_gets_everything_at_epoch_two() -> None:
    h = ConsumerHarness({"t": 4})
    a = h.hb("a", 0)
    assert (a.error, a.member_epoch, h.named(a)) == (E.none, 2, {"t": [0, 1, 2, 3]})
    assert a.heartbeat_interval_ms == 5000
    g = h.group()
    assert (g.group_epoch, g.assignment_epoch, g.state.value) == (2, 2, "Stable")
    # Kafka's record order for a join
    types = [int.from_bytes(k[:2], "big") for k, _ in h.sink.appended[-1][1]]
    assert types == [rec.MEMBER_METADATA, rec.GROUP_METADATA, rec.TARGET_ASSIGNMENT_MEMBER,
                     rec.TARGET_ASSIGNMENT_METADATA, rec.CURRENT_MEMBER_ASSIGNMENT]


def test_partitions_move_only_after_revocation() -> None:
    h = ConsumerHarness({"t": 4})
    a = h.hb("a", 0)
    b = h.hb("b", 0)
    # b may not take a's partitions before a revoked them
    assert b.member_epoch == 3 and h.named(b) == {}
    assert h.group().members["b"].state is MemberState.UNRELEASED_PARTITIONS
    assert h.group().state.value == "Reconciling"
    a2 = h.hb("a", a.member_epoch, owned={"t": [0, 1, 2, 3]})
    assert a2.member_epoch == 2 and h.named(a2) == {"t": [0, 1]}
    assert h.group().members["a"].state is MemberState.UNREVOKED_PARTITIONS
    still = h.hb("b", 3, owned={})
    assert h.named(still) is None  # nothing changed for b yet
    a3 = h.hb("a", 2, owned={"t": [0, 1]})
    assert a3.member_epoch == 3 and a3.assignment is None
    b2 = h.hb("b", 3, owned={})
    assert h.named(b2) == {"t": [2, 3]}
    assert h.group().state.value == "Stable"


def test_leave_bumps_epoch_and_frees_partitions() -> None:
    h = ConsumerHarness({"t": 2})
    a = h.hb("a", 0)
    b = h.hb("b", 0)
    h.hb("a", a.member_epoch, owned={"t": [0, 1]})
    h.hb("a", 2, owned={"t": [0]})
    h.hb("b", b.member_epoch, owned={})
    left = h.hb("a", -1)
    assert (left.error, left.member_id, left.member_epoch) == (E.none, "a", -1)
    assert h.group().state.value == "Assigning"
    tombstones = [(int.from_bytes(k[:2], "big"), v) for k, v in h.sink.appended[-1][1]]
    assert tombstones[:3] == [(rec.CURRENT_MEMBER_ASSIGNMENT, None), (rec.TARGET_ASSIGNMENT_MEMBER, None),
                              (rec.MEMBER_METADATA, None)]
    b2 = h.hb("b", 3, owned={"t": [1]})
    assert h.named(b2) == {"t": [0, 1]} and b2.member_epoch == 4


def test_session_timeout_fences_member() -> None:
    h = ConsumerHarness({"t": 2}, session_timeout_ms=45000)
    h.hb("a", 0)
    h.advance(44999)
    assert "a" in h.group().members
    h.advance(1)
    assert "a" not in h.group().members and h.group().state.value == "Empty"
    again = h.hb("a", 2, owned={})
    assert again.error is E.unknown_member_id


def test_rebalance_timeout_fences_member_that_does_not_revoke() -> None:
    h = ConsumerHarness({"t": 2})
    a = h.hb("a", 0, rebalance_timeout=10000)
    h.hb("b", 0)
    h.hb("a", a.member_epoch, owned={"t": [0, 1]})  # asked to revoke one
    h.advance(5000)
    h.hb("a", 2, owned={"t": [0, 1]})  # still owns it
    h.advance(5000)
    assert "a" not in h.group().members


def test_epoch_fencing_and_lost_response() -> None:
    h = ConsumerHarness({"t": 2})
    a = h.hb("a", 0)
    ahead = h.hb("a", a.member_epoch + 1, owned={})
    assert ahead.error is E.fenced_member_epoch and "greater member epoch" in (ahead.message or "")
    h.hb("b", 0)
    h.hb("a", 2, owned={"t": [0, 1]})
    bumped = h.hb("a", 2, owned={"t": [0]})
    assert bumped.member_epoch == 3
    # the answer with epoch 3 was lost: the previous epoch with a subset of the partitions is accepted
    retry = h.hb("a", 2, owned={"t": [0]})
    assert retry.error is E.none and retry.member_epoch == 3
    behind = h.hb("a", 1, owned={})
    assert behind.error is E.fenced_member_epoch and "smaller member epoch" in (behind.message or "")


@pytest.mark.parametrize(
    ("kwargs", "code", "message"),
    [
        (dict(member="", epoch=0), E.invalid_request, "MemberId can't be empty."),
        (dict(member="m", epoch=0, rebalance_timeout=-1), E.invalid_request,
         "RebalanceTimeoutMs must be provided in first request."),
        (dict(member="m", epoch=0, owned={"t": [0]}), E.invalid_request,
         "TopicPartitions must be empty when (re-)joining."),
        (dict(member="m", epoch=-3), E.invalid_request, "MemberEpoch is invalid."),
        (dict(member="m", epoch=0, group=""), E.invalid_request, "GroupId can't be empty."),
        (dict(member="m", epoch=0, assignor="foo"), E.unsupported_assignor,
         "ServerAssignor foo is not supported. Supported assignors: uniform, range."),
        (dict(member="m", epoch=0, instance=""), E.invalid_request, "InstanceId can't be empty."),
        (dict(member="m", epoch=-2), E.invalid_request, "InstanceId can't be null."),
    ],
)
def test_invalid_requests(kwargs: dict, code: ErrorCode, message: str) -> None:
    h = ConsumerHarness()
    r = h.hb(**kwargs)
    assert (r.error, r.message) == (code, message)
    assert "g" not in h.core.consumer_groups


def test_v0_member_gets_an_id_and_bad_regex_is_refused() -> None:
    h = ConsumerHarness()
    r = h.hb("", 0, version=0)
    assert r.error is E.none and len(r.member_id or "") == 22
    bad = h.hb("m", 0, group="g2", regex="(")
    assert bad.error is E.invalid_regular_expression


def test_group_max_size() -> None:
    h = ConsumerHarness(max_size=1)
    h.hb("a", 0)
    r = h.hb("b", 0)
    assert r.error is E.group_max_size_reached
    assert r.message == "The consumer group has reached its maximum capacity of 1 members."


def test_regex_subscription_follows_new_topics() -> None:
    h = ConsumerHarness({"orders-1": 1, "other": 1})
    a = h.hb("a", 0, regex="orders-.*")
    assert h.named(a) == {"orders-1": [0]}
    h.set_topics({"orders-1": 1, "orders-2": 2, "other": 1})
    r = h.hb("a", a.member_epoch, owned={"orders-1": [0]})
    assert h.named(r) == {"orders-1": [0], "orders-2": [0, 1]} and r.member_epoch > a.member_epoch
    regex_records = [v for _, recs in h.sink.appended for k, v in recs
                     if rec.decode_key(k) == rec.ConsumerKey(rec.REGULAR_EXPRESSION, "g", "orders-.*")]
    assert rec.decode_regex(regex_records[-1]).topics == ("orders-1", "orders-2")


def test_static_member_leaves_temporarily_and_comes_back() -> None:
    h = ConsumerHarness({"t": 2})
    a = h.hb("a", 0, instance="i1")
    away = h.hb("a", -2, instance="i1")
    assert away.member_epoch == -2 and h.group().members["a"].member_epoch == -2
    other = h.hb("x", 0, instance="i1", group="g")
    assert other.error is E.none and h.named(other) == {"t": [0, 1]}
    assert "a" not in h.group().members and other.member_epoch == a.member_epoch
    # a second member with the same instance id while the first is in
    clash = h.hb("y", 0, instance="i1")
    assert clash.error is E.unreleased_instance_id
    fenced = h.hb("a", 2, instance="i1", owned={})
    assert fenced.error is E.fenced_instance_id


def test_offset_commits_check_member_epochs() -> None:
    h = ConsumerHarness({"t": 2})
    a = h.hb("a", 0)

    def commit(member: str, epoch: int, version: int | None = 9) -> ErrorCode:
        box = Box()
        req = CommitRequest("g", epoch, member, None, [OffsetToCommit("t", 0, 5)], api_version=version)
        h.core.commit_offsets(req, h.now, box)
        return box.value[0]  # type: ignore[no-any-return]

    assert commit("a", a.member_epoch) is E.none
    # a KIP-848 member must commit with OffsetCommit v9+ (TxnOffsetCommit: no version to check)
    assert commit("a", a.member_epoch, version=8) is E.unsupported_version
    assert commit("a", a.member_epoch, version=None) is E.none
    assert commit("a", a.member_epoch + 1) is E.stale_member_epoch
    assert commit("zz", 2) is E.unknown_member_id
    assert commit("", -1) is E.unknown_member_id  # members present: an admin commit is refused
    assert h.core.fetch_offsets("g", [("t", 0)])[1][0].offset == 5
    assert h.core.validate_offset_fetch("g", "a", 9) is E.stale_member_epoch
    assert h.core.validate_offset_fetch("g", None, -1) is E.none
    h.hb("a", -1)
    assert commit("", -1) is E.none


def test_list_describe_delete() -> None:
    h = ConsumerHarness({"t": 2})
    h.hb("a", 0)
    _, listed = h.core.list_groups(None, {"consumer"})
    assert [(g.group_id, g.group_type, g.protocol_type, g.state) for g in listed] == [
        ("g", "consumer", "consumer", "Stable")]
    assert h.core.list_groups(None, {"classic"})[1] == []
    assert h.core.describe("g")[0] is E.group_id_not_found
    assert h.core.describe_message("g") == "Group g is not a classic group."
    d = h.core.consumer_describe("g")
    assert (d.state, d.group_epoch, d.assignment_epoch, d.assignor) == ("Stable", 2, 2, "uniform")
    assert [(m.member_id, m.assignment[0][1:]) for m in d.members] == [("a", ("t", [0, 1]))]
    assert h.core.consumer_describe("nope").message == "Group nope not found."
    box = Box()
    h.core.delete_groups(["g"], h.now, box)
    assert box.value == {"g": E.non_empty_group}
    h.hb("a", -1)
    box = Box()
    h.core.delete_groups(["g"], h.now, box)
    assert box.value == {"g": E.none} and "g" not in h.core.consumer_groups


def test_replay_restores_group_members_and_assignment() -> None:
    h = ConsumerHarness({"t": 4})
    a = h.hb("a", 0, instance="i1")
    b = h.hb("b", 0)
    h.hb("a", a.member_epoch, instance="i1", owned={"t": [0, 1, 2, 3]})
    box = Box()
    h.core.commit_offsets(CommitRequest("g", 2, "a", None, [OffsetToCommit("t", 1, 42)]), h.now, box)
    before = h.group()
    partition = h.core.partition_for("g")
    h.core.unload(partition)
    assert "g" not in h.core.consumer_groups
    h.core.begin_loading(partition)
    for _, records in h.sink.appended:
        for key, value in records:
            h.core.load_record(partition, key, value)
    h.core.finish_loading(partition, h.now)
    after = h.group()
    assert (after.group_epoch, after.assignment_epoch) == (before.group_epoch, before.assignment_epoch)
    assert after.members == before.members and after.target == before.target
    assert after.partition_epochs == before.partition_epochs
    assert after.static_members == {"i1": "a"} and after.offsets[("t", 1)].offset == 42
    assert "g" not in h.core.groups
    b2 = h.hb("b", b.member_epoch, owned={})
    assert b2.error is E.none


def test_record_codecs_round_trip() -> None:
    value = rec.CurrentAssignmentValue(5, 4, 1, {T7: {0: 3, 2: 5}}, {T7: {1: 3}})
    assert rec.decode_current_assignment(rec.encode_current_assignment(value)) == value
    meta = rec.MemberMetadataValue("i", None, "c", "/h", ("a", "b"), "", 3000, "range")
    assert rec.decode_member_metadata(rec.encode_member_metadata(meta)) == meta
    group_value = rec.GroupMetadataValue(7, -3)
    assert rec.decode_group_metadata(rec.encode_group_metadata(group_value)) == group_value
    key = rec.ConsumerKey(rec.TARGET_ASSIGNMENT_MEMBER, "g", "m")
    assert rec.decode_key(rec.encode_key(key)) == key


def test_assignors_balance_and_stick() -> None:
    t1, t2 = uuid.UUID(int=1), uuid.UUID(int=2)
    subs = {"a": frozenset({t1, t2}), "b": frozenset({t1, t2}), "c": frozenset({t1, t2})}
    first = uniform(subs, {t1: 4, t2: 3}, {})
    sizes = sorted(sum(len(p) for p in m.values()) for m in first.values())
    assert sizes == [2, 2, 3]
    again = uniform(subs, {t1: 4, t2: 3}, first)
    assert again == first
    fewer = uniform({"a": subs["a"], "b": subs["b"]}, {t1: 4, t2: 3}, first)
    for m in ("a", "b"):  # the survivors keep what they had
        for t, ps in first[m].items():
            assert ps <= fewer[m].get(t, frozenset())
    ranged = range_({"a": frozenset({t1}), "b": frozenset({t1})}, {t1: 5}, {})
    assert ranged == {"a": {t1: frozenset({0, 1, 2})}, "b": {t1: frozenset({3, 4})}}
