"""Record-level rules of a leader's append: Kafka's LogValidator checks on single records (KIP-467).

A produced batch whose records break a topic rule is refused as a whole, and the refusal names every bad
record of that batch (`RecordError`: its index in the batch and Kafka's message for it), which Produce
v8+ returns in `record_errors` so that clients fail only those records (librdkafka fails the others with
its local _INVALID_DIFFERENT_RECORD instead of the broker's error). The rules, in Kafka's order per record:

- a compacted topic (cleanup.policy=compact) refuses records without a key: INVALID_RECORD;
- a CreateTime topic refuses timestamps outside [now - message.timestamp.before.max.ms,
  now + message.timestamp.after.max.ms] (KIP-937; -1, "no timestamp", is never checked): INVALID_TIMESTAMP;
- a batch that claims LogAppendTime (only the broker may set it) is refused record by record:
  INVALID_TIMESTAMP (on a CreateTime topic its records carry the batch's max timestamp, which is checked
  like any other timestamp instead, as Kafka does).

The partition-level error is INVALID_TIMESTAMP if any record has a bad timestamp, else INVALID_RECORD, with
Kafka's messages. The records are read only when a rule needs them: on compacted topics, when the batch
header's timestamps (its first and its max) or its timestamp type are out of bounds, and when
message.timestamp.before.max.ms is finite, since a header bounds its newest record but not its oldest
(a record may carry a negative delta from the first timestamp).
"""

from __future__ import annotations

from strom.config import LONG_MAX, LogConfig
from strom.protocol.errors import InvalidRecordError, InvalidTimestampError, RecordError
from strom.protocol.record_batch import BatchHeader
from strom.protocol.records import Record, decode_records

__all__ = ["check_records", "needs_records"]

NO_TIMESTAMP = -1
LOG_APPEND_TIME = 1
_COMPRESSION_NAMES = {0: "uncompressed", 1: "gzip", 2: "snappy", 3: "lz4", 4: "zstd"}


def _java_long(value: int) -> int:
    """`value` wrapped to a signed 64-bit integer, as Java's long arithmetic in Kafka's messages does
    (now + after.max.ms overflows when the limit is Long.MAX_VALUE)."""
    return (value + 2**63) % 2**64 - 2**63


def _out_of_range(ts: int, now_ms: int, config: LogConfig) -> bool:
    diff = now_ms - ts
    return diff > config.message_timestamp_before_max_ms or -diff > config.message_timestamp_after_max_ms


def needs_records(header: BatchHeader, config: LogConfig, now_ms: int) -> bool:
    """Whether a produced batch's records must be read to apply the rules (see the module docstring)."""
    if header.is_control:
        return False
    if config.compact or header.timestamp_type == LOG_APPEND_TIME:
        return True
    if config.log_append_time:
        return False
    if config.message_timestamp_before_max_ms < LONG_MAX:
        return True
    return any(
        ts != NO_TIMESTAMP and _out_of_range(ts, now_ms, config)
        for ts in (header.base_timestamp, header.max_timestamp)
    )


def _record_text(record: Record, header: BatchHeader, config: LogConfig) -> str:
    """Kafka's toString of the record its validator saw: a compressed batch kept in its codec is read
    without keys and values (PartialDefaultRecord, sizes -1 for null), any other as a DefaultRecord."""
    offset = header.base_offset + record.offset_delta
    timestamp = _timestamp(record, header)
    codec = header.compression
    if codec and config.compression_type in ("producer", _COMPRESSION_NAMES.get(codec)):
        key = -1 if record.key is None else len(record.key)
        value = -1 if record.value is None else len(record.value)
        kind = "PartialDefaultRecord"
    else:
        key = 0 if record.key is None else len(record.key)
        value = 0 if record.value is None else len(record.value)
        kind = "DefaultRecord"
    return f"{kind}(offset={offset}, timestamp={timestamp}, key={key} bytes, value={value} bytes)"


def _timestamp(record: Record, header: BatchHeader) -> int:
    # the records of a LogAppendTime batch all read as the batch's max timestamp
    if header.timestamp_type == LOG_APPEND_TIME:
        return header.max_timestamp
    return header.base_timestamp + record.timestamp_delta


def _record_error(
    index: int, record: Record, header: BatchHeader, config: LogConfig, now_ms: int, topic_partition: str
) -> tuple[RecordError, bool] | None:
    """The error of one record and whether it is a timestamp error, or None when the record is fine."""
    if config.compact and record.key is None:
        message = f"Compacted topic cannot accept message without key in topic partition {topic_partition}"
        return RecordError(index, message), False
    timestamp = _timestamp(record, header)
    if not config.log_append_time and timestamp != NO_TIMESTAMP:
        if _out_of_range(timestamp, now_ms, config):
            low = _java_long(now_ms - config.message_timestamp_before_max_ms)
            high = _java_long(now_ms + config.message_timestamp_after_max_ms)
            message = (
                f"Timestamp {timestamp} of message with offset {header.base_offset + record.offset_delta} "
                f"is out of range. The timestamp should be within [{low}, {high}]"
            )
            return RecordError(index, message), True
    elif header.timestamp_type == LOG_APPEND_TIME:
        message = (
            f"Invalid timestamp type in message {_record_text(record, header, config)}. Producer should not "
            "set timestamp type to LogAppendTime."
        )
        return RecordError(index, message), True
    return None


def check_records(
    batch: memoryview, header: BatchHeader, config: LogConfig, now_ms: int, topic_partition: str
) -> None:
    """Apply the record rules to one produced batch (its bytes from the header on); raise
    InvalidRecordError or InvalidTimestampError naming every bad record. `topic_partition` is
    "<topic>-<partition>", as Kafka's messages name it."""
    errors: list[RecordError] = []
    bad_timestamp = False
    newest = NO_TIMESTAMP
    for index, record in enumerate(decode_records(batch)):
        found = _record_error(index, record, header, config, now_ms, topic_partition)
        if found is not None:
            errors.append(found[0])
            bad_timestamp = bad_timestamp or found[1]
        newest = max(newest, _timestamp(record, header))
    if bad_timestamp:
        raise InvalidTimestampError("One or more records have been rejected due to invalid timestamp", errors)
    if errors:
        shown = ", ".join(str(error) for error in errors[:3])
        raise InvalidRecordError(
            f"One or more records have been rejected due to {len(errors)} record errors in total, and only "
            f"showing the first three errors at most: [{shown}]",
            errors,
        )
    if (
        not config.log_append_time
        and header.max_timestamp != newest
        and header.max_timestamp != NO_TIMESTAMP
        and _out_of_range(header.max_timestamp, now_ms, config)
    ):
        # Every record is fine but the header claims a newer timestamp than any of them: the time index
        # and retention would take that claim, so it is refused rather than stored.
        raise InvalidTimestampError(
            f"Max timestamp {header.max_timestamp} of the batch is out of range and is not the timestamp "
            f"of any of its records (the newest is {newest})"
        )
