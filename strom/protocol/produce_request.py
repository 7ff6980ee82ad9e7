"""Produce request (api key 0) v3-13 decoder that leaves the record sets where they are in the frame.

kio's reader copies every partition's records into a new `bytes`; on the produce path those bytes are
most of the request, so this decoder returns each record set as a `memoryview` slice of the request
frame instead. When the frame is writable (the connection hands over a `bytearray` it no longer uses),
the slices are writable too and the log can assign offsets by rewriting them in place.

Layout (Kafka's ProduceRequest.json): transactional_id (nullable string), acks int16, timeout_ms int32,
topic_data [name string, partition_data [index int32, records nullable bytes]]. v9 is flexible
(KIP-482): compact strings, arrays and bytes, and a tagged-field section after each struct, skipped.
v10-12 have v9's layout; v13 names each topic by its 16-byte topic id instead of its name (KIP-516).
The field names match kio's ProduceRequest so code reading either works.
"""

from __future__ import annotations

import struct
import uuid
from dataclasses import dataclass
from datetime import timedelta

from strom.protocol.errors import InvalidRequestError
from strom.protocol.wire import read_uvarint, skip_tagged_fields

__all__ = ["PartitionProduceData", "ProduceRequest", "TopicProduceData", "decode_produce_request"]

FLEXIBLE_FROM = 9
TOPIC_IDS_FROM = 13
_I16 = struct.Struct(">h")
_I32 = struct.Struct(">i")
_ACKS_TIMEOUT = struct.Struct(">hi")


@dataclass(slots=True)
class PartitionProduceData:
    index: int
    records: memoryview | None


@dataclass(slots=True)
class TopicProduceData:
    name: str  # empty from v13, where topics are named by id
    partition_data: list[PartitionProduceData]
    topic_id: uuid.UUID | None = None  # v13+ (KIP-516)


@dataclass(slots=True)
class ProduceRequest:
    transactional_id: str | None
    acks: int
    timeout_ms: int
    topic_data: list[TopicProduceData]

    @property
    def timeout(self) -> timedelta:
        return timedelta(milliseconds=self.timeout_ms)


class _Cursor:
    """Bounds-checked reads over a request body; every failure is an InvalidRequestError."""

    __slots__ = ("buf", "flexible", "pos")

    def __init__(self, buf: memoryview, flexible: bool) -> None:
        self.buf = buf
        self.pos = 0
        self.flexible = flexible

    def _need(self, size: int) -> int:
        pos = self.pos
        if size < 0 or pos + size > len(self.buf):
            raise InvalidRequestError("truncated produce request")
        self.pos = pos + size
        return pos

    def length(self, wide: bool) -> int:
        """A length prefix: -1 for null. Compact lengths are uvarint N+1; classic ones int16/int32."""
        if self.flexible:
            value, self.pos = read_uvarint(self.buf, self.pos)
            return value - 1
        if wide:
            return _I32.unpack_from(self.buf, self._need(4))[0]
        return _I16.unpack_from(self.buf, self._need(2))[0]

    def nullable_string(self) -> str | None:
        size = self.length(False)
        if size < 0:
            return None
        start = self._need(size)
        return str(self.buf[start : start + size], "utf-8", "replace")

    def count(self, min_item: int) -> int:
        n = self.length(True)
        # an array can never hold more items than the bytes left allow
        if n < 0 or n * min_item > len(self.buf) - self.pos:
            raise InvalidRequestError(f"impossible array length {n} in produce request")
        return n

    def int32(self) -> int:
        return _I32.unpack_from(self.buf, self._need(4))[0]

    def tags(self) -> None:
        if self.flexible:
            self.pos = skip_tagged_fields(self.buf, self.pos)


def decode_produce_request(version: int, body: memoryview) -> ProduceRequest:
    """Decode a Produce v3-13 body; the records are views of `body`, not copies."""
    c = _Cursor(body, version >= FLEXIBLE_FROM)
    try:
        transactional_id = c.nullable_string()
        acks, timeout_ms = _ACKS_TIMEOUT.unpack_from(body, c._need(6))
        topics = []
        by_id = version >= TOPIC_IDS_FROM
        for _ in range(c.count(16 if by_id else 2)):
            topic_id = None
            if by_id:
                start = c._need(16)
                topic_id = uuid.UUID(bytes=bytes(body[start : start + 16]))
                name: str | None = ""
            else:
                name = c.nullable_string()
            if name is None:
                raise InvalidRequestError("null topic name in produce request")
            partitions = []
            for _ in range(c.count(5)):
                index = c.int32()
                size = c.length(True)
                records = None
                if size >= 0:
                    start = c._need(size)
                    records = body[start : start + size]
                c.tags()
                partitions.append(PartitionProduceData(index, records))
            c.tags()
            topics.append(TopicProduceData(name, partitions, topic_id))
        c.tags()
    except (struct.error, IndexError) as exc:  # defensive: the cursor checks bounds first
        raise InvalidRequestError(f"cannot parse produce request: {exc}") from None
    return ProduceRequest(transactional_id, acks, timeout_ms, topics)
