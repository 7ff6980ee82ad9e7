"""Error answers for requests the registry does not serve.

ApiVersions with a version we do not know gets a v0 body carrying UNSUPPORTED_VERSION and our version table
(KIP-511: the client then retries with a version from that table). Any other unsupported (api, version)
whose kio response schema has a top-level `error_code` gets that schema filled with empty values and
UNSUPPORTED_VERSION; otherwise there is no well-formed answer and the connection closes, as in Kafka.
"""

from __future__ import annotations

import dataclasses
import datetime
import io
import types
import uuid
from typing import Any, get_args, get_origin

from kio.schema.api_versions.v0.response import ApiVersion as ApiVersionV0
from kio.schema.api_versions.v0.response import ApiVersionsResponse as ApiVersionsResponseV0
from kio.serial import entity_writer
from kio.static.primitive import i16

from strom.protocol.errors import ErrorCode
from strom.protocol.registry import ApiRegistry, response_type

__all__ = ["api_versions_v0_fallback", "empty_response", "unsupported_response"]


def api_versions_v0_fallback(registry: ApiRegistry) -> bytes:
    body = ApiVersionsResponseV0(
        error_code=ErrorCode.unsupported_version,
        api_keys=tuple(
            ApiVersionV0(
                api_key=i16(s.api_key), min_version=i16(s.listed_min_version), max_version=i16(s.max_version)
            )
            for s in registry.specs()
        ),
    )
    buf = io.BytesIO()
    entity_writer(ApiVersionsResponseV0)(buf, body)
    return buf.getvalue()


def _empty_value(field: dataclasses.Field[Any]) -> Any:
    if field.default is not dataclasses.MISSING:
        return field.default
    tp = field.type
    if get_origin(tp) is types.UnionType and type(None) in get_args(tp):
        return None
    if get_origin(tp) is tuple:
        return ()
    kafka_type = field.metadata.get("kafka_type", "")
    if kafka_type == "error_code":
        return ErrorCode.unsupported_version
    if kafka_type in ("timedelta_i32", "timedelta_i64"):
        return tp.parse(datetime.timedelta(0)) if hasattr(tp, "parse") else datetime.timedelta(0)
    if kafka_type == "uuid":
        return uuid.UUID(int=0)
    if kafka_type == "bool":
        return False
    if kafka_type == "string":
        return ""
    if kafka_type in ("bytes", "records"):
        return b""
    if kafka_type.startswith(("int", "uint")):
        return tp(0)
    if dataclasses.is_dataclass(tp):
        return _empty_entity(tp)  # type: ignore[arg-type]
    raise TypeError(f"no empty value for {field.name}")


def _empty_entity(cls: type) -> Any:
    kwargs = {f.name: _empty_value(f) for f in dataclasses.fields(cls) if f.init}
    return cls(**kwargs)


def empty_response(cls: type, code: ErrorCode) -> Any:
    """A response of `cls` with empty values and every top-level error code `code` (a request refused
    as a whole, such as by the authorizer)."""
    value = _empty_entity(cls)
    if "error_code" in {f.name for f in dataclasses.fields(cls)}:
        value = dataclasses.replace(value, error_code=code)
    return value


def unsupported_response(registry: ApiRegistry, api_key: int, version: int) -> bytes | None:
    """The response body for an (api_key, version) we do not serve, or None to close the connection."""
    if api_key == 18:
        return api_versions_v0_fallback(registry)
    cls = response_type(api_key, version)
    if cls is None or "error_code" not in {f.name for f in dataclasses.fields(cls)}:
        return None
    try:
        value = _empty_entity(cls)
        buf = io.BytesIO()
        entity_writer(cls)(buf, value)
    except Exception:
        return None
    return buf.getvalue()

