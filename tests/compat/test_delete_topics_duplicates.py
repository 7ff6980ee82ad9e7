"""DeleteTopics naming one topic twice, on the wire (v6), on Strom and on Kafka 4.4 (--kafka-reference):
the topic is not deleted and is answered once, INVALID_REQUEST "Duplicate topic name."; a topic named
once in the same request is deleted."""

from __future__ import annotations

import asyncio
import datetime
import time

import pytest
from compat_support import TopicMaker, admin_client
from kio.schema.delete_topics.v6.request import DeleteTopicsRequest, DeleteTopicState
from kio.static.primitive import i32Timedelta

from strom.client.connection import BrokerConnection
from strom.protocol.errors import ErrorCode

pytestmark = pytest.mark.compat


def _delete(broker: str, names: list[str]) -> list[tuple[str, int, str | None]]:
    request = DeleteTopicsRequest(
        topics=tuple(DeleteTopicState(name=n, topic_id=None) for n in names),
        timeout=i32Timedelta.parse(datetime.timedelta(seconds=30)),
    )

    async def go() -> list[tuple[str, int, str | None]]:
        host, port = broker.rsplit(":", 1)
        conn = await BrokerConnection.open(host, int(port))
        try:
            response = await conn.request(request)
        finally:
            await conn.close()
        return [(r.name, int(r.error_code), r.error_message) for r in response.responses]

    return asyncio.run(go())


def test_a_topic_named_twice_is_not_deleted(broker: str, make_topic: TopicMaker) -> None:
    twice, once = make_topic(partitions=1), make_topic(partitions=1)
    answers = _delete(broker, [twice, once, twice])
    refused = (twice, int(ErrorCode.invalid_request), "Duplicate topic name.")
    assert sorted(answers) == sorted([refused, (once, 0, None)]), answers
    admin = admin_client(broker)
    deadline = time.monotonic() + 15
    while once in admin.list_topics(timeout=10).topics:
        assert time.monotonic() < deadline, f"{once} was not deleted"
        time.sleep(0.2)
    assert twice in admin.list_topics(timeout=10).topics
