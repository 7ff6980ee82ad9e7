"""A decoder for the part of OTLP metrics (opentelemetry-proto `MetricsData`, protobuf) that Kafka
clients push with PushTelemetry (KIP-714): gauges and sums of number data points, with the attributes of
the resource and of each point. Histograms, exponential histograms and summaries are skipped (Kafka's
clients send none). Hand-written because the subset is small: protobuf's wire format is varint keys and
length-delimited fields, and the fields used are

    MetricsData        1: ResourceMetrics (repeated)
    ResourceMetrics    1: Resource, 2: ScopeMetrics (repeated)
    Resource           1: KeyValue attributes (repeated)
    ScopeMetrics       2: Metric (repeated)
    Metric             1: name, 2: description, 3: unit, 5: Gauge, 7: Sum
    Gauge / Sum        1: NumberDataPoint (repeated); Sum 2: aggregation temporality, 3: is_monotonic
    NumberDataPoint    7: KeyValue attributes, 3: time_unix_nano (fixed64), 4: as_double, 6: as_int (sfixed64)
    KeyValue           1: key, 2: AnyValue (1 string, 2 bool, 3 int, 4 double)

Malformed input raises OtlpError (PushTelemetry answers INVALID_RECORD).
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass

_DOUBLE = struct.Struct("<d")
_FIXED64 = struct.Struct("<Q")
_SFIXED64 = struct.Struct("<q")


class OtlpError(ValueError):
    """The bytes are not a MetricsData message."""


@dataclass(frozen=True, slots=True)
class DataPoint:
    name: str
    kind: str  # "gauge" or "sum"
    value: float
    time_unix_nano: int
    attributes: tuple[tuple[str, str], ...]
    resource: tuple[tuple[str, str], ...]
    monotonic: bool = False
    delta: bool = False


def _varint(buf: memoryview, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(buf):
            raise OtlpError("varint runs past the end")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise OtlpError("varint longer than 10 bytes")


def _fields(buf: memoryview) -> Iterator[tuple[int, int, object]]:
    """(field number, wire type, value): ints for varint/fixed, memoryviews for length-delimited."""
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
            yield number, wire, value
        elif wire == 1:
            if pos + 8 > len(buf):
                raise OtlpError("fixed64 runs past the end")
            yield number, wire, buf[pos : pos + 8]
            pos += 8
        elif wire == 2:
            size, pos = _varint(buf, pos)
            if pos + size > len(buf):
                raise OtlpError("length-delimited field runs past the end")
            yield number, wire, buf[pos : pos + size]
            pos += size
        elif wire == 5:
            if pos + 4 > len(buf):
                raise OtlpError("fixed32 runs past the end")
            yield number, wire, buf[pos : pos + 4]
            pos += 4
        else:
            raise OtlpError(f"unsupported wire type {wire}")


def _text(value: object) -> str:
    assert isinstance(value, memoryview)
    try:
        return bytes(value).decode()
    except UnicodeDecodeError as exc:
        raise OtlpError(f"invalid UTF-8: {exc}") from None


def _any_value(buf: memoryview) -> str:
    for number, wire, value in _fields(buf):
        if number == 1 and wire == 2:
            return _text(value)
        if number == 2 and wire == 0:
            return "true" if value else "false"
        if number == 3 and wire == 0:
            assert isinstance(value, int)
            return str(value - (1 << 64) if value >= 1 << 63 else value)
        if number == 4 and wire == 1:
            return repr(_DOUBLE.unpack(value)[0])  # type: ignore[arg-type]
    return ""


def _key_value(buf: memoryview) -> tuple[str, str]:
    key, text = "", ""
    for number, wire, value in _fields(buf):
        if number == 1 and wire == 2:
            key = _text(value)
        elif number == 2 and wire == 2:
            text = _any_value(value)  # type: ignore[arg-type]
    return key, text


def _attributes(buf: memoryview, field_number: int) -> tuple[tuple[str, str], ...]:
    return tuple(_key_value(v) for n, w, v in _fields(buf) if n == field_number and w == 2)  # type: ignore[arg-type]


def _point(buf: memoryview) -> tuple[float, int, tuple[tuple[str, str], ...]]:
    value, time_ns, attributes = 0.0, 0, []
    for number, wire, raw in _fields(buf):
        if number == 4 and wire == 1:
            value = _DOUBLE.unpack(raw)[0]  # type: ignore[arg-type]
        elif number == 6 and wire == 1:
            value = float(_SFIXED64.unpack(raw)[0])  # type: ignore[arg-type]
        elif number == 3 and wire == 1:
            time_ns = _FIXED64.unpack(raw)[0]  # type: ignore[arg-type]
        elif number == 7 and wire == 2:
            attributes.append(_key_value(raw))  # type: ignore[arg-type]
    return value, time_ns, tuple(attributes)


def _metric(buf: memoryview, resource: tuple[tuple[str, str], ...]) -> Iterator[DataPoint]:
    name = ""
    bodies: list[tuple[str, memoryview]] = []
    for number, wire, value in _fields(buf):
        if number == 1 and wire == 2:
            name = _text(value)
        elif number in (5, 7) and wire == 2:
            bodies.append(("gauge" if number == 5 else "sum", value))  # type: ignore[arg-type]
    for kind, body in bodies:
        monotonic = delta = False
        points = []
        for number, wire, value in _fields(body):
            if number == 1 and wire == 2:
                points.append(value)
            elif kind == "sum" and number == 2 and wire == 0:
                delta = value == 1  # AGGREGATION_TEMPORALITY_DELTA
            elif kind == "sum" and number == 3 and wire == 0:
                monotonic = bool(value)
        for raw in points:
            value_, time_ns, attributes = _point(raw)  # type: ignore[arg-type]
            yield DataPoint(name, kind, value_, time_ns, attributes, resource, monotonic, delta)


def decode_metrics_data(data: bytes | memoryview) -> list[DataPoint]:
    """Every gauge and sum data point of a MetricsData message."""
    points: list[DataPoint] = []
    for number, wire, rm in _fields(memoryview(data)):
        if number != 1 or wire != 2:
            continue
        resource: tuple[tuple[str, str], ...] = ()
        scopes = []
        for n, w, value in _fields(rm):  # type: ignore[arg-type]
            if n == 1 and w == 2:
                resource = _attributes(value, 1)  # type: ignore[arg-type]
            elif n == 2 and w == 2:
                scopes.append(value)
        for scope in scopes:
            for n, w, metric in _fields(scope):  # type: ignore[arg-type]
                if n == 2 and w == 2:
                    points.extend(_metric(metric, resource))  # type: ignore[arg-type]
    return points
