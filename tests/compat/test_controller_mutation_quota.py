"""Controller mutation quotas (KIP-599) through kafka-configs and kafka-python's admin client, against
Strom and Apache Kafka 4.4 (--kafka-reference): with controller_mutation_rate=1 on a client id (a burst
of 11 partitions at the default controller.quota.window.num), a CreateTopics of 12 partitions goes
through, the next topic of that client is refused with THROTTLING_QUOTA_EXCEEDED and a throttle time,
an older CreateTopics (v5) is not refused but throttled, a DeleteTopics (v6) is refused, another client
is not affected, and once the bucket has refilled the refused topic is created."""

from __future__ import annotations

import asyncio
import importlib
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from compat_support import JavaTools
from kafka.admin import KafkaAdminClient
from kafka.errors import NodeNotReadyError
from kio.schema.delete_topics.v6.request import DeleteTopicsRequest, DeleteTopicState
from kio.static.primitive import i16, i32, i32Timedelta

from strom.client.connection import BrokerConnection

pytestmark = pytest.mark.compat

THROTTLING_QUOTA_EXCEEDED = 89
TIMEOUT = i32Timedelta.parse(timedelta(seconds=30))


@pytest.fixture
def limited_client(java_tools: JavaTools) -> Iterator[str]:
    client_id = f"mutations-{uuid.uuid4().hex[:8]}"
    entity = ("--entity-type", "clients", "--entity-name", client_id)
    configs = "org.apache.kafka.tools.ConfigCommand"
    java_tools.run(configs, "--bootstrap-server", java_tools.bootstrap, "--alter",
                   "--add-config", "controller_mutation_rate=1", *entity)
    deadline = time.monotonic() + 15
    while "controller_mutation_rate=1.0" not in java_tools.run(
            configs, "--bootstrap-server", java_tools.bootstrap, "--describe", *entity).stdout:
        assert time.monotonic() < deadline, "the quota never showed in kafka-configs --describe"
        time.sleep(0.2)
    yield client_id
    java_tools.run(configs, "--bootstrap-server", java_tools.bootstrap, "--alter",
                   "--delete-config", "controller_mutation_rate", *entity)


def _create(admin: KafkaAdminClient, name: str, partitions: int) -> tuple[int, str | None]:
    """(error code, error message) of one CreateTopics through kafka-python (v7 against both brokers)."""
    response = admin.create_topics({name: {"num_partitions": partitions, "replication_factor": 1}},
                                   raise_errors=False)
    (topic,) = response["topics"]
    return topic["error_code"], topic["error_message"]


def _send(broker: str, client_id: str, request: object) -> object:
    async def send() -> object:
        host, port = broker.rsplit(":", 1)
        conn = await BrokerConnection.open(host, int(port), client_id=client_id)
        try:
            return await conn.request(request)
        finally:
            await conn.close()

    return asyncio.run(send())


def _create_raw(broker: str, client_id: str, name: str, version: int) -> tuple[int, int]:
    """(error code, throttle_time_ms) of one CreateTopics of `version` on the wire (kafka-python does not
    show the throttle time)."""
    module = importlib.import_module(f"kio.schema.create_topics.v{version}.request")
    topic = module.CreatableTopic(name=name, num_partitions=i32(1), replication_factor=i16(1),
                                  assignments=(), configs=())
    request = module.CreateTopicsRequest(topics=(topic,), timeout=TIMEOUT, validate_only=False)
    response: Any = _send(broker, client_id, request)
    return int(response.topics[0].error_code), int(response.throttle_time.total_seconds() * 1000)


def _delete_raw(broker: str, client_id: str, name: str) -> int:
    request = DeleteTopicsRequest(topics=(DeleteTopicState(name=name, topic_id=None),), timeout=TIMEOUT)
    response: Any = _send(broker, client_id, request)
    return int(response.responses[0].error_code)


def test_partition_creation_rate_is_enforced(broker: str, limited_client: str) -> None:
    stem = uuid.uuid4().hex[:8]
    limited = KafkaAdminClient(bootstrap_servers=broker, client_id=limited_client)
    other = KafkaAdminClient(bootstrap_servers=broker, client_id=f"free-{stem}")
    created: list[str] = []
    try:
        assert _create(limited, f"burst-{stem}", 12) == (0, None)
        created.append(f"burst-{stem}")
        # the bucket (11 tokens) is now below zero: the next topic is refused, not created
        assert _create(limited, f"next-{stem}", 1) == (THROTTLING_QUOTA_EXCEEDED, None)
        # the same on the wire, with the throttle time: about a second until the bucket is back at zero
        code, throttle = _create_raw(broker, limited_client, f"next-{stem}", 7)
        assert code == THROTTLING_QUOTA_EXCEEDED and 0 < throttle <= 1500, (code, throttle)
        # v5 is below the strict versions: created all the same, the response only throttles
        code, throttle = _create_raw(broker, limited_client, f"old-{stem}", 5)
        assert code == 0 and throttle > 0, (code, throttle)
        created.append(f"old-{stem}")
        # deleting spends partitions too (DeleteTopics v5+ is strict)
        assert _delete_raw(broker, limited_client, f"old-{stem}") == THROTTLING_QUOTA_EXCEEDED
        assert _create(other, f"free-{stem}", 3) == (0, None)
        created.append(f"free-{stem}")
        deadline = time.monotonic() + 15
        while True:
            try:
                code = _create(limited, f"next-{stem}", 1)[0]
            except NodeNotReadyError:  # kafka-python holds its requests back for the throttle time itself
                code = THROTTLING_QUOTA_EXCEEDED
            if code != THROTTLING_QUOTA_EXCEEDED:
                break
            assert time.monotonic() < deadline, "the bucket never refilled"
            time.sleep(0.2)
        assert code == 0
        created.append(f"next-{stem}")
    finally:
        existing = set(other.list_topics())
        other.delete_topics([t for t in created if t in existing])
        limited.close()
        other.close()
