"""Fixtures for ZooKeeper cluster tests: one real ZooKeeper per test session, a fresh chroot per test
(with a plain client on it), and three ZooKeeperBackend instances (each with its own ZooKeeper session,
as three brokers would have)."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
from kazoo.client import KazooClient

from strom.cluster.metadata import BrokerInfo, MetadataImage
from strom.cluster.zookeeper import ZooKeeperBackend
from strom.config import BrokerConfig
from strom.testing.prerequisites import missing
from strom.testing.zookeeper import ZooKeeperServer, java_available

_chroots = itertools.count()


@pytest.fixture(scope="session")
def zookeeper() -> Iterator[ZooKeeperServer]:
    if not java_available():
        missing("java and Debian's zookeeper package are needed")
    with ZooKeeperServer() as server:
        yield server


@pytest.fixture
def chroot_connect(zookeeper: ZooKeeperServer, request: pytest.FixtureRequest) -> str:
    return f"{zookeeper.connect}/strom-test/{request.node.name.replace('[', '_').strip(']')}-{next(_chroots)}"


@pytest.fixture
def zk(chroot_connect: str) -> Iterator[KazooClient]:
    """A plain client on the cluster's chroot, to look at the znodes as Kafka's tools would."""
    hosts, _, chroot = chroot_connect.partition("/")
    root = KazooClient(hosts=hosts, timeout=4)
    root.start(5)
    root.ensure_path("/" + chroot)
    root.stop()
    root.close()
    client = KazooClient(hosts=chroot_connect, timeout=4)
    client.start(5)
    yield client
    client.stop()
    client.close()


BackendFactory = Callable[..., ZooKeeperBackend]


@pytest.fixture
async def make_backend(chroot_connect: str) -> AsyncIterator[BackendFactory]:
    """make_backend(node_id, **config) -> an unstarted backend; all are stopped at the end."""
    made: list[ZooKeeperBackend] = []

    def factory(node_id: int, rack: str | None = None, **props: str) -> ZooKeeperBackend:
        settings = {
            "node.id": str(node_id),
            "zookeeper.session.timeout.ms": "4000",
            "zookeeper.connect": chroot_connect,
        }
        settings.update({k.replace("_", "."): v for k, v in props.items()})
        backend = ZooKeeperBackend(
            chroot_connect,
            BrokerInfo(node_id=node_id, host="127.0.0.1", port=19090 + node_id, rack=rack),
            BrokerConfig(settings),
        )
        made.append(backend)
        return backend

    yield factory
    for backend in made:
        await backend.stop()


@pytest.fixture
async def trio(make_backend: BackendFactory) -> list[ZooKeeperBackend]:
    """Three started brokers (ids 1, 2, 3) that all see each other."""
    backends = [make_backend(i) for i in (1, 2, 3)]
    for backend in backends:
        await backend.start()
    for backend in backends:
        assert await backend.wait_for(lambda image: len(image.brokers) == 3, 5)
    return backends


async def _converge(
    backends: list[ZooKeeperBackend], predicate: Callable[[MetadataImage], bool], timeout: float = 10.0
) -> None:
    """Every given backend's image satisfies `predicate` within `timeout` seconds (measured together).
    Returns as soon as it does: the deadline only bounds a failure, and is generous because the suite
    runs on a loaded 2-core machine where ZooKeeper round trips can take seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    for backend in backends:
        ok = await backend.wait_for(predicate, max(0.0, deadline - loop.time()))
        assert ok, f"broker {backend.node_id} did not converge within {timeout} s: {backend.image}"


@pytest.fixture
def converge() -> Callable[..., Any]:
    return _converge
