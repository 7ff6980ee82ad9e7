"""ExpireDelegationToken (api key 40), versions 1-2 (KIP-48; v2 flexible).

Behaviour, as Kafka 4.4's DelegationTokenControlManager answers it: the token named by its HMAC expires
`expiry_time_period_ms` from now (never after its max timestamp); a negative period removes it at once and
answers now as its expiry timestamp.

Errors: DELEGATION_TOKEN_REQUEST_NOT_ALLOWED (PLAINTEXT, 1-way SSL or a token-authenticated connection),
DELEGATION_TOKEN_AUTH_DISABLED, DELEGATION_TOKEN_NOT_FOUND, DELEGATION_TOKEN_OWNER_MISMATCH (not the owner,
requester or a renewer), DELEGATION_TOKEN_EXPIRED; the expiry timestamp is then -1.
"""

from __future__ import annotations

from typing import Any

from strom.apis._admin_util import NO_THROTTLE, kio_module
from strom.apis._token_util import allow_token_requests, manager_of, ms_of, timestamp
from strom.protocol.errors import ErrorCode
from strom.protocol.registry import ApiSpec

API_KEY = 40


async def handle(ctx: Any, request: Any) -> Any:
    mod = kio_module("expire_delegation_token", ctx.api_version, "response")
    manager = manager_of(ctx)
    if not allow_token_requests(ctx):
        code, expiry = ErrorCode.delegation_token_request_not_allowed, -1
    elif manager is None:
        code, expiry = ErrorCode.delegation_token_auth_disabled, -1
    else:
        code, expiry = await manager.expire(
            ctx.principal, bytes(request.hmac), ms_of(request.expiry_time_period)
        )
    return mod.ExpireDelegationTokenResponse(
        error_code=code, expiry_timestamp=timestamp(expiry), throttle_time=NO_THROTTLE
    )


SPEC = ApiSpec(api_key=API_KEY, min_version=1, max_version=2, handler=handle, name="ExpireDelegationToken")
