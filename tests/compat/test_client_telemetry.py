"""Client telemetry (KIP-714) through real clients.

- `kafka-client-metrics --alter/--describe/--list` (IncrementalAlterConfigs, DescribeConfigs and
  ListConfigResources on CLIENT_METRICS resources) and Kafka's refusal of a bad interval: the same on
  Strom and on Apache Kafka 4.4 (`--kafka-reference`).
- Pushes, on Strom only (Kafka advertises GetTelemetrySubscriptions and PushTelemetry only with a
  client-metrics plugin and exports nothing itself): librdkafka (confluent-kafka) and the Java client 4.4
  push their metrics once a subscription selects them, and they appear on Strom's Prometheus endpoint
  under the client's instance id.
"""

from __future__ import annotations

import re
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from compat_support import JavaTools
from confluent_kafka import Producer

from benchmarks.peers import brokers, tools
from strom.testing.ports import free_port

pytestmark = pytest.mark.compat

CLIENT_METRICS = "org.apache.kafka.tools.ClientMetricsCommand"


@dataclass(frozen=True)
class TelemetryBroker:
    bootstrap: str
    metrics_port: int | None
    tools: JavaTools

    def client_metrics(self, *args: str) -> str:
        return self.tools.run(CLIENT_METRICS, "--bootstrap-server", self.bootstrap, *args).stdout

    def scrape(self) -> str:
        assert self.metrics_port is not None
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=10) as resp:
            return resp.read().decode()


@pytest.fixture(scope="module")
def telemetry_broker(request: pytest.FixtureRequest) -> Iterator[TelemetryBroker]:
    if request.config.getoption("--bootstrap", default=None):
        pytest.skip("needs a broker it configures itself (the metrics endpoint)")
    tools.ensure_tools()
    if request.config.getoption("--kafka-reference", default=False):
        proc, port = brokers.start_kafka(), None
    else:
        port = free_port()
        proc = brokers.start_strom(settings={"metrics.port": str(port)})
    try:
        yield TelemetryBroker(proc.bootstrap, port, JavaTools(proc.bootstrap))
    finally:
        proc.stop()


def test_kafka_client_metrics_tool(telemetry_broker: TelemetryBroker) -> None:
    name = f"sub-{uuid.uuid4().hex[:6]}"
    altered = telemetry_broker.client_metrics("--alter", "--name", name, "--metrics",
                                              "org.apache.kafka.producer.,org.apache.kafka.client.",
                                              "--interval", "1000")  # fmt: skip
    assert f"Altered client metrics config for {name}." in altered
    described = telemetry_broker.client_metrics("--describe", "--name", name)
    assert f"Client metrics configs for {name} are:" in described
    expected = "  interval.ms=1000\n  match=\n  metrics=org.apache.kafka.producer.,org.apache.kafka.client."
    assert expected in described
    assert name in telemetry_broker.client_metrics("--list").split()
    with pytest.raises(AssertionError, match=r"interval must be between 100 and 3600000 \(1 hour\)"):
        telemetry_broker.client_metrics("--alter", "--name", name, "--interval", "5")
    telemetry_broker.client_metrics("--delete", "--name", name)
    assert name not in telemetry_broker.client_metrics("--list").split()


def _wait_for(broker: TelemetryBroker, pattern: str, timeout: float = 30.0) -> str:
    deadline = time.monotonic() + timeout
    while True:
        text = broker.scrape()
        found = re.search(pattern, text, re.MULTILINE)
        if found or time.monotonic() > deadline:
            assert found, f"{pattern} not on the metrics endpoint:\n{text[-3000:]}"
            return found.group(0)
        time.sleep(0.5)


def test_pushed_metrics_are_exported(telemetry_broker: TelemetryBroker) -> None:
    if telemetry_broker.metrics_port is None:
        pytest.skip("Kafka serves PushTelemetry only with a client-metrics plugin and exports nothing")
    telemetry_broker.client_metrics("--alter", "--name", "producers", "--metrics",
                                    "org.apache.kafka.producer.", "--interval", "500")  # fmt: skip
    producer = Producer({"bootstrap.servers": telemetry_broker.bootstrap, "client.id": "rd-telemetry"})
    try:
        for i in range(20):
            producer.produce("telemetry-t", value=f"v{i}".encode())
        assert producer.flush(30) == 0
        deadline = time.monotonic() + 30
        line = ""
        while not line and time.monotonic() < deadline:
            producer.poll(0.5)
            lines = telemetry_broker.scrape().splitlines()
            wanted = "org_apache_kafka_producer_record_queue_time_max{"
            line = next((x for x in lines if x.startswith(wanted)), "")
        assert 'client_instance_id="' in line, line
    finally:
        producer.flush(5)


def test_java_client_pushes_are_exported(telemetry_broker: TelemetryBroker) -> None:
    """The Java client 4.4 (Kafka's kafka-producer-perf-test) gets a subscription that selects it by
    client id and pushes OTLP metrics every 500 ms while it produces; they appear on the endpoint."""
    if telemetry_broker.metrics_port is None:
        pytest.skip("Kafka serves PushTelemetry only with a client-metrics plugin and exports nothing")
    client_id = f"java-telemetry-{uuid.uuid4().hex[:6]}"
    telemetry_broker.client_metrics("--alter", "--name", "java-producers", "--metrics",
                                    "org.apache.kafka.producer.", "--interval", "500",
                                    "--match", f"client_id={client_id}")  # fmt: skip
    telemetry_broker.tools.run(
        "org.apache.kafka.tools.ProducerPerformance",
        "--topic", "telemetry-java", "--num-records", "3000", "--record-size", "100",
        "--throughput", "1000",
        "--producer-props", f"bootstrap.servers={telemetry_broker.bootstrap}", f"client.id={client_id}",
        timeout=120,
    )  # fmt: skip
    # batch.size.avg is a metric of the Java producer only (librdkafka pushes no batch sizes)
    series = r'^org_apache_kafka_producer_batch_size_avg\{client_instance_id="[^"]+"\} (\S+)$'
    line = _wait_for(telemetry_broker, series)
    assert float(line.rsplit(" ", 1)[1]) > 0, line  # 100-byte records were batched
