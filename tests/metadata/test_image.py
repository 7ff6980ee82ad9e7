"""Replaying metadata records into the state and the published MetadataImage (Kafka's MetadataDelta)."""

from __future__ import annotations

import uuid

from strom.metadata import records as r
from strom.metadata.image import MetadataState
from strom.metadata.serde import ApiMessageAndVersion

TOPIC_ID = uuid.UUID(int=7)


def rec(message: object, version: int = 0) -> ApiMessageAndVersion:
    return ApiMessageAndVersion(message, version)  # type: ignore[arg-type]


def broker(broker_id: int, epoch: int) -> ApiMessageAndVersion:
    return rec(
        r.RegisterBrokerRecord(
            broker_id=broker_id,
            incarnation_id=uuid.UUID(int=broker_id),
            broker_epoch=epoch,
            end_points=(
                r.RegisterBrokerRecord.BrokerEndpoint(name="PLAINTEXT", host="h", port=9000 + broker_id),
            ),
            fenced=True,
        ),
        4,
    )


def replay(state: MetadataState, *records: ApiMessageAndVersion) -> None:
    for record in records:
        state.replay(record, state.last_offset + 1)


def test_topic_partitions_changes_and_removal() -> None:
    s = MetadataState()
    replay(
        s,
        rec(r.TopicRecord(name="t", topic_id=TOPIC_ID)),
        rec(
            r.PartitionRecord(
                partition_id=0,
                topic_id=TOPIC_ID,
                replicas=(1, 2),
                isr=(1, 2),
                leader=1,
                leader_epoch=0,
                partition_epoch=0,
            ),
            2,
        ),
        rec(r.ConfigRecord(resource_type=2, resource_name="t", name="retention.ms", value="1000")),
    )
    image = s.image("c")
    assert image.topics["t"].partitions[0].isr == (1, 2)
    assert image.topics["t"].configs == {"retention.ms": "1000"}
    # an ISR-only change keeps the leader epoch; a leader change bumps it; both bump the partition epoch
    replay(s, rec(r.PartitionChangeRecord(partition_id=0, topic_id=TOPIC_ID, isr=(1,)), 2))
    p = s.image("c").topics["t"].partitions[0]
    assert (p.leader, p.leader_epoch, p.partition_epoch, p.isr) == (1, 0, 1, (1,))
    replay(s, rec(r.PartitionChangeRecord(partition_id=0, topic_id=TOPIC_ID, leader=2, isr=(2,)), 2))
    p = s.image("c").topics["t"].partitions[0]
    assert (p.leader, p.leader_epoch, p.partition_epoch) == (2, 1, 2)
    replay(s, rec(r.RemoveTopicRecord(topic_id=TOPIC_ID)))
    assert s.image("c").topics == {} and s.configs == {}


def test_brokers_fence_unfence_and_epochs() -> None:
    s = MetadataState()
    replay(s, broker(1, 10), broker(2, 11))
    assert s.image("c").brokers == {}  # registered brokers start fenced; the image shows unfenced ones
    replay(s, rec(r.BrokerRegistrationChangeRecord(broker_id=1, broker_epoch=10, fenced=-1)))
    assert list(s.image("c").brokers) == [1]
    # a change naming an old epoch is ignored
    replay(s, rec(r.BrokerRegistrationChangeRecord(broker_id=1, broker_epoch=9, fenced=1)))
    assert list(s.image("c").brokers) == [1]
    replay(s, rec(r.UnfenceBrokerRecord(id=2, epoch=11)), rec(r.FenceBrokerRecord(id=1, epoch=10)))
    assert list(s.image("c").brokers) == [2]
    replay(s, rec(r.UnregisterBrokerRecord(broker_id=2, broker_epoch=11)))
    assert 2 not in s.brokers


def test_transactions_apply_at_their_end_and_aborts_drop() -> None:
    s = MetadataState()
    replay(s, rec(r.BeginTransactionRecord(name="x")), rec(r.TopicRecord(name="t", topic_id=TOPIC_ID)))
    assert s.image("c").topics == {}
    replay(s, rec(r.EndTransactionRecord()))
    assert "t" in s.image("c").topics
    replay(s, rec(r.BeginTransactionRecord(name="y")), rec(r.RemoveTopicRecord(topic_id=TOPIC_ID)))
    replay(s, rec(r.AbortTransactionRecord(reason="no")))
    assert "t" in s.image("c").topics


def test_features_producer_ids_broker_configs_and_snapshot() -> None:
    s = MetadataState()
    replay(
        s,
        rec(r.FeatureLevelRecord(name="metadata.version", feature_level=33)),
        rec(r.ProducerIdsRecord(broker_id=1, broker_epoch=3, next_producer_id=2000)),
        rec(r.ConfigRecord(resource_type=4, resource_name="", name="log.retention.ms", value="5")),
        rec(r.ConfigRecord(resource_type=4, resource_name="1", name="log.cleaner.threads", value="2")),
        rec(r.NoOpRecord()),
    )
    assert s.metadata_version == 33 and s.next_producer_id == 2000
    image = s.image("c")
    assert image.default_broker_configs == {"log.retention.ms": "5"}
    assert image.broker_configs == {1: {"log.cleaner.threads": "2"}}
    s.load_snapshot([rec(r.TopicRecord(name="u", topic_id=TOPIC_ID))], end_offset=50)
    assert list(s.image("c").topics) == ["u"] and s.last_offset == 49 and s.metadata_version == 0


def test_unchanged_topics_are_shared_between_images() -> None:
    s = MetadataState()
    replay(s, rec(r.TopicRecord(name="t", topic_id=TOPIC_ID)))
    first = s.image("c")
    replay(s, rec(r.TopicRecord(name="u", topic_id=uuid.UUID(int=8))))
    assert s.image("c").topics["t"] is first.topics["t"]
