"""Shared fixtures: an in-process broker per test (async) and one per module (sync, own thread)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from strom.testing.embedded import EmbeddedBroker


@pytest.fixture
async def broker() -> AsyncIterator[EmbeddedBroker]:
    """A fresh broker on the test's event loop, with a temporary data dir."""
    async with EmbeddedBroker() as embedded:
        yield embedded


@pytest.fixture(scope="module")
def module_broker() -> Iterator[EmbeddedBroker]:
    """One broker for a whole test module, on its own loop in a background thread."""
    with EmbeddedBroker() as embedded:
        yield embedded
