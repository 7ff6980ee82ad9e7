"""Named exceptions for Kafka error conditions.

Inside Strom errors are exceptions with names; at the edge (an API handler) they become the Kafka error
code they carry. `ErrorCode` is kio's enum of Kafka's error codes (see the protocol guide's error table).

Records that break a topic rule (KIP-467) are refused with the whole batch, and the exception names each
bad record (`RecordError`: its index in the batch and why), which Produce v8+ answers in `record_errors`
so that a client can fail just those records.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from kio.schema.errors import ErrorCode

__all__ = [
    "CorruptRecordError",
    "DuplicateSequenceError",
    "ErrorCode",
    "InvalidConfigError",
    "InvalidProducerEpochError",
    "InvalidRecordError",
    "InvalidRequestError",
    "InvalidTimestampError",
    "KafkaError",
    "KafkaStorageError",
    "MessageTooLargeError",
    "NotLeaderOrFollowerError",
    "OffsetOutOfRangeError",
    "OutOfOrderSequenceError",
    "PolicyViolationError",
    "RecordError",
    "RecordTooLargeError",
    "UnknownProducerIdError",
    "UnknownTopicOrPartitionError",
]


@dataclass(frozen=True, slots=True)
class RecordError:
    """One invalid record of a produced batch (Kafka's ProduceResponse.RecordError, KIP-467)."""

    batch_index: int
    """The record's position in its batch, from 0."""
    message: str | None = None

    def __str__(self) -> str:
        # Kafka's RecordError.toString, which its partition-level error message lists
        message = "null" if self.message is None else f"'{self.message}'"
        return f"RecordError(batchIndex={self.batch_index}, message={message})"


class KafkaError(Exception):
    """An error that maps to one Kafka error code. Subclasses fix the code; the message is for logs and
    for the `error_message` fields of responses that have one."""

    code: ErrorCode = ErrorCode.unknown_server_error
    record_errors: tuple[RecordError, ...] = ()
    """The records at fault, when a rule refused single records of a batch (KIP-467)."""

    def __init__(self, message: str = "", code: ErrorCode | None = None) -> None:
        super().__init__(message or self.__class__.__name__)
        if code is not None:
            self.code = code

    @property
    def message(self) -> str:
        return str(self)


class CorruptRecordError(KafkaError):
    """A record batch fails CRC, magic or length checks (CORRUPT_MESSAGE)."""

    code = ErrorCode.corrupt_message


class _RecordRuleError(KafkaError):
    """A rule refused records of a batch; `record_errors` names them (empty when the batch as a whole is
    at fault)."""

    def __init__(self, message: str = "", record_errors: Iterable[RecordError] = ()) -> None:
        super().__init__(message)
        self.record_errors = tuple(record_errors)


class InvalidRecordError(_RecordRuleError):
    """A record breaks a topic rule, e.g. no key on a compacted topic (INVALID_RECORD)."""

    code = ErrorCode.invalid_record


class RecordTooLargeError(KafkaError):
    """A batch larger than max.message.bytes (MESSAGE_TOO_LARGE)."""

    code = ErrorCode.message_too_large


MessageTooLargeError = RecordTooLargeError


class RecordListTooLargeError(KafkaError):
    """A record set larger than a segment can hold (RECORD_LIST_TOO_LARGE)."""

    code = ErrorCode.record_list_too_large


class InvalidTimestampError(_RecordRuleError):
    """A timestamp outside message.timestamp.before/after.max.ms (INVALID_TIMESTAMP)."""

    code = ErrorCode.invalid_timestamp


class OffsetOutOfRangeError(KafkaError):
    code = ErrorCode.offset_out_of_range


class UnknownTopicOrPartitionError(KafkaError):
    code = ErrorCode.unknown_topic_or_partition


class NotLeaderOrFollowerError(KafkaError):
    code = ErrorCode.not_leader_or_follower


class OutOfOrderSequenceError(KafkaError):
    code = ErrorCode.out_of_order_sequence_number


class DuplicateSequenceError(KafkaError):
    """A batch the log already holds; the produce path answers it as a success (with the old offset)."""

    code = ErrorCode.duplicate_sequence_number

    def __init__(self, message: str = "", first_offset: int = -1) -> None:
        super().__init__(message)
        self.first_offset = first_offset


class InvalidProducerEpochError(KafkaError):
    code = ErrorCode.invalid_producer_epoch


class UnknownProducerIdError(KafkaError):
    code = ErrorCode.unknown_producer_id


class InvalidRequestError(KafkaError):
    code = ErrorCode.invalid_request


class PolicyViolationError(KafkaError):
    code = ErrorCode.policy_violation


class InvalidConfigError(KafkaError):
    code = ErrorCode.invalid_config


class KafkaStorageError(KafkaError):
    code = ErrorCode.kafka_storage_error
