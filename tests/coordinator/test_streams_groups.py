"""The streams-group (KIP-1071) state machine driven with a fake clock: the topology and its internal
topics, task assignment (active and standby), revocation before reassignment, leaving, session timeout,
validation, offsets with member epochs, other group types, records as Kafka 4.4 writes them and replay."""

from __future__ import annotations

from strom.coordinator.group.results import CommitRequest, OffsetToCommit
from strom.coordinator.streams import records as rec
from strom.coordinator.streams.assignor import AssignorMember, assign
from strom.coordinator.streams.group import MemberState
from strom.coordinator.streams.records import TaskSet, TopologyValue
from strom.coordinator.streams.topology import MISSING_INTERNAL_TOPICS, MISSING_SOURCE_TOPICS, STALE_TOPOLOGY
from strom.protocol.errors import ErrorCode
from tests.coordinator.harness import Box
from tests.coordinator.streams_harness import (
    CHANGELOG,
    REPARTITION,
    StreamsHarness,
    active,
    word_count,
)

E = ErrorCode
ALL = {"0": [0, 1], "1": [0, 1]}

# Records Kafka 4.4 wrote for a word-count application (captured from its __consumer_offsets).
KAFKA_MEMBER = (
    "000000004b77632d6170702d3464666464632d65376438643637312d333438332d343235612d383634372d3532626561356634"
    "353165322d53747265616d5468726561642d312d636f6e73756d65720b2f3132372e302e302e31000493e00000000025653764"
    "38643637312d333438332d343235612d383634372d353262656135663435316532ff0100"
)
KAFKA_EPOCH = (
    "00000000000339fc5ee9be6eb9f402000400000000011902156e756d2e7374616e6462792e7265706c69636173023000"
)
KAFKA_TARGET = "000003023003000000000000000100023103000000000000000100010100"
KAFKA_CURRENT = (
    "0000000000030000000101030230030000000000000001010009030000000300000003023103000000000000000101000903"
    "0000000300000003010101010100"
)


def ready(h: StreamsHarness, member: str = "a") -> None:
    """Join `member`, create the internal topics it is told about, and heartbeat until it has tasks."""
    first = h.hb(member, 0)
    assert first.statuses and first.statuses[0][0] == MISSING_INTERNAL_TOPICS
    h.create_internal()


def test_first_member_gets_internal_topics_then_every_task() -> None:
    h = StreamsHarness({"in": 2})
    a = h.hb("a", 0)
    assert (a.error, a.member_epoch, active(a)) == (E.none, 2, {})
    assert a.statuses == [
        (MISSING_INTERNAL_TOPICS, f"Internal topics are missing: {REPARTITION}, {CHANGELOG}")
    ]
    # repartition topics take the partitions of their writers' inputs, changelogs their subtopology's
    assert [(n, p) for n, p, _rf, _c in a.to_create] == [(REPARTITION, 2), (CHANGELOG, 2)]
    assert a.to_create[1][3] == (("cleanup.policy", "compact"),)
    assert h.group().state.value == "NotReady"
    # Kafka's record order for a join: member, topology, epoch, target, target epoch, current assignment
    types = [int.from_bytes(k[:2], "big") for k, _ in h.sink.appended[-1][1]]
    assert types == [rec.MEMBER_METADATA, rec.TOPOLOGY, rec.GROUP_METADATA, rec.TARGET_ASSIGNMENT_MEMBER,
                     rec.TARGET_ASSIGNMENT_METADATA, rec.CURRENT_MEMBER_ASSIGNMENT]  # fmt: skip
    h.create_internal()
    a2 = h.hb("a", 2, owned=({}, {}, {}))
    assert (a2.member_epoch, active(a2), a2.statuses) == (3, ALL, [])
    g = h.group()
    assert (g.group_epoch, g.assignment_epoch, g.validated_topology_epoch, g.state.value) == (
        3,
        3,
        0,
        "Stable",
    )
    assert g.members["a"].assigned.active == {"0": {0: 3, 1: 3}, "1": {0: 3, 1: 3}}


def test_missing_source_topic_is_a_status() -> None:
    h = StreamsHarness({"other": 1})
    a = h.hb("a", 0)
    assert a.statuses == [(MISSING_SOURCE_TOPICS, "Source topics in are missing.")]
    assert a.to_create == [] and active(a) == {}


def test_active_tasks_move_only_after_revocation() -> None:
    h = StreamsHarness({"in": 2})
    ready(h)
    a = h.hb("a", 2, owned=({}, {}, {}))
    b = h.hb("b", 0)
    # b's share is still a's: b waits until a revokes it
    assert b.member_epoch == 4 and active(b) == {}
    assert h.group().members["b"].state is MemberState.UNRELEASED_TASKS
    a2 = h.hb("a", a.member_epoch, owned=(ALL, {}, {}))
    assert a2.member_epoch == 3 and h.group().members["a"].state is MemberState.UNREVOKED_TASKS
    kept = active(a2)
    assert kept is not None and sum(len(p) for p in kept.values()) == 2
    a3 = h.hb("a", 3, owned=(kept, {}, {}))
    assert a3.member_epoch == 4 and a3.tasks is None
    b2 = h.hb("b", 4, owned=({}, {}, {}))
    given = active(b2)
    assert given is not None
    union = {s: sorted(set(kept.get(s, [])) | set(given.get(s, []))) for s in ("0", "1")}
    assert union == ALL and h.group().state.value == "Stable"


def test_standby_tasks_go_to_another_process() -> None:
    h = StreamsHarness({"in": 2}, num_standby_replicas=1)
    ready(h)
    h.hb("a", 2, owned=({}, {}, {}))
    h.hb("b", 0)
    g = h.group()
    for mid in ("a", "b"):
        target = g.target[mid]
        # the stateful subtopology's standbys never sit on the process running the active task
        for s, parts in target.standby.items():
            assert s == "1"
            assert not set(parts) & set(target.active.get(s, {}))
    assert sum(len(p) for t in g.target.values() for p in t.standby.values()) == 2
    record = dict(h.sink.appended[-1][1])
    epoch = rec.decode_group_metadata(record[rec.group_key(rec.GROUP_METADATA, "g")])
    assert epoch.last_assignment_configs == (("num.standby.replicas", "1"),)


def test_sticky_assignor_keeps_previous_owners() -> None:
    prev = {
        "a": AssignorMember("p1", TaskSet({"0": {0: 1, 1: 1}})),
        "b": AssignorMember("p2", TaskSet({"0": {2: 1, 3: 1}})),
        "c": AssignorMember("p3", TaskSet()),
    }
    out = assign(prev, {"0": 6}, frozenset(), 0)
    assert {0, 1} <= set(out["a"].active["0"]) and {2, 3} <= set(out["b"].active["0"])
    assert sorted(len(t.active.get("0", {})) for t in out.values()) == [2, 2, 2]


def test_leave_and_session_timeout_fence_members() -> None:
    h = StreamsHarness({"in": 2})
    ready(h)
    h.hb("a", 2, owned=({}, {}, {}))
    h.hb("b", 0)
    left = h.hb("b", -1)
    assert (left.error, left.member_epoch) == (E.none, -1)
    tombstones = [(int.from_bytes(k[:2], "big"), v) for k, v in h.sink.appended[-1][1]]
    assert tombstones[:3] == [(rec.CURRENT_MEMBER_ASSIGNMENT, None), (rec.TARGET_ASSIGNMENT_MEMBER, None),
                              (rec.MEMBER_METADATA, None)]  # fmt: skip
    assert h.group().state.value == "Assigning"
    h.advance(45001)
    assert h.group().members == {} and h.group().state.value == "Empty"


def test_validation_and_fencing() -> None:
    h = StreamsHarness()
    no_topology = h.hb("a", 0, topology=None)
    assert no_topology.error is E.none  # the harness fills the topology in for epoch 0
    bad = h.hb("z", 3)
    assert bad.error is E.unknown_member_id
    assert h.hb("a", 7, owned=({}, {}, {})).error is E.fenced_member_epoch
    assert h.hb("a", -3).error is E.invalid_request
    stale = h.hb("b", 0, topology=word_count(0))
    assert stale.error is E.none
    newer = h.hb("c", 0, topology=word_count(1))
    assert (newer.error, newer.message) == (E.invalid_request, "Topology updates are not supported yet.")


def test_other_topology_is_refused_unless_older() -> None:
    h = StreamsHarness()
    h.hb("a", 0, topology=word_count(1))
    message = "Topology updates are not supported yet."
    newer = h.hb("b", 0, topology=word_count(2))
    assert (newer.error, newer.message) == (E.invalid_request, message)
    same_epoch = TopologyValue(1, word_count(1).subtopologies[:1])
    other = h.hb("c", 0, topology=same_epoch)
    assert (other.error, other.message) == (E.invalid_request, message)
    # the same subtopologies in another order are the same topology
    reordered = TopologyValue(1, tuple(reversed(word_count(1).subtopologies)))
    assert h.hb("d", 0, topology=reordered).error is E.none


def test_stale_topology_status() -> None:
    h = StreamsHarness()
    h.hb("a", 0, topology=word_count(1))
    b = h.hb("b", 0, topology=word_count(0))
    assert (
        STALE_TOPOLOGY,
        "The member's topology epoch 0 is behind the group's topology epoch 1.",
    ) in b.statuses


def test_offsets_need_the_member_epoch() -> None:
    h = StreamsHarness({"in": 2})
    ready(h)
    a = h.hb("a", 2, owned=({}, {}, {}))

    def commit(epoch: int, member: str = "a") -> list[ErrorCode]:
        box = Box()
        h.core.commit_offsets(
            CommitRequest("g", epoch, member, None, [OffsetToCommit("in", 0, 5, -1, "")]), h.now, box
        )
        h.sink.release()
        return box.value  # type: ignore[no-any-return]

    assert commit(a.member_epoch) == [E.none]
    assert commit(a.member_epoch + 1) == [E.stale_member_epoch]
    assert commit(a.member_epoch, "nobody") == [E.unknown_member_id]
    assert h.core.fetch_offsets("g", [("in", 0)])[1][0].offset == 5


def test_other_group_types_and_admin_views() -> None:
    h = StreamsHarness()
    h.hb("a", 0)
    assert h.core.describe_message("g") == "Group g is not a classic group."
    assert h.core.consumer_describe("g").message == "Group g is not a consumer group."
    d = h.core.streams_describe("g")
    assert (d.error, d.state, d.topology_epoch, len(d.members)) == (E.none, "NotReady", 0, 1)
    assert h.core.streams_describe("nope").message == "Group nope not found."
    listed = h.core.list_groups(None, {"streams"})[1]
    assert [(g.group_id, g.group_type, g.protocol_type) for g in listed] == [("g", "streams", "streams")]
    box = Box()
    h.core.delete_groups(["g"], h.now, box)
    assert box.value == {"g": E.non_empty_group}


def test_kafka_record_bytes_round_trip() -> None:
    m = rec.decode_member_metadata(bytes.fromhex(KAFKA_MEMBER))
    assert (m.rebalance_timeout_ms, m.topology_epoch, m.user_endpoint) == (300000, 0, None)
    assert rec.encode_member_metadata(m).hex() == KAFKA_MEMBER
    e = rec.decode_group_metadata(bytes.fromhex(KAFKA_EPOCH))
    assert (e.epoch, e.validated_topology_epoch) == (3, 0)
    assert rec.encode_group_metadata(e).hex() == KAFKA_EPOCH
    t = rec.decode_target_member(bytes.fromhex(KAFKA_TARGET))
    assert rec.encode_target_member(t).hex() == KAFKA_TARGET
    c = rec.decode_current_assignment(bytes.fromhex(KAFKA_CURRENT))
    assert (c.member_epoch, c.state, c.assigned.active) == (3, 1, {"0": {0: 3, 1: 3}, "1": {0: 3, 1: 3}})
    assert rec.encode_current_assignment(c).hex() == KAFKA_CURRENT
    topology = word_count()
    assert rec.decode_topology(rec.encode_topology(topology)) == topology


def test_replay_restores_the_group() -> None:
    h = StreamsHarness({"in": 2})
    ready(h)
    h.hb("a", 2, owned=({}, {}, {}))
    written = [kv for _p, records in h.sink.appended for kv in records]
    h2 = StreamsHarness({"in": 2})
    h2.view = h.view
    p = h2.core.partition_for("g")
    h2.core.begin_loading(p)
    for key, value in written:
        h2.core.load_record(p, key, value)
    h2.core.finish_loading(p, h2.now)
    g = h2.group()
    assert (g.group_epoch, g.assignment_epoch, g.topology, g.state.value) == (3, 3, word_count(), "Stable")
    assert g.members["a"].assigned.active == {"0": {0: 3, 1: 3}, "1": {0: 3, 1: 3}}
    again = h2.hb("a", 3, owned=(ALL, {}, {}))
    assert (again.error, again.member_epoch) == (E.none, 3)
