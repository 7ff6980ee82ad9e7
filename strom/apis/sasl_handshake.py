"""SaslHandshake (api key 17), versions 0-1 (KIP-43; v1 for SaslAuthenticate framing, KIP-152).

The handshake of a SASL listener is answered before authentication by the connection's authenticator
(strom.security.sasl.authenticator), which also starts re-authentication (KIP-368) when it applies. A
SaslHandshake that reaches this handler is out of place: on a listener without SASL, or on an
authenticated connection that may not re-authenticate now. Kafka's KafkaApis answers it
ILLEGAL_SASL_STATE with no mechanisms, and so do we.

Errors: ILLEGAL_SASL_STATE.
"""

from __future__ import annotations

from typing import Any

from strom.apis._admin_util import kio_module
from strom.protocol.errors import ErrorCode
from strom.protocol.registry import ApiSpec

API_KEY = 17


async def handle(ctx: Any, request: Any) -> Any:
    mod = kio_module("sasl_handshake", ctx.api_version, "response")
    return mod.SaslHandshakeResponse(error_code=ErrorCode.illegal_sasl_state, mechanisms=())


SPEC = ApiSpec(api_key=API_KEY, min_version=0, max_version=1, handler=handle, name="SaslHandshake")
