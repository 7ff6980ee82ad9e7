"""Kafka's compression codecs: round trips, xerial snappy framing, raw snappy, independent LZ4 blocks."""

from __future__ import annotations

import gzip
import struct

import cramjam
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from strom.protocol.compression import GZIP, LZ4, SNAPPY, ZSTD, codec_by_name, compress, decompress
from strom.protocol.errors import CorruptRecordError


@settings(max_examples=30, deadline=None)
@given(st.binary(max_size=100_000), st.sampled_from([0, GZIP, SNAPPY, LZ4, ZSTD]))
def test_round_trip(data, codec):
    assert decompress(codec, compress(codec, data)) == data


def test_snappy_is_xerial_framed_in_blocks():
    data = bytes(range(256)) * 400  # 100 KiB: several 32 KiB blocks
    out = compress(SNAPPY, data)
    assert out[:8] == b"\x82SNAPPY\x00"
    assert struct.unpack_from(">ii", out, 8) == (1, 1)
    pos, blocks, plain = 16, 0, b""
    while pos < len(out):
        (length,) = struct.unpack_from(">i", out, pos)
        plain += bytes(cramjam.snappy.decompress_raw(out[pos + 4 : pos + 4 + length]))
        pos += 4 + length
        blocks += 1
    assert plain == data and blocks == 4


def test_raw_snappy_is_accepted():
    data = b"hello kafka " * 100
    assert decompress(SNAPPY, bytes(cramjam.snappy.compress_raw(data))) == data


def test_lz4_frame_has_independent_blocks():
    out = compress(LZ4, b"x" * 300_000)
    assert out[:4] == b"\x04\x22\x4d\x18"
    flg = out[4]
    assert flg >> 6 == 1  # frame version 01
    assert flg & 0x20  # block independence: Kafka's reader refuses linked blocks


def test_gzip_is_standard():
    assert gzip.decompress(compress(GZIP, b"abc" * 10)) == b"abc" * 10


def test_garbage_is_corrupt():
    with pytest.raises(CorruptRecordError):
        decompress(ZSTD, b"not zstd at all")
    with pytest.raises(CorruptRecordError):
        decompress(7, b"")


def test_codec_names():
    assert codec_by_name("uncompressed") == 0
    assert codec_by_name("zstd") == ZSTD
    with pytest.raises(ValueError):
        codec_by_name("brotli")


@pytest.mark.parametrize("codec", [GZIP, SNAPPY, LZ4, ZSTD])
def test_decompression_is_bounded(codec: int) -> None:
    plain = bytes(3 * 1024 * 1024)  # zeros: a tiny compressed batch that inflates a lot
    packed = compress(codec, plain)
    assert len(packed) < len(plain) // 10
    with pytest.raises(CorruptRecordError):
        decompress(codec, packed, limit=1024 * 1024)
    assert decompress(codec, packed, limit=len(plain)) == plain  # an exact fit is allowed
    assert decompress(codec, packed) == plain  # the default bound grows the buffer as needed


def test_snappy_length_preamble_is_checked_before_allocating() -> None:
    # a raw snappy block claiming 2**32 - 1 bytes: refused from its preamble, nothing allocated
    forged = b"\xff\xff\xff\xff\x0f" + b"\x00" * 16
    with pytest.raises(CorruptRecordError):
        decompress(SNAPPY, forged)
