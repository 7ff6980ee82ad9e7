"""Envelope forwarding (KIP-590): the principal serde byte for byte as Kafka 4.4's
DefaultKafkaPrincipalBuilder writes it, a controller unwrapping Envelopes as a Kafka broker sends them, and a
KRaft broker forwarding the admin requests of its clients."""

from __future__ import annotations

import datetime
import uuid
from collections.abc import Iterator

import pytest
from kio.schema.create_topics.v7.request import CreatableTopic, CreateTopicsRequest
from kio.schema.create_topics.v7.response import CreateTopicsResponse
from kio.schema.envelope.v0.request import EnvelopeRequest
from kio.schema.metadata.v12.request import MetadataRequest
from kio.static.primitive import i16, i32, i32Timedelta

from strom.client.connection import BrokerConnection
from strom.cluster.kraft.forwarding import encode_request
from strom.protocol.errors import ErrorCode
from strom.protocol.frames import decode_request_header
from strom.protocol.registry import decode_with_kio
from strom.protocol.wire import skip_tagged_fields
from strom.security.principal import KafkaPrincipal
from strom.security.principal_serde import (
    PrincipalSerdeError,
    decode_client_address,
    deserialize_principal,
    encode_client_address,
    serialize_principal,
)
from strom.testing.kraft_node import EmbeddedKRaftNode

# DefaultKafkaPrincipalBuilder.serialize of Kafka 4.4 (kafka-clients), for these two principals
ALICE = bytes.fromhex("0000055573657206616c6963650000")
BOB_TOKEN = bytes.fromhex("000005557365720c434e3d626f622c4f3d45780100")


def test_principal_serde_is_kafkas() -> None:
    assert serialize_principal(KafkaPrincipal("User", "alice")) == ALICE
    assert serialize_principal(KafkaPrincipal("User", "CN=bob,O=Ex"), token_authenticated=True) == BOB_TOKEN
    assert deserialize_principal(ALICE) == KafkaPrincipal("User", "alice")
    assert deserialize_principal(BOB_TOKEN) == KafkaPrincipal("User", "CN=bob,O=Ex")
    for bad in (b"", b"\x00\x01" + ALICE[2:], ALICE[:6], b"\x00\x00\x00\x00"):
        with pytest.raises(PrincipalSerdeError):
            deserialize_principal(bad)


def test_client_addresses() -> None:
    assert encode_client_address("127.0.0.1") == b"\x7f\x00\x00\x01"
    assert decode_client_address(b"\x0a\x00\x00\x05") == "10.0.0.5"
    assert (
        len(encode_client_address("::1")) == 16
        and decode_client_address(encode_client_address("::1")) == "::1"
    )
    with pytest.raises(PrincipalSerdeError):
        decode_client_address(b"\x01\x02")


def _create_topics(name: str) -> CreateTopicsRequest:
    return CreateTopicsRequest(
        topics=(
            CreatableTopic(
                name=name, num_partitions=i32(2), replication_factor=i16(1), assignments=(), configs=()
            ),
        ),
        timeout=i32Timedelta.parse(datetime.timedelta(seconds=10)),
        validate_only=False,
    )


METADATA = MetadataRequest(
    topics=None, allow_auto_topic_creation=False, include_topic_authorized_operations=False
)


def test_forwarded_request_is_the_clients_request() -> None:
    request = _create_topics("orders")
    data = encode_request(request, 4242, "admin-1")
    header, at = decode_request_header(data, True)
    assert (header.api_key, header.api_version, header.correlation_id, header.client_id) == (
        19,
        7,
        4242,
        "admin-1",
    )
    assert decode_with_kio(CreateTopicsRequest, memoryview(data)[at:]) == request


@pytest.fixture(scope="module")
def node() -> Iterator[EmbeddedKRaftNode]:
    with EmbeddedKRaftNode() as node:
        yield node


def _envelope(inner: object, correlation_id: int, principal: bytes | None, address: bytes) -> EnvelopeRequest:
    return EnvelopeRequest(
        request_data=encode_request(inner, correlation_id, "kafka-broker"),
        request_principal=principal,
        client_host_address=address,
    )


def test_controller_serves_what_a_kafka_broker_forwards(node: EmbeddedKRaftNode) -> None:
    async def exchange() -> list[object]:
        host, port = node.bootstrap_controllers.split(":")
        conn = await BrokerConnection.open(host, int(port), negotiate=False)
        try:
            answers = []
            for envelope in (
                _envelope(_create_topics("forwarded"), 77, ALICE, b"\x0a\x00\x00\x05"),
                _envelope(_create_topics("forwarded"), 78, ALICE, b"\x0a\x00\x00\x05"),
                _envelope(_create_topics("other"), 79, b"\x00\x07junk", b"\x0a\x00\x00\x05"),
                _envelope(_create_topics("other"), 80, ALICE, b"\x01"),
                _envelope(METADATA, 81, ALICE, b"\x7f\0\0\1"),
            ):  # fmt: skip
                answers.append(await conn.request(envelope, timeout=10))
            return answers
        finally:
            await conn.close()

    created, again, bad_principal, bad_address, not_forwardable = node.call(exchange())
    assert created.error_code == ErrorCode.none
    data = bytes(created.response_data)
    assert int.from_bytes(data[:4], "big") == 77
    response = decode_with_kio(CreateTopicsResponse, memoryview(data)[skip_tagged_fields(data, 4) :])
    assert [(t.name, t.error_code, t.num_partitions) for t in response.topics] == [("forwarded", 0, 2)]
    assert isinstance(response.topics[0].topic_id, uuid.UUID) and response.topics[0].topic_id.int
    data = bytes(again.response_data)
    response = decode_with_kio(CreateTopicsResponse, memoryview(data)[skip_tagged_fields(data, 4) :])
    assert response.topics[0].error_code == ErrorCode.topic_already_exists
    assert bad_principal.error_code == ErrorCode.principal_deserialization_failure
    assert bad_principal.response_data is None
    assert bad_address.error_code == ErrorCode.invalid_request
    assert not_forwardable.error_code == ErrorCode.invalid_request


def test_broker_forwards_admin_requests_of_its_clients(node: EmbeddedKRaftNode) -> None:
    confluent_kafka = pytest.importorskip("confluent_kafka.admin")
    admin = confluent_kafka.AdminClient({"bootstrap.servers": node.bootstrap_servers})
    for future in admin.create_topics([confluent_kafka.NewTopic("through-broker", 3, 1)]).values():
        future.result(15)
    assert len(admin.list_topics(timeout=10).topics["through-broker"].partitions) == 3
    with pytest.raises(Exception, match="TOPIC_ALREADY_EXISTS"):
        for future in admin.create_topics([confluent_kafka.NewTopic("through-broker", 3, 1)]).values():
            future.result(15)
    for future in admin.create_partitions([confluent_kafka.NewPartitions("through-broker", 5)]).values():
        future.result(15)
    assert len(admin.list_topics(timeout=10).topics["through-broker"].partitions) == 5
    for future in admin.delete_topics(["through-broker"]).values():
        future.result(15)
    assert "through-broker" not in admin.list_topics(timeout=10).topics


def test_describe_quorum_through_a_broker(node: EmbeddedKRaftNode) -> None:
    from tests.metadata.kafka_jars import kafka_run

    proc = kafka_run(
        "org.apache.kafka.tools.MetadataQuorumCommand",
        "--bootstrap-server",
        node.bootstrap_servers,
        "describe",
        "--status",
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    status = dict(line.split(":", 1) for line in proc.stdout.splitlines() if ":" in line)
    assert status["LeaderId"].strip() == "1"
    assert status["ClusterId"].strip() == "MkU3OEVBNTcwNTJENDM2Qg"
    assert "1" in status["CurrentVoters"]


def test_elect_leaders_through_a_broker(node: EmbeddedKRaftNode) -> None:
    confluent_kafka = pytest.importorskip("confluent_kafka")
    admin_mod = pytest.importorskip("confluent_kafka.admin")
    admin = admin_mod.AdminClient({"bootstrap.servers": node.bootstrap_servers})
    for future in admin.create_topics([admin_mod.NewTopic("elect", 1, 1)]).values():
        future.result(15)
    partition = confluent_kafka.TopicPartition("elect", 0)
    results = admin.elect_leaders(confluent_kafka.ElectionType.PREFERRED, [partition]).result(15)
    assert [e.code() if e else 0 for e in results.values()] == [ErrorCode.election_not_needed]


def test_a_broker_refuses_another_brokers_config_resource_and_forwards_the_rest(
    node: EmbeddedKRaftNode,
) -> None:
    """As Kafka's broker preprocesses (Incremental)AlterConfigs: a BROKER resource naming another broker is
    INVALID_REQUEST from the broker itself, its own id and the cluster default go to the controller."""
    from kio.schema.incremental_alter_configs.v1.request import (
        AlterableConfig,
        AlterConfigsResource,
        IncrementalAlterConfigsRequest,
    )
    from kio.static.primitive import i8

    def resource(name: str) -> AlterConfigsResource:
        config = AlterableConfig(name="message.max.bytes", config_operation=i8(0), value="2000000")
        return AlterConfigsResource(resource_type=i8(4), resource_name=name, configs=(config,))

    request = IncrementalAlterConfigsRequest(
        resources=(resource("7"), resource("1"), resource("x"), resource("")), validate_only=True
    )

    async def exchange() -> object:
        host, port = node.bootstrap_servers.split(":")
        conn = await BrokerConnection.open(host, int(port))
        try:
            return await conn.request(request, timeout=10)
        finally:
            await conn.close()

    response = node.call(exchange())
    assert [(r.resource_name, r.error_code, r.error_message) for r in response.responses] == [  # type: ignore[attr-defined]
        ("7", ErrorCode.invalid_request, "Unexpected broker id, expected 1, but received 7"),
        ("1", ErrorCode.none, None),
        ("x", ErrorCode.invalid_request, "Node id must be an integer, but it is: x"),
        ("", ErrorCode.none, None),
    ]
