"""ApiVersions (key 18), versions 0-5: the APIs and version ranges this broker serves (KIP-511 for v3).

The table is the registry itself, so advertising and implementing never disagree. A request with a version
above 4 never reaches this handler: the connection answers it with a v0 body carrying UNSUPPORTED_VERSION
and the table, and the client retries with a version it finds there. v3+ clients send their software
name and version; Kafka checks them against `[a-zA-Z0-9](?:[a-zA-Z0-9\\-.]*[a-zA-Z0-9])?` and answers
INVALID_REQUEST when they do not match. v4 (KAFKA-17011; Kafka 4 serves 0-4) has v3's layout; it only lets a
supported feature's min version be 0.

v5 adds the cluster id and node id the client believes it is talking to (KIP-1102's rebootstrap). As
Kafka 4.4 answers: both absent (null, -1) is fine; only one of them given is INVALID_REQUEST; both given
and either differing from this broker's is REBOOTSTRAP_REQUIRED (the client has stale bootstrap data and
must look the cluster up again). An error answer lists no APIs. kio has no v5 schema: `decode` reads v5
(v4's fields, then the two new ones) and hands every version to the handler as `ApiVersionsParams`; v5's
response has v4's layout.

v3+ also lists features (KIP-584) in tagged fields: `group.version` is supported at 0-1 and finalized at 1
(Kafka 4.4's level: the consumer rebalance protocol of KIP-848 is on), `transaction.version` supported at
0-2 and finalized at 2 (Kafka 4.4's level: clients use transaction version 2 of KIP-890 part 2, Produce
v12, EndTxn v5, TxnOffsetCommit v5 and no AddPartitionsToTxn/AddOffsetsToTxn), `share.version` supported
at 0-2 and finalized at 2 (Kafka 4.4's level: share groups, KIP-932, are on), `streams.version`
supported at 0-1 and finalized at 1 (Kafka 4.4's level: streams groups, KIP-1071, are on), with
finalized-features epoch 0.
As Kafka, v3 leaves out supported features whose minimum version is 0; v4+ lists them. A KRaft node
answers with the levels its metadata log finalized (FeatureLevelRecords, metadata.version included, and
kraft.version) and the log's offset as the finalized-features epoch, as Kafka's FeaturesImage does.

Errors: NONE, UNSUPPORTED_VERSION (from the connection), INVALID_REQUEST (v3+ bad client software name,
v5 half an identity), REBOOTSTRAP_REQUIRED (v5, another cluster or node).
"""

from __future__ import annotations

import datetime
import re
import struct
from dataclasses import dataclass
from typing import Any

from kio.static.primitive import i16, i32Timedelta, i64

from strom.protocol.errors import ErrorCode
from strom.protocol.registry import ApiSpec, decode_with_kio, request_type, response_type
from strom.protocol.wire import WireFormatError, read_compact_string, skip_tagged_fields
from strom.server.context import RequestContext

MAX_VERSION = 5
_NODE_ID = struct.Struct(">i")


@dataclass(frozen=True, slots=True)
class ApiVersionsParams:
    """An ApiVersions request of any version; fields a version lacks keep their defaults."""

    client_software_name: str | None = None
    client_software_version: str | None = None
    cluster_id: str | None = None
    node_id: int = -1


def decode(version: int, body: memoryview) -> ApiVersionsParams:
    if version < 5:
        request = decode_with_kio(request_type(18, version), body)  # type: ignore[arg-type]
        return ApiVersionsParams(
            getattr(request, "client_software_name", None), getattr(request, "client_software_version", None)
        )
    name, pos = read_compact_string(body, 0)
    software_version, pos = read_compact_string(body, pos)
    cluster_id, pos = read_compact_string(body, pos)
    if pos + 4 > len(body):
        raise WireFormatError("ApiVersions v5 ends before its node id")
    (node_id,) = _NODE_ID.unpack_from(body, pos)
    skip_tagged_fields(body, pos + 4)
    return ApiVersionsParams(name, software_version, cluster_id, node_id)


def _identity_error(ctx: RequestContext, request: ApiVersionsParams) -> ErrorCode:
    """v5: whether the client's idea of the cluster and node matches this broker."""
    if request.cluster_id is None and request.node_id == -1:
        return ErrorCode.none
    if request.cluster_id is None or request.node_id == -1:
        return ErrorCode.invalid_request
    broker = ctx.broker
    if request.cluster_id != broker.metadata.image.cluster_id or request.node_id != broker.node_id:
        return ErrorCode.rebootstrap_required
    return ErrorCode.none


# (feature, min supported, max supported, finalized level)
_FEATURES = (
    ("group.version", 0, 1, 1),
    ("transaction.version", 0, 2, 2),
    ("share.version", 0, 2, 2),
    ("streams.version", 0, 1, 1),
)

_SOFTWARE = re.compile(r"[a-zA-Z0-9](?:[a-zA-Z0-9\-.]*[a-zA-Z0-9])?")


async def handle(ctx: RequestContext, request: ApiVersionsParams) -> Any:
    version = ctx.api_version
    cls = response_type(18, min(version, 4))  # v5 answers in v4's layout
    assert cls is not None
    entry = cls.__dataclass_fields__["api_keys"].type.__args__[0]
    error = ErrorCode.none
    if version >= 3 and not (
        _SOFTWARE.fullmatch(request.client_software_name or "")
        and _SOFTWARE.fullmatch(request.client_software_version or "")
    ):
        error = ErrorCode.invalid_request
    elif version >= 5:
        error = _identity_error(ctx, request)
    api_keys: tuple[Any, ...] = ()
    if error is ErrorCode.none or version < 5:
        api_keys = tuple(
            entry(
                api_key=i16(s.api_key),
                min_version=i16(s.listed_min_version),
                max_version=i16(s.max_version),
            )
            for s in ctx.broker.registry.specs()
        )
    if version == 0:
        return cls(error_code=error, api_keys=api_keys)
    throttle = i32Timedelta.parse(datetime.timedelta(0))
    if version < 3 or error is not ErrorCode.none:
        return cls(error_code=error, api_keys=api_keys, throttle_time=throttle)
    supported_cls = cls.__dataclass_fields__["supported_features"].type.__args__[0]
    finalized_cls = cls.__dataclass_fields__["finalized_features"].type.__args__[0]
    supported, epoch, finalized = _feature_levels(ctx)
    return cls(
        error_code=error,
        api_keys=api_keys,
        throttle_time=throttle,
        supported_features=tuple(
            supported_cls(name=name, min_version=i16(low), max_version=i16(high))
            for name, (low, high) in supported.items()
            if low > 0 or version >= 4
        ),
        finalized_features_epoch=i64(epoch),
        finalized_features=tuple(
            finalized_cls(name=name, max_version_level=i16(level), min_version_level=i16(level))
            for name, level in finalized.items()
        ),
    )


def _feature_levels(ctx: RequestContext) -> tuple[dict[str, tuple[int, int]], int, dict[str, int]]:
    """(supported ranges, finalized epoch, finalized levels): a KRaft node's come from its metadata log
    (the backend's `feature_levels()`), else this broker's fixed table."""
    levels = getattr(ctx.broker.metadata, "feature_levels", None)
    if callable(levels):
        return levels()  # type: ignore[no-any-return]
    supported = {name: (low, high) for name, low, high, _level in _FEATURES}
    return supported, 0, {name: level for name, _low, _high, level in _FEATURES if level > 0}


SPEC = ApiSpec(
    api_key=18, min_version=0, max_version=MAX_VERSION, handler=handle, decode=decode, name="ApiVersions"
)
