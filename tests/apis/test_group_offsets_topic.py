"""What librdkafka's admin client sees of the group machinery: __consumer_offsets is created on the first
group use with offsets.topic.num.partitions (Kafka's default 50) and cleanup.policy=compact, and is an
internal topic in Metadata; ListGroups filters by state (KIP-518) when asked."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from confluent_kafka import Consumer, ConsumerGroupState, TopicCollection, TopicPartition
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic

from strom.config import BrokerConfig
from strom.testing.embedded import EmbeddedBroker

pytestmark = pytest.mark.compat


@pytest.fixture(scope="module")
def broker() -> Iterator[EmbeddedBroker]:
    # the embedded preset uses 5; the broker's own default (Kafka's 50) is what this module checks
    with EmbeddedBroker(
        {"offsets.topic.num.partitions": BrokerConfig({}).get("offsets.topic.num.partitions")}
    ) as b:
        yield b


def _consumer(broker: EmbeddedBroker, group: str) -> Consumer:
    return Consumer(
        {
            "bootstrap.servers": broker.bootstrap_servers,
            "group.id": group,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )


def test_offsets_topic_created_on_first_use_as_an_internal_compacted_topic(broker: EmbeddedBroker) -> None:
    admin = AdminClient({"bootstrap.servers": broker.bootstrap_servers})
    admin.create_topics([NewTopic("data", 1, 1)])["data"].result(10)
    assert "__consumer_offsets" not in admin.list_topics(timeout=10).topics

    consumer = _consumer(broker, "first-use")
    try:
        consumer.commit(offsets=[TopicPartition("data", 0, 0)], asynchronous=False)
    finally:
        consumer.close()

    topic = admin.list_topics("__consumer_offsets", timeout=10).topics["__consumer_offsets"]
    assert topic.error is None and len(topic.partitions) == 50
    (desc,) = admin.describe_topics(TopicCollection(["__consumer_offsets"])).values()
    assert desc.result(10).is_internal
    (configs,) = admin.describe_configs([ConfigResource("topic", "__consumer_offsets")]).values()
    assert configs.result(10)["cleanup.policy"].value == "compact"


def test_list_groups_state_filter(broker: EmbeddedBroker) -> None:
    admin = AdminClient({"bootstrap.servers": broker.bootstrap_servers})
    topic = f"t-{uuid.uuid4().hex[:8]}"
    admin.create_topics([NewTopic(topic, 1, 1)])[topic].result(10)
    empty, stable = f"empty-{uuid.uuid4().hex[:6]}", f"stable-{uuid.uuid4().hex[:6]}"
    committer = _consumer(broker, empty)
    committer.commit(offsets=[TopicPartition(topic, 0, 0)], asynchronous=False)
    committer.close()
    member = _consumer(broker, stable)
    member.subscribe([topic])
    try:
        for _ in range(200):
            member.poll(0.05)
            if member.assignment():
                break
        assert member.assignment()

        def listed(states: set[ConsumerGroupState]) -> set[str]:
            result = admin.list_consumer_groups(states=states, request_timeout=10).result(10)
            return {g.group_id for g in result.valid} & {empty, stable}

        assert listed({ConsumerGroupState.EMPTY}) == {empty}
        assert listed({ConsumerGroupState.STABLE}) == {stable}
        assert listed({ConsumerGroupState.EMPTY, ConsumerGroupState.STABLE}) == {empty, stable}
        assert listed({ConsumerGroupState.DEAD}) == set()
    finally:
        member.close()
