"""DescribeAcls (api key 29), versions 1-3: the ACLs that match a filter (KIP-140, KIP-290).

Behaviour: the filter's resource type, name and pattern type (LITERAL, PREFIXED, ANY: any pattern of
exactly that name, MATCH: every pattern that applies to the named resource, i.e. the literal name, the
literal `*` and every prefix), principal, host, operation and permission type (ANY or null match all)
select bindings, answered grouped by resource pattern. v2+ is the flexible encoding.

Errors (top level): NONE; CLUSTER_AUTHORIZATION_FAILED (no DESCRIBE on the cluster); INVALID_REQUEST (a
filter element is UNKNOWN); SECURITY_DISABLED ("No Authorizer is configured." when
`authorizer.class.name` is not set).
"""

from __future__ import annotations

from typing import Any

from strom.apis._acl_util import NO_AUTHORIZER, filter_of
from strom.apis._build import build, no_throttle
from strom.protocol.errors import ErrorCode
from strom.protocol.registry import ApiSpec, response_type
from strom.security.acl import AclBinding, ResourcePattern

API_KEY = 29


def _error(cls: type, code: ErrorCode, message: str | None) -> Any:
    return build(cls, throttle_time=no_throttle(), error_code=code, error_message=message, resources=())


async def handle(ctx: Any, request: Any) -> Any:
    cls = response_type(API_KEY, ctx.api_version)
    mod = __import__(cls.__module__, fromlist=["_"])
    authorizer = ctx.broker.acl_authorizer
    if authorizer is None:
        return _error(cls, ErrorCode.security_disabled, NO_AUTHORIZER)
    acl_filter = filter_of(request)
    unknown = acl_filter.unknown_element()
    if unknown is not None:
        return _error(cls, ErrorCode.invalid_request, unknown)
    grouped: dict[ResourcePattern, list[AclBinding]] = {}
    for binding in authorizer.bindings:
        if acl_filter.matches(binding):
            grouped.setdefault(binding.pattern, []).append(binding)
    resources = tuple(
        mod.DescribeAclsResource(
            resource_type=int(pattern.resource_type),
            resource_name=pattern.name,
            pattern_type=int(pattern.pattern_type),
            acls=tuple(
                mod.AclDescription(
                    principal=b.entry.principal,
                    host=b.entry.host,
                    operation=int(b.entry.operation),
                    permission_type=int(b.entry.permission),
                )
                for b in sorted(grouped[pattern], key=lambda b: (b.entry.principal, b.entry.operation))
            ),
        )
        for pattern in sorted(grouped, key=lambda p: (p.resource_type, p.pattern_type, p.name))
    )
    return build(cls, throttle_time=no_throttle(), error_code=ErrorCode.none, error_message=None,
                 resources=resources)  # fmt: skip


SPEC = ApiSpec(api_key=API_KEY, min_version=1, max_version=3, handler=handle, name="DescribeAcls")
