"""AlterConfigs (api key 33), versions 0-2.

Behaviour: the legacy, non-incremental form: the configs given become the resource's entire override
set (keys not listed return to their defaults). TOPIC resources change topic overrides; BROKER resources
(named by this broker's id) change its dynamic broker configs (KIP-226), stored with the cluster
metadata and applied at once. `validate_only` checks without changing anything. Changes reach running
logs through the metadata listener.

Errors per resource: NONE; INVALID_REQUEST (resource named twice, a broker id that is not ours, the
cluster-wide default broker resource "", a read-only broker key, or an unsupported resource type);
UNKNOWN_TOPIC_OR_PARTITION; INVALID_TOPIC_EXCEPTION; INVALID_CONFIG (unknown key, null or bad value).
"""

from __future__ import annotations

from typing import Any

from strom.apis._admin_util import NO_THROTTLE, build, error_of, kio_module
from strom.apis._config_alter import duplicate_resources, replace_overrides
from strom.protocol.errors import ErrorCode
from strom.protocol.registry import ApiSpec

API_KEY = 33
MIN_VERSION = 0
MAX_VERSION = 2


async def handle(ctx: Any, request: Any) -> Any:
    mod = kio_module("alter_configs", ctx.api_version, "response")
    duplicates = duplicate_resources(request.resources)
    results: list[Any] = []
    answered: set[tuple[int, str]] = set()
    for resource in request.resources:
        key = (int(resource.resource_type), resource.resource_name)
        code, message = ErrorCode.none, None
        if key in duplicates:
            if key in answered:
                continue
            answered.add(key)
            code, message = ErrorCode.invalid_request, "Duplicate resource in request."
        else:
            configs = {c.name: c.value for c in resource.configs}
            try:
                await replace_overrides(
                    ctx, key[0], key[1], configs, validate_only=bool(request.validate_only)
                )
            except Exception as exc:
                code, message = error_of(exc)
        results.append(
            build(
                mod.AlterConfigsResourceResponse,
                error_code=code,
                error_message=message,
                resource_type=resource.resource_type,
                resource_name=resource.resource_name,
            )
        )
    return mod.AlterConfigsResponse(throttle_time=NO_THROTTLE, responses=tuple(results))


SPEC = ApiSpec(API_KEY, MIN_VERSION, MAX_VERSION, handle, name="AlterConfigs")
