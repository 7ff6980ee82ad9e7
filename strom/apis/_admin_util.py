"""Shared helpers of the admin API handlers: version-specific kio classes, resource types, and turning
exceptions into (error code, message) at the edge. `build` (responses whose fields differ between
versions) comes from strom.apis._build and is re-exported for the admin handlers."""

from __future__ import annotations

import importlib
import logging
from functools import lru_cache
from types import ModuleType

from strom.apis._build import build, no_throttle
from strom.protocol.errors import ErrorCode, KafkaError

__all__ = [
    "NO_THROTTLE",
    "RESOURCE_BROKER",
    "RESOURCE_BROKER_LOGGER",
    "RESOURCE_CLIENT_METRICS",
    "RESOURCE_GROUP",
    "RESOURCE_TOPIC",
    "broker_id_of",
    "build",
    "error_of",
    "kio_module",
]

log = logging.getLogger("strom.apis.admin")

# ConfigResource.Type codes (DescribeConfigs, AlterConfigs, IncrementalAlterConfigs)
RESOURCE_TOPIC = 2
RESOURCE_BROKER = 4
RESOURCE_BROKER_LOGGER = 8
RESOURCE_CLIENT_METRICS = 16
RESOURCE_GROUP = 32

NO_THROTTLE = no_throttle()


@lru_cache(maxsize=256)
def kio_module(api: str, version: int, kind: str) -> ModuleType:
    """kio's generated module, e.g. kio_module("create_topics", 7, "response")."""
    return importlib.import_module(f"kio.schema.{api}.v{version}.{kind}")


def error_of(exc: BaseException) -> tuple[ErrorCode, str | None]:
    """The Kafka error code and message for an exception raised while serving one item of a request."""
    if isinstance(exc, KafkaError):
        return exc.code, exc.message
    log.exception("unexpected error in admin request", exc_info=exc)
    return ErrorCode.unknown_server_error, str(exc) or type(exc).__name__


def broker_id_of(resource_name: str, node_id: int) -> tuple[ErrorCode, str | None]:
    """Check a BROKER resource name as Kafka does: it must be this broker's id (the empty name is the
    cluster-wide default, handled by the caller)."""
    try:
        value = int(resource_name)
    except ValueError:
        return ErrorCode.invalid_request, f"Node id must be an integer, but it is: {resource_name}"
    if value != node_id:
        return ErrorCode.invalid_request, f"Unexpected broker id, expected {node_id}, but received {value}"
    return ErrorCode.none, None
