"""Shared helpers of the admin API handlers: version-specific kio classes, building responses whose
fields differ between versions, and turning exceptions into (error code, message) at the edge."""

from __future__ import annotations

import dataclasses
import datetime
import importlib
import logging
from functools import lru_cache
from types import ModuleType
from typing import Any

from kio.static.primitive import i32Timedelta

from strom.protocol.errors import ErrorCode, KafkaError

log = logging.getLogger("strom.apis.admin")

# ConfigResource.Type codes (DescribeConfigs, AlterConfigs, IncrementalAlterConfigs)
RESOURCE_TOPIC = 2
RESOURCE_BROKER = 4
RESOURCE_BROKER_LOGGER = 8

NO_THROTTLE = i32Timedelta.parse(datetime.timedelta(0))


@lru_cache(maxsize=256)
def kio_module(api: str, version: int, kind: str) -> ModuleType:
    """kio's generated module, e.g. kio_module("create_topics", 7, "response")."""
    return importlib.import_module(f"kio.schema.{api}.v{version}.{kind}")


@lru_cache(maxsize=1024)
def _field_names(cls: type) -> frozenset[str]:
    return frozenset(f.name for f in dataclasses.fields(cls))


def build(cls: type, **values: Any) -> Any:
    """Instantiate a kio dataclass with the values its version has; fields it lacks are dropped, so one
    handler can answer every version."""
    names = _field_names(cls)
    return cls(**{k: v for k, v in values.items() if k in names})


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
        return ErrorCode.invalid_request, f"Broker id must be an integer, but it is: {resource_name}"
    if value != node_id:
        return ErrorCode.invalid_request, f"Unexpected broker id, expected {node_id} but received {value}"
    return ErrorCode.none, None
