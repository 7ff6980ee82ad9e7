"""Eligible leader replicas (KIP-966) and the leader recovery state (KIP-704) in the KRaft controller's
rules: Kafka 4.4's PartitionChangeBuilder over one partition, and the ReplicationControlManager paths that
drive it (fencing, unfencing, a restart after an unclean shutdown, unclean elections, AlterPartition)."""

from __future__ import annotations

import random
import uuid
from types import SimpleNamespace

import pytest

from strom.cluster.kraft.decisions import ControllerRules, IsrMember
from strom.cluster.kraft.partition_change import RECOVERED, RECOVERING, merge, partition_change
from strom.config import BrokerConfig
from strom.metadata import records as r
from strom.metadata.image import MetadataState, PartitionRegistration
from strom.metadata.serde import ApiMessageAndVersion
from strom.protocol.errors import ErrorCode

TOPIC_ID = uuid.UUID(int=7)


def build(part: PartitionRegistration, alive: set[int], **kwargs: object) -> r.PartitionChangeRecord | None:
    record = partition_change(
        part, TOPIC_ID, 0, acceptable=lambda b: b in alive, version=2, **kwargs  # type: ignore[arg-type]
    )
    return None if record is None else record.message  # type: ignore[return-value]


def reg(isr: tuple[int, ...], leader: int, **kwargs: object) -> PartitionRegistration:
    return PartitionRegistration(
        replicas=(1, 2, 3), isr=isr, leader=leader, leader_epoch=5, partition_epoch=9, **kwargs  # type: ignore[arg-type]
    )


# -- the builder ---------------------------------------------------------------------------------------------
def test_isr_shrinking_below_min_isr_moves_the_leaver_into_the_elr() -> None:
    record = build(reg((1, 2, 3), 1), {1, 2}, isr=(1, 2), elr=True, min_isr=3)
    assert record is not None
    assert record.isr == (1, 2) and record.eligible_leader_replicas == (3,)
    assert record.leader == -2 and record.last_known_elr is None


def test_isr_at_min_isr_keeps_no_elr() -> None:
    record = build(reg((1, 2, 3), 1), {1, 2}, isr=(1, 2), elr=True, min_isr=2)
    assert record is not None and record.eligible_leader_replicas is None


def test_without_elr_the_builder_writes_no_elr_and_keeps_the_last_isr_member() -> None:
    assert build(reg((1, 2, 3), 1), {1, 2}, isr=(1, 2), min_isr=3).eligible_leader_replicas is None  # type: ignore[union-attr]
    record = build(reg((1,), 1), set(), isr=())
    assert record is not None and record.isr is None and record.leader == -1


def test_last_isr_member_leaving_empties_the_isr_and_records_the_last_leader() -> None:
    record = build(reg((1,), 1, elr=(2, 3)), {3}, isr=(), elr=True, min_isr=3)
    assert record is not None
    # 3 is in the ELR and active, the ISR is empty: it is elected and becomes the whole ISR
    assert record.leader == 3 and record.isr == (3,) and record.eligible_leader_replicas == (1, 2)
    record = build(reg((1,), 1, elr=(2, 3)), set(), isr=(), elr=True, min_isr=3)
    assert record is not None
    assert record.leader == -1 and record.isr == () and record.eligible_leader_replicas == (1, 2, 3)
    assert record.last_known_elr == (1,)


def test_reaching_min_isr_clears_elr_and_last_known_elr() -> None:
    part = reg((2,), 2, elr=(1,), last_known_elr=(1,))
    record = build(part, {1, 2, 3}, isr=(2, 3), elr=True, min_isr=2)
    assert record is not None
    assert record.isr == (2, 3) and record.eligible_leader_replicas == () and record.last_known_elr == ()


def test_unclean_shutdown_replicas_leave_the_elr() -> None:
    record = build(reg((), -1, elr=(2, 3)), {1}, elr=True, min_isr=3, unclean_shutdown=(3,))
    assert record is not None and record.eligible_leader_replicas == (2,)


def test_last_known_leader_is_elected_when_isr_and_elr_are_empty() -> None:
    part = reg((), -1, last_known_elr=(2,))
    record = build(part, {2, 3}, elr=True, min_isr=2)
    assert record is not None
    assert record.leader == 2 and record.isr == (2,) and record.leader_recovery_state == RECOVERING
    assert record.last_known_elr == ()
    # not while it is fenced; nor without the ELR
    assert build(part, {3}, elr=True, min_isr=2) is None
    no_elr = build(part, {2, 3})
    assert no_elr is not None and no_elr.leader == -2 and no_elr.last_known_elr == ()


def test_unclean_election_marks_recovering_and_clears_the_elr() -> None:
    record = build(reg((1,), -1, elr=(2,)), {3}, elr=True, min_isr=3, unclean=True)
    assert record is not None
    assert record.leader == 3 and record.isr == (3,) and record.leader_recovery_state == RECOVERING
    assert record.eligible_leader_replicas == ()
    # already RECOVERING: the state is not written again
    again = build(reg((1,), -1, leader_recovery_state=RECOVERING), {3}, unclean=True)
    assert again is not None and again.leader_recovery_state == -1


def test_target_recovery_state_is_written_when_it_changes() -> None:
    part = reg((3,), 3, leader_recovery_state=RECOVERING)
    record = build(part, {1, 3}, isr=(3, 1), recovery_state=RECOVERED)
    assert record is not None and record.leader_recovery_state == RECOVERED and record.isr == (3, 1)
    after = merge(part, record)
    assert after.leader_recovery_state == RECOVERED and after.partition_epoch == 10


def test_isr_shrink_bumps_the_leader_epoch_before_3_6() -> None:
    record = build(reg((1, 2, 3), 1), {1, 2}, isr=(1, 2), bump_on_isr_shrink=True)
    assert record is not None and record.leader == 1
    assert build(reg((1, 2), 1), {1, 2, 3}, isr=(1, 2, 3), bump_on_isr_shrink=True).leader == -2  # type: ignore[union-attr]


def test_merge_replays_elr_fields() -> None:
    record = build(reg((1,), 1), set(), isr=(), elr=True, min_isr=2)
    assert record is not None
    after = merge(reg((1,), 1), record)
    assert after.isr == () and after.elr == (1,) and after.last_known_elr == (1,) and after.leader == -1


# -- the controller's rules ---------------------------------------------------------------------------------
def registration(broker_id: int, incarnation: int = 0, previous_epoch: int = -1) -> SimpleNamespace:
    listener = SimpleNamespace(name="PLAINTEXT", host="127.0.0.1", port=9000 + broker_id, security_protocol=0)
    feature = SimpleNamespace(name="metadata.version", min_supported_version=7, max_supported_version=33)
    return SimpleNamespace(
        broker_id=broker_id,
        cluster_id="c",
        incarnation_id=uuid.UUID(int=broker_id + 1000 * incarnation),
        listeners=(listener,),
        features=(feature,),
        rack=None,
        log_dirs=(uuid.UUID(int=100 + broker_id),),
        previous_broker_epoch=previous_epoch,
    )


def apply(state: MetadataState, records: list[ApiMessageAndVersion]) -> None:
    for record in records:
        state.replay(record, state.last_offset + 1)


def register(rules: ControllerRules, broker_id: int, incarnation: int = 0, previous_epoch: int = -1) -> int:
    state = rules.state
    change = rules.register_broker(
        registration(broker_id, incarnation, previous_epoch),
        cluster_id="c",
        next_offset=state.last_offset + 1,
        has_live_session=lambda _: False,
    )
    apply(state, change.records)
    epoch = int(change.result)  # type: ignore[call-overload]
    assert state.brokers[broker_id].epoch == epoch
    apply(state, rules.heartbeat(broker_id, epoch, state.last_offset, False, False).records)
    return epoch


def feature(name: str, level: int) -> ApiMessageAndVersion:
    return ApiMessageAndVersion(r.FeatureLevelRecord(name=name, feature_level=level), 0)


def make_rules(elr: bool) -> ControllerRules:
    state = MetadataState()
    records = [feature("metadata.version", 33)]
    if elr:
        records.append(feature("eligible.leader.replicas.version", 1))
    apply(state, records)
    rules = ControllerRules(state, BrokerConfig({}), random.Random(1))
    for b in (1, 2, 3):
        register(rules, b)
    change = rules.create_topic("t", -1, -1, {"min.insync.replicas": "2"}, assignments={0: [1, 2, 3]})
    apply(state, change.records)
    return rules


def partition(rules: ControllerRules) -> PartitionRegistration:
    topic = rules.state.topic("t")
    assert topic is not None
    return topic.partitions[0]


def fence(rules: ControllerRules, broker_id: int) -> None:
    apply(rules.state, rules.fence(rules.state.brokers[broker_id]))


@pytest.fixture
def rules() -> ControllerRules:
    return make_rules(elr=True)


def test_min_isr_is_the_topics_capped_by_replication_factor(rules: ControllerRules) -> None:
    assert rules.elr_enabled
    assert rules.min_isr("t", 3) == 2
    assert rules.min_isr("t", 1) == 1
    assert rules.min_isr("other", 3) == 1  # the static default


def test_fencing_brokers_fills_the_elr_and_the_returning_member_leads(rules: ControllerRules) -> None:
    fence(rules, 3)
    assert partition(rules).isr == (1, 2) and partition(rules).elr == ()
    fence(rules, 2)
    assert partition(rules).isr == (1,) and partition(rules).elr == (2,)
    fence(rules, 1)
    p = partition(rules)
    assert (p.leader, p.isr, p.elr, p.last_known_elr) == (-1, (), (1, 2), (1,))
    # 3 comes back: neither in the ISR nor the ELR, it may not lead
    apply(rules.state, rules.unfence(rules.state.brokers[3]))
    assert partition(rules).leader == -1
    # 2 comes back: elected from the ELR, it is the ISR now
    apply(rules.state, rules.unfence(rules.state.brokers[2]))
    p = partition(rules)
    assert (p.leader, p.isr, p.elr, p.last_known_elr) == (2, (2,), (1,), ())
    assert p.leader_recovery_state == RECOVERED


def test_without_the_feature_the_last_isr_member_stays() -> None:
    rules = make_rules(elr=False)
    for b in (3, 2, 1):
        fence(rules, b)
    p = partition(rules)
    assert (p.leader, p.isr, p.elr) == (-1, (1,), ())
    apply(rules.state, rules.unfence(rules.state.brokers[2]))
    assert partition(rules).leader == -1


def test_a_restart_after_an_unclean_shutdown_leaves_the_elr(rules: ControllerRules) -> None:
    fence(rules, 3)
    fence(rules, 2)
    assert partition(rules).elr == (2,)
    register(rules, 2, incarnation=1, previous_epoch=-1)
    p = partition(rules)
    assert p.elr == () and p.isr == (1,)


def test_a_restart_after_a_clean_shutdown_stays_in_the_elr(rules: ControllerRules) -> None:
    fence(rules, 3)
    epoch2 = rules.state.brokers[2].epoch
    fence(rules, 2)
    fence(rules, 1)
    assert partition(rules).elr == (1, 2)
    register(rules, 2, incarnation=1, previous_epoch=epoch2)
    p = partition(rules)
    assert p.leader == 2 and p.isr == (2,) and p.elr == (1,)


def test_the_last_known_leader_leads_once_isr_and_elr_are_empty(rules: ControllerRules) -> None:
    for b in (3, 2, 1):
        fence(rules, b)
    register(rules, 2, incarnation=1)  # unclean: 2 leaves the ELR, and cannot lead
    p = partition(rules)
    assert (p.leader, p.elr, p.last_known_elr) == (-1, (1,), (1,))
    register(rules, 1, incarnation=1)  # unclean too: the ELR is empty, 1 was the last leader
    p = partition(rules)
    assert (p.leader, p.isr, p.elr, p.last_known_elr) == (1, (1,), (), ())
    assert p.leader_recovery_state == RECOVERING


def test_unclean_elect_leaders_marks_recovering_and_alter_partition_recovers(rules: ControllerRules) -> None:
    for b in (3, 2, 1):
        fence(rules, b)
    for b in (2, 3):
        register(rules, b, incarnation=1)
    assert partition(rules).leader == -1 and partition(rules).elr == (1,)
    change = rules.elect_leaders([("t", 0)], 1)
    assert change.result == {("t", 0): ErrorCode.none}
    apply(rules.state, change.records)
    p = partition(rules)
    assert (p.leader, p.isr, p.elr, p.leader_recovery_state) == (2, (2,), (), RECOVERING)
    assert rules.elect_leaders([("t", 0)], 1).result == {("t", 0): ErrorCode.election_not_needed}
    epochs = {b: rules.state.brokers[b].epoch for b in (2, 3)}
    topic_id = rules.state.topic_ids["t"]

    def alter(isr: tuple[int, ...], state: int) -> ErrorCode:
        p = partition(rules)
        members = [IsrMember(b, epochs[b]) for b in isr]
        code, _after, record = rules.alter_partition(
            2, topic_id, 0, p.leader_epoch, p.partition_epoch, members, check_member_epochs=True,
            recovery_state=state,
        )
        if record is not None:
            apply(rules.state, [record])
        return code

    assert alter((2, 3), RECOVERING) == ErrorCode.invalid_request
    assert alter((3,), RECOVERED) == ErrorCode.invalid_request  # the ISR must hold the leader
    assert alter((2, 3), RECOVERED) == ErrorCode.none
    p = partition(rules)
    assert p.leader_recovery_state == RECOVERED and p.isr == (2, 3)
    assert alter((2,), RECOVERING) == ErrorCode.invalid_request


def test_unclean_elect_leaders_without_any_active_replica(rules: ControllerRules) -> None:
    for b in (3, 2, 1):
        fence(rules, b)
    assert rules.elect_leaders([("t", 0)], 1).result == {("t", 0): ErrorCode.eligible_leaders_not_available}


def test_clear_elr_record_empties_the_elr(rules: ControllerRules) -> None:
    fence(rules, 3)
    fence(rules, 2)
    before = partition(rules)
    assert before.elr == (2,)
    apply(rules.state, [ApiMessageAndVersion(r.ClearElrRecord(topic_name="t"), 0)])
    after = partition(rules)
    assert after.elr == () and after.partition_epoch == before.partition_epoch + 1
    apply(rules.state, [ApiMessageAndVersion(r.ClearElrRecord(), 0)])
    assert partition(rules).partition_epoch == after.partition_epoch


# -- min.insync.replicas with the ELR on ---------------------------------------------------------------------
def config(resource_type: int, name: str, key: str, value: str | None) -> ApiMessageAndVersion:
    record = r.ConfigRecord(resource_type=resource_type, resource_name=name, name=key, value=value)
    return ApiMessageAndVersion(record, 0)


def test_broker_level_min_isr_is_refused_and_the_cluster_level_one_kept(rules: ControllerRules) -> None:
    from strom.protocol.errors import KafkaError

    with pytest.raises(KafkaError, match=r"Broker-level min\.insync\.replicas cannot be altered") as exc:
        rules.check_min_isr_change(4, "1", {"min.insync.replicas": "2"})
    assert exc.value.code == ErrorCode.invalid_config
    rules.check_min_isr_change(4, "1", {"log.retention.ms": "5"})
    apply(rules.state, [config(4, "", "min.insync.replicas", "1")])
    rules.check_min_isr_change(4, "", {"min.insync.replicas": "2"})
    with pytest.raises(KafkaError, match=r"Cluster-level min\.insync\.replicas cannot be removed"):
        rules.check_min_isr_change(4, "", {})
    # without the ELR both are allowed
    off = make_rules(elr=False)
    off.check_min_isr_change(4, "1", {"min.insync.replicas": "2"})


def test_a_min_isr_change_clears_the_elr(rules: ControllerRules) -> None:
    topic = rules.clear_elr_records([config(2, "t", "min.insync.replicas", "3")])
    assert [rec.message for rec in topic] == [r.ClearElrRecord(topic_name="t")]
    cluster = rules.clear_elr_records([config(4, "", "min.insync.replicas", "3"), config(4, "", "x", "1")])
    assert [rec.message for rec in cluster] == [r.ClearElrRecord(topic_name="")]
    assert make_rules(elr=False).clear_elr_records([config(2, "t", "min.insync.replicas", "3")]) == []


def test_enabling_the_elr_writes_the_safety_records() -> None:
    rules = make_rules(elr=False)
    apply(rules.state, [config(4, "2", "min.insync.replicas", "2"), config(4, "3", "x", "1")])
    messages = [rec.message for rec in rules.elr_safety_records()]
    assert messages == [
        r.ConfigRecord(resource_type=4, resource_name="", name="min.insync.replicas", value="1"),
        r.ConfigRecord(resource_type=4, resource_name="2", name="min.insync.replicas", value=None),
    ]
    apply(rules.state, [config(4, "", "min.insync.replicas", "2")])
    apply(rules.state, [config(4, "2", "min.insync.replicas", None)])
    assert rules.elr_safety_records() == []


def test_automatic_unclean_election_marks_recovering() -> None:
    rules = make_rules(elr=True)
    apply(rules.state, [config(2, "t", "unclean.leader.election.enable", "true")])
    for b in (3, 2, 1):
        fence(rules, b)
    assert partition(rules).elr == (1, 2)
    apply(rules.state, rules.unfence(rules.state.brokers[3]))
    p = partition(rules)
    assert (p.leader, p.isr, p.elr, p.leader_recovery_state) == (3, (3,), (), RECOVERING)


# -- the feature --------------------------------------------------------------------------------------------
def test_format_default_and_metadata_version_dependency() -> None:
    from strom.cluster.kraft.feature_updates import FeatureUpdate, update_features
    from strom.metadata.features import effective_feature_levels, metadata_version
    from strom.protocol.errors import KafkaError

    # kafka-storage format's defaults: on from 4.1-IV0, off before
    def default(release: str) -> int:
        levels = effective_feature_levels(metadata_version(release), {}, dynamic_quorum=False)
        return levels["eligible.leader.replicas.version"]

    assert (default("4.4"), default("4.1"), default("4.0")) == (1, 1, 0)
    state = MetadataState()
    apply(state, [feature("metadata.version", 22)])
    with pytest.raises(KafkaError, match=r"depends on metadata\.version level 23"):
        update_features(state, 1, [FeatureUpdate("eligible.leader.replicas.version", 1)])
    apply(state, [feature("metadata.version", 23)])
    records = update_features(state, 1, [FeatureUpdate("eligible.leader.replicas.version", 1)])
    assert [rec.message for rec in records] == [
        r.FeatureLevelRecord(name="eligible.leader.replicas.version", feature_level=1)
    ]


def test_preferred_election_through_the_builder(rules: ControllerRules) -> None:
    fence(rules, 1)
    assert partition(rules).leader == 2
    assert rules.elect_leaders([("t", 0)], 0).result == {("t", 0): ErrorCode.preferred_leader_not_available}
    apply(rules.state, rules.unfence(rules.state.brokers[1]))
    assert rules.elect_leaders([("t", 0)], 0).result == {("t", 0): ErrorCode.preferred_leader_not_available}
    topic_id = rules.state.topic_ids["t"]
    p = partition(rules)
    members = [IsrMember(b, rules.state.brokers[b].epoch) for b in (2, 3, 1)]
    _code, _after, record = rules.alter_partition(
        2, topic_id, 0, p.leader_epoch, p.partition_epoch, members, check_member_epochs=True
    )
    assert record is not None
    apply(rules.state, [record])
    change = rules.elect_leaders([("t", 0)], 0)
    assert change.result == {("t", 0): ErrorCode.none}
    apply(rules.state, change.records)
    assert partition(rules).leader == 1
    assert rules.elect_leaders([("t", 0)], 0).result == {("t", 0): ErrorCode.election_not_needed}
