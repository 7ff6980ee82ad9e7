"""Test helpers: `EmbeddedBroker` (a real broker in-process on a free port), `EmbeddedCluster` (n brokers
in-process on their own ZooKeeper) and the pytest plugin."""

from strom.testing.embedded import DEV_PRESET, EmbeddedBroker
from strom.testing.embedded_cluster import EmbeddedCluster

__all__ = ["DEV_PRESET", "EmbeddedBroker", "EmbeddedCluster"]
