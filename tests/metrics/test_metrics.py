"""The /metrics endpoint after real traffic, parsed with prometheus_client's parser; /healthz and /readyz;
one registry per broker; no endpoint and no instrumentation without metrics.port."""

from __future__ import annotations

import time
import urllib.error
import urllib.request

from confluent_kafka import Consumer, Producer
from prometheus_client.parser import text_string_to_metric_families

from strom.testing import EmbeddedBroker


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """{(sample name, sorted labels): value} of one scrape."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain")
        text = response.read().decode()
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def _traffic(bootstrap: str, topic: str, count: int) -> int:
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 50})
    for i in range(count):
        producer.produce(topic, value=b"x" * 100, key=str(i).encode())
    assert producer.flush(10) == 0
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "metrics-group",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topic])
    seen = 0
    deadline = time.monotonic() + 20
    while seen < count - 5 and time.monotonic() < deadline:
        message = consumer.poll(0.2)
        if message is not None and not message.error():
            seen += 1
            if seen == count - 5:
                consumer.commit(message, asynchronous=False)
    consumer.close()
    return seen


def test_metrics_after_traffic() -> None:
    with EmbeddedBroker({"metrics.port": 0, "num.partitions": 1}) as broker:
        port = broker.broker.metrics.bound_port
        assert _traffic(broker.bootstrap_servers, "metered", 40) == 35
        samples = scrape(port)

    topic = (("topic", "metered"),)
    assert samples[("strom_messages_in_total", topic)] == 40
    bytes_in = samples[("strom_bytes_in_total", topic)]
    assert bytes_in > 40 * 100
    # the consumer read every batch once (perhaps a few again): bytes out cover bytes in
    assert samples[("strom_bytes_out_total", (("topic", "metered"), ("type", "consumer")))] >= bytes_in
    part = (("partition", "0"), ("topic", "metered"))
    assert samples[("strom_log_end_offset", part)] == 40
    assert samples[("strom_log_size_bytes", part)] == bytes_in
    group = (("group", "metrics-group"), ("partition", "0"), ("topic", "metered"))
    assert samples[("strom_consumer_group_committed_offset", group)] == 35
    assert samples[("strom_consumer_group_lag", group)] == 5
    assert samples[("strom_active_controller_count", ())] == 1
    assert samples[("strom_under_replicated_partitions", ())] == 0
    assert samples[("strom_offline_partitions_count", ())] == 0
    assert samples[("strom_requests_total", (("api", "Produce"),))] >= 1
    assert samples[("strom_requests_total", (("api", "Fetch"),))] >= 1
    assert samples[("strom_requests_total", (("api", "JoinGroup"),))] >= 1
    assert samples[("strom_request_duration_seconds_count", (("api", "Metadata"),))] >= 1
    buckets = [
        v
        for (n, labels), v in samples.items()
        if n == "strom_request_duration_seconds_bucket" and ("api", "Produce") in labels
    ]
    assert buckets and max(buckets) == samples[("strom_requests_total", (("api", "Produce"),))]


def test_health_ready_and_unknown_paths() -> None:
    with EmbeddedBroker({"metrics.port": 0}) as broker:
        port = broker.broker.metrics.bound_port
        for path, status in (("/healthz", 200), ("/readyz", 200)):
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as response:
                assert response.status == status
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/nope", timeout=10)
            raise AssertionError("expected 404")
        except urllib.error.HTTPError as exc:
            assert exc.code == 404
        broker.call(broker.broker.stop())
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2)
            raise AssertionError("the endpoint outlived the broker")
        except urllib.error.URLError:
            pass


def test_each_broker_has_its_own_registry() -> None:
    with EmbeddedBroker({"metrics.port": 0}) as one, EmbeddedBroker({"metrics.port": 0}) as two:
        producer = Producer({"bootstrap.servers": one.bootstrap_servers})
        producer.produce("only-on-one", value=b"v")
        assert producer.flush(10) == 0
        first, second = scrape(one.broker.metrics.bound_port), scrape(two.broker.metrics.bound_port)
    assert first[("strom_messages_in_total", (("topic", "only-on-one"),))] == 1
    assert not any(labels == (("topic", "only-on-one"),) for _n, labels in second)


async def test_without_metrics_port_nothing_is_served_or_wrapped() -> None:
    async with EmbeddedBroker() as broker:
        assert not broker.broker.metrics.enabled
        spec = broker.broker.registry.get(0)
        assert spec is not None and spec.handler.__module__ == "strom.apis.produce"


def test_readyz_is_503_until_ready() -> None:
    from prometheus_client import CollectorRegistry

    from strom.metrics.http import MetricsServer

    state = {"ready": False}
    server = MetricsServer(CollectorRegistry(), ready=lambda: state["ready"])
    assert server.respond("GET", "/readyz")[0] == 503
    assert server.respond("GET", "/healthz")[0] == 200
    state["ready"] = True
    assert server.respond("GET", "/readyz?verbose")[0] == 200
    assert server.respond("POST", "/metrics")[0] == 405
