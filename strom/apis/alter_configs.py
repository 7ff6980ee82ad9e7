"""AlterConfigs (api key 33), versions 0-2.

Behaviour: the legacy, non-incremental form: the configs given become the resource's entire override
set (keys not listed return to their defaults). TOPIC resources change topic overrides; BROKER resources
(this broker's id, or "" for the cluster-wide defaults) change dynamic broker configs (KIP-226), stored
with the cluster metadata and applied at once; like Kafka 4.4, a broker key Strom does not know is kept
as given. GROUP resources replace a group id's group configs (strom.group_config), checked as
IncrementalAlterConfigs checks them. `validate_only` checks without changing anything. Changes reach
running logs through the metadata listener.

Errors per resource: NONE; INVALID_REQUEST (resource named twice, a null value, a broker id that is not ours,
a broker key that cannot change dynamically, a bad broker value, an empty group name, or an unsupported
resource type); UNKNOWN_TOPIC_OR_PARTITION; INVALID_TOPIC_EXCEPTION; INVALID_CONFIG (unknown or bad topic or
group key, a group value outside the broker's bounds),
TOPIC_AUTHORIZATION_FAILED, GROUP_AUTHORIZATION_FAILED or CLUSTER_AUTHORIZATION_FAILED (no ALTER_CONFIGS on
the topic, group or, for broker resources, the cluster).
"""

from __future__ import annotations

from typing import Any

from strom.apis._admin_util import NO_THROTTLE, kio_module
from strom.apis._config_alter import alter_resources, refuse_null
from strom.protocol.registry import ApiSpec

API_KEY = 33
MIN_VERSION = 0
MAX_VERSION = 2


def _given_overrides(
    _ctx: Any, _resource_type: int, _resource_name: str, resource: Any
) -> dict[str, str | None]:
    """AlterConfigs names the whole new override set."""
    for c in resource.configs:
        refuse_null(c.name, c.value)
    return {c.name: c.value for c in resource.configs}


async def handle(ctx: Any, request: Any) -> Any:
    mod = kio_module("alter_configs", ctx.api_version, "response")
    results = await alter_resources(ctx, request, mod.AlterConfigsResourceResponse, _given_overrides)
    return mod.AlterConfigsResponse(throttle_time=NO_THROTTLE, responses=results)


SPEC = ApiSpec(API_KEY, MIN_VERSION, MAX_VERSION, handle, name="AlterConfigs")
