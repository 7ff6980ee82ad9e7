"""ACLs in KRaft mode: CreateAcls and DeleteAcls append AccessControlEntryRecords to the metadata log
through the controller; controllers authorize forwarded requests as the client they name against those
ACLs, and brokers' authorizers load them from the replayed log."""

from __future__ import annotations

import datetime
from collections.abc import Iterator

import pytest
from kio.schema.create_acls.v3.request import AclCreation, CreateAclsRequest
from kio.schema.create_acls.v3.response import CreateAclsResponse
from kio.schema.create_topics.v7.request import CreatableTopic, CreateTopicsRequest
from kio.schema.create_topics.v7.response import CreateTopicsResponse
from kio.static.primitive import i16, i32, i32Timedelta

from strom.client.connection import BrokerConnection
from strom.cluster.kraft.acls import create_acl_records, delete_acl_records
from strom.cluster.kraft.forwarding import envelope
from strom.metadata.image import MetadataState
from strom.protocol.errors import ErrorCode
from strom.protocol.registry import decode_with_kio
from strom.protocol.wire import skip_tagged_fields
from strom.security.acl import (
    AccessControlEntry,
    AclBinding,
    AclBindingFilter,
    PermissionType,
    ResourcePattern,
)
from strom.security.authorizer import AclOperation, PatternType, ResourceType
from strom.security.principal import KafkaPrincipal
from strom.testing.kraft_node import EmbeddedKRaftNode
from strom.testing.raft_quorum import wait_for

ALICE = KafkaPrincipal("User", "alice")
ADMIN = KafkaPrincipal("User", "admin")
SETTINGS = {
    "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
    "super.users": "User:ANONYMOUS;User:admin",
    "allow.everyone.if.no.acl.found": "false",
}


def _binding(name: str, op: AclOperation = AclOperation.CREATE) -> AclBinding:
    return AclBinding(
        ResourcePattern(ResourceType.TOPIC, name, PatternType.PREFIXED),
        AccessControlEntry("User:alice", "*", op, PermissionType.ALLOW),
    )


def test_acl_records_replay_and_deduplicate() -> None:
    state = MetadataState()
    records = create_acl_records(state, [_binding("a-"), _binding("a-"), _binding("b-")])
    assert len(records) == 2
    for offset, record in enumerate(records):
        state.replay(record, offset)
    assert set(state.acls.values()) == {_binding("a-"), _binding("b-")}
    assert create_acl_records(state, [_binding("a-")]) == []
    removals, matched = delete_acl_records(
        state, [AclBindingFilter(name="a-"), AclBindingFilter(resource_type=ResourceType.TOPIC)]
    )
    assert len(removals) == 2 and [len(m) for m in matched] == [1, 2]
    version = state.acls_version
    for offset, record in enumerate(removals, start=10):
        state.replay(record, offset)
    assert state.acls == {} and state.acls_version == version + 2


@pytest.fixture(scope="module")
def node() -> Iterator[EmbeddedKRaftNode]:
    with EmbeddedKRaftNode(SETTINGS) as node:
        yield node


def _create_topic(name: str) -> CreateTopicsRequest:
    topic = CreatableTopic(
        name=name, num_partitions=i32(1), replication_factor=i16(1), assignments=(), configs=()
    )
    return CreateTopicsRequest(
        topics=(topic,), timeout=i32Timedelta.parse(datetime.timedelta(seconds=10)), validate_only=False
    )


def _create_acl(prefix: str) -> CreateAclsRequest:
    creation = AclCreation(
        resource_type=i16(int(ResourceType.TOPIC)),
        resource_name=prefix,
        resource_pattern_type=i16(int(PatternType.PREFIXED)),
        principal="User:alice",
        host="*",
        operation=i16(int(AclOperation.CREATE)),
        permission_type=i16(int(PermissionType.ALLOW)),
    )
    return CreateAclsRequest(creations=(creation,))


def _inner(answer: object, cls: type) -> object:
    assert answer.error_code == ErrorCode.none  # type: ignore[attr-defined]
    data = bytes(answer.response_data)  # type: ignore[attr-defined]
    return decode_with_kio(cls, memoryview(data)[skip_tagged_fields(data, 4) :])


def test_forwarded_requests_are_authorized_as_their_client(node: EmbeddedKRaftNode) -> None:
    async def send(request: object, principal: KafkaPrincipal) -> object:
        host, port = node.bootstrap_controllers.split(":")
        conn = await BrokerConnection.open(host, int(port), negotiate=False)
        try:
            return await conn.request(envelope(request, 1, "broker", principal, "10.0.0.9"), timeout=10)
        finally:
            await conn.close()

    denied = _inner(node.call(send(_create_topic("alice-orders"), ALICE)), CreateTopicsResponse)
    assert denied.topics[0].error_code == ErrorCode.topic_authorization_failed  # type: ignore[attr-defined]
    refused = _inner(node.call(send(_create_acl("alice-"), ALICE)), CreateAclsResponse)
    assert refused.results[0].error_code == ErrorCode.cluster_authorization_failed  # type: ignore[attr-defined]
    created = _inner(node.call(send(_create_acl("alice-"), ADMIN)), CreateAclsResponse)
    assert created.results[0].error_code == ErrorCode.none  # type: ignore[attr-defined]
    allowed = _inner(node.call(send(_create_topic("alice-orders"), ALICE)), CreateTopicsResponse)
    assert allowed.topics[0].error_code == ErrorCode.none  # type: ignore[attr-defined]
    # the ACL is in the log: the broker's authorizer loaded it from its replay
    broker = node.broker
    assert broker is not None and broker.acl_authorizer is not None
    wait_for(
        lambda: _binding("alice-") in broker.acl_authorizer.bindings,  # type: ignore[union-attr]
        10,
        "the broker to load the ACL",
    )


def test_acl_admin_through_a_broker(node: EmbeddedKRaftNode) -> None:
    admin_mod = pytest.importorskip("confluent_kafka.admin")
    admin = admin_mod.AdminClient({"bootstrap.servers": node.bootstrap_servers})
    binding = admin_mod.AclBinding(
        admin_mod.ResourceType.TOPIC, "bob-", admin_mod.ResourcePatternType.PREFIXED, "User:bob", "*",
        admin_mod.AclOperation.WRITE, admin_mod.AclPermissionType.ALLOW,
    )  # fmt: skip
    for future in admin.create_acls([binding]).values():
        future.result(15)
    controller = node.controller
    assert controller is not None

    def on_controller() -> bool:
        return any(b.entry.principal == "User:bob" for b in controller.controller.state.acls.values())

    wait_for(on_controller, 10, "the controller to hold the ACL")
    match = admin_mod.AclBindingFilter(
        admin_mod.ResourceType.TOPIC, "bob-", admin_mod.ResourcePatternType.PREFIXED, None, None,
        admin_mod.AclOperation.ANY, admin_mod.AclPermissionType.ANY,
    )  # fmt: skip
    wait_for(lambda: len(admin.describe_acls(match).result(10)) == 1, 10, "DescribeAcls to list the ACL")
    deleted = [f.result(15) for f in admin.delete_acls([match]).values()]
    assert [len(d) for d in deleted] == [1]
    wait_for(lambda: not on_controller(), 10, "the controller to drop the ACL")
    wait_for(lambda: admin.describe_acls(match).result(10) == [], 10, "the broker to drop the ACL")
