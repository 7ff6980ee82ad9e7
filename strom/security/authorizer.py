"""The authorizer: may this principal, from this host, do this operation on this resource?

The shape is Kafka's `org.apache.kafka.server.authorizer.Authorizer` reduced to one question per call
(KIP-504 batches them; a handler asks once per resource, and so does our RequestContext). Operation,
resource type and pattern type use Kafka's wire codes (AclOperation, ResourceType, PatternType), so ACL
requests (CreateAcls, DescribeAcls, DeleteAcls) and authorized-operations bit fields map onto them as they
are.

Handlers ask through `RequestContext.authorize(operation, resource_type, name)`, which adds the
connection's principal and host; they never look at credentials. Until `authorizer.class.name` turns on
the ACL authorizer, every broker uses `AllowAll`, which is Kafka's behaviour with no authorizer
configured: everything is allowed.
"""

from __future__ import annotations

import enum
from typing import Protocol

from strom.security.principal import KafkaPrincipal

__all__ = ["AclOperation", "AllowAll", "Authorizer", "PatternType", "ResourceType"]


class AclOperation(enum.IntEnum):
    """Kafka's AclOperation codes."""

    UNKNOWN = 0
    ANY = 1
    ALL = 2
    READ = 3
    WRITE = 4
    CREATE = 5
    DELETE = 6
    ALTER = 7
    DESCRIBE = 8
    CLUSTER_ACTION = 9
    DESCRIBE_CONFIGS = 10
    ALTER_CONFIGS = 11
    IDEMPOTENT_WRITE = 12
    CREATE_TOKENS = 13
    DESCRIBE_TOKENS = 14
    TWO_PHASE_COMMIT = 15


class ResourceType(enum.IntEnum):
    """Kafka's ResourceType codes."""

    UNKNOWN = 0
    ANY = 1
    TOPIC = 2
    GROUP = 3
    CLUSTER = 4
    TRANSACTIONAL_ID = 5
    DELEGATION_TOKEN = 6
    USER = 7


class PatternType(enum.IntEnum):
    """Kafka's PatternType codes (KIP-290): how an ACL's resource name matches."""

    UNKNOWN = 0
    ANY = 1
    MATCH = 2
    LITERAL = 3
    PREFIXED = 4


class Authorizer(Protocol):
    """Answers one access question; must not block (it runs on the event loop)."""

    def authorize(
        self,
        principal: KafkaPrincipal,
        host: str,
        operation: AclOperation,
        resource_type: ResourceType,
        resource_name: str,
        pattern: PatternType = PatternType.LITERAL,
    ) -> bool: ...


class AllowAll:
    """No authorizer configured: every request is allowed, as in Kafka."""

    def authorize(
        self,
        principal: KafkaPrincipal,
        host: str,
        operation: AclOperation,
        resource_type: ResourceType,
        resource_name: str,
        pattern: PatternType = PatternType.LITERAL,
    ) -> bool:
        return True
