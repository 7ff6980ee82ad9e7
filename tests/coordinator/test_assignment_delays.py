"""What holds a new target assignment back, as in Kafka 4.4, driven with the harness's fake clock:
group.streams.initial.rebalance.delay.ms (the first member of an empty streams group starts a timer; until
it fires members get status ASSIGNMENT_DELAYED and no tasks), group.streams.assignment.interval.ms and
group.consumer.assignment.interval.ms (a target at most once per interval, computed by a later heartbeat),
their group configs, what describe shows meanwhile, and a coordinator reload (timers are not persisted)."""

from __future__ import annotations

from strom.coordinator.streams.base import initial_rebalance_key
from strom.coordinator.streams.heartbeat import (
    ASSIGNMENT_DELAYED,
    INITIAL_DELAY_DETAIL,
    INTERVAL_DETAIL,
)
from strom.coordinator.streams.records import EMPTY_TASKS
from strom.protocol.errors import ErrorCode
from tests.coordinator.consumer_harness import ConsumerHarness
from tests.coordinator.harness import Harness
from tests.coordinator.streams_harness import CHANGELOG, REPARTITION, StreamsHarness, active

E = ErrorCode
READY = {"in": 2, REPARTITION: 2, CHANGELOG: 2}  # the word count's internal topics exist already
ALL = {"0": [0, 1], "1": [0, 1]}
INITIAL = [(ASSIGNMENT_DELAYED, INITIAL_DELAY_DETAIL)]
INTERVAL = [(ASSIGNMENT_DELAYED, INTERVAL_DETAIL)]


def _reload(h: Harness, group_id: str = "g") -> None:
    """Lose the partition and load it again from what was written, as a new coordinator would."""
    p = h.core.partition_for(group_id)
    h.core.unload(p)
    h.core.begin_loading(p)
    for partition, records in h.sink.appended:
        if partition == p:
            for key, value in records:
                h.core.load_record(p, key, value)
    h.core.finish_loading(p, h.now)


# --- streams: the initial rebalance delay --------------------------------------------------------------


def test_first_target_waits_for_the_initial_delay() -> None:
    h = StreamsHarness(READY, initial_rebalance_delay_ms=3000)
    start = h.now
    a = h.hb("a", 0)
    # Kafka 4.4: the new group's initial target (epoch 1, no tasks) is what the member reconciles to
    assert (a.error, a.member_epoch, active(a), a.statuses) == (E.none, 1, {}, INITIAL)
    assert h.core.timers.deadline(initial_rebalance_key("g")) == start + 3000
    d = h.core.streams_describe("g")
    assert (d.state, d.group_epoch, d.assignment_epoch) == ("Assigning", 2, 1)
    assert [target for _m, target in d.members] == [EMPTY_TASKS]

    h.advance(1000)
    b = h.hb("b", 0)
    assert (b.member_epoch, active(b), b.statuses) == (1, {}, INITIAL)
    # a second member does not move the deadline
    assert h.core.timers.deadline(initial_rebalance_key("g")) == start + 3000
    again = h.hb("a", 1, owned=({}, {}, {}))
    assert (again.member_epoch, again.statuses) == (1, INITIAL)

    written = len(h.sink.appended)
    h.advance(2000)  # the delay ends: the target of both members is computed and written
    assert len(h.sink.appended) == written + 1
    d = h.core.streams_describe("g")
    assert (d.state, d.group_epoch, d.assignment_epoch) == ("Reconciling", 3, 3)
    a2 = h.hb("a", 1, owned=({}, {}, {}))
    b2 = h.hb("b", 1, owned=({}, {}, {}))
    assert (a2.member_epoch, a2.statuses, b2.member_epoch, b2.statuses) == (3, [], 3, [])
    tasks = [active(a2), active(b2)]
    assert sorted((s, p) for t in tasks for s, ps in (t or {}).items() for p in ps) == [
        ("0", 0), ("0", 1), ("1", 0), ("1", 1)
    ]  # fmt: skip
    assert h.core.timers.deadline(initial_rebalance_key("g")) is None


def test_group_that_empties_before_the_delay_ends_gets_no_target() -> None:
    h = StreamsHarness(READY, initial_rebalance_delay_ms=3000)
    h.hb("a", 0)
    left = h.hb("a", -1)
    assert (left.error, left.member_epoch) == (E.none, -1)
    written = len(h.sink.appended)
    h.advance(3000)
    assert len(h.sink.appended) == written  # nothing computed for an empty group
    g = h.group()
    assert (g.state.value, g.group_epoch, g.assignment_epoch) == ("Empty", 3, 1)
    # the next member of the empty group waits the delay again
    b = h.hb("b", 0)
    assert (b.member_epoch, b.statuses) == (1, INITIAL)
    assert h.core.timers.deadline(initial_rebalance_key("g")) == h.now + 3000


def test_group_that_refills_keeps_the_first_deadline() -> None:
    h = StreamsHarness(READY, initial_rebalance_delay_ms=3000)
    start = h.now
    h.hb("a", 0)
    h.hb("a", -1)
    h.advance(2000)
    b = h.hb("b", 0)  # the group is empty again, but the timer of its first join still runs
    assert b.statuses == INITIAL
    assert h.core.timers.deadline(initial_rebalance_key("g")) == start + 3000
    h.advance(1000)
    b2 = h.hb("b", 1, owned=({}, {}, {}))
    assert (b2.member_epoch, active(b2), b2.statuses) == (h.group().group_epoch, ALL, [])


def test_group_config_turns_the_initial_delay_off() -> None:
    h = StreamsHarness(READY, initial_rebalance_delay_ms=3000)
    h.core.group_configs = lambda gid: {"streams.initial.rebalance.delay.ms": 0} if gid == "g" else {}
    a = h.hb("a", 0)
    assert (a.member_epoch, active(a), a.statuses) == (2, ALL, [])
    other = h.hb("x", 0, group="other")
    assert other.statuses == INITIAL


def test_deleting_the_group_cancels_the_delay() -> None:
    h = StreamsHarness(READY, initial_rebalance_delay_ms=3000)
    h.hb("a", 0)
    h.hb("a", -1)
    done: list[dict[str, ErrorCode]] = []
    h.core.delete_groups(["g"], h.now, done.append)
    assert done == [{"g": E.none}]
    assert h.core.timers.deadline(initial_rebalance_key("g")) is None


def test_reloaded_group_assigns_at_the_next_heartbeat() -> None:
    """Kafka does not persist the delay's timer: after a coordinator change the group (its target behind
    its epoch) gets the target at the first heartbeat."""
    h = StreamsHarness(READY, initial_rebalance_delay_ms=3000)
    h.hb("a", 0)
    _reload(h)
    g = h.group()
    assert (g.state.value, g.group_epoch, g.assignment_epoch) == ("Assigning", 2, 1)
    assert h.core.timers.deadline(initial_rebalance_key("g")) is None
    a = h.hb("a", 1, owned=({}, {}, {}))
    assert (a.member_epoch, active(a), a.statuses) == (2, ALL, [])


# --- streams: the assignment interval ------------------------------------------------------------------


def test_streams_assignment_interval_throttles_new_targets() -> None:
    h = StreamsHarness(READY, assignment_interval_ms=1000)
    a = h.hb("a", 0)  # never assigned (timestamp 0): at once
    assert (a.member_epoch, active(a), a.statuses) == (2, ALL, [])
    h.advance(100)
    b = h.hb("b", 0)
    assert (b.member_epoch, active(b), b.statuses) == (2, {}, INTERVAL)
    d = h.core.streams_describe("g")
    assert (d.state, d.group_epoch, d.assignment_epoch) == ("Assigning", 3, 2)
    h.advance(800)
    a2 = h.hb("a", 2, owned=(ALL, {}, {}))
    assert (a2.member_epoch, a2.tasks, a2.statuses) == (2, None, INTERVAL)
    h.advance(100)  # the interval has passed since the last target: this heartbeat computes the next
    a3 = h.hb("a", 2, owned=(ALL, {}, {}))
    assert a3.statuses == []
    assert h.group().assignment_epoch == 3
    b2 = h.hb("b", 2, owned=({}, {}, {}))
    assert b2.statuses == []


def test_streams_group_config_sets_the_interval() -> None:
    h = StreamsHarness(READY, assignment_interval_ms=0)
    h.core.group_configs = lambda gid: {"streams.assignment.interval.ms": 5000}
    h.hb("a", 0)
    h.advance(4000)
    assert h.hb("b", 0).statuses == INTERVAL
    h.advance(1000)
    assert h.hb("b", 2, owned=({}, {}, {})).statuses == []


# --- consumer groups: the assignment interval ----------------------------------------------------------


def test_consumer_assignment_interval_throttles_new_targets() -> None:
    h = ConsumerHarness({"t": 4}, assignment_interval_ms=1000)
    a = h.hb("a", 0)
    assert (a.member_epoch, h.named(a)) == (2, {"t": [0, 1, 2, 3]})
    h.advance(100)
    b = h.hb("b", 0)
    # the target of epoch 3 waits: b reconciles to epoch 2's, where it has nothing
    assert (b.member_epoch, h.named(b)) == (2, {})
    d = h.core.consumer_describe("g")
    assert (d.state, d.group_epoch, d.assignment_epoch) == ("Assigning", 3, 2)
    h.advance(500)
    a2 = h.hb("a", 2, owned={"t": [0, 1, 2, 3]})
    assert (a2.member_epoch, a2.assignment) == (2, None)
    h.advance(400)
    a3 = h.hb("a", 2, owned={"t": [0, 1, 2, 3]})
    assert h.group().assignment_epoch == 3
    assert h.named(a3) == {"t": [0, 1]}  # a keeps half of the partitions, the rest go to b


def test_consumer_interval_survives_a_reload() -> None:
    """The interval counts from the assignment timestamp of the target metadata record, which is
    replayed; a group config sets it per group."""
    h = ConsumerHarness({"t": 4}, assignment_interval_ms=0)
    h.core.group_configs = lambda gid: {"consumer.assignment.interval.ms": 2000}
    h.hb("a", 0)
    _reload(h)
    h.advance(1000)
    h.hb("b", 0)
    g = h.group()
    assert (g.state.value, g.group_epoch, g.assignment_epoch) == ("Assigning", 3, 2)
    h.advance(1000)
    h.hb("a", 2, owned={"t": [0, 1, 2, 3]})
    assert h.group().assignment_epoch == 3
