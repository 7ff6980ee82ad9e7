"""The ACL authorizer's decisions (Kafka's StandardAuthorizer rules): super users, LITERAL/PREFIXED and
wildcard patterns, wildcard principals and hosts, DENY over ALLOW, implied operations, the no-ACL
default, authorized-operation bit fields, KIP-679's authorize-by-resource-type, and the filters
DescribeAcls/DeleteAcls use."""

from __future__ import annotations

import pytest

from strom.config import BrokerConfig
from strom.security.acl import (
    AccessControlEntry,
    AclBinding,
    AclBindingFilter,
    AclValidationError,
    PermissionType,
    ResourcePattern,
    validate_new,
)
from strom.security.acl_authorizer import AclAuthorizer, authorizer_enabled
from strom.security.acl_store import LocalAclStore
from strom.security.authorizer import AclOperation as Op
from strom.security.authorizer import PatternType as Pt
from strom.security.authorizer import ResourceType as Rt
from strom.security.principal import KafkaPrincipal

ALICE = KafkaPrincipal("User", "alice")
BOB = KafkaPrincipal("User", "bob")
ALLOW, DENY = PermissionType.ALLOW, PermissionType.DENY


def acl(rt: Rt, name: str, op: Op, principal: str = "User:alice", *, pt: Pt = Pt.LITERAL,
        perm: PermissionType = ALLOW, host: str = "*") -> AclBinding:  # fmt: skip
    return AclBinding(ResourcePattern(rt, name, pt), AccessControlEntry(principal, host, op, perm))


def authorizer(*bindings: AclBinding, **kwargs: object) -> AclAuthorizer:
    a = AclAuthorizer(**kwargs)  # type: ignore[arg-type]
    a.load(bindings)
    return a


def test_literal_prefixed_and_wildcard_patterns() -> None:
    a = authorizer(
        acl(Rt.TOPIC, "orders", Op.READ),
        acl(Rt.TOPIC, "logs-", Op.WRITE, pt=Pt.PREFIXED),
        acl(Rt.GROUP, "*", Op.READ),
    )
    assert a.authorize(ALICE, "10.0.0.1", Op.READ, Rt.TOPIC, "orders")
    assert not a.authorize(ALICE, "10.0.0.1", Op.WRITE, Rt.TOPIC, "orders")
    assert not a.authorize(ALICE, "10.0.0.1", Op.READ, Rt.TOPIC, "orders2")
    assert a.authorize(ALICE, "10.0.0.1", Op.WRITE, Rt.TOPIC, "logs-app")
    assert not a.authorize(ALICE, "10.0.0.1", Op.WRITE, Rt.TOPIC, "logs")
    assert a.authorize(ALICE, "10.0.0.1", Op.READ, Rt.GROUP, "any-group")
    assert not a.authorize(BOB, "10.0.0.1", Op.READ, Rt.GROUP, "any-group")


def test_deny_wins_and_wildcard_principal_and_host() -> None:
    a = authorizer(
        acl(Rt.TOPIC, "orders", Op.ALL, "User:*"),
        acl(Rt.TOPIC, "orders", Op.WRITE, "User:bob", perm=DENY),
        acl(Rt.TOPIC, "audit", Op.READ, host="10.0.0.9"),
    )
    assert a.authorize(BOB, "h", Op.READ, Rt.TOPIC, "orders")
    assert not a.authorize(BOB, "h", Op.WRITE, Rt.TOPIC, "orders")
    assert a.authorize(ALICE, "h", Op.WRITE, Rt.TOPIC, "orders")
    assert a.authorize(ALICE, "10.0.0.9", Op.READ, Rt.TOPIC, "audit")
    assert not a.authorize(ALICE, "10.0.0.8", Op.READ, Rt.TOPIC, "audit")


def test_implied_operations_widen_allows_only() -> None:
    a = authorizer(acl(Rt.TOPIC, "t", Op.READ), acl(Rt.TOPIC, "t", Op.ALTER_CONFIGS))
    assert a.authorize(ALICE, "h", Op.DESCRIBE, Rt.TOPIC, "t")
    assert a.authorize(ALICE, "h", Op.DESCRIBE_CONFIGS, Rt.TOPIC, "t")
    assert not a.authorize(ALICE, "h", Op.WRITE, Rt.TOPIC, "t")
    # a DENY of READ does not deny DESCRIBE
    b = authorizer(acl(Rt.TOPIC, "t", Op.DESCRIBE), acl(Rt.TOPIC, "t", Op.READ, perm=DENY))
    assert b.authorize(ALICE, "h", Op.DESCRIBE, Rt.TOPIC, "t")
    assert not b.authorize(ALICE, "h", Op.READ, Rt.TOPIC, "t")


def test_super_users_and_the_no_acl_default() -> None:
    strict = authorizer(acl(Rt.TOPIC, "t", Op.READ), super_users={"User:admin"})
    admin = KafkaPrincipal("User", "admin")
    assert strict.authorize(admin, "h", Op.ALTER, Rt.CLUSTER, "kafka-cluster")
    assert not strict.authorize(ALICE, "h", Op.READ, Rt.TOPIC, "no-acls-here")
    lenient = authorizer(acl(Rt.TOPIC, "t", Op.READ), allow_if_no_acl=True)
    assert lenient.authorize(BOB, "h", Op.READ, Rt.TOPIC, "no-acls-here")
    # once a resource has any ACL, only its ALLOWs grant
    assert not lenient.authorize(BOB, "h", Op.READ, Rt.TOPIC, "t")


def test_from_config_reads_kafka_keys() -> None:
    config = BrokerConfig(
        {
            "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
            "super.users": "User:admin; User:broker",
            "allow.everyone.if.no.acl.found": "true",
        }
    )
    assert authorizer_enabled(config)
    a = AclAuthorizer.from_config(config)
    assert a.super_users == {"User:admin", "User:broker"} and a.allow_if_no_acl
    assert not authorizer_enabled(BrokerConfig({}))
    legacy = "kafka.security.authorizer.AclAuthorizer"
    assert authorizer_enabled(BrokerConfig({"authorizer.class.name": legacy}))
    with pytest.raises(ValueError):
        authorizer_enabled(BrokerConfig({"authorizer.class.name": "com.example.Custom"}))


def test_authorized_operations_bits() -> None:
    a = authorizer(acl(Rt.GROUP, "g", Op.READ))
    bits = a.authorized_operations(ALICE, "h", Rt.GROUP, "g")
    assert bits == (1 << Op.READ) | (1 << Op.DESCRIBE)


def test_authorize_by_resource_type() -> None:
    writer = authorizer(acl(Rt.TOPIC, "t", Op.WRITE))
    assert writer.authorize_by_resource_type(ALICE, "h", Op.WRITE, Rt.TOPIC)
    reader = authorizer(acl(Rt.TOPIC, "t", Op.READ))
    assert not reader.authorize_by_resource_type(ALICE, "h", Op.WRITE, Rt.TOPIC)
    denied = authorizer(acl(Rt.TOPIC, "t", Op.WRITE), acl(Rt.TOPIC, "*", Op.WRITE, perm=DENY))
    assert not denied.authorize_by_resource_type(ALICE, "h", Op.WRITE, Rt.TOPIC)
    covered = authorizer(
        acl(Rt.TOPIC, "app-x", Op.WRITE), acl(Rt.TOPIC, "app-", Op.WRITE, pt=Pt.PREFIXED, perm=DENY)
    )
    assert not covered.authorize_by_resource_type(ALICE, "h", Op.WRITE, Rt.TOPIC)


def test_filters_match_as_kafka() -> None:
    literal = acl(Rt.TOPIC, "orders", Op.READ)
    wildcard = acl(Rt.TOPIC, "*", Op.READ)
    prefixed = acl(Rt.TOPIC, "ord", Op.READ, pt=Pt.PREFIXED)
    other = acl(Rt.TOPIC, "payments", Op.READ)
    everything = [literal, wildcard, prefixed, other]

    def matched(f: AclBindingFilter) -> list[AclBinding]:
        return [b for b in everything if f.matches(b)]

    assert matched(AclBindingFilter(Rt.TOPIC, "orders", Pt.MATCH)) == [literal, wildcard, prefixed]
    assert matched(AclBindingFilter(Rt.TOPIC, "orders", Pt.ANY)) == [literal]
    assert matched(AclBindingFilter(Rt.TOPIC, "ord", Pt.PREFIXED)) == [prefixed]
    assert matched(AclBindingFilter(Rt.TOPIC, None, Pt.LITERAL)) == [literal, wildcard, other]
    assert matched(AclBindingFilter(Rt.ANY, principal="User:bob")) == []
    assert matched(AclBindingFilter(Rt.GROUP)) == []


def test_validation_messages() -> None:
    with pytest.raises(AclValidationError, match="only valid name for the CLUSTER resource"):
        validate_new(acl(Rt.CLUSTER, "other", Op.ALTER))
    with pytest.raises(AclValidationError, match="Could not parse principal"):
        validate_new(acl(Rt.TOPIC, "t", Op.READ, "alice"))
    with pytest.raises(AclValidationError, match="Invalid operation"):
        validate_new(acl(Rt.TOPIC, "t", Op.ANY))
    validate_new(acl(Rt.TOPIC, "t", Op.READ))


async def test_local_store_survives_a_restart(tmp_path: object) -> None:
    from pathlib import Path

    store = LocalAclStore(Path(str(tmp_path)))
    seen: list[frozenset[AclBinding]] = []
    await store.start(seen.append)
    keep, drop = acl(Rt.TOPIC, "a", Op.READ), acl(Rt.GROUP, "g-", Op.READ, pt=Pt.PREFIXED, perm=DENY)
    await store.create([keep, drop])
    removed = await store.delete([AclBindingFilter(Rt.GROUP)])
    assert removed == [[drop]]
    again = LocalAclStore(Path(str(tmp_path)))
    loaded: list[frozenset[AclBinding]] = []
    await again.start(loaded.append)
    assert loaded == [frozenset({keep})]
