"""ApiVersions (key 18), versions 0-4: the APIs and version ranges this broker serves (KIP-511 for v3).

The table is the registry itself, so advertising and implementing never disagree. A request with a version
above 4 never reaches this handler: the connection answers it with a v0 body carrying UNSUPPORTED_VERSION
and the table, and the client retries with a version it finds there. v3+ clients send their software
name and version; Kafka checks them against `[a-zA-Z0-9](?:[a-zA-Z0-9\\-.]*[a-zA-Z0-9])?` and answers
INVALID_REQUEST when they do not match. v4 (KAFKA-17011; Kafka 4 serves 0-4) has v3's layout; it only lets a
supported feature's min version be 0, and this broker lists no features.

Errors: NONE, UNSUPPORTED_VERSION (from the connection), INVALID_REQUEST (v3 bad client software name).
"""

from __future__ import annotations

import datetime
import re
from typing import Any

from kio.static.primitive import i16, i32Timedelta

from strom.protocol.errors import ErrorCode
from strom.protocol.registry import ApiSpec, response_type
from strom.server.context import RequestContext

_SOFTWARE = re.compile(r"[a-zA-Z0-9](?:[a-zA-Z0-9\-.]*[a-zA-Z0-9])?")


async def handle(ctx: RequestContext, request: Any) -> Any:
    version = ctx.api_version
    cls = response_type(18, version)
    assert cls is not None
    entry = cls.__dataclass_fields__["api_keys"].type.__args__[0]
    error = ErrorCode.none
    if version >= 3 and not (
        _SOFTWARE.fullmatch(request.client_software_name or "")
        and _SOFTWARE.fullmatch(request.client_software_version or "")
    ):
        error = ErrorCode.invalid_request
    api_keys = tuple(
        entry(api_key=i16(s.api_key), min_version=i16(s.min_version), max_version=i16(s.max_version))
        for s in ctx.broker.registry.specs()
    )
    if version == 0:
        return cls(error_code=error, api_keys=api_keys)
    return cls(error_code=error, api_keys=api_keys, throttle_time=i32Timedelta.parse(datetime.timedelta(0)))


SPEC = ApiSpec(api_key=18, min_version=0, max_version=4, handler=handle, name="ApiVersions")
