"""Group configs (GROUP config resources, KIP-848/932/1071) through Kafka 4.4's own tools and clients; every
test passes on Strom and on Apache Kafka 4.4 (`--kafka-reference`).

- `kafka-configs --entity-type groups` (org.apache.kafka.tools.ConfigCommand): --describe of a group that
  has no configs, --alter --add-config / --delete-config, --describe (the dynamic configs with their
  synonyms), --describe --all (every group config with the broker key it falls back to), --describe of all
  groups, and the refusals of a value outside the broker's bounds and of an unknown key, word for word.
- The share group coordinator honours a group's configs: with share.auto.offset.reset=earliest a share
  consumer (confluent-kafka's ShareConsumer) that joins after records were produced reads them all, where
  a group without configs (Kafka's default, latest) reads only what comes later; with
  share.isolation.level=read_committed it never sees an aborted transaction's record, which a
  read_uncommitted group does see.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from compat_support import JavaTools, ToolFailed, TopicMaker
from confluent_kafka import Producer, ShareConsumer

pytestmark = pytest.mark.compat

CONFIGS = "org.apache.kafka.tools.ConfigCommand"


def _configs(java_tools: JavaTools, *args: str) -> str:
    return java_tools.run(
        CONFIGS, "--bootstrap-server", java_tools.bootstrap, "--entity-type", "groups", *args
    ).stdout


def _refusal(java_tools: JavaTools, group: str, config: str) -> str:
    with pytest.raises(ToolFailed) as failed:
        _configs(java_tools, "--entity-name", group, "--alter", "--add-config", config)
    return str(failed.value)


def test_kafka_configs_on_groups(java_tools: JavaTools, unique: Callable[[str], str]) -> None:
    group = unique("configs-group")
    assert _configs(java_tools, "--entity-name", group, "--describe").strip() == (
        f"The group '{group}' doesn't exist and doesn't have dynamic config."
    )

    added = (
        "consumer.session.timeout.ms=50000,share.auto.offset.reset=earliest,streams.num.standby.replicas=1"
    )
    out = _configs(java_tools, "--entity-name", group, "--alter", "--add-config", added)
    assert out.strip() == f"Completed updating config for group {group}."
    described = _configs(java_tools, "--entity-name", group, "--describe").splitlines()
    assert described[0] == f"Dynamic configs for group {group} are:"
    assert sorted(line.strip() for line in described[1:]) == [
        "consumer.session.timeout.ms=50000 sensitive=false synonyms={DYNAMIC_GROUP_CONFIG:"
        "consumer.session.timeout.ms=50000, DEFAULT_CONFIG:group.consumer.session.timeout.ms=45000}",
        "share.auto.offset.reset=earliest sensitive=false synonyms={DYNAMIC_GROUP_CONFIG:"
        "share.auto.offset.reset=earliest, DEFAULT_CONFIG:share.auto.offset.reset=latest}",
        "streams.num.standby.replicas=1 sensitive=false synonyms={DYNAMIC_GROUP_CONFIG:"
        "streams.num.standby.replicas=1, DEFAULT_CONFIG:group.streams.num.standby.replicas=0}",
    ]

    assert (
        "InvalidConfigurationException: consumer.session.timeout.ms must be in the range 45000 to 60000 "
        "inclusive." in _refusal(java_tools, group, "consumer.session.timeout.ms=1000")
    )
    assert "InvalidConfigurationException: Unknown group config name: nope" in _refusal(
        java_tools, group, "nope=1"
    )
    assert (
        "InvalidConfigurationException: Invalid value bogus for configuration share.isolation.level: String "
        "must be one of: read_committed, read_uncommitted"
        in _refusal(java_tools, group, "share.isolation.level=bogus")
    )

    out = _configs(
        java_tools, "--entity-name", group, "--alter", "--delete-config", "share.auto.offset.reset"
    )
    assert out.strip() == f"Completed updating config for group {group}."
    kept = _configs(java_tools, "--entity-name", group, "--describe").splitlines()[1:]
    assert sorted(line.strip().split("=")[0] for line in kept) == [
        "consumer.session.timeout.ms",
        "streams.num.standby.replicas",
    ]

    every = _configs(java_tools, "--entity-name", group, "--describe", "--all").splitlines()
    assert every[0] == f"All configs for group {group} are:"
    entries = {line.strip().split("=", 1)[0]: line.strip() for line in every[1:]}
    assert len(entries) == 21
    assert entries["share.isolation.level"] == (
        "share.isolation.level=read_uncommitted sensitive=false "
        "synonyms={DEFAULT_CONFIG:share.isolation.level=read_uncommitted}"
    )
    assert entries["consumer.heartbeat.interval.ms"] == (
        "consumer.heartbeat.interval.ms=5000 sensitive=false "
        "synonyms={DEFAULT_CONFIG:group.consumer.heartbeat.interval.ms=5000}"
    )
    assert entries["streams.assignor.name"] == (
        "streams.assignor.name=sticky sensitive=false "
        "synonyms={DEFAULT_CONFIG:group.streams.assignors=sticky}"
    )

    assert f"Dynamic configs for group {group} are:" in _configs(java_tools, "--describe").splitlines()


def _read(bootstrap: str, group: str, topic: str, expected: int, timeout: float = 60.0) -> list[str]:
    """Values a share consumer of `group` reads from `topic` until it has `expected` of them, then for
    2 s more (so an extra record would show), within `timeout`."""
    consumer = ShareConsumer({"bootstrap.servers": bootstrap, "group.id": group})
    consumer.subscribe([topic])
    got: list[str] = []
    deadline = time.monotonic() + timeout
    settle: float | None = None
    try:
        while time.monotonic() < deadline and (settle is None or time.monotonic() < settle):
            for message in consumer.poll(0.5):
                assert message.error() is None, message.error()
                got.append(message.value().decode())
            if settle is None and len(got) >= expected:
                settle = time.monotonic() + 2.0
    finally:
        consumer.close()
    return got


def test_share_groups_follow_their_configs(
    broker: str, java_tools: JavaTools, make_topic: TopicMaker, unique: Callable[[str], str]
) -> None:
    topic = make_topic(partitions=1)
    earliest, committed, uncommitted = unique("earliest"), unique("committed"), unique("uncommitted")
    _configs(
        java_tools, "--entity-name", earliest, "--alter", "--add-config", "share.auto.offset.reset=earliest"
    )
    both = "share.auto.offset.reset=earliest,share.isolation.level=read_committed"
    _configs(java_tools, "--entity-name", committed, "--alter", "--add-config", both)
    _configs(
        java_tools,
        "--entity-name",
        uncommitted,
        "--alter",
        "--add-config",
        "share.auto.offset.reset=earliest",
    )

    producer = Producer({"bootstrap.servers": broker})
    for i in range(5):
        producer.produce(topic, value=f"before-{i}".encode(), partition=0)
    assert producer.flush(20) == 0
    txn = Producer({"bootstrap.servers": broker, "transactional.id": unique("txn")})
    txn.init_transactions(30)
    txn.begin_transaction()
    txn.produce(topic, value=b"aborted", partition=0)
    assert txn.flush(20) == 0  # written before the abort (an abort drops what is still queued)
    txn.abort_transaction(30)
    txn.begin_transaction()
    txn.produce(topic, value=b"committed", partition=0)
    txn.commit_transaction(30)

    before = [f"before-{i}" for i in range(5)]
    assert _read(broker, earliest, topic, 7) == [*before, "aborted", "committed"]
    assert _read(broker, committed, topic, 6) == [*before, "committed"]
    assert _read(broker, uncommitted, topic, 7) == [*before, "aborted", "committed"]
    # a group without configs starts at the end (Kafka's default, latest)
    later = _read_later(broker, unique("plain"), topic, producer)
    assert later and all(v.startswith("after-") for v in later), later


def _read_later(
    bootstrap: str, group: str, topic: str, producer: Producer, timeout: float = 60.0
) -> list[str]:
    """What a share consumer of `group` reads while a record is produced every second until one arrives
    (the share-partition starts when the consumer first fetches, which it does not tell)."""
    consumer = ShareConsumer({"bootstrap.servers": bootstrap, "group.id": group})
    consumer.subscribe([topic])
    got: list[str] = []
    deadline = time.monotonic() + timeout
    produced = 0
    next_produce = time.monotonic() + 2.0
    try:
        while not got and time.monotonic() < deadline:
            if time.monotonic() >= next_produce:
                producer.produce(topic, value=f"after-{produced}".encode(), partition=0)
                producer.flush(10)
                produced += 1
                next_produce = time.monotonic() + 1.0
            for message in consumer.poll(0.5):
                assert message.error() is None, message.error()
                got.append(message.value().decode())
    finally:
        consumer.close()
    return got
