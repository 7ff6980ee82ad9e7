"""Records inside v2 batches: decoding (all codecs) and building, checked against kafka-python."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from kafka.record.default_records import DefaultRecordBatch

from strom.protocol.errors import CorruptRecordError
from strom.protocol.records import Record, build_batch, decode_records, encode_varint, read_varint

optional_bytes = st.one_of(st.none(), st.binary(max_size=50))
records_strategy = st.lists(
    st.tuples(
        optional_bytes,
        optional_bytes,
        st.integers(-1000, 10**6),
        st.lists(st.tuples(st.text(max_size=5), optional_bytes), max_size=3),
    ),
    min_size=1,
    max_size=20,
)


@settings(max_examples=50, deadline=None)
@given(records_strategy, st.sampled_from([0, 1, 2, 3, 4]))
def test_build_then_decode(items, codec):
    records = [Record(i, ts, k, v, hs) for i, (k, v, ts, hs) in enumerate(items)]
    raw = build_batch(records, codec=codec, base_timestamp=1_000_000)
    assert decode_records(raw) == records


@settings(max_examples=30, deadline=None)
@given(records_strategy)
def test_kafka_python_reads_what_we_build(items):
    records = [Record(i, max(ts, 0), k, v, hs) for i, (k, v, ts, hs) in enumerate(items)]
    raw = build_batch(records, codec=1, base_timestamp=2_000_000, base_offset=77)
    theirs = DefaultRecordBatch(raw)
    assert theirs.validate_crc()
    decoded = [(r.offset, r.timestamp, r.key, r.value, [(k, v) for k, v in r.headers]) for r in theirs]
    assert decoded == [
        (77 + r.offset_delta, 2_000_000 + r.timestamp_delta, r.key, r.value, r.headers) for r in records
    ]


@given(st.integers(-(2**63), 2**63 - 1))
def test_varint_round_trip(value):
    out = bytearray()
    encode_varint(value, out)
    assert read_varint(out, 0) == (value, len(out))


def test_varint_zigzag_bytes():
    for value, encoded in [
        (0, b"\x00"),
        (-1, b"\x01"),
        (1, b"\x02"),
        (63, b"\x7e"),
        (-64, b"\x7f"),
        (64, b"\x80\x01"),
    ]:
        out = bytearray()
        encode_varint(value, out)
        assert bytes(out) == encoded


def test_truncated_records_are_corrupt():
    raw = bytearray(build_batch([Record(0, 0, b"key", b"value")], base_timestamp=1))
    raw[61] = 0x7E  # the first record's length (varint 63) now overruns the batch
    with pytest.raises(CorruptRecordError):
        decode_records(bytes(raw))
