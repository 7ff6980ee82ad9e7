"""Kafka API handlers, one module per API, collected into the broker's registry.

How to add an API:
1. Create `strom/apis/<api_name>.py` opening with a docstring: the versions it serves, its behaviour, the
   error codes it returns and the KIPs it follows.
2. Write `async def handle(ctx: RequestContext, request) -> response`. `request` is kio's request dataclass
   of `ctx.api_version` (e.g. `kio.schema.metadata.v12.request.MetadataRequest`); return kio's response
   dataclass of the same version (look it up with `strom.protocol.registry.response_type(key, version)`),
   a `strom.protocol.frames.RawResponse` for hand-encoded bodies, or None for no response.
   Use `ctx.broker.config`, `ctx.broker.clock`, `ctx.broker.metadata` (cluster backend: `.image` and the
   admin operations), `ctx.broker.log_manager` and `ctx.broker.replica_manager`.
   Raise nothing for per-request problems: answer them with the API's error codes (KafkaError.code).
3. Declare `SPEC = ApiSpec(api_key=..., min_version=..., max_version=..., handler=handle)` at module level
   (add `decode=` only for versions kio lacks). `build_registry()` finds it; ApiVersions advertises it.
   Keep the version range to versions the handler really implements.
Modules whose name starts with `_` are helpers and are not scanned.
"""

from __future__ import annotations

import importlib
import pkgutil

from strom.apis._authz import guard
from strom.protocol.registry import ApiRegistry, ApiSpec

__all__ = ["build_registry"]


def build_registry() -> ApiRegistry:
    """A registry holding the `SPEC` of every module in this package."""
    registry = ApiRegistry()
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        spec = getattr(module, "SPEC", None)
        if isinstance(spec, ApiSpec):
            # the whole-request authorization checks wrap the handler (strom.apis._authz)
            registry.register(guard(spec))
    return registry
