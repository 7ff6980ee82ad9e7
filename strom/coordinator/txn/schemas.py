"""Kafka's record schemas of the __transaction_state topic (TransactionLogKey, TransactionLogValue).

Key: version int16 (0), transactional_id string. Value v0: producer_id int64, producer_epoch int16,
transaction_timeout_ms int32, transaction_status int8, transaction_partitions (nullable array of
topic string + partition ids int32 array; null in state Empty), last_update_timestamp_ms int64,
transaction_start_timestamp_ms int64. v1 is the flexible encoding of the same fields (compact
strings/arrays) plus tagged fields: 0 PreviousProducerId int64, 1 NextProducerId int64, 2
ClientTransactionVersion int16 (KIP-890 part 2), 3 NextProducerEpoch int16 (KIP-939); each is written
only when it differs from its default (-1, -1, 0, -1). Kafka 4.4 writes v1 once transaction.version 1 or
more is finalized, and of the tags only ClientTransactionVersion (the transaction version of the client
that made the last transition): Strom finalizes transaction.version 2, so it writes the same
(`encode_value(value, version=0)` writes Kafka 3.x's v0). A null value is the tombstone of an expired
transactional id. Status numbers are Kafka's TransactionState ids.
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass

from strom.protocol.errors import CorruptRecordError

__all__ = ["TxnLogValue", "TxnState", "decode_key", "decode_value", "encode_key", "encode_value"]

_I8 = struct.Struct(">b")
_I16 = struct.Struct(">h")
_I32 = struct.Struct(">i")
_I64 = struct.Struct(">q")
KEY_VERSION = 0
VALUE_VERSION = 1
_TAG_PREVIOUS_PRODUCER_ID = 0
_TAG_NEXT_PRODUCER_ID = 1
_TAG_CLIENT_TRANSACTION_VERSION = 2


class TxnState(enum.IntEnum):
    EMPTY = 0
    ONGOING = 1
    PREPARE_COMMIT = 2
    PREPARE_ABORT = 3
    COMPLETE_COMMIT = 4
    COMPLETE_ABORT = 5
    DEAD = 6
    PREPARE_EPOCH_FENCE = 7

    @property
    def kafka_name(self) -> str:
        """The name DescribeTransactions and ListTransactions report (Kafka's TransactionState.name)."""
        return "".join(part.capitalize() for part in self.name.split("_"))


@dataclass(frozen=True, slots=True)
class TxnLogValue:
    producer_id: int
    producer_epoch: int
    timeout_ms: int
    state: TxnState
    partitions: tuple[tuple[str, tuple[int, ...]], ...]
    last_update_ms: int
    start_ms: int
    client_transaction_version: int = 0
    previous_producer_id: int = -1
    next_producer_id: int = -1


def encode_key(transactional_id: str) -> bytes:
    raw = transactional_id.encode()
    return _I16.pack(KEY_VERSION) + _I16.pack(len(raw)) + raw


def _uvarint(value: int) -> bytes:
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def encode_value(value: TxnLogValue, version: int = VALUE_VERSION) -> bytes:
    flexible = version >= 1

    def length(n: int) -> bytes:
        return _uvarint(n + 1) if flexible else _I32.pack(n)

    out = bytearray()
    out += _I16.pack(version)
    out += _I64.pack(value.producer_id)
    out += _I16.pack(value.producer_epoch)
    out += _I32.pack(value.timeout_ms)
    out += _I8.pack(int(value.state))
    if value.state == TxnState.EMPTY:
        out += b"\x00" if flexible else _I32.pack(-1)
    else:
        out += length(len(value.partitions))
        for topic, ids in value.partitions:
            raw = topic.encode()
            out += (_uvarint(len(raw) + 1) if flexible else _I16.pack(len(raw))) + raw
            out += length(len(ids))
            for pid in ids:
                out += _I32.pack(pid)
            if flexible:
                out += b"\x00"
    out += _I64.pack(value.last_update_ms)
    out += _I64.pack(value.start_ms)
    if flexible:
        # tagged fields in tag order, each only when it differs from its default
        tags: list[tuple[int, bytes]] = []
        if value.previous_producer_id != -1:
            tags.append((_TAG_PREVIOUS_PRODUCER_ID, _I64.pack(value.previous_producer_id)))
        if value.next_producer_id != -1:
            tags.append((_TAG_NEXT_PRODUCER_ID, _I64.pack(value.next_producer_id)))
        if value.client_transaction_version != 0:
            tags.append((_TAG_CLIENT_TRANSACTION_VERSION, _I16.pack(value.client_transaction_version)))
        out += _uvarint(len(tags))
        for tag, data in tags:
            out += _uvarint(tag) + _uvarint(len(data)) + data
    return bytes(out)


class _Reader:
    def __init__(self, data: bytes, flexible: bool) -> None:
        self.data = data
        self.pos = 0
        self.flexible = flexible

    def _take(self, fmt: struct.Struct) -> int:
        if self.pos + fmt.size > len(self.data):
            raise CorruptRecordError("truncated __transaction_state record")
        (value,) = fmt.unpack_from(self.data, self.pos)
        self.pos += fmt.size
        return int(value)

    def i8(self) -> int:
        return self._take(_I8)

    def i16(self) -> int:
        return self._take(_I16)

    def i32(self) -> int:
        return self._take(_I32)

    def i64(self) -> int:
        return self._take(_I64)

    def uvarint(self) -> int:
        shift = result = 0
        while True:
            if self.pos >= len(self.data):
                raise CorruptRecordError("truncated varint")
            byte = self.data[self.pos]
            self.pos += 1
            result |= (byte & 0x7F) << shift
            if not byte & 0x80:
                return result
            shift += 7

    def length(self) -> int:
        """An array or string length; -1 is null."""
        if self.flexible:
            return self.uvarint() - 1
        return self.i32()

    def string(self) -> str:
        size = self.uvarint() - 1 if self.flexible else self.i16()
        if size < 0 or self.pos + size > len(self.data):
            raise CorruptRecordError("bad string in __transaction_state record")
        raw = self.data[self.pos : self.pos + size]
        self.pos += size
        return raw.decode()

    def skip_tags(self) -> None:
        self.tags()

    def tags(self) -> dict[int, bytes]:
        """The tagged fields (tag -> raw bytes) of a flexible struct; empty when not flexible."""
        out: dict[int, bytes] = {}
        if not self.flexible:
            return out
        for _ in range(self.uvarint()):
            tag = self.uvarint()
            size = self.uvarint()
            if self.pos + size > len(self.data):
                raise CorruptRecordError("truncated tagged field in __transaction_state record")
            out[tag] = self.data[self.pos : self.pos + size]
            self.pos += size
        return out


def decode_key(data: bytes) -> str:
    """The transactional id of a key; CorruptRecordError for other key versions."""
    reader = _Reader(data, flexible=False)
    version = reader.i16()
    if version != KEY_VERSION:
        raise CorruptRecordError(f"unknown TransactionLogKey version {version}")
    return reader.string()


def decode_value(data: bytes) -> TxnLogValue:
    version = _Reader(data, False).i16()
    if version not in (0, 1):
        raise CorruptRecordError(f"unknown TransactionLogValue version {version}")
    reader = _Reader(data, flexible=version >= 1)
    reader.pos = 2
    producer_id = reader.i64()
    epoch = reader.i16()
    timeout = reader.i32()
    status = reader.i8()
    count = reader.length()
    partitions: list[tuple[str, tuple[int, ...]]] = []
    for _ in range(max(count, 0)):
        topic = reader.string()
        ids = tuple(reader.i32() for _ in range(max(reader.length(), 0)))
        reader.skip_tags()
        partitions.append((topic, ids))
    last_update = reader.i64()
    start = reader.i64()
    tags = reader.tags()
    try:
        state = TxnState(status)
    except ValueError:
        raise CorruptRecordError(f"unknown transaction status {status}") from None

    def tag(number: int, fmt: struct.Struct, default: int) -> int:
        raw = tags.get(number)
        return int(fmt.unpack(raw)[0]) if raw is not None and len(raw) == fmt.size else default

    return TxnLogValue(
        producer_id,
        epoch,
        timeout,
        state,
        tuple(partitions),
        last_update,
        start,
        client_transaction_version=tag(_TAG_CLIENT_TRANSACTION_VERSION, _I16, 0),
        previous_producer_id=tag(_TAG_PREVIOUS_PRODUCER_ID, _I64, -1),
        next_producer_id=tag(_TAG_NEXT_PRODUCER_ID, _I64, -1),
    )
