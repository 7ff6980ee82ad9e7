"""Hand-written Produce and Fetch response encoders, byte for byte against kio's writer."""

from __future__ import annotations

import datetime
import importlib
import io
import os
import tempfile
import typing
import uuid

import pytest
from kio.serial import entity_writer
from kio.static.primitive import i32Timedelta

from strom.apis._build import build, entry_type
from strom.apis._leader_hints import NodeEndpoint as LeaderEndpoint
from strom.apis.fetch import NodeEndpoint, PartitionResponse
from strom.apis.fetch import encode_response as encode_fetch
from strom.apis.produce import PartitionResult
from strom.apis.produce import encode_response as encode_produce
from strom.protocol.errors import ErrorCode, RecordError
from strom.protocol.frames import FileSlice
from strom.protocol.registry import response_type


def _kio_bytes(obj: object) -> bytes:
    buf = io.BytesIO()
    entity_writer(type(obj))(buf, obj)
    return buf.getvalue()


def _throttle(ms: int) -> i32Timedelta:
    return i32Timedelta.parse(datetime.timedelta(milliseconds=ms))


PRODUCE_TOPIC_IDS = {"orders": uuid.UUID("0f1e2d3c-4b5a-4978-8a6b-5c4d3e2f1a0b"), "ünïcode": uuid.uuid4()}


@pytest.mark.parametrize("version", range(3, 14))
def test_produce_response_matches_kio(version: int) -> None:
    invalid = PartitionResult(
        2,
        ErrorCode.invalid_record,
        -1,
        -1,
        0,
        error_message="One or more records have been rejected due to 2 record errors in total",
        record_errors=(RecordError(1, "Compacted topic cannot accept message without key"), RecordError(3)),
    )
    moved = PartitionResult(3, ErrorCode.not_leader_or_follower, current_leader=(2, 7))
    topics = [
        (
            "orders",
            [
                PartitionResult(0, 0, 42, -1, 3),
                PartitionResult(1, ErrorCode.corrupt_message, -1, -1, 0),
                invalid,
                moved,
            ],
        ),
        ("ünïcode", [PartitionResult(7, 0, 9, 1_700_000_000_000, 5, error_message=None)]),
    ]
    endpoints = [
        LeaderEndpoint(2, "broker-2.example", 19092, "rack-b"),
        LeaderEndpoint(3, "127.0.0.1", 9, None),
    ]
    keyed = [(PRODUCE_TOPIC_IDS[name] if version >= 13 else name, parts) for name, parts in topics]
    ours = encode_produce(version, keyed, throttle_ms=17, node_endpoints=endpoints)

    cls = response_type(0, version)
    topic_cls = entry_type(cls, "responses")
    part_cls = entry_type(topic_cls, "partition_responses")
    record_error_cls = entry_type(part_cls, "record_errors") if version >= 8 else None
    hints = version >= 10
    endpoint_cls = entry_type(cls, "node_endpoints") if hints else None

    def record_errors(p: PartitionResult) -> tuple[object, ...]:
        if record_error_cls is None:
            return ()
        return tuple(
            build(record_error_cls, batch_index=e.batch_index, batch_index_error_message=e.message)
            for e in p.record_errors
        )

    def ts(ms: int) -> object:
        if ms < 0:
            return None
        return datetime.datetime.fromtimestamp(ms / 1000, tz=datetime.UTC)

    def leader(p: PartitionResult) -> dict[str, object]:
        if not hints or p.current_leader is None:
            return {}
        leader_id, leader_epoch = p.current_leader
        schema = importlib.import_module(cls.__module__)
        return {"current_leader": schema.LeaderIdAndEpoch(leader_id=leader_id, leader_epoch=leader_epoch)}

    def topic_key(name: str) -> dict[str, object]:
        return {"topic_id": PRODUCE_TOPIC_IDS[name]} if version >= 13 else {"name": name}

    expected = build(
        cls,
        responses=tuple(
            build(
                topic_cls,
                **topic_key(name),
                partition_responses=tuple(
                    build(
                        part_cls,
                        index=p.index,
                        error_code=ErrorCode(p.error_code),
                        base_offset=p.base_offset,
                        log_append_time=ts(p.log_append_time),
                        log_start_offset=p.log_start_offset,
                        record_errors=record_errors(p),
                        error_message=p.error_message,
                        **leader(p),
                    )
                    for p in parts
                ),
            )
            for name, parts in topics
        ),
        throttle_time=_throttle(17),
        node_endpoints=tuple(
            build(endpoint_cls, node_id=e.node_id, host=e.host, port=e.port, rack=e.rack) for e in endpoints
        )
        if endpoint_cls is not None
        else (),
    )
    assert ours == _kio_bytes(expected)


def _flatten(chunks: list[bytes | FileSlice]) -> bytes:
    out = bytearray()
    for chunk in chunks:
        if isinstance(chunk, FileSlice):
            out += os.pread(chunk.file.fileno(), chunk.length, chunk.position)
        else:
            out += chunk
    return bytes(out)


TOPIC_IDS = {"t": uuid.UUID("6b2e4c1f-9a0d-4e7b-8c3a-1f2e3d4c5b6a"), "u": uuid.uuid4()}


def _topic_fields(version: int, name: str) -> dict[str, object]:
    """A response topic's key: its name below v13, its id from v13 (KIP-516)."""
    return {"topic_id": TOPIC_IDS[name]} if version >= 13 else {"topic": name}


def _key(version: int, name: str) -> str | uuid.UUID:
    return TOPIC_IDS[name] if version >= 13 else name


@pytest.mark.parametrize("version", range(4, 19))
def test_fetch_response_matches_kio(version: int) -> None:
    payload = b"0123456789" * 7
    with tempfile.TemporaryFile() as fh:
        fh.write(b"xx" + payload + b"yy")
        fh.flush()
        topics = [
            (
                _key(version, "t"),
                [
                    PartitionResponse(0, 0, 100, 100, 3, FileSlice(fh, 2, len(payload))),
                    PartitionResponse(1, ErrorCode.offset_out_of_range, -1, -1, -1, None),
                    PartitionResponse(2, 0, 5, 5, 0, b""),
                ],
            ),
            (_key(version, "u"), [PartitionResponse(9, 0, 1, 1, 0, b"abc")]),
        ]
        chunks = encode_fetch(version, topics, error_code=0, session_id=123, throttle_ms=4)
        ours = _flatten(chunks)
    assert any(isinstance(c, FileSlice) for c in chunks), "records must be sent as file slices"

    cls = response_type(1, version)
    topic_cls = entry_type(cls, "responses")
    part_cls = entry_type(topic_cls, "partitions")
    records = {0: payload, 1: b"", 2: b"", 9: b"abc"}
    expected = build(
        cls,
        throttle_time=_throttle(4),
        error_code=ErrorCode.none,
        session_id=123,
        responses=tuple(
            build(
                topic_cls,
                **_topic_fields(version, name),
                partitions=tuple(
                    build(
                        part_cls,
                        partition_index=p.partition,
                        error_code=ErrorCode(p.error_code),
                        high_watermark=p.high_watermark,
                        last_stable_offset=p.last_stable_offset,
                        log_start_offset=p.log_start_offset,
                        aborted_transactions=None,
                        preferred_read_replica=-1,
                        records=records[p.partition],
                    )
                    for p in parts
                ),
            )
            for name, parts in zip(("t", "u"), (topics[0][1], topics[1][1]), strict=True)
        ),
    )
    assert ours == _kio_bytes(expected)


@pytest.mark.parametrize("version", range(12, 19))
def test_fetch_response_leader_hints_match_kio(version: int) -> None:
    """KIP-951 (v16+): current_leader on NOT_LEADER_OR_FOLLOWER / FENCED_LEADER_EPOCH partitions and the
    leaders' endpoints, both tagged fields; below v16 neither is written."""
    leader = (3, 7)
    topics = [
        (
            _key(version, "t"),
            [
                PartitionResponse(0, ErrorCode.not_leader_or_follower, current_leader=leader),
                PartitionResponse(1, ErrorCode.fenced_leader_epoch, current_leader=(-1, -1)),
                PartitionResponse(2, 0, 5, 5, 0, b"abc"),
            ],
        )
    ]
    endpoints = [NodeEndpoint(3, "broker-3.example", 9093, None), NodeEndpoint(4, "b4", 19092, "rack-b")]
    ours = _flatten(encode_fetch(version, topics, session_id=9, node_endpoints=endpoints))

    cls = response_type(1, version)
    topic_cls = entry_type(cls, "responses")
    part_cls = entry_type(topic_cls, "partitions")
    hints = version >= 16

    def part(
        index: int, error: ErrorCode, hw: int, records: bytes, current: tuple[int, int] | None
    ) -> object:
        fields: dict[str, object] = {}
        if hints and current is not None:
            leader_cls = typing.get_type_hints(part_cls)["current_leader"]
            fields["current_leader"] = build(leader_cls, leader_id=current[0], leader_epoch=current[1])
        return build(
            part_cls,
            partition_index=index,
            error_code=error,
            high_watermark=hw,
            last_stable_offset=hw,
            log_start_offset=0 if hw >= 0 else -1,
            aborted_transactions=None,
            preferred_read_replica=-1,
            records=records,
            **fields,
        )

    fields: dict[str, object] = {}
    if hints:
        node_cls = entry_type(cls, "node_endpoints")
        fields["node_endpoints"] = tuple(
            build(node_cls, node_id=n.node_id, host=n.host, port=n.port, rack=n.rack) for n in endpoints
        )
    expected = build(
        cls,
        throttle_time=_throttle(0),
        error_code=ErrorCode.none,
        session_id=9,
        responses=(
            build(
                topic_cls,
                **_topic_fields(version, "t"),
                partitions=(
                    part(0, ErrorCode.not_leader_or_follower, -1, b"", leader),
                    part(1, ErrorCode.fenced_leader_epoch, -1, b"", (-1, -1)),
                    part(2, ErrorCode.none, 5, b"abc", None),
                ),
            ),
        ),
        **fields,
    )
    assert ours == _kio_bytes(expected)


def test_empty_records_are_zero_length_not_null() -> None:
    body = _flatten(encode_fetch(4, [("t", [PartitionResponse(0, 0, 0, 0, 0, None)])]))
    assert body.endswith(b"\x00\x00\x00\x00")
    assert not body.endswith(b"\xff\xff\xff\xff")


@pytest.mark.parametrize("version", range(4, 19))
def test_fetch_response_with_aborted_transactions_matches_kio(version: int) -> None:
    aborted = {0: [(7, 10), (9, 12)], 1: []}
    topics = [
        (
            _key(version, "t"),
            [
                PartitionResponse(0, 0, 20, 15, 0, b"abcd", aborted_transactions=aborted[0]),
                PartitionResponse(1, 0, 5, 5, 0, b"", aborted_transactions=aborted[1]),
            ],
        )
    ]
    ours = _flatten(encode_fetch(version, topics, error_code=0, session_id=0, throttle_ms=0))
    cls = response_type(1, version)
    topic_cls = entry_type(cls, "responses")
    part_cls = entry_type(topic_cls, "partitions")
    aborted_cls = entry_type(part_cls, "aborted_transactions")
    expected = build(
        cls,
        throttle_time=_throttle(0),
        error_code=ErrorCode.none,
        session_id=0,
        responses=(
            build(
                topic_cls,
                **_topic_fields(version, "t"),
                partitions=tuple(
                    build(
                        part_cls,
                        partition_index=p.partition,
                        error_code=ErrorCode.none,
                        high_watermark=p.high_watermark,
                        last_stable_offset=p.last_stable_offset,
                        log_start_offset=p.log_start_offset,
                        aborted_transactions=tuple(
                            build(aborted_cls, producer_id=pid, first_offset=first)
                            for pid, first in aborted[p.partition]
                        ),
                        preferred_read_replica=-1,
                        records=p.records,
                    )
                    for p in topics[0][1]
                ),
            ),
        ),
    )
    assert ours == _kio_bytes(expected)
