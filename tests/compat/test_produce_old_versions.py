"""Produce v0-v2 as Kafka 4 treats them (KIP-896, KAFKA-18659): ApiVersions lists Produce from v0, because
librdkafka before 2.8 turns compression off against a broker whose Produce range starts higher, but a
Produce request below v3 is never served: the broker closes that connection and no other. The same test
runs against Apache Kafka 4.4 (`--kafka-reference`), which is where the expectations come from.
"""

from __future__ import annotations

import socket
import struct
import zlib

import pytest
from confluent_kafka import Producer

pytestmark = pytest.mark.compat

PRODUCE = 0
API_VERSIONS = 18


def _connect(broker: str) -> socket.socket:
    host, port = broker.rsplit(":", 1)
    return socket.create_connection((host, int(port)), timeout=15)


def _request(api_key: int, version: int, correlation: int, body: bytes) -> bytes:
    client_id = b"compat"
    frame = struct.pack(">hhih", api_key, version, correlation, len(client_id)) + client_id + body
    return struct.pack(">i", len(frame)) + frame


def _response(sock: socket.socket) -> bytes | None:
    """One response frame, or None when the broker closed the connection instead."""
    try:
        head = sock.recv(4, socket.MSG_WAITALL)
        if len(head) < 4:
            return None
        (size,) = struct.unpack(">i", head)
        data = sock.recv(size, socket.MSG_WAITALL)
    except ConnectionResetError:
        return None
    return data if len(data) == size else None


def _listed_versions(broker: str) -> dict[int, tuple[int, int]]:
    with _connect(broker) as sock:
        sock.sendall(_request(API_VERSIONS, 0, 1, b""))
        data = _response(sock)
    assert data is not None
    correlation, error, count = struct.unpack_from(">ihi", data)
    assert (correlation, error) == (1, 0)
    entries = (struct.unpack_from(">hhh", data, 10 + 6 * i) for i in range(count))
    return {key: (low, high) for key, low, high in entries}


def _message_set_v1(key: bytes, value: bytes) -> bytes:
    """One uncompressed message of magic 1, the format Produce v2 carries."""
    body = struct.pack(">bbq", 1, 0, 1_700_000_000_000)
    body += struct.pack(">i", len(key)) + key + struct.pack(">i", len(value)) + value
    message = struct.pack(">I", zlib.crc32(body)) + body
    return struct.pack(">qi", 0, len(message)) + message


def _produce_v2_body(topic: str) -> bytes:
    records = _message_set_v1(b"k", b"old format")
    name = topic.encode()
    return (
        struct.pack(">hii", 1, 10_000, 1)
        + struct.pack(">h", len(name)) + name
        + struct.pack(">iii", 1, 0, len(records)) + records
    )


def test_produce_is_listed_from_v0(broker: str) -> None:
    low, high = _listed_versions(broker)[PRODUCE]
    assert low == 0
    assert high >= 13


@pytest.mark.parametrize("version", [0, 1, 2])
def test_produce_below_v3_closes_only_that_connection(broker: str, topic: str, version: int) -> None:
    with _connect(broker) as bystander, _connect(broker) as sock:
        sock.sendall(_request(PRODUCE, version, 7, _produce_v2_body(topic)))
        assert _response(sock) is None  # closed without an answer
        bystander.sendall(_request(API_VERSIONS, 0, 8, b""))
        answer = _response(bystander)
        assert answer is not None and struct.unpack_from(">ih", answer) == (8, 0)
    delivered: list[object] = []
    producer = Producer({"bootstrap.servers": broker, "compression.type": "gzip"})
    producer.produce(topic, b"new format", on_delivery=lambda err, _msg: delivered.append(err))
    assert producer.flush(30) == 0
    assert delivered == [None]
