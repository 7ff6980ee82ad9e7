"""Fixtures for the fault tests: one real ZooKeeper (Debian's package) for the whole session; each test
runs its cluster in its own chroot."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from strom.testing.prerequisites import missing
from strom.testing.zookeeper import ZooKeeperServer, java_available


@pytest.fixture(scope="session")
def zookeeper() -> Iterator[ZooKeeperServer]:
    if not java_available():
        missing("java and Debian's zookeeper package are needed")
    with ZooKeeperServer() as server:
        yield server
