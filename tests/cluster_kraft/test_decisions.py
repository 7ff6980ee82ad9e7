"""The quorum controller's decisions, on a replayed state: registration, heartbeats and fencing, topic
creation, leader election from the ISR, AlterPartition and producer ids."""

from __future__ import annotations

import random
import uuid
from types import SimpleNamespace

import pytest

from strom.cluster.kraft.decisions import ControllerRules, IsrMember
from strom.config import BrokerConfig
from strom.metadata import records as r
from strom.metadata.image import MetadataState
from strom.protocol.errors import ErrorCode, KafkaError


def registration(broker_id: int, log_dirs: tuple[uuid.UUID, ...] = ()) -> SimpleNamespace:
    """A BrokerRegistration request of `broker_id` (one PLAINTEXT listener, metadata.version 7-33)."""
    listener = SimpleNamespace(name="PLAINTEXT", host="127.0.0.1", port=9000 + broker_id, security_protocol=0)
    feature = SimpleNamespace(name="metadata.version", min_supported_version=7, max_supported_version=33)
    return SimpleNamespace(
        broker_id=broker_id,
        cluster_id="c",
        incarnation_id=uuid.UUID(int=broker_id),
        listeners=(listener,),
        features=(feature,),
        rack=None,
        log_dirs=log_dirs,
    )


def apply(state: MetadataState, records: list) -> None:  # type: ignore[type-arg]
    for record in records:
        state.replay(record, state.last_offset + 1)


@pytest.fixture
def rules() -> ControllerRules:
    state = MetadataState()
    apply(state, [SimpleNamespace(message=r.FeatureLevelRecord(name="metadata.version", feature_level=33))])  # type: ignore[list-item]
    rules = ControllerRules(state, BrokerConfig({}), random.Random(1))
    for b in (1, 2, 3):
        change = rules.register_broker(
            registration(b),
            cluster_id="c",
            next_offset=state.last_offset + 1,
            has_live_session=lambda _: False,
        )
        apply(state, change.records)
        apply(state, rules.heartbeat(b, change.result, state.last_offset, False, False).records)  # type: ignore[arg-type]
    return rules


def test_registration_epoch_is_the_record_offset_and_unfencing_waits_for_catch_up() -> None:
    state = MetadataState()
    rules = ControllerRules(state, BrokerConfig({}), random.Random(1))
    change = rules.register_broker(
        registration(1), cluster_id="c", next_offset=42, has_live_session=lambda _: False
    )
    assert change.result == 42 and change.records[0].version == 4
    state.replay(change.records[0], 42)
    behind = rules.heartbeat(1, 42, 41, False, False)
    assert behind.records == [] and behind.result.is_fenced  # type: ignore[union-attr]
    caught_up = rules.heartbeat(1, 42, 42, False, False)
    assert not caught_up.result.is_fenced  # type: ignore[union-attr]
    assert caught_up.records[0].message.fenced == -1
    with pytest.raises(KafkaError) as stale:
        rules.heartbeat(1, 41, 42, False, False)
    assert stale.value.code == ErrorCode.stale_broker_epoch
    with pytest.raises(KafkaError) as other:
        rules.register_broker(
            registration(1), cluster_id="x", next_offset=50, has_live_session=lambda _: True
        )
    assert other.value.code == ErrorCode.inconsistent_cluster_id


def test_topic_creation_is_one_change_with_ids_and_placement(rules: ControllerRules) -> None:
    change = rules.create_topic("t", 1000, 3, {"retention.ms": "10"})
    kinds = [type(rec.message).__name__ for rec in change.records]
    assert (
        kinds[0] == "TopicRecord" and kinds.count("PartitionRecord") == 1000 and kinds[-1] == "ConfigRecord"
    )
    parts = [rec.message for rec in change.records if isinstance(rec.message, r.PartitionRecord)]
    assert all(sorted(p.replicas) == [1, 2, 3] and p.leader == p.replicas[0] for p in parts)
    assert {p.replicas[0] for p in parts} == {1, 2, 3}
    with pytest.raises(KafkaError) as too_many:
        rules.create_topic("u", 1, 4, {})
    assert too_many.value.code == ErrorCode.invalid_replication_factor


def test_fencing_elects_from_the_isr_and_keeps_the_last_member(rules: ControllerRules) -> None:
    state = rules.state
    apply(state, rules.create_topic("t", -1, -1, {}, {0: [1, 2]}).records)
    topic_id = state.topic_ids["t"]
    apply(state, rules.fence(state.brokers[1]))
    part = state.partition(topic_id, 0)
    assert (part.leader, part.isr, part.leader_epoch) == (2, (2,), 1)  # type: ignore[union-attr]
    apply(state, rules.fence(state.brokers[2]))
    part = state.partition(topic_id, 0)
    assert (part.leader, part.isr) == (-1, (2,))  # type: ignore[union-attr]
    # broker 2 comes back: it was the last in the ISR, so it leads again cleanly
    apply(state, rules.unfence(state.brokers[2]))
    assert state.partition(topic_id, 0).leader == 2  # type: ignore[union-attr]


def test_unclean_election_only_when_enabled(rules: ControllerRules) -> None:
    state = rules.state
    apply(state, rules.create_topic("t", -1, -1, {}, {0: [1, 2]}).records)
    topic_id = state.topic_ids["t"]
    apply(state, rules.fence(state.brokers[2]))  # ISR (1)
    apply(state, rules.fence(state.brokers[1]))  # leaderless, ISR (1)
    apply(state, rules.unfence(state.brokers[2]))
    assert state.partition(topic_id, 0).leader == -1  # type: ignore[union-attr]
    apply(state, rules.alter_configs(2, "t", {"unclean.leader.election.enable": "true"}))
    apply(state, rules.leader_and_isr_updates(add=2))
    part = state.partition(topic_id, 0)
    assert (part.leader, part.isr) == (2, (2,))  # type: ignore[union-attr]


def test_alter_partition_checks_epochs(rules: ControllerRules) -> None:
    state = rules.state
    apply(state, rules.create_topic("t", -1, -1, {}, {0: [1, 2, 3]}).records)
    topic_id = state.topic_ids["t"]
    members = [IsrMember(1, state.brokers[1].epoch), IsrMember(2, state.brokers[2].epoch)]
    code, after, record = rules.alter_partition(1, topic_id, 0, 0, 0, members, check_member_epochs=True)
    assert code == ErrorCode.none and after.isr == (1, 2) and after.partition_epoch == 1  # type: ignore[union-attr]
    apply(state, [record])
    assert (
        rules.alter_partition(1, topic_id, 0, 0, 0, members, check_member_epochs=True)[0]
        == ErrorCode.invalid_update_version
    )
    assert (
        rules.alter_partition(2, topic_id, 0, 0, 1, members, check_member_epochs=True)[0]
        == ErrorCode.invalid_request
    )
    stale = [IsrMember(1, state.brokers[1].epoch), IsrMember(3, 12345)]
    assert (
        rules.alter_partition(1, topic_id, 0, 0, 1, stale, check_member_epochs=True)[0]
        == ErrorCode.ineligible_replica
    )


def test_controlled_shutdown_moves_leadership_then_says_shut_down(rules: ControllerRules) -> None:
    state = rules.state
    apply(state, rules.create_topic("t", -1, -1, {}, {0: [1, 2]}).records)
    first = rules.heartbeat(1, state.brokers[1].epoch, state.last_offset, False, True)
    assert first.result.should_shut_down  # type: ignore[union-attr]
    apply(state, first.records)
    assert state.partition(state.topic_ids["t"], 0).leader == 2  # type: ignore[union-attr]
    assert state.brokers[1].fenced


def test_producer_id_blocks(rules: ControllerRules) -> None:
    change = rules.allocate_producer_ids(1, rules.state.brokers[1].epoch)
    assert change.result == (0, 1000)
    apply(rules.state, change.records)
    assert rules.allocate_producer_ids(2, rules.state.brokers[2].epoch).result == (1000, 1000)


def test_elect_leaders_preferred_and_unclean(rules: ControllerRules) -> None:
    state = rules.state
    apply(state, rules.create_topic("t", -1, -1, {}, {0: [1, 2], 1: [2, 1], 2: [3, 1]}).records)
    topic_id = state.topic_ids["t"]
    apply(state, rules.fence(state.brokers[1]))  # partition 0 moves to 2; partition 2's ISR loses 1
    apply(state, rules.unfence(state.brokers[1]))
    part = state.partition(topic_id, 0)
    assert part is not None and (part.leader, part.isr) == (2, (2,))
    _code, _after, grown = rules.alter_partition(
        2, topic_id, 0, part.leader_epoch, part.partition_epoch, [IsrMember(2), IsrMember(1)],
        check_member_epochs=False,
    )  # fmt: skip
    apply(state, [grown])
    change = rules.elect_leaders([("t", 0), ("t", 1), ("t", 9), ("u", 0)], 0)
    assert change.result == {
        ("t", 0): ErrorCode.none,
        ("t", 1): ErrorCode.election_not_needed,
        ("t", 9): ErrorCode.unknown_topic_or_partition,
        ("u", 0): ErrorCode.unknown_topic_or_partition,
    }
    apply(state, change.records)
    assert state.partition(topic_id, 0).leader == 1  # type: ignore[union-attr]
    # partition 2: 3 leads with ISR (3); with 3 fenced, only an unclean election brings 1 in
    apply(state, rules.fence(state.brokers[3]))
    assert state.partition(topic_id, 2).leader == -1  # type: ignore[union-attr]
    assert rules.elect_leaders([("t", 2)], 0).result == {("t", 2): ErrorCode.preferred_leader_not_available}
    assert rules.elect_leaders([("t", 0)], 1).result == {("t", 0): ErrorCode.election_not_needed}
    unclean = rules.elect_leaders([("t", 2)], 1)
    assert unclean.result == {("t", 2): ErrorCode.none}
    apply(state, unclean.records)
    part = state.partition(topic_id, 2)
    assert (part.leader, part.isr) == (1, (1,))  # type: ignore[union-attr]


def test_unregister_moves_leadership_then_removes_the_registration(rules: ControllerRules) -> None:
    state = rules.state
    apply(state, rules.create_topic("gone", -1, -1, {}, {0: [1, 2]}).records)
    topic_id = state.topic_ids["gone"]
    apply(state, rules.unregister_broker(1).records)
    assert 1 not in state.brokers
    part = state.partition(topic_id, 0)
    assert (part.leader, part.isr) == (2, (2,))  # type: ignore[union-attr]
    with pytest.raises(KafkaError) as unknown:
        rules.unregister_broker(1)
    assert unknown.value.code == ErrorCode.broker_id_not_registered


def test_assign_replicas_to_dirs_records_each_replicas_directory(rules: ControllerRules) -> None:
    import dataclasses

    state = rules.state
    online, gone = uuid.UUID(int=11), uuid.UUID(int=12)
    state.brokers[1] = dataclasses.replace(state.brokers[1], log_dirs=(online,))
    apply(state, rules.create_topic("jbod", -1, -1, {}, {0: [1, 2], 1: [2, 3]}).records)
    topic_id = state.topic_ids["jbod"]
    epoch = state.brokers[1].epoch
    change = rules.assign_replicas_to_dirs(1, epoch, [(online, [(topic_id, [0, 1, 7])])])
    assert change.result == {
        (online, topic_id, 0): ErrorCode.none,
        (online, topic_id, 1): ErrorCode.not_leader_or_follower,  # broker 1 holds no replica of it
        (online, topic_id, 7): ErrorCode.unknown_topic_or_partition,
    }
    apply(state, change.records)
    part = state.partition(topic_id, 0)
    assert part is not None and part.directories[0] == online and part.isr == (1, 2)
    assert rules.assign_replicas_to_dirs(1, epoch, [(online, [(topic_id, [0])])]).records == []  # no change
    # a directory the broker does not report online: the replica leaves the ISR and leadership
    apply(state, rules.assign_replicas_to_dirs(1, epoch, [(gone, [(topic_id, [0])])]).records)
    part = state.partition(topic_id, 0)
    assert part is not None and part.directories[0] == gone and part.isr == (2,) and part.leader == 2
    with pytest.raises(KafkaError) as stale:
        rules.assign_replicas_to_dirs(1, epoch + 1, [])
    assert stale.value.code == ErrorCode.stale_broker_epoch
