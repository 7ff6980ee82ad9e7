"""EmbeddedCluster: its own ZooKeeper, n brokers that see each other, real clients on an RF=3 topic with
acks=all, leader fail-over by stop_broker / start_broker, the sync and async forms, and clean-up (no
process, port or directory left behind, also when start-up fails)."""

from __future__ import annotations

import asyncio
import os
import socket
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from strom.server.broker import Broker
from strom.testing import EmbeddedCluster
from strom.testing.cluster import wait_until
from strom.testing.embedded_cluster import cluster_preset
from strom.testing.prerequisites import missing
from strom.testing.zookeeper import java_available

pytestmark = pytest.mark.cluster


@pytest.fixture(autouse=True)
def _needs_zookeeper() -> None:
    if not java_available():
        missing("java and the zookeeper package are needed")


# --- helpers ----------------------------------------------------------------------------------------
def _accepts(address: str) -> bool:
    host, port = address.rsplit(":", 1)
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex((host, int(port))) == 0


def _live_children() -> set[int]:
    """Pids of this process's children that are still running (zombies excluded)."""
    me = str(os.getpid())
    found: set[int] = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[1] == me and fields[0] != "Z":
            found.add(int(stat.parent.name))
    return found


def _pid_alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _create_topic(bootstrap: str, partitions: int, rf: int) -> str:
    name = f"t-{uuid.uuid4().hex[:10]}"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(name, partitions, rf)])[name].result(20)
    wait_until(lambda: len(_layout(bootstrap, name)) == partitions, what=f"{name} in the metadata")
    return name


def _layout(bootstrap: str, topic: str) -> dict[int, tuple[int, list[int], list[int]]]:
    """{partition: (leader, replicas, isr)} as a client's Metadata request sees it."""
    meta = AdminClient({"bootstrap.servers": bootstrap}).list_topics(topic, timeout=10)
    info = meta.topics.get(topic)
    if info is None or info.error is not None:
        return {}
    return {p.id: (p.leader, sorted(p.replicas), sorted(p.isrs)) for p in info.partitions.values()}


def _produce(bootstrap: str, topic: str, values: list[bytes], partitions: int = 1) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 5})
    failed: list[Any] = []
    for i, value in enumerate(values):
        producer.produce(
            topic, value=value, partition=i % partitions, on_delivery=lambda e, _m: e and failed.append(e)
        )
    assert producer.flush(30) == 0
    assert not failed, failed[:3]


def _consumer(bootstrap: str, topic: str, partitions: int) -> Consumer:
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": f"g-{uuid.uuid4().hex[:8]}", "enable.auto.commit": False}
    )
    consumer.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
    return consumer


def _poll(consumer: Consumer, count: int, timeout: float = 30.0) -> list[bytes]:
    out: list[bytes] = []
    deadline = time.monotonic() + timeout
    while len(out) < count and time.monotonic() < deadline:
        msg = consumer.poll(0.2)
        if msg is not None and not msg.error():
            out.append(msg.value())
    return out


# --- clean-up (first, before the session cluster of the strom_cluster fixture exists) --------------
def test_sync_form_starts_its_own_zookeeper_and_leaves_nothing_behind() -> None:
    children_before = _live_children()
    with EmbeddedCluster(2) as cluster:
        assert cluster.zookeeper is not None and cluster.zookeeper.running
        zk_pid = cluster.zookeeper._proc.pid  # type: ignore[union-attr]
        zk_dir = cluster.zookeeper._dir
        root = cluster.root
        assert root is not None and zk_dir is not None and zk_dir.is_dir()
        assert cluster.zk_connect is not None
        assert cluster.zk_connect.startswith(cluster.zookeeper.connect + "/")  # its own chroot
        assert sorted(cluster.brokers) == [1, 2]
        assert all(cluster.data_dir(i).is_dir() for i in (1, 2))
        addresses = cluster.bootstrap_servers.split(",")
        assert len(set(addresses)) == 2 and all(_accepts(a) for a in addresses)
        for broker in cluster.brokers.values():
            image = broker.metadata.image
            assert sorted(image.brokers) == [1, 2] and image.controller_id in (1, 2)
        # internal topics replicated over every broker of a two-broker cluster
        assert cluster.brokers[1].config.get("offsets.topic.replication.factor") == 2
        threads = {t.name for t in threading.enumerate()}
        assert "strom-embedded-cluster" in threads
    assert not root.exists() and not zk_dir.exists()
    assert not _pid_alive(zk_pid)
    assert not any(_accepts(a) for a in addresses)
    assert "strom-embedded-cluster" not in {t.name for t in threading.enumerate()}
    assert cluster.zookeeper is None and not cluster.brokers
    wait_until(lambda: _live_children() <= children_before, 10, "child processes to exit")


def test_failed_start_cleans_up_brokers_zookeeper_and_dirs(monkeypatch: pytest.MonkeyPatch) -> None:
    children_before = _live_children()
    seen: dict[str, Any] = {}
    real_start = Broker.start

    async def failing_start(self: Broker) -> None:
        if self.node_id == 2:
            cluster = seen["cluster"]
            seen.update(root=cluster.root, zk_pid=cluster.zookeeper._proc.pid, zk_dir=cluster.zookeeper._dir)
            seen["first"] = cluster.bootstrap_servers  # broker 1 is up by now
            raise RuntimeError("disk on fire")
        await real_start(self)

    monkeypatch.setattr(Broker, "start", failing_start)
    cluster = EmbeddedCluster(3)
    seen["cluster"] = cluster
    with pytest.raises(RuntimeError, match="disk on fire"), cluster:
        pytest.fail("must not get here")
    assert seen["root"] is not None and not seen["root"].exists()
    assert not seen["zk_dir"].exists() and not _pid_alive(seen["zk_pid"])
    assert not _accepts(seen["first"])
    assert not cluster.brokers and cluster.root is None
    assert "strom-embedded-cluster" not in {t.name for t in threading.enumerate()}
    wait_until(lambda: _live_children() <= children_before, 10, "child processes to exit")


def test_preset_replicates_internal_topics_min_3_n() -> None:
    assert cluster_preset(1)["offsets.topic.replication.factor"] == "1"
    assert cluster_preset(2)["transaction.state.log.replication.factor"] == "2"
    assert cluster_preset(5)["offsets.topic.replication.factor"] == "3"
    assert cluster_preset(5)["group.initial.rebalance.delay.ms"] == "0"
    with pytest.raises(ValueError):
        EmbeddedCluster(0)


# --- the async form -------------------------------------------------------------------------------
async def test_async_form_overrides_and_failover_of_the_controller() -> None:
    async with EmbeddedCluster(3, overrides={"num.partitions": 2}) as cluster:
        root = cluster.root
        assert root is not None
        broker = cluster.brokers[1]
        assert broker.config.get("num.partitions") == 2
        assert broker.config.get("offsets.topic.replication.factor") == 3
        bootstrap = cluster.bootstrap_servers
        # blocking clients go to a thread: the brokers run on this very loop
        topic = await asyncio.to_thread(_create_topic, bootstrap, 1, 3)
        await asyncio.to_thread(_produce, bootstrap, topic, [b"before"])

        controller = cluster.controller_id
        assert controller in (1, 2, 3)
        await cluster.stop_broker(controller)
        assert controller not in cluster.brokers
        assert cluster.controller_id in cluster.brokers
        for running in cluster.brokers.values():
            assert sorted(running.metadata.image.brokers) == sorted(cluster.brokers)
        await asyncio.to_thread(_produce, bootstrap, topic, [b"after"])

        await cluster.start_broker(controller)
        assert sorted(cluster.brokers) == [1, 2, 3]
        with pytest.raises(RuntimeError, match="already running"):
            await cluster.start_broker(controller)

        consumer = await asyncio.to_thread(_consumer, bootstrap, topic, 1)
        try:
            assert await asyncio.to_thread(_poll, consumer, 2) == [b"before", b"after"]
        finally:
            await asyncio.to_thread(consumer.close)
    assert not root.exists() and cluster.zookeeper is None


# --- the strom_cluster fixture (sync form, shared by the session) -----------------------------------
def test_rf3_topic_acks_all_round_trip(strom_cluster: EmbeddedCluster) -> None:
    bootstrap = strom_cluster.bootstrap_servers
    assert len(bootstrap.split(",")) == 3
    topic = _create_topic(bootstrap, partitions=3, rf=3)
    for _leader, replicas, _isr in _layout(bootstrap, topic).values():
        assert replicas == [1, 2, 3]
    values = [f"v{i}".encode() for i in range(300)]
    _produce(bootstrap, topic, values, partitions=3)
    consumer = _consumer(bootstrap, topic, 3)
    try:
        got = _poll(consumer, len(values))
    finally:
        consumer.close()
    assert sorted(got) == sorted(values)
    # acks=all succeeded, so every replica is in sync
    assert all(isr == [1, 2, 3] for _l, _r, isr in _layout(bootstrap, topic).values())


def test_stopping_the_leader_moves_leadership_and_consumption_continues(
    strom_cluster: EmbeddedCluster,
) -> None:
    bootstrap = strom_cluster.bootstrap_servers
    topic = _create_topic(bootstrap, partitions=1, rf=3)
    first = [f"a{i}".encode() for i in range(50)]
    second = [f"b{i}".encode() for i in range(50)]
    _produce(bootstrap, topic, first)
    consumer = _consumer(bootstrap, topic, 1)
    leader = strom_cluster.leader(topic, 0)
    assert leader == _layout(bootstrap, topic)[0][0]
    try:
        assert _poll(consumer, len(first)) == first
        result = strom_cluster.stop_broker(leader)
        try:
            assert leader not in strom_cluster.brokers and not _accepts(strom_cluster.address(leader))
            new_leader = wait_until(
                lambda: (lead := strom_cluster.leader(topic, 0)) not in (-1, leader) and lead,
                what="a new leader",
            )
            wait_until(
                lambda: _layout(bootstrap, topic)[0][0] == new_leader, what="clients to see the new leader"
            )
            _produce(bootstrap, topic, second)
            assert _poll(consumer, len(second)) == second
        finally:
            strom_cluster.start_broker(leader)
        # the restarted broker catches up and rejoins the ISR
        wait_until(lambda: _layout(bootstrap, topic)[0][2] == [1, 2, 3], what="the ISR to grow back")
        assert asyncio.run(_await(result)) is None  # the sync form returns an already-finished awaitable
    finally:
        consumer.close()
    assert sorted(strom_cluster.brokers) == [1, 2, 3]


async def _await(awaitable: Any) -> Any:
    return await awaitable
