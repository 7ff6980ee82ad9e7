"""CreateAcls (api key 30), versions 1-3: add ACL bindings (KIP-140, KIP-290 PREFIXED patterns).

Behaviour: each creation is checked on its own (Kafka's AclApis and AclControlManager checks and
messages: a LITERAL or PREFIXED pattern, a concrete resource type, operation and ALLOW/DENY permission,
a non-empty name, `kafka-cluster` as the only CLUSTER name, a principal of the form `Type:name`); the valid
ones are stored together in this mode's ACL store (ZooKeeper's /kafka-acl tree, or the single node's
acls.json) and reach every broker's authorizer. Adding a binding that exists already succeeds.

Errors per creation: NONE; INVALID_REQUEST (the check's message); CLUSTER_AUTHORIZATION_FAILED (no ALTER
on the cluster, every creation); SECURITY_DISABLED (no `authorizer.class.name`); UNKNOWN_SERVER_ERROR
(the store failed).
"""

from __future__ import annotations

import logging
from typing import Any

from strom.apis._acl_util import NO_AUTHORIZER, code_of
from strom.apis._build import no_throttle
from strom.protocol.errors import ErrorCode
from strom.protocol.registry import ApiSpec, response_type
from strom.security.acl import (
    AccessControlEntry,
    AclBinding,
    AclValidationError,
    PermissionType,
    ResourcePattern,
    validate_new,
)
from strom.security.authorizer import AclOperation, PatternType, ResourceType

log = logging.getLogger("strom.apis.create_acls")

API_KEY = 30


def _binding(creation: Any) -> AclBinding:
    return AclBinding(
        ResourcePattern(
            code_of(ResourceType, creation.resource_type),
            creation.resource_name,
            code_of(PatternType, creation.resource_pattern_type),
        ),
        AccessControlEntry(
            creation.principal,
            creation.host,
            code_of(AclOperation, creation.operation),
            code_of(PermissionType, creation.permission_type),
        ),
    )


async def handle(ctx: Any, request: Any) -> Any:
    cls = response_type(API_KEY, ctx.api_version)
    mod = __import__(cls.__module__, fromlist=["_"])

    def result(code: ErrorCode, message: str | None = None) -> Any:
        return mod.AclCreationResult(error_code=code, error_message=message)

    if ctx.broker.acl_authorizer is None or ctx.broker.acl_store is None:
        results = [result(ErrorCode.security_disabled, NO_AUTHORIZER) for _ in request.creations]
        return cls(throttle_time=no_throttle(), results=tuple(results))
    answers: list[tuple[ErrorCode, str | None]] = []
    valid: list[AclBinding] = []
    for creation in request.creations:
        binding = _binding(creation)
        try:
            validate_new(binding)
        except AclValidationError as exc:
            answers.append((ErrorCode.invalid_request, str(exc)))
            continue
        answers.append((ErrorCode.none, None))
        valid.append(binding)
    if valid:
        try:
            await ctx.broker.acl_store.create(valid)
        except Exception as exc:
            log.exception("storing ACLs failed")
            failed = (ErrorCode.unknown_server_error, str(exc) or type(exc).__name__)
            answers = [failed if code == ErrorCode.none else (code, m) for code, m in answers]
    return cls(throttle_time=no_throttle(), results=tuple(result(c, m) for c, m in answers))


SPEC = ApiSpec(api_key=API_KEY, min_version=1, max_version=3, handler=handle, name="CreateAcls")
