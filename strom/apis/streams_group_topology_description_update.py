"""StreamsGroupTopologyDescriptionUpdate (api key 93), version 0: a streams member sends its topology's
description for a topology description plugin (group.streams.topology.description.plugin.class) to store.

Kafka 4.4 serves the API on brokers and, with no plugin configured (its default), answers every request
UNSUPPORTED_VERSION "The broker has no streams group topology description plugin configured."; Strom has
no such plugins and answers the same. Members are never asked for a description (StreamsGroupHeartbeat v1
answers TopologyDescriptionRequired false).
"""

from __future__ import annotations

from typing import Any

from strom.apis._streams_wire import Reader, Writer
from strom.protocol.errors import ErrorCode
from strom.protocol.frames import RawResponse
from strom.protocol.registry import ApiSpec

API_KEY = 93
NO_PLUGIN = "The broker has no streams group topology description plugin configured."


def decode(version: int, body: memoryview) -> str:
    """The group id; the description itself is not read (nothing would store it)."""
    return Reader(body).str()


async def handle(ctx: Any, request: str) -> Any:
    w = Writer().i32(0).i16(int(ErrorCode.unsupported_version)).nstr(NO_PLUGIN).tags()
    return RawResponse([w.bytes()], leading_throttle=True)


SPEC = ApiSpec(
    api_key=API_KEY,
    min_version=0,
    max_version=0,
    handler=handle,
    decode=decode,
    name="StreamsGroupTopologyDescriptionUpdate",
)
