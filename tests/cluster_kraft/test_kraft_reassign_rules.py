"""The quorum controller's partition reassignment rules on a replayed state (Kafka's
ReplicationControlManager, PartitionReassignmentReplicas, PartitionReassignmentRevert and the
reassignment completion of PartitionChangeBuilder): the first change with the full target set, the
completing change once the ISR holds every target replica (with a new leader when the leader leaves),
cancelling, replacing, and the error codes."""

from __future__ import annotations

import random
import uuid
from types import SimpleNamespace

import pytest

from strom.cluster.kraft.decisions import ControllerRules, IsrMember
from strom.cluster.reassignment import ReplicaSet
from strom.config import BrokerConfig
from strom.metadata import records as r
from strom.metadata.image import MetadataState, PartitionRegistration
from strom.protocol.errors import ErrorCode
from tests.cluster_kraft.test_decisions import registration as decisions_registration


def registration(broker_id: int) -> SimpleNamespace:
    """A registration with one log directory: reassignment records carry the new replicas' directories."""
    return decisions_registration(broker_id, (uuid.UUID(int=100 + broker_id),))


def apply(state: MetadataState, records: list) -> None:  # type: ignore[type-arg]
    for record in records:
        state.replay(record, state.last_offset + 1)


@pytest.fixture
def rules() -> ControllerRules:
    state = MetadataState()
    apply(state, [SimpleNamespace(message=r.FeatureLevelRecord(name="metadata.version", feature_level=33))])  # type: ignore[list-item]
    rules = ControllerRules(state, BrokerConfig({}), random.Random(1))
    for b in (1, 2, 3, 4):
        change = rules.register_broker(
            registration(b),
            cluster_id="c",
            next_offset=state.last_offset + 1,
            has_live_session=lambda _: False,
        )
        apply(state, change.records)
        apply(state, rules.heartbeat(b, change.result, state.last_offset, False, False).records)  # type: ignore[arg-type]
    return rules


def part(rules: ControllerRules, topic: str = "t", p: int = 0) -> PartitionRegistration:
    info = rules.state.topic(topic)
    assert info is not None
    return info.partitions[p]


def grow_isr(rules: ControllerRules, topic: str, isr: list[int], p: int = 0) -> ErrorCode:
    info = rules.state.topic(topic)
    assert info is not None
    now = info.partitions[p]
    members = [IsrMember(b, rules.state.brokers[b].epoch) for b in isr]
    code, _after, record = rules.alter_partition(
        now.leader, info.topic_id, p, now.leader_epoch, now.partition_epoch, members, check_member_epochs=True
    )
    if record is not None:
        apply(rules.state, [record])
    return code


def test_move_writes_the_full_set_then_completes_with_a_new_leader(rules: ControllerRules) -> None:
    apply(rules.state, rules.create_topic("t", -1, -1, {}, {0: [1, 2]}).records)
    before = part(rules)
    change = rules.alter_partition_reassignments([(("t", 0), [3, 4])])
    assert change.result == {("t", 0): (ErrorCode.none, None)}
    (record,) = change.records
    m = record.message
    assert (m.replicas, m.adding_replicas, m.removing_replicas) == ((3, 4, 1, 2), (3, 4), (1, 2))
    assert m.leader == -2 and m.isr is None  # no replica leaves the list yet: the leader epoch stays
    assert m.directories == tuple(uuid.UUID(int=100 + b) for b in (3, 4, 1, 2))
    apply(rules.state, change.records)
    moving = part(rules)
    assert moving.leader_epoch == before.leader_epoch and moving.isr == (1, 2)
    assert rules.list_partition_reassignments(None) == {("t", 0): ReplicaSet((3, 4, 1, 2), (3, 4), (1, 2))}
    assert rules.list_partition_reassignments([("t", 0), ("t", 5), ("absent", 0)]) == {
        ("t", 0): ReplicaSet((3, 4, 1, 2), (3, 4), (1, 2))
    }

    assert grow_isr(rules, "t", [1, 2, 3]) == ErrorCode.none  # one new replica: still moving
    assert part(rules).adding_replicas == (3, 4)
    # the last new replica joins: the completing change, leadership to the first target replica
    assert grow_isr(rules, "t", [1, 2, 3, 4]) == ErrorCode.new_leader_elected
    done = part(rules)
    assert (done.replicas, done.isr, done.leader) == ((3, 4), (3, 4), 3)
    assert (done.adding_replicas, done.removing_replicas) == ((), ())
    assert done.directories == (uuid.UUID(int=103), uuid.UUID(int=104))
    assert rules.list_partition_reassignments(None) == {}


def test_reordering_and_shrinking_complete_at_once(rules: ControllerRules) -> None:
    apply(rules.state, rules.create_topic("t", -1, -1, {}, {0: [1, 2, 3]}).records)
    change = rules.alter_partition_reassignments([(("t", 0), [3, 1])])
    m = change.records[0].message
    assert (m.replicas, m.isr, m.adding_replicas, m.removing_replicas, m.leader) == (
        (3, 1),
        (1, 3),
        None,
        None,
        1,
    )
    apply(rules.state, change.records)
    assert rules.list_partition_reassignments(None) == {}
    assert rules.alter_partition_reassignments([(("t", 0), [3, 1])]).records == []  # nothing to change


def test_cancel_restores_the_original_replicas(rules: ControllerRules) -> None:
    apply(rules.state, rules.create_topic("t", -1, -1, {}, {0: [1, 2]}).records)
    apply(rules.state, rules.alter_partition_reassignments([(("t", 0), [1, 3])]).records)
    assert grow_isr(rules, "t", [1, 2]) == ErrorCode.none
    cancel = rules.alter_partition_reassignments([(("t", 0), None)])
    assert cancel.result == {("t", 0): (ErrorCode.none, None)}
    m = cancel.records[0].message
    assert (m.replicas, m.adding_replicas, m.removing_replicas) == ((1, 2), (), ())
    apply(rules.state, cancel.records)
    assert (part(rules).replicas, part(rules).isr) == ((1, 2), (1, 2))
    again = rules.alter_partition_reassignments([(("t", 0), None)])
    assert again.result[("t", 0)][0] == ErrorCode.no_reassignment_in_progress and not again.records


def test_a_new_target_replaces_the_running_reassignment(rules: ControllerRules) -> None:
    apply(rules.state, rules.create_topic("t", -1, -1, {}, {0: [1, 2]}).records)
    apply(rules.state, rules.alter_partition_reassignments([(("t", 0), [1, 3])]).records)
    change = rules.alter_partition_reassignments([(("t", 0), [1, 4])])
    m = change.records[0].message
    # the current list is the whole one: 3 (being added) and 2 are now removing
    assert (m.replicas, m.adding_replicas, m.removing_replicas) == ((1, 4, 2, 3), (4,), (2, 3))
    apply(rules.state, change.records)
    assert grow_isr(rules, "t", [1, 2, 4]) == ErrorCode.none
    assert (part(rules).replicas, part(rules).isr, part(rules).leader) == ((1, 4), (1, 4), 1)


def test_cancel_that_needs_an_unclean_election_is_refused(rules: ControllerRules) -> None:
    apply(rules.state, rules.create_topic("t", -1, -1, {}, {0: [1, 2]}).records)
    apply(rules.state, rules.alter_partition_reassignments([(("t", 0), [3, 4])]).records)
    assert grow_isr(rules, "t", [1, 2, 3]) == ErrorCode.none
    for b in (1, 2):  # the original replicas are fenced: only the adding replica 3 is left in the ISR
        apply(rules.state, rules.fence(rules.state.brokers[b]))
    assert (part(rules).isr, part(rules).leader) == ((3,), 3)
    ((code, message),) = rules.alter_partition_reassignments([(("t", 0), None)]).result.values()  # type: ignore[union-attr]
    assert code == ErrorCode.invalid_replica_assignment and "unclean leader election" in str(message)


def test_errors_are_kafkas(rules: ControllerRules) -> None:
    apply(rules.state, rules.create_topic("t", -1, -1, {}, {0: [1, 2]}).records)
    change = rules.alter_partition_reassignments(
        [
            (("absent", 0), [1]),
            (("t", 9), [1]),
            (("t", 0), []),
            (("t", 0), [1, 1]),
            (("t", 0), [1, 7]),
            (("t", 0), None),
        ]
    )
    codes = {key: code for key, (code, _message) in change.result.items()}  # type: ignore[union-attr]
    assert codes[("absent", 0)] == ErrorCode.unknown_topic_or_partition
    assert codes[("t", 9)] == ErrorCode.unknown_topic_or_partition
    assert change.records == []
    for target, message in (
        ([], "includes an empty replica list"),
        ([1, 1], "includes the broker 1 more than once"),
        ([1, 7], "includes broker 7, but no such broker is registered"),
    ):
        ((code, text),) = rules.alter_partition_reassignments([(("t", 0), target)]).result.values()  # type: ignore[union-attr]
        assert code == ErrorCode.invalid_replica_assignment and message in text
    ((code, _),) = rules.alter_partition_reassignments([(("t", 0), None)]).result.values()  # type: ignore[union-attr]
    assert code == ErrorCode.no_reassignment_in_progress
