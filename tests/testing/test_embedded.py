"""EmbeddedBroker: sync and async context manager, free port, temp data dir, dev preset, overrides by
Kafka key names, quick start, clean up."""

from __future__ import annotations

import asyncio
import socket
import time
from pathlib import Path

from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient

from strom.client.cluster import ClusterClient
from strom.testing import DEV_PRESET, EmbeddedBroker


def _accepts(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_sync_form_serves_real_clients_and_cleans_up() -> None:
    started = time.monotonic()
    with EmbeddedBroker() as broker:
        elapsed = time.monotonic() - started
        data_dir = broker.data_dir
        assert data_dir.is_dir()
        host, port = broker.bootstrap_servers.split(":")
        assert host == "127.0.0.1" and int(port) == broker.port != 9092
        producer = Producer({"bootstrap.servers": broker.bootstrap_servers})
        producer.produce("auto-created", value=b"hello")
        assert producer.flush(10) == 0
        consumer = Consumer(
            {"bootstrap.servers": broker.bootstrap_servers, "group.id": "g", "auto.offset.reset": "earliest"}
        )
        consumer.subscribe(["auto-created"])
        deadline = time.monotonic() + 15
        message = None
        while message is None and time.monotonic() < deadline:
            polled = consumer.poll(0.2)
            if polled is not None and not polled.error():
                message = polled
        consumer.close()
        assert message is not None and message.value() == b"hello"
    # generous for a loaded 2-core machine; it is well under 0.5 s when idle
    assert elapsed < 2.0, elapsed
    assert not data_dir.exists()
    assert not _accepts(int(port))


async def test_async_form_on_the_running_loop() -> None:
    async with EmbeddedBroker({"num.partitions": 3}) as broker:
        assert broker.broker is not None
        assert broker.broker.config.get("group.initial.rebalance.delay.ms") == 0
        async with ClusterClient(broker.bootstrap_servers) as client:
            meta = await client.metadata(["made-on-demand"], auto_create=True)
            # auto-creation answers before the partitions have leaders: poll, bounded by a deadline
            deadline = asyncio.get_running_loop().time() + 10
            while not meta.topics["made-on-demand"].partitions:
                assert asyncio.get_running_loop().time() < deadline, "auto-created topic has no partitions"
                await asyncio.sleep(0.05)
                meta = await client.metadata(["made-on-demand"])
            assert len(meta.topics["made-on-demand"].partitions) == 3
        data_dir = broker.data_dir
    assert not data_dir.exists()


def test_given_data_dir_is_kept_and_reused(tmp_path: Path) -> None:
    data = tmp_path / "kept"
    with EmbeddedBroker(data_dir=data) as broker:
        admin = AdminClient({"bootstrap.servers": broker.bootstrap_servers})
        from confluent_kafka.admin import NewTopic

        admin.create_topics([NewTopic("survivor", 2, 1)])["survivor"].result(10)
    assert (data / "survivor-0").is_dir()
    with EmbeddedBroker(data_dir=data) as broker:
        topics = AdminClient({"bootstrap.servers": broker.bootstrap_servers}).list_topics(timeout=10).topics
        assert len(topics["survivor"].partitions) == 2
    assert data.is_dir()


def test_dev_preset_and_overrides_use_kafka_key_names() -> None:
    assert DEV_PRESET["auto.create.topics.enable"] == "true"
    assert DEV_PRESET["group.initial.rebalance.delay.ms"] == "0"
    broker = EmbeddedBroker({"log.segment.bytes": 1 << 20, "auto.create.topics.enable": False})
    try:
        assert broker.config.get("log.segment.bytes") == 1 << 20
        assert broker.config.get("auto.create.topics.enable") is False
    finally:
        broker._cleanup()
    assert not broker.data_dir.exists()


def test_two_brokers_in_one_process_get_their_own_ports() -> None:
    with EmbeddedBroker() as one, EmbeddedBroker() as two:
        assert one.port != two.port
        assert one.data_dir != two.data_dir
        assert _accepts(one.port) and _accepts(two.port)
