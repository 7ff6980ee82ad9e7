"""The Produce request decoder agrees with kio field for field, and its record sets are views."""

from __future__ import annotations

import importlib
import io
from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from kio.serial import entity_writer
from kio.static.primitive import i16, i32

from strom.protocol.errors import InvalidRequestError
from strom.protocol.produce_request import decode_produce_request
from strom.protocol.registry import decode_with_kio

VERSIONS = range(3, 10)


def _kio(version: int) -> object:
    return importlib.import_module(f"kio.schema.produce.v{version}.request")


def encode(version: int, txn: str | None, acks: int, timeout_ms: int, topics: list) -> bytes:
    mod = _kio(version)
    req = mod.ProduceRequest(  # type: ignore[attr-defined]
        transactional_id=txn,
        acks=i16(acks),
        timeout=timedelta(milliseconds=timeout_ms),
        topic_data=tuple(
            mod.TopicProduceData(  # type: ignore[attr-defined]
                name=name,
                partition_data=tuple(
                    mod.PartitionProduceData(index=i32(index), records=records)  # type: ignore[attr-defined]
                    for index, records in parts
                ),
            )
            for name, parts in topics
        ),
    )
    buf = io.BytesIO()
    entity_writer(type(req))(buf, req)
    return buf.getvalue()


topics_strategy = st.lists(
    st.tuples(
        st.text(min_size=1, max_size=20),
        st.lists(st.tuples(st.integers(0, 2**31 - 1), st.none() | st.binary(max_size=300)), max_size=4),
    ),
    max_size=4,
)


@settings(max_examples=80, deadline=None)
@given(
    version=st.sampled_from(list(VERSIONS)),
    txn=st.none() | st.text(max_size=30),
    acks=st.sampled_from([-1, 0, 1, 7]),
    timeout_ms=st.integers(0, 2**31 - 1),
    topics=topics_strategy,
)
def test_matches_kio(version: int, txn: str | None, acks: int, timeout_ms: int, topics: list) -> None:
    body = encode(version, txn, acks, timeout_ms, topics)
    ours = decode_produce_request(version, memoryview(bytearray(body)))
    theirs = decode_with_kio(_kio(version).ProduceRequest, memoryview(body))  # type: ignore[attr-defined]
    assert ours.transactional_id == theirs.transactional_id
    assert ours.acks == theirs.acks
    assert ours.timeout == theirs.timeout
    assert [(t.name, [(p.index, None if p.records is None else bytes(p.records)) for p in t.partition_data])
            for t in ours.topic_data] == [
        (t.name, [(p.index, p.records) for p in t.partition_data]) for t in theirs.topic_data
    ]


def test_records_are_writable_views_of_the_frame() -> None:
    body = bytearray(encode(9, None, -1, 1000, [("t", [(0, b"abcdef")])]))
    records = decode_produce_request(9, memoryview(body)).topic_data[0].partition_data[0].records
    assert isinstance(records, memoryview) and not records.readonly
    records[0:1] = b"Z"
    assert b"Zbcdef" in body  # the same memory, not a copy


@pytest.mark.parametrize("version", [3, 9])
def test_truncated_requests_are_invalid(version: int) -> None:
    body = encode(version, "tx", 1, 1000, [("topic", [(0, b"x" * 50), (1, b"y" * 10)])])
    for cut in range(len(body) - 1):
        with pytest.raises(InvalidRequestError):
            decode_produce_request(version, memoryview(body[:cut]))


def test_impossible_array_length_is_invalid() -> None:
    body = bytearray(encode(3, None, 1, 1000, []))
    body[-4:] = (10**6).to_bytes(4, "big")  # topic count far beyond the bytes left
    with pytest.raises(InvalidRequestError):
        decode_produce_request(3, memoryview(body))
