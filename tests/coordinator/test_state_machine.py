"""The classic group state machine driven with a fake clock: every transition and error code."""

from __future__ import annotations

import pytest

from strom.coordinator.group.results import JoinResult, SyncResult
from strom.protocol.errors import ErrorCode, NotLeaderOrFollowerError
from tests.coordinator.harness import PROTOCOLS, Harness

E = ErrorCode


def test_first_join_waits_initial_rebalance_delay_then_completes() -> None:
    h = Harness(initial_rebalance_delay_ms=3000)
    a = h.join(client="a")
    assert h.state() == "PreparingRebalance"
    h.advance(2999)
    assert not a.done
    h.advance(1)
    r: JoinResult = a.value
    assert r.error is E.none and r.generation_id == 1 and r.leader_id == r.member_id
    assert r.protocol_name == "range" and [m.member_id for m in r.members] == [r.member_id]
    assert h.state() == "CompletingRebalance"


def test_initial_delay_extends_while_members_arrive() -> None:
    h = Harness(initial_rebalance_delay_ms=3000)
    a = h.join(client="a")
    h.advance(2000)
    b = h.join(client="b")
    h.advance(1000)  # first delay over, but a member arrived: wait another delay
    assert not a.done and not b.done
    h.advance(3000)
    assert a.value.generation_id == b.value.generation_id == 1
    assert len(a.value.members) == 2 and b.value.members == []


def test_member_id_required_from_v4_then_join() -> None:
    h = Harness()
    first = h.join(v4=True)
    assert first.value.error is E.member_id_required and first.value.member_id
    assert "g" not in h.core.groups or h.state() == "Empty"
    second = h.join(first.value.member_id, v4=True)
    h.advance(0)
    assert second.value.error is E.none and second.value.member_id == first.value.member_id


def test_pending_member_expires_after_session_timeout() -> None:
    h = Harness()
    first = h.join(v4=True, session=6000)
    h.advance(6000)
    late = h.join(first.value.member_id, v4=True)
    assert late.value.error is E.unknown_member_id


def test_below_v4_unknown_member_joins_directly() -> None:
    h = Harness()
    box = h.join(v4=False)
    h.advance(0)
    assert box.value.error is E.none and box.value.generation_id == 1


def test_invalid_session_timeout_and_group_id() -> None:
    h = Harness(min_session_timeout_ms=6000, max_session_timeout_ms=300000)
    assert h.join(session=5999).value.error is E.invalid_session_timeout
    assert h.join(session=300001).value.error is E.invalid_session_timeout
    assert h.join(group="").value.error is E.invalid_group_id


def test_inconsistent_protocol() -> None:
    h = Harness()
    h.form_group(1)
    assert h.join(protocols=[("other", b"")]).value.error is E.inconsistent_group_protocol
    assert h.join(protocol_type="connect").value.error is E.inconsistent_group_protocol


def test_sync_stable_and_assignment_written() -> None:
    h = Harness()
    results = h.form_group(2)
    assert h.state() == "Stable"
    partition, records = h.sink.appended[-1]
    assert partition == h.core.partition_for("g") and len(records) == 1
    # Followers syncing again in Stable get their assignment back.
    again = h.sync(results[1].member_id, results[1].generation_id)
    assert again.value == SyncResult(E.none, "consumer", "range", results[1].member_id.encode())


def test_sync_waits_for_leader_and_for_the_write() -> None:
    h = Harness()
    a, b = h.join(client="a"), h.join(client="b")
    h.advance(0)
    ra, rb = a.value, b.value
    follower = h.sync(rb.member_id, rb.generation_id)
    assert not follower.done
    h.sink.hold = True
    leader = h.sync(ra.member_id, ra.generation_id, {ra.member_id: b"A", rb.member_id: b"B"})
    assert not leader.done and h.state() == "CompletingRebalance"
    h.sink.release()
    assert leader.value.assignment == b"A" and follower.value.assignment == b"B"
    assert h.state() == "Stable"


def test_sync_write_failure_propagates_and_rebalances() -> None:
    h = Harness()
    a = h.join()
    h.advance(0)
    h.sink.hold = True
    leader = h.sync(a.value.member_id, 1, {a.value.member_id: b"x"})
    h.sink.release(NotLeaderOrFollowerError())
    assert leader.value.error is E.not_coordinator
    assert h.state() == "PreparingRebalance"


def test_sync_errors() -> None:
    h = Harness()
    (r,) = h.form_group(1)
    assert h.sync("nobody", r.generation_id).value.error is E.unknown_member_id
    assert h.sync(r.member_id, r.generation_id + 1).value.error is E.illegal_generation
    assert h.sync("x", 1, group="nogroup").value.error is E.unknown_member_id
    h.join(client="new")  # starts a rebalance
    assert h.sync(r.member_id, r.generation_id).value.error is E.rebalance_in_progress


def test_heartbeat_by_state() -> None:
    h = Harness()
    a = h.join()
    h.advance(0)
    r = a.value
    assert h.heartbeat(r.member_id, r.generation_id) is E.none  # CompletingRebalance
    h.sync(r.member_id, r.generation_id, {r.member_id: b""})
    assert h.heartbeat(r.member_id, r.generation_id) is E.none  # Stable
    assert h.heartbeat(r.member_id, r.generation_id - 1) is E.illegal_generation
    assert h.heartbeat("ghost", r.generation_id) is E.unknown_member_id
    assert h.heartbeat("ghost", 1, group="missing") is E.unknown_member_id
    h.join(client="b")
    assert h.heartbeat(r.member_id, r.generation_id) is E.rebalance_in_progress


def test_join_leave_rebalance_generations() -> None:
    h = Harness()
    r1, r2, r3 = h.form_group(3)
    assert r1.generation_id == 1
    top, per_member = h.core.leave("g", [(r3.member_id, None)], h.now)
    assert top is E.none and per_member[0][2] is E.none
    assert h.state() == "PreparingRebalance"
    assert h.heartbeat(r1.member_id, 1) is E.rebalance_in_progress
    j1, j2 = h.join(r1.member_id), h.join(r2.member_id)
    assert j1.value.generation_id == 2 and {m.member_id for m in j1.value.members} == {
        r1.member_id,
        r2.member_id,
    }
    assert j2.done and h.state() == "CompletingRebalance"


def test_leave_unknown_member_and_missing_group() -> None:
    h = Harness()
    h.form_group(1)
    _, res = h.core.leave("g", [("ghost", None)], h.now)
    assert res[0][2] is E.unknown_member_id
    top, res = h.core.leave("missing", [("ghost", None)], h.now)
    assert top is E.none and res[0][2] is E.unknown_member_id


def test_last_member_leaving_empties_group() -> None:
    h = Harness()
    (r,) = h.form_group(1)
    h.core.leave("g", [(r.member_id, None)], h.now)
    assert h.state() == "Empty"
    assert h.core.groups["g"].generation_id == 2


def test_session_timeout_removes_member_and_rebalances() -> None:
    h = Harness()
    r1, r2 = h.form_group(2, session=10000)
    for _ in range(2):
        h.advance(4000)
        assert h.heartbeat(r1.member_id, r1.generation_id) is E.none
    h.advance(2000)
    # r2 never heartbeated: it expired after 10 s and the group is rebalancing without it.
    assert r2.member_id not in h.core.groups["g"].members
    assert h.heartbeat(r1.member_id, r1.generation_id) is E.rebalance_in_progress
    rejoin = h.join(r1.member_id)
    assert rejoin.value.generation_id == 2 and len(rejoin.value.members) == 1


def test_rebalance_timeout_drops_members_that_do_not_rejoin() -> None:
    h = Harness()
    r1, r2 = h.form_group(2, rebalance=20000, session=30000)
    j1 = h.join(r1.member_id, rebalance=20000, session=30000)
    assert not j1.done
    h.advance(10000)
    assert h.heartbeat(r2.member_id, r2.generation_id) is E.rebalance_in_progress
    h.advance(10000)  # rebalance timeout (max.poll.interval.ms) passes; r2 never rejoined
    assert j1.value.generation_id == 2 and [m.member_id for m in j1.value.members] == [r1.member_id]
    assert h.heartbeat(r2.member_id, r2.generation_id) is E.unknown_member_id


def test_pending_sync_timeout_removes_member() -> None:
    h = Harness()
    a, b = h.join(client="a", rebalance=5000), h.join(client="b", rebalance=5000)
    h.advance(0)
    ra = a.value
    h.sync(ra.member_id, 1, {ra.member_id: b"x"})
    for _ in range(3):
        h.advance(2000)
        h.heartbeat(ra.member_id, 1)
        h.heartbeat(b.value.member_id, 1)
    assert b.value.member_id not in h.core.groups["g"].members
    assert h.state() in ("PreparingRebalance", "CompletingRebalance")


def test_completing_rebalance_resent_join_returns_same_generation() -> None:
    h = Harness()
    _a, b = h.join(client="a"), h.join(client="b")
    h.advance(0)
    again = h.join(b.value.member_id)
    assert again.value.generation_id == 1 and h.state() == "CompletingRebalance"


def test_stable_follower_join_same_protocols_no_rebalance_but_leader_rebalances() -> None:
    h = Harness()
    r1, r2 = h.form_group(2)
    follower = h.join(r2.member_id)
    assert follower.value.generation_id == 1 and h.state() == "Stable"
    h.join(r1.member_id)
    assert h.state() == "PreparingRebalance"


def test_rebalance_in_completing_fails_parked_syncs() -> None:
    h = Harness()
    _a, b = h.join(client="a"), h.join(client="b")
    h.advance(0)
    parked = h.sync(b.value.member_id, 1)
    h.join(client="c")
    assert parked.value.error is E.rebalance_in_progress
    assert h.state() == "PreparingRebalance"


def test_static_member_restart_without_rebalance() -> None:
    h = Harness()
    ra = h.join(client="a", instance="ia")
    rb = h.join(client="b", instance="ib")
    h.advance(0)
    leader, follower = (
        (ra.value, rb.value) if ra.value.leader_id == ra.value.member_id else (rb.value, ra.value)
    )
    h.sync(follower.member_id, 1)
    h.sync(leader.member_id, 1, {leader.member_id: b"L", follower.member_id: b"F"})
    inst = "ia" if follower is ra.value else "ib"
    restarted = h.join(client="b2", instance=inst)
    r = restarted.value
    assert r.error is E.none and r.generation_id == 1 and r.member_id != follower.member_id
    assert h.state() == "Stable"
    assert h.sync(r.member_id, 1, instance=inst).value.assignment == b"F"
    # The old incarnation is fenced.
    assert h.heartbeat(follower.member_id, 1, instance=inst) is E.fenced_instance_id
    assert h.sync(follower.member_id, 1, instance=inst).value.error is E.fenced_instance_id


def test_static_leader_restart_gets_members_and_skip_assignment() -> None:
    h = Harness()
    box = h.join(instance="i1")
    h.advance(0)
    h.sync(box.value.member_id, 1, {box.value.member_id: b"x"})
    again = h.join(instance="i1").value
    assert again.skip_assignment and again.leader_id == again.member_id and len(again.members) == 1
    assert h.state() == "Stable"


def test_static_member_survives_until_session_timeout() -> None:
    h = Harness()
    (_r,) = h.form_group(1, instance="s1", session=10000)
    h.advance(9000)
    assert h.state() == "Stable"
    h.advance(1000)
    assert h.state() == "Empty"


def test_static_leave_by_instance_id() -> None:
    h = Harness()
    h.form_group(1, instance="s1")
    _, res = h.core.leave("g", [("", "s1")], h.now)
    assert res[0][2] is E.none and h.state() == "Empty"
    (_r,) = h.form_group(1, instance="s2")
    _, res = h.core.leave("g", [("other-id", "s2")], h.now)
    assert res[0][2] is E.fenced_instance_id


def test_group_max_size() -> None:
    h = Harness(max_size=1)
    h.form_group(1)
    assert h.join(client="x").value.error is E.group_max_size_reached


def test_protocol_selection_by_vote() -> None:
    h = Harness()
    both = [("roundrobin", b"1"), ("range", b"2")]
    b1 = h.join(client="a", protocols=[("range", b"a"), ("roundrobin", b"b")])
    b2 = h.join(client="b", protocols=both)
    b3 = h.join(client="c", protocols=both)
    h.advance(0)
    assert b1.value.protocol_name == b2.value.protocol_name == b3.value.protocol_name == "roundrobin"


def test_not_coordinator_and_loading() -> None:
    h = Harness()
    p = h.core.partition_for("g")
    h.core.unload(p)
    assert h.join().value.error is E.not_coordinator
    # newest metadata says this broker leads the partition, but its load has not begun yet: retry here
    h.core.leads = lambda partition: partition == p
    assert h.join().value.error is E.coordinator_load_in_progress
    h.core.leads = lambda partition: False
    h.core.begin_loading(p)
    assert h.join().value.error is E.coordinator_load_in_progress
    assert h.heartbeat("m", 1) is E.coordinator_load_in_progress
    h.core.finish_loading(p, h.now)
    box = h.join()
    h.advance(0)
    assert box.value.error is E.none and h.state() == "CompletingRebalance"


def test_unload_answers_parked_joins() -> None:
    h = Harness(initial_rebalance_delay_ms=1000)
    box = h.join()
    h.core.unload(h.core.partition_for("g"))
    assert box.value.error is E.not_coordinator and "g" not in h.core.groups


def test_describe_and_list() -> None:
    h = Harness()
    _r1, _ = h.form_group(2)
    err, summary = h.core.describe("g")
    assert err is E.none and summary.state == "Stable" and summary.protocol == "range"
    assert {m.assignment for m in summary.members} == {m.member_id.encode() for m in summary.members}
    assert all(m.metadata == PROTOCOLS[0][1] for m in summary.members)
    err, missing = h.core.describe("nope")
    assert err is E.group_id_not_found and missing.state == "Dead" and missing.members == []
    _, listed = h.core.list_groups()
    assert [(g.group_id, g.state) for g in listed] == [("g", "Stable")]
    assert h.core.list_groups({"Empty"})[1] == []
    assert h.core.list_groups({"stable"})[1] == listed


def test_delete_groups() -> None:
    h = Harness()
    h.form_group(1)
    box: list[dict[str, ErrorCode]] = []
    h.core.delete_groups(["g", "missing"], h.now, box.append)
    assert box[0] == {"g": E.non_empty_group, "missing": E.group_id_not_found}
    h.core.leave("g", [(next(iter(h.core.groups["g"].members)), None)], h.now)
    box.clear()
    h.core.delete_groups(["g"], h.now, box.append)
    assert box[0] == {"g": E.none} and "g" not in h.core.groups
    _partition, records = h.sink.appended[-1]
    assert records[-1][1] is None  # group tombstone


def test_illegal_transition_is_refused() -> None:
    from strom.coordinator.group.group import Group, GroupState, IllegalGroupStateError

    g = Group("x", 0)
    with pytest.raises(IllegalGroupStateError):
        g.transition(GroupState.STABLE, 1)
    assert g.state is GroupState.EMPTY and g.state_timestamp == 0
    g.transition(GroupState.PREPARING_REBALANCE, 1)
    g.transition(GroupState.EMPTY, 2)
    assert g.state is GroupState.EMPTY and g.state_timestamp == 2


def test_unused_group_left_behind_is_not_kept() -> None:
    h = Harness()
    h.join(protocols=[])
    assert "g" not in h.core.groups
    assert isinstance(PROTOCOLS, list)
