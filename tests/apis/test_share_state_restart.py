"""A share group's progress survives a kill -9 of `strom serve` (KIP-932): the share coordinator keeps each
share-partition's state in __share_group_state and the leader reads it back after the restart, so a new
member of the group gets only the records no member acknowledged before (confluent-kafka's ShareConsumer,
implicit acknowledgement), never the acknowledged ones again."""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka import Producer, ShareConsumer
from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource, NewTopic
from test_group_persistence import start

from strom.testing.ports import free_port

pytestmark = pytest.mark.compat

SHARE_STATE_SETTINGS = {
    "share.coordinator.state.topic.replication.factor": "1",
    "share.coordinator.state.topic.min.isr": "1",
}


@pytest.fixture
def data_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="strom-share-state-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _produce(bootstrap: str, values: list[str]) -> None:
    producer = Producer({"bootstrap.servers": bootstrap})
    for value in values:
        producer.produce("shared", value.encode(), partition=0)
    assert producer.flush(20) == 0


def _consume(bootstrap: str, wanted: int, settle_s: float) -> list[str]:
    """What one new member of the group gets: up to `wanted` records, then whatever arrives in `settle_s`
    more (nothing, when the state was kept). Closing acknowledges them (implicit mode)."""
    consumer = ShareConsumer({"bootstrap.servers": bootstrap, "group.id": "restarting"})
    consumer.subscribe(["shared"])
    got: list[str] = []
    try:
        deadline = time.monotonic() + 40
        while len(got) < wanted and time.monotonic() < deadline:
            got += [m.value().decode() for m in consumer.poll(0.5) if m.error() is None]
        settle = time.monotonic() + settle_s
        while time.monotonic() < settle:
            got += [m.value().decode() for m in consumer.poll(0.5) if m.error() is None]
        # one more poll acknowledges the last batch before close (implicit acknowledgement)
        consumer.poll(0.5)
    finally:
        consumer.close()
    return got


def test_acknowledged_records_stay_acknowledged_after_kill_9(data_dir: Path) -> None:
    port = free_port()
    proc = start(data_dir, port, SHARE_STATE_SETTINGS)
    try:
        bootstrap = proc.bootstrap
        admin = AdminClient({"bootstrap.servers": bootstrap})
        admin.create_topics([NewTopic("shared", 1, 1)])["shared"].result(15)
        earliest = ConfigEntry(
            "share.auto.offset.reset", "earliest", incremental_operation=AlterConfigOpType.SET
        )
        resource = ConfigResource(ConfigResource.Type.GROUP, "restarting", incremental_configs=[earliest])
        admin.incremental_alter_configs([resource])[resource].result(15)
        first = [f"a{i}" for i in range(10)]
        _produce(bootstrap, first)
        assert sorted(_consume(bootstrap, len(first), 1.0)) == sorted(first)

        assert proc.pid is not None
        os.killpg(proc.pid, signal.SIGKILL)
        proc.stop()
        proc = start(data_dir, port, SHARE_STATE_SETTINGS)
        later = [f"b{i}" for i in range(5)]
        _produce(bootstrap, later)
        assert sorted(_consume(bootstrap, len(later), 3.0)) == sorted(later)
    finally:
        proc.stop()
