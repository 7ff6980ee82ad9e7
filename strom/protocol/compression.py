"""Kafka's record batch compression codecs (attribute bits 0-2), all through cramjam.

- 1 gzip: RFC 1952 streams.
- 2 snappy: Kafka (through snappy-java) writes the xerial framing: the 16-byte header
  b"\\x82SNAPPY\\x00" + version 1 + compatible version 1, then blocks of [int32 length][raw snappy].
  Some clients (older librdkafka, Go clients) send raw snappy, so reads accept both.
- 3 lz4: the LZ4 frame format with independent blocks (Kafka's KafkaLZ4BlockOutputStream never links
  blocks, and its reader rejects linked ones).
- 4 zstd: zstd frames (KIP-110).

Decompression is bounded (`MAX_DECOMPRESSED`): a small batch that claims or inflates to an absurd size (a
compression bomb) is refused as corrupt without allocating more than the bound. gzip, lz4 and zstd
decompress into a buffer that grows geometrically up to the bound; snappy's length preamble is checked
before anything is allocated.
"""

from __future__ import annotations

import struct
from collections.abc import Callable

import cramjam

from strom.protocol.errors import CorruptRecordError

__all__ = ["CODEC_NAMES", "GZIP", "LZ4", "NONE", "SNAPPY", "ZSTD", "codec_by_name", "compress", "decompress"]

NONE = 0
GZIP = 1
SNAPPY = 2
LZ4 = 3
ZSTD = 4

CODEC_NAMES = {NONE: "none", GZIP: "gzip", SNAPPY: "snappy", LZ4: "lz4", ZSTD: "zstd"}

_XERIAL_MAGIC = b"\x82SNAPPY\x00"
_XERIAL_HEADER = _XERIAL_MAGIC + struct.pack(">ii", 1, 1)
_XERIAL_BLOCK = 32 * 1024  # snappy-java's default block size
_INT32 = struct.Struct(">i")

Buffer = bytes | bytearray | memoryview

MAX_DECOMPRESSED = 256 * 1024 * 1024
"""The most bytes one batch's records may inflate to (Kafka's own limit is the heap; a bound keeps a
compression bomb from taking the broker's memory)."""
_FIRST_GUESS = 64 * 1024
_TOO_SMALL = "failed to write whole buffer"  # cramjam's message when the output buffer is full


def codec_by_name(name: str) -> int:
    """Codec id for a compression.type value ('uncompressed' and 'none' are 0)."""
    lowered = name.lower()
    if lowered in ("uncompressed", "none"):
        return NONE
    for code, codec_name in CODEC_NAMES.items():
        if codec_name == lowered:
            return code
    raise ValueError(f"unknown compression codec {name!r}")


def _snappy_compress(data: Buffer) -> bytes:
    view = memoryview(data)
    out = bytearray(_XERIAL_HEADER)
    for start in range(0, len(view), _XERIAL_BLOCK):
        block = bytes(cramjam.snappy.compress_raw(view[start : start + _XERIAL_BLOCK]))
        out += _INT32.pack(len(block))
        out += block
    return bytes(out)


def _raw_snappy_length(block: memoryview) -> int:
    """The uncompressed length a raw snappy block declares (its leading varint)."""
    value = shift = 0
    for pos in range(min(5, len(block))):
        byte = block[pos]
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value
        shift += 7
    raise CorruptRecordError("bad snappy length preamble")


def _snappy_decompress(data: Buffer, limit: int) -> bytes:
    view = memoryview(data)
    if bytes(view[:8]) != _XERIAL_MAGIC:
        if _raw_snappy_length(view) > limit:
            raise CorruptRecordError(f"snappy records would inflate past {limit} bytes")
        return bytes(cramjam.snappy.decompress_raw(view))
    pos = len(_XERIAL_HEADER)
    out = bytearray()
    while pos < len(view):
        if len(view) - pos < 4:
            raise CorruptRecordError("truncated xerial snappy block length")
        (length,) = _INT32.unpack_from(view, pos)
        pos += 4
        if length < 0 or pos + length > len(view):
            raise CorruptRecordError("truncated xerial snappy block")
        block = view[pos : pos + length]
        if len(out) + _raw_snappy_length(block) > limit:
            raise CorruptRecordError(f"snappy records would inflate past {limit} bytes")
        out += cramjam.snappy.decompress_raw(block)
        pos += length
    return bytes(out)


def _bounded(decompress_into: Callable[[Buffer, bytearray], int], data: Buffer, limit: int) -> bytes:
    """Decompress into a buffer grown 4x at a time up to `limit`; refuse what does not fit."""
    size = min(limit, max(_FIRST_GUESS, 4 * len(data)))
    while True:
        out = bytearray(size)
        try:
            written = decompress_into(data, out)
        except Exception as exc:
            if _TOO_SMALL not in str(exc):
                raise
            if size >= limit:
                raise CorruptRecordError(f"records inflate past {limit} bytes") from None
            size = min(limit, size * 4)
            continue
        del out[written:]
        return bytes(out)


def _lz4_compress(data: Buffer) -> bytes:
    compressor = cramjam.lz4.Compressor(block_linked=False)
    compressor.compress(bytes(data))
    return bytes(compressor.finish())


def compress(codec: int, data: Buffer) -> bytes:
    """Compress `data` (the concatenated records of a batch) with Kafka codec `codec`."""
    if codec == NONE:
        return bytes(data)
    if codec == GZIP:
        return bytes(cramjam.gzip.compress(data))
    if codec == SNAPPY:
        return _snappy_compress(data)
    if codec == LZ4:
        return _lz4_compress(data)
    if codec == ZSTD:
        return bytes(cramjam.zstd.compress(data))
    raise CorruptRecordError(f"unknown compression codec {codec}")


def decompress(codec: int, data: Buffer, limit: int = MAX_DECOMPRESSED) -> bytes:
    """Decompress the records section of a batch; CorruptRecordError if the codec is unknown, the data
    does not decode, or it would inflate past `limit` bytes."""
    try:
        if codec == NONE:
            return bytes(data)
        if codec == GZIP:
            return _bounded(cramjam.gzip.decompress_into, data, limit)
        if codec == SNAPPY:
            return _snappy_decompress(data, limit)
        if codec == LZ4:
            return _bounded(cramjam.lz4.decompress_into, data, limit)
        if codec == ZSTD:
            return _bounded(cramjam.zstd.decompress_into, data, limit)
    except CorruptRecordError:
        raise
    except Exception as exc:  # cramjam raises its own DecompressionError and ValueError
        raise CorruptRecordError(f"cannot decompress {CODEC_NAMES.get(codec, codec)} records: {exc}") from exc
    raise CorruptRecordError(f"unknown compression codec {codec}")
