"""SaslAuthenticate (api key 36), versions 0-2 (KIP-152; v1 adds session_lifetime_ms, KIP-368; v2 is
flexible).

The tokens of a SASL exchange are answered before authentication by the connection's authenticator
(strom.security.sasl.authenticator). A SaslAuthenticate that reaches this handler came after the
exchange finished (or on a listener without SASL): Kafka answers ILLEGAL_SASL_STATE with "SaslAuthenticate
request received after successful authentication", and so do we.

Errors: ILLEGAL_SASL_STATE.
"""

from __future__ import annotations

import datetime
from typing import Any

from kio.static.primitive import i64Timedelta

from strom.apis._admin_util import build, kio_module
from strom.protocol.errors import ErrorCode
from strom.protocol.registry import ApiSpec

API_KEY = 36


async def handle(ctx: Any, request: Any) -> Any:
    mod = kio_module("sasl_authenticate", ctx.api_version, "response")
    return build(
        mod.SaslAuthenticateResponse,
        error_code=ErrorCode.illegal_sasl_state,
        error_message="SaslAuthenticate request received after successful authentication",
        auth_bytes=b"",
        session_lifetime=i64Timedelta.parse(datetime.timedelta(0)),
    )


SPEC = ApiSpec(api_key=API_KEY, min_version=0, max_version=2, handler=handle, name="SaslAuthenticate")
