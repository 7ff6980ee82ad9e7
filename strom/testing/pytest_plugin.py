"""pytest plugin (entry point `pytest11: strom`): a real Strom broker for your tests.

Fixtures:
- `strom_broker` (session scope): an `EmbeddedBroker` started on a free port with a temporary data dir,
  or, with `--strom-bootstrap host:port` (or env `STROM_TEST_BOOTSTRAP`), an external broker or cluster
  (Strom or Apache Kafka). Either way it has `.bootstrap_servers`.
- `strom_cluster` (session scope): an `EmbeddedCluster` of three brokers on its own ZooKeeper, started only
  when a test asks for it (skipped without Java and the zookeeper package); `.bootstrap_servers`,
  `.stop_broker(id)`, `.start_broker(id)`. A test that stops a broker starts it again.
- `strom_topic`: a fresh topic per test (one partition; mark a test with `@pytest.mark.strom_topic(
  partitions=3, config={...})` for others), deleted afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest


@dataclass(frozen=True, slots=True)
class ExternalBroker:
    """A broker the tests did not start; only its address is known."""

    bootstrap_servers: str


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("strom")
    group.addoption(
        "--strom-bootstrap",
        default=os.environ.get("STROM_TEST_BOOTSTRAP"),
        help="Point the strom_broker fixture at this running broker (host:port) instead of an embedded one.",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "strom_topic(partitions=1, config=None): settings of the topic the strom_topic fixture makes",
    )


@pytest.fixture(scope="session")
def strom_broker(request: pytest.FixtureRequest) -> Iterator[Any]:
    external = request.config.getoption("--strom-bootstrap")
    if external:
        yield ExternalBroker(external)
        return
    from strom.testing.embedded import EmbeddedBroker

    with EmbeddedBroker() as broker:
        yield broker


@pytest.fixture(scope="session")
def strom_cluster() -> Iterator[Any]:
    from strom.testing.prerequisites import missing
    from strom.testing.zookeeper import java_available

    if not java_available():
        missing("strom_cluster needs java and the zookeeper package")
    from strom.testing.embedded_cluster import EmbeddedCluster

    with EmbeddedCluster(3) as cluster:
        yield cluster


def _topic_name(nodeid: str) -> str:
    base = re.sub(r"[^a-zA-Z0-9._-]+", "-", nodeid.rsplit("::", 1)[-1]).strip("-")[:180] or "topic"
    return f"{base}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def strom_topic(strom_broker: Any, request: pytest.FixtureRequest) -> Iterator[str]:
    from strom.client.cluster import ClusterClient

    marker = request.node.get_closest_marker("strom_topic")
    partitions = int(marker.kwargs.get("partitions", 1)) if marker else 1
    configs = dict(marker.kwargs.get("config") or {}) if marker else {}
    name = _topic_name(request.node.nodeid)

    async def create() -> None:
        async with ClusterClient(strom_broker.bootstrap_servers) as client:
            await client.create_topic(name, partitions, -1, {k: str(v) for k, v in configs.items()})

    async def delete() -> None:
        async with ClusterClient(strom_broker.bootstrap_servers) as client:
            await client.delete_topic(name)

    asyncio.run(create())
    yield name
    with contextlib.suppress(Exception):
        asyncio.run(delete())
