"""DescribeDelegationToken (api key 41), versions 1-3 (KIP-48; v2 flexible; v3 requester, KIP-373).

Behaviour, as Kafka 4.4's KafkaApis.handleDescribeTokensRequest answers it: an empty owner list describes
nothing; a null list every token, else the tokens those owners own or may renew. Of these, a principal
sees the tokens it owns, requested or may renew, those it may DESCRIBE (DelegationToken resource, the
token id) and those of owners it has DESCRIBE_TOKENS on (User resource, KIP-373). Each token comes with its
HMAC, renewers and timestamps.

Errors: DELEGATION_TOKEN_REQUEST_NOT_ALLOWED (PLAINTEXT, 1-way SSL or a token-authenticated connection),
DELEGATION_TOKEN_AUTH_DISABLED (no `delegation.token.secret.key`).
"""

from __future__ import annotations

from typing import Any

from strom.apis._admin_util import NO_THROTTLE, build, kio_module
from strom.apis._build import entry_type
from strom.apis._token_util import allow_token_requests, manager_of
from strom.protocol.errors import ErrorCode
from strom.protocol.registry import ApiSpec
from strom.security.authorizer import AclOperation, ResourceType
from strom.security.delegation_tokens import TokenInformation
from strom.security.principal import KafkaPrincipal

API_KEY = 41


async def handle(ctx: Any, request: Any) -> Any:
    mod = kio_module("describe_delegation_token", ctx.api_version, "response")
    manager = manager_of(ctx)

    def answer(code: ErrorCode, tokens: list[TokenInformation]) -> Any:
        token_cls = entry_type(mod.DescribeDelegationTokenResponse, "tokens")
        renewer_cls = entry_type(token_cls, "renewers")
        described = tuple(
            build(
                token_cls, principal_type=t.owner.principal_type, principal_name=t.owner.name,
                token_requester_principal_type=t.requester.principal_type,
                token_requester_principal_name=t.requester.name, issue_timestamp=t.issue_ms,
                expiry_timestamp=t.expiry_ms, max_timestamp=t.max_ms, token_id=t.token_id,
                hmac=manager.hmac_of(t.token_id) if manager is not None else b"",
                renewers=tuple(renewer_cls(principal_type=r.principal_type, principal_name=r.name)
                               for r in t.renewers),
            )
            for t in tokens
        )
        return mod.DescribeDelegationTokenResponse(
            error_code=code, tokens=described, throttle_time=NO_THROTTLE
        )

    if not allow_token_requests(ctx):
        return answer(ErrorCode.delegation_token_request_not_allowed, [])
    if manager is None or not manager.enabled:
        return answer(ErrorCode.delegation_token_auth_disabled, [])
    if request.owners is not None and not request.owners:
        return answer(ErrorCode.none, [])
    owners = None if request.owners is None else [
        KafkaPrincipal(str(o.principal_type), str(o.principal_name)) for o in request.owners
    ]
    me: KafkaPrincipal = ctx.principal

    def eligible(token: TokenInformation) -> bool:
        # Kafka's DelegationTokenManager.filterToken
        if owners is not None and not any(token.owner_or_renewer(o) for o in owners):
            return False
        return (token.owner_or_renewer(me)
                or ctx.authorize(AclOperation.DESCRIBE, ResourceType.DELEGATION_TOKEN, token.token_id)
                or ctx.authorize(AclOperation.DESCRIBE_TOKENS, ResourceType.USER, str(token.owner)))

    return answer(ErrorCode.none, [t for t in await manager.tokens() if eligible(t)])


SPEC = ApiSpec(api_key=API_KEY, min_version=1, max_version=3, handler=handle, name="DescribeDelegationToken")
