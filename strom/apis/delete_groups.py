"""DeleteGroups (api key 42), versions 0-3: delete Empty groups with their committed offsets.

Tombstones for the group's offsets and metadata are written to __consumer_offsets before answering.
v3 adds an error message to each result, which Kafka 4.4 leaves null for these errors, as we do; kio has
no v3 schema, so v3 requests are read with v2's (the same layout) and v3 responses are encoded here.

Errors per group: NOT_COORDINATOR, COORDINATOR_LOAD_IN_PROGRESS, INVALID_GROUP_ID, GROUP_ID_NOT_FOUND,
NON_EMPTY_GROUP, GROUP_AUTHORIZATION_FAILED (no DELETE on the group).
"""

from __future__ import annotations

from typing import Any

from strom.apis._authz import may
from strom.apis._build import build, entry_type, no_throttle
from strom.protocol.errors import ErrorCode
from strom.protocol.frames import RawResponse
from strom.protocol.registry import ApiSpec, decode_with_kio, request_type, response_type
from strom.protocol.wire import EMPTY_TAGS, I16, I32, array_len, nullable_string, string
from strom.security.authorizer import AclOperation, ResourceType

API_KEY = 42
MAX_VERSION = 3


def decode(version: int, body: memoryview) -> Any:
    return decode_with_kio(request_type(API_KEY, min(version, 2)), body)  # type: ignore[arg-type]


def encode_v3(names: list[str], results: dict[str, ErrorCode]) -> bytes:
    """DeleteGroups v3 response body: v2's fields plus a null error message per result."""
    out = bytearray(I32.pack(0))
    out += array_len(len(names), True)
    for name in names:
        out += string(name, True) + I16.pack(int(results[name])) + nullable_string(None, True) + EMPTY_TAGS
    out += EMPTY_TAGS
    return bytes(out)


async def handle(ctx: Any, request: Any) -> Any:
    coordinator = ctx.broker.group_coordinator
    names = list(dict.fromkeys(request.groups_names))
    deletable = [g for g in names if may(ctx, AclOperation.DELETE, ResourceType.GROUP, g)]
    core, now = coordinator.core, coordinator.now_ms()
    results = dict.fromkeys(names, ErrorCode.group_authorization_failed)
    if deletable:
        results.update(await coordinator.call(lambda cb: core.delete_groups(deletable, now, cb)))
    if ctx.api_version >= 3:
        return RawResponse([encode_v3(names, results)], leading_throttle=True)
    cls = response_type(API_KEY, ctx.api_version)
    result_cls = entry_type(cls, "results")
    return build(
        cls,
        throttle_time=no_throttle(),
        results=tuple(build(result_cls, group_id=g, error_code=results[g]) for g in names),
    )


SPEC = ApiSpec(
    api_key=API_KEY,
    min_version=0,
    max_version=MAX_VERSION,
    handler=handle,
    decode=decode,
    name="DeleteGroups",
)
