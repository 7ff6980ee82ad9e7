"""The newest versions of admin and group APIs, as Kafka 4.4 answers them: each request is sent at the
new version over the wire and, where one of Kafka's own tools sends that version, through the tool.
The same tests run against Apache Kafka 4.4 (`--kafka-reference`), which is what the expectations are
taken from.

- DescribeGroups v6 (KIP-1043): an unknown group answers GROUP_ID_NOT_FOUND with a message.
- FindCoordinator v6 (KIP-932): key type 2 finds the share coordinator of a "group:topicId:partition"
  key and refuses any other key with INVALID_REQUEST; groups and transactions are found as before.
- ListTransactions v2 (KIP-1152): a transactional-id pattern filters the listing; a pattern that does not
  compile answers INVALID_REGULAR_EXPRESSION.
- DescribeLogDirs v5 (KIP-1066): directories report is_cordoned.
- AlterPartitionReassignments v1 (KIP-860): the flag is echoed; a same-size target is accepted when
  changing the replication factor is not allowed.
- ApiVersions v5: the client's cluster id and node id are checked (REBOOTSTRAP_REQUIRED on a mismatch,
  INVALID_REQUEST for half an identity); kio has no v5 schema, so these go over a raw socket.
- DeleteGroups v3: Kafka's kafka-consumer-groups --delete sends it.
- DescribeTopicPartitions v0 (KIP-966): sorted topics, partitions paged by a cursor; Kafka's
  kafka-topics --describe uses it (--partition-size-limit-per-response pages it).
- ListConfigResources v0-1 (KIP-714, KIP-1142): topics and brokers by type; an unknown type answers
  UNSUPPORTED_VERSION.
"""

from __future__ import annotations

import asyncio
import base64
import datetime
import socket
import struct
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from compat_support import JavaTools, ToolFailed, TopicMaker
from confluent_kafka import Consumer, Producer, TopicPartition
from kio.schema.alter_partition_reassignments.v1 import request as apr
from kio.schema.describe_groups.v6.request import DescribeGroupsRequest
from kio.schema.describe_log_dirs.v5.request import DescribeLogDirsRequest
from kio.schema.describe_topic_partitions.v0 import request as dtp
from kio.schema.find_coordinator.v6.request import FindCoordinatorRequest
from kio.schema.list_config_resources.v1.request import ListConfigResourcesRequest
from kio.schema.list_transactions.v2.request import ListTransactionsRequest
from kio.schema.metadata.v12.request import MetadataRequest
from kio.static.primitive import i8, i32, i32Timedelta, i64

from strom.client.connection import BrokerConnection
from strom.protocol.errors import ErrorCode

pytestmark = pytest.mark.compat

_RETRIABLE = {
    ErrorCode.not_coordinator,
    ErrorCode.coordinator_not_available,
    ErrorCode.coordinator_load_in_progress,
}


def _call(broker: str, request: Any) -> Any:
    async def go() -> Any:
        host, port = broker.rsplit(":", 1)
        conn = await BrokerConnection.open(host, int(port))
        try:
            return await conn.request(request)
        finally:
            await conn.close()

    return asyncio.run(go())


def _until(call: Callable[[], Any], error_of: Callable[[Any], int], timeout: float = 30.0) -> Any:
    """Repeat `call` while it answers a coordinator-not-ready error (the internal topic is being made)."""
    deadline = time.monotonic() + timeout
    while True:
        response = call()
        if error_of(response) not in _RETRIABLE or time.monotonic() > deadline:
            return response
        time.sleep(0.2)


def test_describe_groups_v6_unknown_group(broker: str, java_tools: JavaTools) -> None:
    group = f"no-such-group-{uuid.uuid4().hex[:8]}"
    # as clients do: find the coordinator first (which creates __consumer_offsets), then ask it
    found = FindCoordinatorRequest(key_type=i8(0), coordinator_keys=(group,))
    _until(lambda: _call(broker, found), lambda r: r.coordinators[0].error_code)
    response = _until(
        lambda: _call(broker, DescribeGroupsRequest(groups=(group,), include_authorized_operations=False)),
        lambda r: r.groups[0].error_code,
    )
    described = response.groups[0]
    assert described.error_code == ErrorCode.group_id_not_found
    assert described.error_message and group in described.error_message
    assert described.group_state == "Dead" and described.members == ()
    # Kafka's tool asks with the newest version it can and reports the group missing
    try:
        out = java_tools.run(
            "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand",
            "--bootstrap-server", broker, "--describe", "--group", group,
        )
        said = out.stdout + out.stderr
    except ToolFailed as exc:
        said = str(exc)
    # the v6 error reaches the tool as GroupIdNotFoundException with the broker's message
    assert f"GroupIdNotFoundException: Group {group} not found." in said


def test_find_coordinator_v6_key_types(broker: str) -> None:
    def find(key_type: int, key: str = "compat-g") -> Any:
        request = FindCoordinatorRequest(key_type=i8(key_type), coordinator_keys=(key,))
        return _until(lambda: _call(broker, request), lambda r: r.coordinators[0].error_code, 60)

    for key_type in (0, 1):
        found = find(key_type).coordinators[0]
        assert found.error_code == ErrorCode.none and found.node_id >= 0 and found.port > 0
    # a share coordinator key is "group:topicId:partition" (KIP-932); anything else is refused
    share = find(2).coordinators[0]
    assert share.error_code == ErrorCode.invalid_request and share.node_id == -1
    topic_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
    share = find(2, f"compat-share:{topic_id}:0").coordinators[0]
    assert share.error_code == ErrorCode.none and share.node_id >= 0 and share.port > 0


def _begin_transaction(broker: str, transactional_id: str, topic: str) -> Producer:
    producer = Producer({"bootstrap.servers": broker, "transactional.id": transactional_id})
    producer.init_transactions(30)
    producer.begin_transaction()
    producer.produce(topic, b"v")
    producer.flush(30)
    return producer


def test_list_transactions_v2_pattern(broker: str, topic: str) -> None:
    stem = f"pat-{uuid.uuid4().hex[:6]}"
    producers = [_begin_transaction(broker, f"{stem}-{name}", topic) for name in ("a1", "a2", "b1")]
    try:

        def listed(pattern: str) -> Any:
            return _call(
                broker,
                ListTransactionsRequest(
                    state_filters=(),
                    producer_id_filters=(),
                    duration_filter=i64(-1),
                    transactional_id_pattern=pattern,
                ),
            )

        response = listed(f"{stem}-a.*")
        assert response.error_code == ErrorCode.none
        assert sorted(t.transactional_id for t in response.transaction_states) == [f"{stem}-a1", f"{stem}-a2"]
        # the whole id must match, not a part of it
        assert listed(f"{stem}-a").transaction_states == ()
        assert listed("[").error_code == ErrorCode.invalid_regular_expression
    finally:
        for producer in producers:
            producer.abort_transaction(30)


def test_describe_log_dirs_v5_cordoned(broker: str, topic: str) -> None:
    response = _call(broker, DescribeLogDirsRequest(topics=None))
    assert response.error_code == ErrorCode.none and response.results
    assert all(result.is_cordoned is False for result in response.results)
    assert any(t.name == topic for result in response.results for t in result.topics)


def test_alter_partition_reassignments_v1_same_size(broker: str, make_topic: TopicMaker) -> None:
    topic = make_topic(partitions=1)
    timeout = i32Timedelta.parse(datetime.timedelta(seconds=30))
    node = _call(broker, FindCoordinatorRequest(key_type=i8(0), coordinator_keys=("x",)))
    node_id = int(node.coordinators[0].node_id)

    def reassign(allow: bool) -> Any:
        return _call(
            broker,
            apr.AlterPartitionReassignmentsRequest(
                timeout=timeout,
                allow_replication_factor_change=allow,
                topics=(
                    apr.ReassignableTopic(
                        name=topic,
                        partitions=(
                            apr.ReassignablePartition(partition_index=i32(0), replicas=(i32(node_id),)),
                        ),
                    ),
                ),
            ),
        )

    for allow in (False, True):
        response = reassign(allow)
        assert response.allow_replication_factor_change is allow
        assert response.error_code == ErrorCode.none
        assert [(int(p.partition_index), p.error_code) for t in response.responses for p in t.partitions] == [
            (0, ErrorCode.none)
        ]



def _compact(text: str | None) -> bytes:
    if text is None:
        return b"\x00"
    data = text.encode()
    return bytes([len(data) + 1]) + data


def _api_versions_v5(broker: str, cluster_id: str | None, node_id: int) -> tuple[int, int]:
    """(error code, number of APIs listed) of a raw ApiVersions v5 exchange."""
    header = struct.pack(">hhih", 18, 5, 11, 6) + b"compat" + b"\x00"
    body = _compact("compat") + _compact("1.0") + _compact(cluster_id) + struct.pack(">i", node_id) + b"\x00"
    frame = header + body
    host, port = broker.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(struct.pack(">i", len(frame)) + frame)
        (size,) = struct.unpack(">i", sock.recv(4, socket.MSG_WAITALL))
        data = sock.recv(size, socket.MSG_WAITALL)
    correlation, error = struct.unpack_from(">ih", data)
    assert correlation == 11
    return error, data[6] - 1  # compact array length of api_keys


def test_api_versions_v5_identity(broker: str) -> None:
    request = MetadataRequest(
        topics=(), allow_auto_topic_creation=False, include_topic_authorized_operations=False
    )
    metadata = _call(broker, request)
    cluster_id = metadata.cluster_id
    node_id = int(metadata.brokers[0].node_id)
    other_cluster = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
    error, listed = _api_versions_v5(broker, None, -1)
    assert error == ErrorCode.none and listed > 30
    error, listed = _api_versions_v5(broker, cluster_id, node_id)
    assert error == ErrorCode.none and listed > 30
    assert _api_versions_v5(broker, cluster_id, node_id + 7) == (ErrorCode.rebootstrap_required, 0)
    assert _api_versions_v5(broker, other_cluster, node_id) == (ErrorCode.rebootstrap_required, 0)
    assert _api_versions_v5(broker, cluster_id, -1) == (ErrorCode.invalid_request, 0)
    assert _api_versions_v5(broker, None, node_id) == (ErrorCode.invalid_request, 0)


def test_delete_groups_v3_through_kafka_tool(broker: str, java_tools: JavaTools, topic: str) -> None:
    group = f"deletable-{uuid.uuid4().hex[:8]}"
    consumer = Consumer({"bootstrap.servers": broker, "group.id": group, "enable.auto.commit": False})
    try:
        consumer.commit(offsets=[TopicPartition(topic, 0, 0)], asynchronous=False)
    finally:
        consumer.close()
    tool = "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand"
    out = java_tools.run(tool, "--bootstrap-server", broker, "--delete", "--group", group)
    assert f"Deletion of requested consumer groups ('{group}') was successful." in out.stdout
    try:
        again = java_tools.run(tool, "--bootstrap-server", broker, "--delete", "--group", group)
        said = again.stdout + again.stderr
    except ToolFailed as exc:
        said = str(exc)
    assert "GroupIdNotFoundException" in said or "does not exist" in said, said


def _describe_partitions(broker: str, names: list[str], limit: int, cursor: tuple[str, int] | None) -> Any:
    return _call(
        broker,
        dtp.DescribeTopicPartitionsRequest(
            topics=tuple(dtp.TopicRequest(name=n) for n in names),
            response_partition_limit=i32(limit),
            cursor=(
                None if cursor is None else dtp.Cursor(topic_name=cursor[0], partition_index=i32(cursor[1]))
            ),
        ),
    )


def _pages(response: Any) -> list[tuple[str, int, list[int]]]:
    return [
        (t.name, int(t.error_code), [int(p.partition_index) for p in t.partitions]) for t in response.topics
    ]


def test_describe_topic_partitions_pages(broker: str, make_topic: TopicMaker, java_tools: JavaTools) -> None:
    stem = f"dtp-{uuid.uuid4().hex[:6]}"
    first, second, missing = f"{stem}-a", f"{stem}-b", f"{stem}-c"
    make_topic(name=first, partitions=3)
    make_topic(name=second, partitions=2)
    whole = _describe_partitions(broker, [missing, second, first], 2000, None)
    assert _pages(whole) == [
        (first, 0, [0, 1, 2]),
        (second, 0, [0, 1]),
        (missing, ErrorCode.unknown_topic_or_partition, []),
    ]
    assert whole.next_cursor is None
    assert whole.topics[0].topic_authorized_operations == 3576  # every topic operation, no authorizer
    assert whole.topics[2].topic_id in (None, uuid.UUID(int=0))  # the zero id, which kio reads as None
    page = _describe_partitions(broker, [first, second], 2, None)
    assert _pages(page) == [(first, 0, [0, 1])]
    assert (page.next_cursor.topic_name, int(page.next_cursor.partition_index)) == (first, 2)
    page = _describe_partitions(broker, [first, second], 2, (first, 2))
    assert _pages(page) == [(first, 0, [2]), (second, 0, [0])]
    assert (page.next_cursor.topic_name, int(page.next_cursor.partition_index)) == (second, 1)
    assert _pages(_describe_partitions(broker, [first, second], 0, None)) == [(first, 0, [0])]
    stray = _describe_partitions(broker, [first, second], 2000, (missing, 0))
    assert _pages(stray) == [(first, ErrorCode.invalid_request, []), (second, ErrorCode.invalid_request, [])]
    # Kafka's tool pages through it one partition at a time and still lists every partition
    out = java_tools.topics("--describe", "--topic", first, "--partition-size-limit-per-response", "1").stdout
    assert [line.split("Partition:")[1].split()[0] for line in out.splitlines() if "Partition:" in line] == [
        "0", "1", "2"
    ]


def test_list_config_resources(broker: str, topic: str) -> None:
    def listed(*types: int) -> Any:
        return _call(broker, ListConfigResourcesRequest(resource_types=tuple(i8(t) for t in types)))

    topics = listed(2)
    assert topics.error_code == ErrorCode.none
    assert (topic, 2) in {(r.resource_name, int(r.resource_type)) for r in topics.config_resources}
    assert {int(r.resource_type) for r in topics.config_resources} == {2}
    brokers = listed(4)
    assert brokers.config_resources and all(r.resource_name.isdigit() for r in brokers.config_resources)
    assert listed(16).config_resources == ()
    everything = {(r.resource_name, int(r.resource_type)) for r in listed().config_resources}
    assert (topic, 2) in everything and any(kind == 4 for _, kind in everything)
    unknown = listed(99)
    assert unknown.error_code == ErrorCode.unsupported_version and unknown.config_resources == ()
