"""Fixtures for the compatibility suite: one broker under test per session, driven by real clients.

By default the broker is `strom serve` on a fresh data directory and a free loopback port.
`--kafka-reference` runs the same tests against Apache Kafka 4.x (single-node KRaft from the jars that
scripts/fetch-tools caches), which is how the suite itself is validated; `--bootstrap host:port` points
at a broker that is already running. Tools written in other languages (Kafka's Java tools, kafkajs) are
fetched lazily through scripts/fetch-tools; a tool that cannot be fetched fails the test loudly.
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from compat_support import BrokerUnderTest, JavaTools, Kcat, TopicMaker  # noqa: E402

from benchmarks.peers import brokers, tools  # noqa: E402


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("strom-compat", "Strom compatibility suite")
    group.addoption("--kafka-reference", action="store_true", default=False,
                    help="run tests/compat against Apache Kafka 4.x (KRaft) instead of strom serve")
    group.addoption("--bootstrap", default=None, metavar="HOST:PORT",
                    help="run tests/compat against an already running broker")
    group.addoption("--strom-set", action="append", default=[], metavar="KEY=VALUE",
                    help="extra broker setting for the strom serve under test (repeatable)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The `peer` tests start Strom clusters of their own and never talk to the broker under test, so the
    yardstick pass against Kafka (`--kafka-reference`) leaves them out rather than running them twice."""
    if not config.getoption("--kafka-reference", default=False):
        return
    kept = [item for item in items if item.get_closest_marker("peer") is None]
    if len(kept) != len(items):
        config.hook.pytest_deselected(items=[item for item in items if item not in kept])
        items[:] = kept


@pytest.fixture(scope="session")
def broker_under_test(request: pytest.FixtureRequest) -> Iterator[BrokerUnderTest]:
    """The broker every compat test talks to, started once per session."""
    config = request.config
    external = config.getoption("--bootstrap", default=None)
    if external:
        yield BrokerUnderTest("external", external)
        return
    if config.getoption("--kafka-reference", default=False):
        tools.ensure_tools()
        proc = brokers.start_kafka()
        kind = "kafka"
    else:
        settings = dict(item.split("=", 1) for item in config.getoption("--strom-set", default=[]))
        proc = brokers.start_strom(settings=settings)
        kind = "strom"
    try:
        yield BrokerUnderTest(kind, proc.bootstrap, proc.log_path)
    finally:
        proc.stop()


@pytest.fixture(scope="session")
def broker(broker_under_test: BrokerUnderTest) -> str:
    """Bootstrap "host:port" of the broker under test."""
    return broker_under_test.bootstrap


@pytest.fixture(scope="session")
def fetched_tools() -> None:
    """Runs scripts/fetch-tools (idempotent) before a test needing Java tools, kafkajs or Tansu."""
    tools.ensure_tools()


@pytest.fixture(scope="session")
def make_topic(broker: str) -> Iterator[TopicMaker]:
    """Creates fresh, uniquely named topics: make_topic(partitions=1, configs=None) -> name."""
    maker = TopicMaker(broker)
    yield maker
    maker.delete_all()


@pytest.fixture
def topic_name(request: pytest.FixtureRequest) -> str:
    """A topic name no other test uses (not created)."""
    stem = "".join(c if c.isalnum() else "-" for c in request.node.name)[:60]
    return f"compat-{stem}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def topic(make_topic: TopicMaker, topic_name: str) -> str:
    """A freshly created topic with one partition."""
    return make_topic(name=topic_name)


@pytest.fixture(scope="session")
def java_tools(broker: str, fetched_tools: None) -> JavaTools:
    """Runs Apache Kafka's command-line tools (kafka-tools jar) against the broker under test."""
    return JavaTools(broker)


@pytest.fixture(scope="session")
def kcat(broker: str) -> Kcat:
    """Runs kcat (librdkafka's command-line client) against the broker under test."""
    return Kcat(broker)


@pytest.fixture(scope="session")
def node_modules(fetched_tools: None) -> Path:
    return tools.node_modules()


@pytest.fixture
def unique() -> Callable[[str], str]:
    return lambda prefix: f"{prefix}-{uuid.uuid4().hex[:8]}"
