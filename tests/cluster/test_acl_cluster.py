"""ACLs in a three-broker ZooKeeper cluster: an ACL created through one broker lands in Kafka's layout
(/kafka-acl/Topic/<name> with its JSON, a /kafka-acl-changes notification) and takes effect on every
broker; one deleted through another broker stops applying everywhere."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator

import pytest
from kazoo.client import KazooClient
from kio.schema.create_acls.v3 import request as create_acls
from kio.schema.delete_acls.v3 import request as delete_acls
from kio.static.primitive import i8
from wire_helpers import fetch_request

from strom.client.connection import BrokerConnection
from strom.protocol.errors import ErrorCode
from strom.security.authorizer import AclOperation, ResourceType
from strom.security.principal import ANONYMOUS
from strom.testing import EmbeddedCluster
from strom.testing.zookeeper import ZooKeeperServer

pytestmark = pytest.mark.cluster

TOPIC = "guarded"
SETTINGS = {
    "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
    # every client here is User:ANONYMOUS (PLAINTEXT); resources without ACLs stay open to it
    "allow.everyone.if.no.acl.found": "true",
}


@pytest.fixture
def cluster(zookeeper: ZooKeeperServer, chroot_connect: str) -> Iterator[EmbeddedCluster]:
    with EmbeddedCluster(3, chroot_connect, SETTINGS) as running:
        yield running


async def _ask(address: tuple[str, int], request: object) -> object:
    conn = await BrokerConnection.open(*address)
    try:
        return await conn.request(request, timeout=30)
    finally:
        await conn.close()


def _address(cluster: EmbeddedCluster, node_id: int) -> tuple[str, int]:
    return cluster.brokers[node_id].bound_address


def _may_read(cluster: EmbeddedCluster, node_id: int) -> bool:
    authorizer = cluster.brokers[node_id].authorizer
    return authorizer.authorize(ANONYMOUS, "127.0.0.1", AclOperation.READ, ResourceType.TOPIC, TOPIC)


def _wait(predicate: object, what: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def _deny_read(operation: int = int(AclOperation.READ)) -> create_acls.CreateAclsRequest:
    return create_acls.CreateAclsRequest(
        creations=(
            create_acls.AclCreation(
                resource_type=i8(ResourceType.TOPIC),
                resource_name=TOPIC,
                resource_pattern_type=i8(3),  # LITERAL
                principal="User:ANONYMOUS",
                host="*",
                operation=i8(operation),
                permission_type=i8(2),  # DENY
            ),
        )
    )


def test_an_acl_added_through_one_broker_applies_on_every_broker(
    cluster: EmbeddedCluster, chroot_connect: str
) -> None:
    assert all(_may_read(cluster, n) for n in (1, 2, 3))
    created = asyncio.run(_ask(_address(cluster, 1), _deny_read()))
    assert [r.error_code for r in created.results] == [ErrorCode.none]  # type: ignore[attr-defined]
    _wait(lambda: not any(_may_read(cluster, n) for n in (1, 2, 3)), "every broker sees the DENY")
    # through the wire too: a consumer's Fetch on broker 3 is refused
    fetched = asyncio.run(_ask(_address(cluster, 3), fetch_request(TOPIC, {0: 0})))
    assert fetched.responses[0].partitions[0].error_code == ErrorCode.topic_authorization_failed  # type: ignore[attr-defined]

    zk = KazooClient(hosts=chroot_connect)
    zk.start(10)
    try:
        data, _stat = zk.get(f"/kafka-acl/Topic/{TOPIC}")
        assert json.loads(data) == {
            "version": 1,
            "acls": [
                {"principal": "User:ANONYMOUS", "permissionType": "Deny", "operation": "Read", "host": "*"}
            ],
        }
        changes = zk.get_children("/kafka-acl-changes")
        assert any(c.startswith("acl_changes_") for c in changes)
        payloads = {zk.get(f"/kafka-acl-changes/{c}")[0] for c in changes}
        assert f"Topic:{TOPIC}".encode() in payloads
    finally:
        zk.stop()
        zk.close()

    removed = asyncio.run(
        _ask(
            _address(cluster, 2),
            delete_acls.DeleteAclsRequest(
                filters=(
                    delete_acls.DeleteAclsFilter(
                        resource_type_filter=i8(ResourceType.TOPIC),
                        resource_name_filter=TOPIC,
                        pattern_type_filter=i8(1),  # ANY
                        principal_filter=None,
                        host_filter=None,
                        operation=i8(1),
                        permission_type=i8(1),
                    ),
                )
            ),
        )
    )
    assert len(removed.filter_results[0].matching_acls) == 1  # type: ignore[attr-defined]
    _wait(lambda: all(_may_read(cluster, n) for n in (1, 2, 3)), "every broker sees the DENY go")
