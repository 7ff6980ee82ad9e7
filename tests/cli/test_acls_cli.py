"""`strom acls add|list|remove` against a broker with the ACL authorizer (every PLAINTEXT client is
User:ANONYMOUS, made a super user here), and the SECURITY_DISABLED error without one."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator

import pytest
from test_cli import STROM

from strom.testing.embedded import EmbeddedBroker

SETTINGS = {
    "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
    "super.users": "User:ANONYMOUS",
}


@pytest.fixture(scope="module")
def acl_broker() -> Iterator[EmbeddedBroker]:
    with EmbeddedBroker(SETTINGS) as broker:
        yield broker


def strom(broker: EmbeddedBroker, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "STROM_BOOTSTRAP_SERVER": broker.bootstrap_servers}
    return subprocess.run([STROM, "acls", *args], capture_output=True, text=True, env=env, timeout=60)


def test_add_list_remove(acl_broker: EmbeddedBroker) -> None:
    added = strom(acl_broker, "add", "--allow-principal", "User:alice", "--operation", "Read",
                  "--operation", "Describe", "--topic", "orders")  # fmt: skip
    assert added.returncode == 0, added.stderr
    assert "Added 2 ACL(s)" in added.stdout
    denied = strom(acl_broker, "add", "--deny-principal", "User:bob", "--operation", "All", "--group", "g-",
                   "--resource-pattern-type", "prefixed")  # fmt: skip
    assert denied.returncode == 0, denied.stderr
    listed = strom(acl_broker, "list", "--topic", "orders")
    assert "ResourcePattern(resourceType=TOPIC, name=orders, patternType=LITERAL)" in listed.stdout
    assert "(principal=User:alice, host=*, operation=READ, permissionType=ALLOW)" in listed.stdout
    matched = json.loads(strom(acl_broker, "list", "--group", "g-1", "--resource-pattern-type", "match",
                               "--format", "json").stdout)  # fmt: skip
    assert [(r["name"], r["patternType"], r["acls"][0]["operation"]) for r in matched] == [
        ("g-", "PREFIXED", "ALL")
    ]
    removed = strom(acl_broker, "remove", "--topic", "orders", "--operation", "Read")
    assert "Removed 1 ACL(s)" in removed.stdout
    left = strom(acl_broker, "list", "--topic", "orders").stdout
    assert "operation=DESCRIBE" in left and "operation=READ" not in left
    usage = strom(acl_broker, "add", "--operation", "Read", "--topic", "x")
    assert usage.returncode == 2 and "--allow-principal" in usage.stderr


def test_without_an_authorizer() -> None:
    with EmbeddedBroker() as broker:
        out = strom(broker, "list")
    assert out.returncode == 1 and "SECURITY_DISABLED" in out.stderr
