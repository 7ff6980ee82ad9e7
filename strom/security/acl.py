"""ACL bindings and filters as Kafka models them (org.apache.kafka.common.acl, KIP-290).

An `AclBinding` is a `ResourcePattern` (resource type, name, LITERAL or PREFIXED) and an `AccessControlEntry`
(principal, host, operation, ALLOW or DENY). CreateAcls sends bindings, DescribeAcls and DeleteAcls send
an `AclBindingFilter`, whose pattern type may also be ANY (any pattern of that exact name) or MATCH (every
pattern that would apply to the named resource: the literal name, the literal wildcard `*`, and every
prefix of it), with null fields matching anything. The names used in ZooKeeper's JSON (`Topic`, `Read`,
`Allow`, ...) are Kafka's `SecurityUtils` spellings.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from strom.security.authorizer import AclOperation, PatternType, ResourceType

__all__ = [
    "CLUSTER_NAME",
    "SUPPORTED_OPERATIONS",
    "WILDCARD",
    "WILDCARD_PRINCIPAL",
    "AccessControlEntry",
    "AclBinding",
    "AclBindingFilter",
    "AclValidationError",
    "PermissionType",
    "ResourcePattern",
    "camel_name",
    "from_camel_name",
    "validate_new",
]

WILDCARD = "*"
WILDCARD_PRINCIPAL = "User:*"
CLUSTER_NAME = "kafka-cluster"


class PermissionType(enum.IntEnum):
    """Kafka's AclPermissionType codes."""

    UNKNOWN = 0
    ANY = 1
    DENY = 2
    ALLOW = 3


# What each resource type can be granted (Kafka's AclEntry.supportedOperations); authorized-operations
# fields report these, and only these, for a resource.
SUPPORTED_OPERATIONS: dict[ResourceType, tuple[AclOperation, ...]] = {
    ResourceType.TOPIC: (
        AclOperation.READ,
        AclOperation.WRITE,
        AclOperation.CREATE,
        AclOperation.DESCRIBE,
        AclOperation.DELETE,
        AclOperation.ALTER,
        AclOperation.DESCRIBE_CONFIGS,
        AclOperation.ALTER_CONFIGS,
    ),
    ResourceType.GROUP: (
        AclOperation.READ,
        AclOperation.DESCRIBE,
        AclOperation.DELETE,
        AclOperation.DESCRIBE_CONFIGS,
        AclOperation.ALTER_CONFIGS,
    ),
    ResourceType.CLUSTER: (
        AclOperation.CREATE,
        AclOperation.CLUSTER_ACTION,
        AclOperation.DESCRIBE_CONFIGS,
        AclOperation.ALTER_CONFIGS,
        AclOperation.IDEMPOTENT_WRITE,
        AclOperation.ALTER,
        AclOperation.DESCRIBE,
    ),
    ResourceType.TRANSACTIONAL_ID: (AclOperation.DESCRIBE, AclOperation.WRITE, AclOperation.TWO_PHASE_COMMIT),
    ResourceType.DELEGATION_TOKEN: (AclOperation.DESCRIBE,),
    ResourceType.USER: (AclOperation.CREATE_TOKENS, AclOperation.DESCRIBE_TOKENS),
}


def camel_name(value: enum.IntEnum) -> str:
    """Kafka's JSON spelling of an enum value: READ -> Read, TRANSACTIONAL_ID -> TransactionalId."""
    return "".join(part.capitalize() for part in value.name.split("_"))


def from_camel_name(cls: type[enum.IntEnum], text: str) -> enum.IntEnum:
    """The inverse of `camel_name` (case-insensitive, as Kafka's fromString); UNKNOWN when no value fits."""
    wanted = text.replace("_", "").lower()
    for value in cls:
        if value.name.replace("_", "").lower() == wanted:
            return value
    return cls(0)


class AclValidationError(ValueError):
    """A binding CreateAcls must refuse (INVALID_REQUEST with this message)."""


@dataclass(frozen=True, slots=True)
class ResourcePattern:
    resource_type: ResourceType
    name: str
    pattern_type: PatternType


@dataclass(frozen=True, slots=True)
class AccessControlEntry:
    principal: str  # "User:alice", or "User:*"
    host: str  # an address, or "*"
    operation: AclOperation
    permission: PermissionType


@dataclass(frozen=True, slots=True)
class AclBinding:
    pattern: ResourcePattern
    entry: AccessControlEntry


@dataclass(frozen=True, slots=True)
class AclBindingFilter:
    """DescribeAcls/DeleteAcls filter; None fields match anything."""

    resource_type: ResourceType = ResourceType.ANY
    name: str | None = None
    pattern_type: PatternType = PatternType.ANY
    principal: str | None = None
    host: str | None = None
    operation: AclOperation = AclOperation.ANY
    permission: PermissionType = PermissionType.ANY

    def matches_pattern(self, pattern: ResourcePattern) -> bool:
        """Kafka's ResourcePatternFilter.matches."""
        if self.resource_type not in (ResourceType.ANY, pattern.resource_type):
            return False
        if self.pattern_type not in (PatternType.ANY, PatternType.MATCH, pattern.pattern_type):
            return False
        if self.name is None:
            return True
        if self.pattern_type in (PatternType.ANY, pattern.pattern_type) and self.name == pattern.name:
            return True
        if self.pattern_type != PatternType.MATCH:
            return False
        if pattern.pattern_type == PatternType.LITERAL:
            return pattern.name in (self.name, WILDCARD)
        if pattern.pattern_type == PatternType.PREFIXED:
            return self.name.startswith(pattern.name)
        return False

    def matches_entry(self, entry: AccessControlEntry) -> bool:
        """Kafka's AccessControlEntryFilter.matches."""
        if self.principal is not None and self.principal != entry.principal:
            return False
        if self.host is not None and self.host != entry.host:
            return False
        if self.operation not in (AclOperation.ANY, entry.operation):
            return False
        return self.permission in (PermissionType.ANY, entry.permission)

    def matches(self, binding: AclBinding) -> bool:
        return self.matches_pattern(binding.pattern) and self.matches_entry(binding.entry)

    def unknown_element(self) -> str | None:
        """Kafka's AclBindingFilter.findIndefiniteField for UNKNOWN codes: a filter with one can match
        nothing and is refused."""
        if self.resource_type == ResourceType.UNKNOWN:
            return "Resource type is UNKNOWN."
        if self.pattern_type == PatternType.UNKNOWN:
            return "Resource pattern type is UNKNOWN."
        if self.operation == AclOperation.UNKNOWN:
            return "Operation is UNKNOWN."
        if self.permission == PermissionType.UNKNOWN:
            return "Permission type is UNKNOWN."
        return None


def validate_new(binding: AclBinding) -> None:
    """The checks Kafka's AclApis and AclControlManager make before storing a binding."""
    pattern, entry = binding.pattern, binding.entry
    if pattern.resource_type in (ResourceType.ANY, ResourceType.UNKNOWN):
        raise AclValidationError(f"Invalid resourceType {pattern.resource_type.name}")
    if pattern.pattern_type not in (PatternType.LITERAL, PatternType.PREFIXED):
        raise AclValidationError(f"Invalid patternType {pattern.pattern_type.name}")
    if entry.operation in (AclOperation.ANY, AclOperation.UNKNOWN):
        raise AclValidationError(f"Invalid operation {entry.operation.name}")
    if entry.permission not in (PermissionType.ALLOW, PermissionType.DENY):
        raise AclValidationError(f"Invalid permissionType {entry.permission.name}")
    if pattern.resource_type == ResourceType.CLUSTER and pattern.name != CLUSTER_NAME:
        raise AclValidationError(f"The only valid name for the CLUSTER resource is {CLUSTER_NAME}")
    if not pattern.name:
        raise AclValidationError("Invalid empty resource name")
    if ":" not in entry.principal:
        raise AclValidationError(
            f"Could not parse principal from `{entry.principal}` (no colon is present separating the "
            "principal type from the principal name)"
        )
