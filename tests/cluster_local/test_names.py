"""Topic name validation (Kafka's Topic.validate)."""

from __future__ import annotations

import pytest

from strom.cluster.errors import InvalidTopicError
from strom.cluster.names import validate_topic_name
from strom.protocol.errors import ErrorCode


@pytest.mark.parametrize("name", ["a", "A-b_c.d", "x" * 249, "__consumer_offsets", "..."])
def test_legal(name: str) -> None:
    validate_topic_name(name)


@pytest.mark.parametrize("name", ["", ".", "..", "x" * 250, "a b", "a/b", "ä", "t:1", "a*", None])
def test_illegal(name: str | None) -> None:
    with pytest.raises(InvalidTopicError) as info:
        validate_topic_name(name)
    assert info.value.code == ErrorCode.invalid_topic_exception
