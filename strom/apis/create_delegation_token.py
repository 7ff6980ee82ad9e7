"""CreateDelegationToken (api key 38), versions 1-3 (KIP-48; v2 flexible; v3 owner principal, KIP-373).

Behaviour, as Kafka 4.4's ControllerApis and DelegationTokenControlManager answer it: the owner is the
request's owner principal (v3) or the requester; the token lives until the smaller of the request's
`max_lifetime_ms` (when > 0) and `delegation.token.max.lifetime.ms`, and expires first after
`delegation.token.expiry.time.ms` unless renewed. The response carries the token id and its HMAC (the
secret a client authenticates with), the owner and (v3) the requester.

Errors, in Kafka's order: DELEGATION_TOKEN_REQUEST_NOT_ALLOWED (PLAINTEXT, 1-way SSL or a token-authenticated
connection); DELEGATION_TOKEN_AUTHORIZATION_FAILED (a token for someone else without CREATE_TOKENS on that
User resource); DELEGATION_TOKEN_AUTH_DISABLED (no `delegation.token.secret.key`); INVALID_PRINCIPAL_TYPE
(a renewer that is not a `User`). On errors the timestamps are -1, the id empty and the HMAC empty.
"""

from __future__ import annotations

from typing import Any

from strom.apis._admin_util import NO_THROTTLE, build, kio_module
from strom.apis._token_util import allow_token_requests, manager_of, ms_of, timestamp
from strom.protocol.errors import ErrorCode
from strom.protocol.registry import ApiSpec
from strom.security.authorizer import AclOperation, ResourceType
from strom.security.principal import KafkaPrincipal

API_KEY = 38


async def handle(ctx: Any, request: Any) -> Any:
    mod = kio_module("create_delegation_token", ctx.api_version, "response")
    requester: KafkaPrincipal = ctx.principal
    owner_name = getattr(request, "owner_principal_name", None)
    owner = (KafkaPrincipal(str(request.owner_principal_type), str(owner_name)) if owner_name
             else requester)

    def answer(code: ErrorCode, issue: int = -1, expiry: int = -1, max_ms: int = -1, token_id: str = "",
               mac: bytes = b"") -> Any:
        return build(
            mod.CreateDelegationTokenResponse, error_code=code, principal_type=owner.principal_type,
            principal_name=owner.name, token_requester_principal_type=requester.principal_type,
            token_requester_principal_name=requester.name, issue_timestamp=timestamp(issue),
            expiry_timestamp=timestamp(expiry), max_timestamp=timestamp(max_ms), token_id=token_id,
            hmac=mac, throttle_time=NO_THROTTLE,
        )

    manager = manager_of(ctx)
    if not allow_token_requests(ctx):
        return answer(ErrorCode.delegation_token_request_not_allowed)
    if owner != requester and not ctx.authorize(AclOperation.CREATE_TOKENS, ResourceType.USER, str(owner)):
        return answer(ErrorCode.delegation_token_authorization_failed)
    if manager is None:
        return answer(ErrorCode.delegation_token_auth_disabled)
    renewers = [KafkaPrincipal(str(r.principal_type), str(r.principal_name)) for r in request.renewers]
    created = await manager.create(requester, owner, renewers, ms_of(request.max_lifetime))
    token = created.token
    if token is None:
        return answer(created.code)
    return answer(ErrorCode.none, token.issue_ms, token.expiry_ms, token.max_ms, token.token_id, created.hmac)


SPEC = ApiSpec(api_key=API_KEY, min_version=1, max_version=3, handler=handle, name="CreateDelegationToken")
