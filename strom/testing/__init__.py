"""Test helpers: `EmbeddedBroker` (a real broker in-process on a free port) and the pytest plugin."""

from strom.testing.embedded import DEV_PRESET, EmbeddedBroker

__all__ = ["DEV_PRESET", "EmbeddedBroker"]
