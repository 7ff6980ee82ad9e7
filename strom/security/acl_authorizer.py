"""Strom's ACL authorizer, turned on by `authorizer.class.name` naming Kafka's
`org.apache.kafka.metadata.authorizer.StandardAuthorizer` (or the older
`kafka.security.authorizer.AclAuthorizer`), with Kafka's rules (KIP-11, KIP-290):

- A principal named in `super.users` (`User:admin;User:broker`, separated by semicolons) may do everything.
- The ACLs that apply to a resource are those of its type whose pattern covers its name: LITERAL equal,
  LITERAL `*`, or PREFIXED with a prefix of the name. Of those, an entry applies when its principal is the
  caller's or `User:*` and its host the caller's or `*`.
- A DENY entry for the operation (or ALL) wins over any ALLOW. An ALLOW entry for the operation or ALL
  grants it, and so do implied operations: DESCRIBE is granted by READ, WRITE, DELETE and ALTER;
  DESCRIBE_CONFIGS by ALTER_CONFIGS (implication only widens ALLOWs, never DENYs).
- When no ACL at all applies to the resource (whatever its principal, host or operation), the answer is
  `allow.everyone.if.no.acl.found` (default false); once a resource has any ACL, only its ALLOWs grant.

`authorize_by_resource_type` is KIP-679's question (may the principal WRITE to some topic, which stands in
for IDEMPOTENT_WRITE on the cluster in InitProducerId), answered as Kafka's Authorizer default method does.
`authorized_operations` is the bit field DescribeGroups, DescribeCluster, Metadata and others report.

The ACLs themselves live in an `AclStore` (strom.security.acl_store): this class keeps the in-memory index
the store hands it on every change and answers on the event loop without blocking.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from strom.config import BrokerConfig
from strom.security.acl import (
    SUPPORTED_OPERATIONS,
    WILDCARD,
    WILDCARD_PRINCIPAL,
    AclBinding,
    PermissionType,
)
from strom.security.authorizer import AclOperation, PatternType, ResourceType
from strom.security.principal import KafkaPrincipal

__all__ = ["KAFKA_AUTHORIZER_CLASSES", "AclAuthorizer", "authorizer_enabled"]

KAFKA_AUTHORIZER_CLASSES = frozenset(
    {
        "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        "kafka.security.authorizer.AclAuthorizer",
        "kafka.security.auth.SimpleAclAuthorizer",
    }
)

_IMPLIED_BY: dict[AclOperation, frozenset[AclOperation]] = {
    AclOperation.DESCRIBE: frozenset(
        {
            AclOperation.DESCRIBE,
            AclOperation.READ,
            AclOperation.WRITE,
            AclOperation.DELETE,
            AclOperation.ALTER,
        }
    ),
    AclOperation.DESCRIBE_CONFIGS: frozenset({AclOperation.DESCRIBE_CONFIGS, AclOperation.ALTER_CONFIGS}),
}


def authorizer_enabled(config: BrokerConfig) -> bool:
    """Whether `authorizer.class.name` names an ACL authorizer; ValueError for a class Strom lacks."""
    name = str(_setting(config, "authorizer.class.name", "") or "").strip()
    if not name:
        return False
    if name not in KAFKA_AUTHORIZER_CLASSES:
        raise ValueError(
            f"authorizer.class.name {name} is not supported: use "
            "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
        )
    return True


def _setting(config: BrokerConfig, key: str, default: object) -> object:
    try:
        value = config.get(key)
    except KeyError:
        return default
    return default if value is None else value


def _principals(text: str) -> frozenset[str]:
    # Kafka splits super.users on ';' and trims each entry
    return frozenset(p.strip() for p in text.split(";") if p.strip())


class AclAuthorizer:
    """Kafka's StandardAuthorizer decisions over an in-memory set of bindings."""

    def __init__(self, *, super_users: Iterable[str] = (), allow_if_no_acl: bool = False) -> None:
        self.super_users = frozenset(super_users)
        self.allow_if_no_acl = allow_if_no_acl
        self._bindings: frozenset[AclBinding] = frozenset()
        # (resource type, pattern type) -> name -> entries; rebuilt on every change (ACLs change rarely)
        self._index: dict[tuple[ResourceType, PatternType], dict[str, list[AclBinding]]] = {}

    @classmethod
    def from_config(cls, config: BrokerConfig) -> AclAuthorizer:
        allow = str(_setting(config, "allow.everyone.if.no.acl.found", "false")).strip().lower() == "true"
        return cls(super_users=_principals(str(_setting(config, "super.users", ""))), allow_if_no_acl=allow)

    # --- the ACL set ------------------------------------------------------------------------------
    @property
    def bindings(self) -> frozenset[AclBinding]:
        return self._bindings

    def load(self, bindings: Iterable[AclBinding]) -> None:
        """Replace every ACL (the store calls this after each change it sees)."""
        self._bindings = frozenset(bindings)
        index: dict[tuple[ResourceType, PatternType], dict[str, list[AclBinding]]] = defaultdict(
            lambda: defaultdict(list)
        )
        for binding in self._bindings:
            p = binding.pattern
            index[(p.resource_type, p.pattern_type)][p.name].append(binding)
        self._index = index

    def _applicable(self, resource_type: ResourceType, name: str) -> list[AclBinding]:
        found: list[AclBinding] = []
        literal = self._index.get((resource_type, PatternType.LITERAL))
        if literal:
            found += literal.get(name, ())
            if name != WILDCARD:
                found += literal.get(WILDCARD, ())
        prefixed = self._index.get((resource_type, PatternType.PREFIXED))
        if prefixed:
            for prefix, entries in prefixed.items():
                if name.startswith(prefix):
                    found += entries
        return found

    # --- decisions --------------------------------------------------------------------------------
    def is_super_user(self, principal: KafkaPrincipal) -> bool:
        return str(principal) in self.super_users

    def authorize(
        self,
        principal: KafkaPrincipal,
        host: str,
        operation: AclOperation,
        resource_type: ResourceType,
        resource_name: str,
        pattern: PatternType = PatternType.LITERAL,
    ) -> bool:
        if self.is_super_user(principal):
            return True
        acls = self._applicable(resource_type, resource_name)
        if not acls:
            return self.allow_if_no_acl
        who = (str(principal), WILDCARD_PRINCIPAL)
        allowed = False
        implied = _IMPLIED_BY.get(operation, frozenset({operation}))
        for binding in acls:
            entry = binding.entry
            if entry.principal not in who or entry.host not in (host, WILDCARD):
                continue
            if entry.permission == PermissionType.DENY:
                if entry.operation in (operation, AclOperation.ALL):
                    return False
            elif entry.operation == AclOperation.ALL or entry.operation in implied:
                allowed = allowed or entry.permission == PermissionType.ALLOW
        return allowed

    def authorized_operations(
        self, principal: KafkaPrincipal, host: str, resource_type: ResourceType, resource_name: str
    ) -> int:
        """The bit field of the resource type's operations the principal may do (1 << operation code)."""
        bits = 0
        for op in SUPPORTED_OPERATIONS.get(resource_type, ()):
            if self.authorize(principal, host, op, resource_type, resource_name):
                bits |= 1 << int(op)
        return bits

    def authorize_by_resource_type(
        self, principal: KafkaPrincipal, host: str, operation: AclOperation, resource_type: ResourceType
    ) -> bool:
        """May the principal do `operation` on at least one resource of the type (KIP-679)? Kafka's
        Authorizer.authorizeByResourceType: super users and an allow on any name first (a resource named
        "hardcode" stands for one with no ACL of its own), then a DENY on the literal wildcard refuses, and
        any ALLOW that no DENY covers (same literal name, or a prefix of it) grants."""
        if self.authorize(principal, host, operation, resource_type, "hardcode"):
            return True
        who = (str(principal), WILDCARD_PRINCIPAL)
        denied: dict[PatternType, set[str]] = defaultdict(set)
        allowed: dict[PatternType, set[str]] = defaultdict(set)
        for binding in self._bindings:
            entry, pattern = binding.entry, binding.pattern
            if pattern.resource_type != resource_type:
                continue
            if entry.principal not in who or entry.host not in (host, WILDCARD):
                continue
            if entry.operation not in (operation, AclOperation.ALL):
                continue
            if entry.permission == PermissionType.DENY:
                denied[pattern.pattern_type].add(pattern.name)
            elif entry.permission == PermissionType.ALLOW:
                allowed[pattern.pattern_type].add(pattern.name)
        if WILDCARD in denied[PatternType.LITERAL]:
            return False
        deny_prefixes = denied[PatternType.PREFIXED]

        def covered(name: str) -> bool:
            return any(name.startswith(prefix) for prefix in deny_prefixes)

        for name in allowed[PatternType.PREFIXED]:
            if not covered(name):
                return True
        for name in allowed[PatternType.LITERAL]:
            if name == WILDCARD or (name not in denied[PatternType.LITERAL] and not covered(name)):
                return True
        return False
