"""Transaction markers: Kafka's control batches that end a transaction on a partition (KIP-98).

A marker is a batch with the transactional and control attribute bits set, the producer's id and epoch,
base sequence -1 and one record whose key is ``version int16 (0), type int16`` (0 ABORT, 1 COMMIT) and
whose value is ``version int16 (0), coordinator_epoch int32`` (Kafka's EndTransactionMarker).
"""

from __future__ import annotations

import struct

from strom.protocol.errors import CorruptRecordError
from strom.protocol.record_batch import Buffer
from strom.protocol.records import Record, build_batch, decode_records

__all__ = ["ABORT", "COMMIT", "build_marker", "marker_type"]

ABORT = 0
COMMIT = 1
_KEY = struct.Struct(">hh")
_VALUE = struct.Struct(">hi")


def build_marker(
    producer_id: int, producer_epoch: int, commit: bool, coordinator_epoch: int, timestamp_ms: int
) -> bytes:
    """One control batch (base offset 0, assigned on append) ending a transaction."""
    key = _KEY.pack(0, COMMIT if commit else ABORT)
    value = _VALUE.pack(0, coordinator_epoch)
    return build_batch(
        [Record(0, 0, key, value)],
        base_timestamp=timestamp_ms,
        producer_id=producer_id,
        producer_epoch=producer_epoch,
        transactional=True,
        control=True,
    )


def marker_type(batch: Buffer) -> int:
    """ABORT or COMMIT of a whole control batch; CorruptRecordError if it holds no marker."""
    records = decode_records(batch)
    if not records or records[0].key is None or len(records[0].key) < _KEY.size:
        raise CorruptRecordError("control batch without a marker key")
    _version, kind = _KEY.unpack_from(records[0].key, 0)
    return int(kind)
