"""Shared by CreateAcls, DescribeAcls and DeleteAcls: wire codes to `strom.security.acl` values, and the
answer every ACL API gives while no ACL authorizer is configured (SECURITY_DISABLED, as Kafka does)."""

from __future__ import annotations

import enum
from typing import Any, TypeVar

from strom.security.acl import AclBindingFilter, PermissionType
from strom.security.authorizer import AclOperation, PatternType, ResourceType

__all__ = ["NO_AUTHORIZER", "code_of", "filter_of"]

NO_AUTHORIZER = "No Authorizer is configured."

E = TypeVar("E", bound=enum.IntEnum)


def code_of(cls: type[E], value: int) -> E:
    """A wire code as Kafka's fromCode reads it: codes it does not know are UNKNOWN (0)."""
    try:
        return cls(int(value))
    except ValueError:
        return cls(0)


def filter_of(item: Any) -> AclBindingFilter:
    """A DescribeAcls request or DeleteAcls filter as an AclBindingFilter."""
    return AclBindingFilter(
        code_of(ResourceType, item.resource_type_filter),
        item.resource_name_filter,
        code_of(PatternType, item.pattern_type_filter),
        item.principal_filter,
        item.host_filter,
        code_of(AclOperation, item.operation),
        code_of(PermissionType, item.permission_type),
    )
