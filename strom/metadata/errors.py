"""Named errors of the metadata log's records.

A node that meets one of these while replaying `__cluster_metadata` must stop rather than apply part of a
record (Kafka raises MetadataParseException and the controller or broker shuts down): every decoder in
`strom.metadata` either returns a whole record or raises.
"""

from __future__ import annotations

__all__ = [
    "MetadataParseError",
    "MetadataRecordError",
    "UnknownRecordTypeError",
    "UnknownRecordVersionError",
]


class MetadataRecordError(Exception):
    """Base of every metadata record error."""


class MetadataParseError(MetadataRecordError):
    """Bytes that do not decode as the record they claim to be: truncated, impossible lengths, garbage
    after the record, an unknown frame version."""


class UnknownRecordTypeError(MetadataRecordError):
    """An api key (metadata record) or control record type this Strom does not know."""

    def __init__(self, message: str, api_key: int) -> None:
        super().__init__(message)
        self.api_key = api_key


class UnknownRecordVersionError(MetadataRecordError):
    """A known record at a version newer (or older) than this Strom can read: written by a newer Kafka or
    Strom. The node stops instead of guessing the layout."""

    def __init__(self, message: str, name: str, version: int, lowest: int, highest: int) -> None:
        super().__init__(message)
        self.name = name
        self.version = version
        self.lowest = lowest
        self.highest = highest
