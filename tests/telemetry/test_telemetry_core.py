"""Client telemetry (KIP-714): the OTLP decoder on hand-encoded MetricsData, subscription matching and ids,
PushTelemetry's checks, the Prometheus export, and GetTelemetrySubscriptions/PushTelemetry over the wire."""

from __future__ import annotations

import struct
import uuid
from pathlib import Path

import pytest
from kio.schema.get_telemetry_subscriptions.v0.request import GetTelemetrySubscriptionsRequest
from kio.schema.push_telemetry.v0.request import PushTelemetryRequest
from kio.static.primitive import i8, i32
from prometheus_client import generate_latest
from wire_helpers import connect

from strom.protocol.compression import compress
from strom.protocol.errors import ErrorCode, InvalidConfigError
from strom.telemetry.manager import ClientTelemetry
from strom.telemetry.otlp import OtlpError, decode_metrics_data
from strom.telemetry.subscriptions import ClientIdentity
from strom.testing.embedded import EmbeddedBroker


# --- a tiny protobuf encoder for the test messages -------------------------------------------------------
def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _ld(number: int, body: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(body)) + body


def _fixed64(number: int, raw: bytes) -> bytes:
    return _varint(number << 3 | 1) + raw


def _kv(key: str, value: str) -> bytes:
    return _ld(1, key.encode()) + _ld(2, _ld(1, value.encode()))


def _point(value: float, *, integer: bool = False, attrs: dict[str, str] | None = None) -> bytes:
    body = _fixed64(3, struct.pack("<Q", 1_700_000_000_000_000_000))
    body += _fixed64(6, struct.pack("<q", int(value))) if integer else _fixed64(4, struct.pack("<d", value))
    for k, v in (attrs or {}).items():
        body += _ld(7, _kv(k, v))
    return body


def metrics_data(resource: dict[str, str] | None = None) -> bytes:
    gauge = _ld(1, b"org.apache.kafka.producer.record.queue.time.avg") + _ld(5, _ld(1, _point(2.5)))
    total = (
        _ld(1, b"org.apache.kafka.producer.connection.creation.total")
        + _ld(7, _ld(1, _point(3, integer=True, attrs={"node.id": "1"})) + _varint(2 << 3) + _varint(2)
              + _varint(3 << 3) + _varint(1))
    )  # fmt: skip
    histogram = _ld(1, b"some.histogram") + _ld(9, b"")  # skipped
    scope = _ld(2, gauge) + _ld(2, total) + _ld(2, histogram)
    res = b"".join(_ld(1, _kv(k, v)) for k, v in (resource or {}).items())
    return _ld(1, _ld(1, res) + _ld(2, scope))


def test_decode_gauges_and_sums() -> None:
    points = decode_metrics_data(metrics_data({"client_id": "c1"}))
    assert [(p.name, p.kind, p.value, p.attributes, p.monotonic) for p in points] == [
        ("org.apache.kafka.producer.record.queue.time.avg", "gauge", 2.5, (), False),
        ("org.apache.kafka.producer.connection.creation.total", "sum", 3.0, (("node.id", "1"),), True),
    ]
    assert points[0].resource == (("client_id", "c1"),)
    with pytest.raises(OtlpError):
        decode_metrics_data(b"\x0a\x10abc")  # a length past the end


def _telemetry(tmp_path: Path, clock: list[float]) -> ClientTelemetry:
    return ClientTelemetry(tmp_path / "client-metrics.json", lambda: clock[0], 1 << 20)


def test_subscriptions_match_and_persist(tmp_path: Path) -> None:
    clock = [1000.0]
    tel = _telemetry(tmp_path, clock)
    subs = tel.subscriptions
    subs.replace("producers", {"metrics": "org.apache.kafka.producer.", "interval.ms": "2000",
                               "match": "client_id=prod-.*"})  # fmt: skip
    subs.replace("all", {"metrics": "*", "interval.ms": "60000"})
    with pytest.raises(InvalidConfigError, match="interval must be between 100 and 3600000"):
        subs.replace("bad", {"interval.ms": "5"})
    with pytest.raises(InvalidConfigError, match="Unknown client metrics configuration: nope"):
        subs.replace("bad", {"nope": "1"})
    with pytest.raises(InvalidConfigError):
        subs.replace("bad", {"match": "hostname=x"})
    prod = tel.subscribe(ClientIdentity(uuid.uuid4(), "prod-1", "127.0.0.1"))
    assert (prod.metrics, prod.interval_ms) == (("",), 2000)
    other = tel.subscribe(ClientIdentity(uuid.uuid4(), "consumer", "127.0.0.1"))
    assert (other.metrics, other.interval_ms) == (("",), 60000)
    subs.replace("all", {})
    again = tel.subscribe(other.identity)
    assert again.metrics == () and again.interval_ms == 300000
    assert again.subscription_id != prod.subscription_id
    reloaded = _telemetry(tmp_path, clock).subscriptions
    assert reloaded.names() == ["producers"]


def test_push_checks_and_export(tmp_path: Path) -> None:
    clock = [1000.0]
    tel = _telemetry(tmp_path, clock)
    tel.subscriptions.replace("s", {"metrics": "org.apache.kafka.", "interval.ms": "1000"})
    who = ClientIdentity(uuid.uuid4(), "c", "127.0.0.1")
    payload = metrics_data({"client_id": "c"})
    assert tel.push(who, 1, False, 0, payload) == ErrorCode.unknown_subscription_id  # no Get yet
    inst = tel.subscribe(who)
    sid = inst.subscription_id
    assert tel.push(who, sid + 1, False, 0, payload) == ErrorCode.unknown_subscription_id
    assert tel.push(who, sid, False, 9, payload) == ErrorCode.unsupported_compression_type
    assert tel.push(who, sid, False, 4, compress(4, payload)) == ErrorCode.none  # zstd, first after Get
    assert tel.push(who, sid, False, 0, payload) == ErrorCode.throttling_quota_exceeded
    clock[0] += 1.0
    assert tel.push(who, sid, False, 0, b"\x0a\x10abc") == ErrorCode.invalid_record
    clock[0] += 1.0
    tel.max_bytes = 10
    assert tel.push(who, sid, False, 0, payload) == ErrorCode.telemetry_too_large
    tel.max_bytes = 1 << 20
    assert tel.push(who, sid, True, 1, compress(1, payload)) == ErrorCode.none  # terminating, gzip
    assert tel.push(who, sid, False, 0, payload) == ErrorCode.invalid_request  # after the last push
    assert tel.push(ClientIdentity(uuid.UUID(int=0), "c", "h"), 0, False, 0, b"") == ErrorCode.invalid_request
    from prometheus_client import CollectorRegistry

    registry = CollectorRegistry()
    registry.register(tel.exporter)
    text = generate_latest(registry).decode()
    labels = f'client_id="c",client_instance_id="{who.client_instance_id}"'
    assert f"org_apache_kafka_producer_record_queue_time_avg{{{labels}}} 2.5" in text
    assert "# TYPE org_apache_kafka_producer_connection_creation_total counter" in text
    assert 'node_id="1"' in text
    clock[0] += 120
    assert "org_apache_kafka" not in generate_latest(registry).decode()  # expired


async def test_get_and_push_over_the_wire() -> None:
    async with EmbeddedBroker() as embedded:
        embedded.broker.client_telemetry.subscriptions.replace("s", {"metrics": "*", "interval.ms": "500"})
        conn = await connect(embedded)
        try:
            got = await conn.request(GetTelemetrySubscriptionsRequest(client_instance_id=uuid.UUID(int=0)))
            assert got.error_code == ErrorCode.none
            assert got.client_instance_id not in (None, uuid.UUID(int=0))
            assert got.requested_metrics == ("",)
            assert list(got.accepted_compression_types) == [4, 3, 1, 2]
            assert got.push_interval.total_seconds() == 0.5 and got.telemetry_max_bytes == 1048576
            pushed = await conn.request(PushTelemetryRequest(
                client_instance_id=got.client_instance_id, subscription_id=got.subscription_id,
                terminating=False, compression_type=i8(0), metrics=metrics_data()))  # fmt: skip
            assert pushed.error_code == ErrorCode.none
            stale = await conn.request(PushTelemetryRequest(
                client_instance_id=got.client_instance_id, subscription_id=i32(got.subscription_id + 1),
                terminating=True, compression_type=i8(0), metrics=b""))  # fmt: skip
            assert stale.error_code == ErrorCode.unknown_subscription_id
            assert embedded.broker.client_telemetry.exporter.points_received == 2
        finally:
            await conn.close()
