"""Topic name validation, as Kafka's `org.apache.kafka.common.internals.Topic.validate`.

A legal name is 1..249 characters of ASCII letters, digits, '.', '_' and '-', and is not "." or "..".
(249 leaves room for the partition suffix and the `.deleted`-style suffixes in the log directory name.)
"""

from __future__ import annotations

import re

from strom.cluster.errors import InvalidTopicError
from strom.cluster.metadata import INTERNAL_TOPICS

MAX_NAME_LENGTH = 249
_LEGAL = re.compile(r"[a-zA-Z0-9._-]+")


def validate_topic_name(name: str | None) -> None:
    """Raise InvalidTopicError (INVALID_TOPIC_EXCEPTION) with Kafka's message when `name` is illegal."""
    if not name:
        raise InvalidTopicError("Topic name is illegal, it can't be empty")
    if name in (".", ".."):
        raise InvalidTopicError('Topic name cannot be "." or ".."')
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidTopicError(
            f"Topic name is illegal, it can't be longer than {MAX_NAME_LENGTH} characters, topic name: {name}"
        )
    if not _LEGAL.fullmatch(name):
        raise InvalidTopicError(
            f'Topic name "{name}" is illegal, it contains a character other than ASCII alphanumerics, '
            "'.', '_' and '-'"
        )


def is_internal(name: str) -> bool:
    return name in INTERNAL_TOPICS
