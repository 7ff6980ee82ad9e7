"""Fetch v13-v18 on the wire, as Kafka 4.4 answers them (run with `--kafka-reference` to check the
expectations against Apache Kafka itself): topics named by topic id (KIP-516) in requests and responses,
UNKNOWN_TOPIC_ID for an id the broker does not know, fetch sessions keyed by topic id
(FETCH_SESSION_TOPIC_ID_ERROR when a session and a request disagree on names vs ids), and a topic deleted
and re-created under the same name: the old id is unknown to a full fetch, and a session still holding
the old id and name finds a log of another id (INCONSISTENT_TOPIC_ID).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

import pytest
from compat_support import BrokerUnderTest, TopicMaker, admin_client, wait_for_topic
from confluent_kafka.admin import NewTopic
from kio.schema.fetch.v12 import request as fetch12
from kio.schema.metadata.v12.request import MetadataRequest, MetadataRequestTopic
from kio.static.primitive import i8, i32, i64
from wire_helpers import ms, produce_request

from strom.client.connection import BrokerConnection
from strom.protocol.errors import ErrorCode
from strom.protocol.record_batch import iter_batches
from strom.protocol.records import Record, build_batch
from strom.protocol.registry import request_type

pytestmark = pytest.mark.compat

NONE = ErrorCode.none
MAX_BYTES = 1 << 20


def fetch_request(
    version: int,
    topics: Mapping[uuid.UUID, Mapping[int, int]],
    *,
    session_id: int = 0,
    epoch: int = -1,
    forget: Mapping[uuid.UUID, list[int]] | None = None,
) -> Any:
    """Fetch `version` (13+) of `topics` (topic id -> partition -> fetch offset)."""
    cls = request_type(1, version)
    assert cls is not None
    module = __import__(cls.__module__, fromlist=["FetchTopic"])
    return cls(
        max_wait=ms(0),
        min_bytes=i32(0),
        max_bytes=i32(MAX_BYTES),
        isolation_level=i8(0),
        session_id=i32(session_id),
        session_epoch=i32(epoch),
        topics=tuple(
            module.FetchTopic(
                topic_id=topic_id,
                partitions=tuple(
                    module.FetchPartition(
                        partition=i32(p), fetch_offset=i64(offset), partition_max_bytes=i32(MAX_BYTES)
                    )
                    for p, offset in parts.items()
                ),
            )
            for topic_id, parts in topics.items()
        ),
        forgotten_topics_data=tuple(
            module.ForgottenTopic(topic_id=topic_id, partitions=tuple(i32(p) for p in parts))
            for topic_id, parts in (forget or {}).items()
        ),
        rack_id="",
        **({"replica_id": i32(-1)} if version < 15 else {}),
    )


def listed(resp: Any) -> list[tuple[uuid.UUID, int, int]]:
    """(topic id, partition, error) of every partition a response lists, in order."""
    return [
        (t.topic_id, int(p.partition_index), int(p.error_code)) for t in resp.responses for p in t.partitions
    ]


def base_offsets(resp: Any, topic_id: uuid.UUID, partition: int) -> list[int]:
    for t in resp.responses:
        for p in t.partitions:
            if t.topic_id == topic_id and p.partition_index == partition:
                return [h.base_offset for _, h in iter_batches(bytes(p.records or b""))]
    raise AssertionError(f"{topic_id}/{partition} not in the response")


@dataclass
class Wire:
    conn: BrokerConnection
    bootstrap: str

    async def topic_id(self, topic: str, *, not_id: uuid.UUID | None = None) -> uuid.UUID:
        """The topic's id from Metadata v12 (waiting, within a deadline, for one other than `not_id`)."""
        deadline = time.monotonic() + 30
        while True:
            resp = await self.conn.request(
                MetadataRequest(
                    topics=(MetadataRequestTopic(topic_id=None, name=topic),),
                    allow_auto_topic_creation=False,
                    include_topic_authorized_operations=False,
                )
            )
            found = resp.topics[0]
            if found.error_code == NONE and found.topic_id not in (None, not_id, uuid.UUID(int=0)):
                return found.topic_id
            assert time.monotonic() < deadline, f"no new topic id for {topic}: {found}"
            await asyncio.sleep(0.1)

    async def produce(self, topic: str, *values: str) -> None:
        for value in values:
            batch = build_batch([Record(0, 0, None, value.encode())])
            deadline = time.monotonic() + 15
            while True:
                resp = await self.conn.request(produce_request(topic, {0: batch}, acks=1))
                error = resp.responses[0].partition_responses[0].error_code
                if error not in (ErrorCode.not_leader_or_follower, ErrorCode.unknown_topic_or_partition):
                    break
                assert time.monotonic() < deadline, f"produce to {topic}: {error}"
                await asyncio.sleep(0.05)
            assert error == NONE

    async def fetch(self, version: int, topics: Mapping[uuid.UUID, Mapping[int, int]], **kw: Any) -> Any:
        return await self.conn.request(fetch_request(version, topics, **kw), timeout=30.0)

    async def fetch_until(
        self, version: int, topics: Mapping[uuid.UUID, Mapping[int, int]], errors: set[int], **kw: Any
    ) -> Any:
        """Sessionless fetches until every partition answers one of `errors` (a new topic's leader may
        take over a moment after Metadata shows it)."""
        deadline = time.monotonic() + 15
        while True:
            resp = await self.fetch(version, topics, **kw)
            if {e for _, _, e in listed(resp)} <= errors or time.monotonic() > deadline:
                return resp
            await asyncio.sleep(0.05)


@pytest.fixture
async def wire(broker_under_test: BrokerUnderTest) -> AsyncIterator[Wire]:
    host, port = broker_under_test.bootstrap.rsplit(":", 1)
    conn = await BrokerConnection.open(host, int(port))
    try:
        yield Wire(conn, broker_under_test.bootstrap)
    finally:
        await conn.close()


@pytest.mark.parametrize("version", range(13, 19))
async def test_fetch_by_topic_id(wire: Wire, make_topic: TopicMaker, version: int) -> None:
    """Records come back under the topic's id; an unknown id answers UNKNOWN_TOPIC_ID and an unknown
    partition of a known id UNKNOWN_TOPIC_OR_PARTITION, both after the partitions that were read."""
    topic = make_topic(partitions=1)
    topic_id = await wire.topic_id(topic)
    await wire.produce(topic, "a", "b", "c")
    stranger = uuid.uuid4()
    resp = await wire.fetch_until(
        version,
        {stranger: {0: 0}, topic_id: {5: 0, 0: 1}},
        {NONE, ErrorCode.unknown_topic_id, ErrorCode.unknown_topic_or_partition},
    )
    assert (resp.error_code, resp.session_id) == (NONE, 0)
    assert listed(resp) == [
        (topic_id, 0, NONE),
        (stranger, 0, ErrorCode.unknown_topic_id),
        (topic_id, 5, ErrorCode.unknown_topic_or_partition),
    ]
    assert base_offsets(resp, topic_id, 0) == [1, 2]
    part = resp.responses[0].partitions[0]
    assert (part.high_watermark, part.log_start_offset) == (3, 0)
    unknown = resp.responses[1].partitions[0]
    assert (unknown.high_watermark, unknown.log_start_offset, bytes(unknown.records or b"")) == (-1, -1, b"")
    if version >= 16:
        # no leader hints without a leadership error
        assert resp.node_endpoints == ()
        assert part.current_leader.leader_id == -1


async def test_session_by_topic_id(wire: Wire, make_topic: TopicMaker) -> None:
    """A v18 session caches its partitions by topic id: incremental requests list only news, and forgotten
    topics are named by id."""
    topic = make_topic(partitions=2)
    topic_id = await wire.topic_id(topic)
    await wire.fetch_until(18, {topic_id: {0: 0, 1: 0}}, {NONE})
    opened = await wire.fetch(18, {topic_id: {0: 0, 1: 0}}, epoch=0)
    assert opened.error_code == NONE and opened.session_id != 0
    sid = int(opened.session_id)
    assert listed(opened) == [(topic_id, 0, NONE), (topic_id, 1, NONE)]
    assert listed(await wire.fetch(18, {}, session_id=sid, epoch=1)) == []
    await wire.produce(topic, "x")
    news = await wire.fetch(18, {}, session_id=sid, epoch=2)
    assert listed(news) == [(topic_id, 0, NONE)] and base_offsets(news, topic_id, 0) == [0]
    forgot = await wire.fetch(18, {}, session_id=sid, epoch=3, forget={topic_id: [0]})
    assert (forgot.error_code, forgot.session_id, listed(forgot)) == (NONE, sid, [])
    await wire.produce(topic, "y")
    assert listed(await wire.fetch(18, {}, session_id=sid, epoch=4)) == []


async def test_session_and_request_must_agree_on_topic_ids(wire: Wire, make_topic: TopicMaker) -> None:
    """A session opened by names (v12) refuses an incremental v13+ request, and one opened by ids refuses
    a v12 request: FETCH_SESSION_TOPIC_ID_ERROR, session id 0, no partitions; the session stays usable."""
    topic = make_topic(partitions=1)
    topic_id = await wire.topic_id(topic)
    await wire.fetch_until(13, {topic_id: {0: 0}}, {NONE})

    def v12(session_id: int, epoch: int, parts: Mapping[int, int]) -> Any:
        return fetch12.FetchRequest(
            replica_id=i32(-1),
            max_wait=ms(0),
            min_bytes=i32(0),
            max_bytes=i32(MAX_BYTES),
            isolation_level=i8(0),
            session_id=i32(session_id),
            session_epoch=i32(epoch),
            topics=(
                fetch12.FetchTopic(
                    topic=topic,
                    partitions=tuple(
                        fetch12.FetchPartition(
                            partition=i32(p), fetch_offset=i64(o), partition_max_bytes=i32(MAX_BYTES)
                        )
                        for p, o in parts.items()
                    ),
                ),
            )
            if parts
            else (),
            forgotten_topics_data=(),
            rack_id="",
        )

    by_name = await wire.conn.request(v12(0, 0, {0: 0}))
    assert by_name.error_code == NONE and by_name.session_id != 0
    for version in (13, 18):
        refused = await wire.fetch(version, {}, session_id=int(by_name.session_id), epoch=1)
        assert (refused.error_code, refused.session_id, listed(refused)) == (
            ErrorCode.fetch_session_topic_id_error,
            0,
            [],
        )
    assert (await wire.conn.request(v12(int(by_name.session_id), 1, {}))).error_code == NONE

    by_id = await wire.fetch(18, {topic_id: {0: 0}}, epoch=0)
    assert by_id.error_code == NONE and by_id.session_id != 0
    refused = await wire.conn.request(v12(int(by_id.session_id), 1, {}))
    assert (refused.error_code, refused.session_id) == (ErrorCode.fetch_session_topic_id_error, 0)
    assert (await wire.fetch(17, {}, session_id=int(by_id.session_id), epoch=1)).error_code == NONE


async def test_topic_recreated_under_the_same_name(wire: Wire, topic_name: str) -> None:
    """Deleted and re-created, a topic has a new id. A full fetch of the old id answers UNKNOWN_TOPIC_ID;
    a session that holds the old id (and the name it had) answers INCONSISTENT_TOPIC_ID once the new topic
    exists (UNKNOWN_TOPIC_OR_PARTITION while there is none); the new id reads the new, empty log."""
    admin = admin_client(wire.bootstrap)

    def create() -> None:
        deadline = time.monotonic() + 30
        while True:
            try:
                admin.create_topics([NewTopic(topic_name, 1, 1)], operation_timeout=30)[topic_name].result(30)
                break
            except Exception as exc:  # Kafka may still be deleting the old topic
                if "already exists" not in str(exc).lower() or time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        wait_for_topic(admin, topic_name, 1)

    create()
    try:
        old_id = await wire.topic_id(topic_name)
        await wire.produce(topic_name, "a", "b")
        await wire.fetch_until(18, {old_id: {0: 0}}, {NONE})
        opened = await wire.fetch(18, {old_id: {0: 2}}, epoch=0)
        assert opened.error_code == NONE and opened.session_id != 0
        sid, epoch = int(opened.session_id), 1

        admin.delete_topics([topic_name], operation_timeout=30)[topic_name].result(30)
        create()
        new_id = await wire.topic_id(topic_name, not_id=old_id)
        assert new_id != old_id

        deadline = time.monotonic() + 30
        while True:
            resp = await wire.fetch(18, {}, session_id=sid, epoch=epoch)
            epoch += 1
            assert resp.error_code == NONE and resp.session_id == sid
            errors = [e for _, _, e in listed(resp)]
            if errors == [ErrorCode.inconsistent_topic_id] or time.monotonic() > deadline:
                break
            # the new topic's partition may not be served yet
            assert errors in ([], [ErrorCode.unknown_topic_or_partition], [ErrorCode.not_leader_or_follower])
            await asyncio.sleep(0.1)
        assert listed(resp) == [(old_id, 0, ErrorCode.inconsistent_topic_id)]

        stale = await wire.fetch(18, {old_id: {0: 0}})
        assert listed(stale) == [(old_id, 0, ErrorCode.unknown_topic_id)]
        fresh = await wire.fetch_until(18, {new_id: {0: 0}}, {NONE})
        assert listed(fresh) == [(new_id, 0, NONE)]
        assert fresh.responses[0].partitions[0].high_watermark == 0
        assert base_offsets(fresh, new_id, 0) == []
    finally:
        admin.delete_topics([topic_name], operation_timeout=30)
