"""A librdkafka consumer of the consumer rebalance protocol (KIP-848, `group.protocol=consumer`) with a
regex subscription: the broker resolves the regex against every topic, internal ones included, as Kafka's
group coordinator does, so `^(<topic>|__consumer_offsets)$` is assigned both (franz-go's
Test848RegexBrokerResolves, scripts/peer-suites). Strom left internal topics out of the resolution."""

from __future__ import annotations

import time
import uuid

import pytest
from compat_support import TopicMaker
from confluent_kafka import Consumer, TopicPartition

pytestmark = pytest.mark.compat


def test_regex_subscription_is_assigned_internal_topics(broker: str, make_topic: TopicMaker) -> None:
    topic = make_topic(name=f"regex-orders-{uuid.uuid4().hex[:8]}")
    # a classic consumer's committed() makes sure __consumer_offsets exists
    probe = Consumer({"bootstrap.servers": broker, "group.id": f"probe-{uuid.uuid4().hex[:8]}"})
    try:
        probe.committed([TopicPartition(topic, 0)], timeout=10)
    finally:
        probe.close()
    consumer = Consumer(
        {
            "bootstrap.servers": broker,
            "group.id": f"regex-{uuid.uuid4().hex[:8]}",
            "group.protocol": "consumer",
            "auto.offset.reset": "earliest",
        }
    )
    try:
        consumer.subscribe([f"^({topic}|__consumer_offsets)$"])
        deadline = time.monotonic() + 20
        topics: set[str] = set()
        while time.monotonic() < deadline and topics != {topic, "__consumer_offsets"}:
            consumer.poll(0.2)
            topics = {tp.topic for tp in consumer.assignment()}
        assert topics == {topic, "__consumer_offsets"}
    finally:
        consumer.close()
