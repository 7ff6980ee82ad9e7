"""DeleteAcls (api key 31), versions 1-3: remove the ACL bindings that match filters (KIP-140, KIP-290).

Behaviour: each filter (as DescribeAcls's: LITERAL, PREFIXED, ANY or MATCH pattern types, null/ANY
matching all) removes every binding it matches from this mode's ACL store, and its result lists them; a
binding matched by two filters is listed under both. v2+ is the flexible encoding.

Errors per filter: NONE; INVALID_REQUEST (a filter element is UNKNOWN); CLUSTER_AUTHORIZATION_FAILED (no
ALTER on the cluster, every filter); SECURITY_DISABLED (no `authorizer.class.name`); UNKNOWN_SERVER_ERROR
(the store failed).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from strom.apis._acl_util import NO_AUTHORIZER, filter_of
from strom.apis._build import no_throttle
from strom.protocol.errors import ErrorCode
from strom.protocol.registry import ApiSpec, response_type
from strom.security.acl import AclBinding, AclBindingFilter

log = logging.getLogger("strom.apis.delete_acls")

API_KEY = 31


async def handle(ctx: Any, request: Any) -> Any:
    cls = response_type(API_KEY, ctx.api_version)
    mod = __import__(cls.__module__, fromlist=["_"])

    def result(code: ErrorCode, message: str | None, matched: Sequence[AclBinding] = ()) -> Any:
        return mod.DeleteAclsFilterResult(
            error_code=code,
            error_message=message,
            matching_acls=tuple(
                mod.DeleteAclsMatchingAcl(
                    error_code=ErrorCode.none,
                    error_message=None,
                    resource_type=int(b.pattern.resource_type),
                    resource_name=b.pattern.name,
                    pattern_type=int(b.pattern.pattern_type),
                    principal=b.entry.principal,
                    host=b.entry.host,
                    operation=int(b.entry.operation),
                    permission_type=int(b.entry.permission),
                )
                for b in matched
            ),
        )

    if ctx.broker.acl_authorizer is None or ctx.broker.acl_store is None:
        results = [result(ErrorCode.security_disabled, NO_AUTHORIZER) for _ in request.filters]
        return cls(throttle_time=no_throttle(), filter_results=tuple(results))
    filters: list[AclBindingFilter | str] = []
    for item in request.filters:
        acl_filter = filter_of(item)
        unknown = acl_filter.unknown_element()
        filters.append(unknown if unknown is not None else acl_filter)
    valid = [f for f in filters if isinstance(f, AclBindingFilter)]
    try:
        removed = iter(await ctx.broker.acl_store.delete(valid) if valid else [])
    except Exception as exc:
        log.exception("deleting ACLs failed")
        message = str(exc) or type(exc).__name__
        results = [result(ErrorCode.unknown_server_error, message) for _ in request.filters]
        return cls(throttle_time=no_throttle(), filter_results=tuple(results))
    results = [
        result(ErrorCode.invalid_request, f)
        if isinstance(f, str)
        else result(ErrorCode.none, None, next(removed))
        for f in filters
    ]
    return cls(throttle_time=no_throttle(), filter_results=tuple(results))


SPEC = ApiSpec(api_key=API_KEY, min_version=1, max_version=3, handler=handle, name="DeleteAcls")
