"""A read_committed librdkafka consumer asks OffsetFetch for stable offsets (KIP-447 require_stable): while
a transaction's offsets for its group are pending (sent with send_offsets_to_transaction, the transaction
not yet committed), the broker answers UNSTABLE_OFFSET_COMMIT, which librdkafka retries, instead of the
older committed offset; once the transaction commits, the new offset is there.

Answering the older offset let a partition's new owner in a transactional consume-transform-produce group
read again what the previous owner's committed transaction had consumed (franz-go's TestTxnEtl: "saw
double offset", scripts/peer-suites)."""

from __future__ import annotations

import uuid

import pytest
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition

pytestmark = pytest.mark.compat


def _committed(broker: str, group: str, topic: str, timeout: float) -> int:
    consumer = Consumer(
        {"bootstrap.servers": broker, "group.id": group, "isolation.level": "read_committed"}
    )
    try:
        (tp,) = consumer.committed([TopicPartition(topic, 0)], timeout=timeout)
        return int(tp.offset)
    finally:
        consumer.close()


def test_pending_transactional_offsets_are_unstable_until_the_commit(broker: str, topic: str) -> None:
    group = f"txn-offsets-{uuid.uuid4().hex[:8]}"
    member = Consumer({"bootstrap.servers": broker, "group.id": group})
    producer = Producer({"bootstrap.servers": broker, "transactional.id": f"tx-{group}"})
    try:
        producer.init_transactions(30)
        producer.begin_transaction()
        producer.produce(topic, value=b"out", partition=0)
        producer.send_offsets_to_transaction(
            [TopicPartition(topic, 0, 42)], member.consumer_group_metadata(), 30
        )
        with pytest.raises(KafkaException):
            # librdkafka retries UNSTABLE_OFFSET_COMMIT until the timeout; the older offset (none) is
            # never answered
            offset = _committed(broker, group, topic, timeout=3)
            pytest.fail(f"OffsetFetch(require_stable) answered {offset} while the offsets were pending")
        producer.commit_transaction(30)
        assert _committed(broker, group, topic, timeout=10) == 42
    finally:
        member.close()
