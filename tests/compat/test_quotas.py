"""Client quotas through Kafka's tools and real clients, against Strom and against Apache Kafka 4.4
(`--kafka-reference`) configured from the same properties: kafka-configs sets and describes user,
client-id and default quotas (AlterClientQuotas, DescribeClientQuotas); a producer and a consumer held to
their byte rates stay within 20% of them over several seconds while another client on the same broker is
not slowed.

Both brokers run with quota.window.num=3 so a fresh client's initial allowance (Kafka lets the first
(window.num - 1) windows' worth through at once) is paid back within the first seconds; rates are measured
from the acknowledged (produce) or received (consume) bytes after that warm-up."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from compat_support import JavaTools
from confluent_kafka import Consumer, Producer, TopicPartition
from kio.schema.alter_client_quotas.v1 import request as alter_rq
from kio.schema.describe_client_quotas.v1 import request as describe_rq

from benchmarks.peers import brokers, tools
from strom.client.connection import BrokerConnection
from strom.testing.ports import free_port

pytestmark = pytest.mark.compat

QUOTA = 256 * 1024  # bytes a second
WARM_UP = 3.0
RUN = 9.0
VALUE = b"q" * 1000


@dataclass(frozen=True)
class QuotaBroker:
    bootstrap: str
    kind: str

    def configs(self, *args: str) -> str:
        done = JavaTools(self.bootstrap).run(
            "org.apache.kafka.tools.ConfigCommand", "--bootstrap-server", self.bootstrap, *args
        )
        return done.stdout


@pytest.fixture(scope="module")
def quota_broker(request: pytest.FixtureRequest) -> Iterator[QuotaBroker]:
    if request.config.getoption("--bootstrap", default=None):
        pytest.skip("needs a broker it configures itself (quota windows)")
    tools.ensure_tools()
    settings = {"quota.window.num": "3", "quota.window.size.seconds": "1"}
    port = free_port()
    kafka = bool(request.config.getoption("--kafka-reference", default=False))
    proc = (brokers.start_kafka if kafka else brokers.start_strom)(port=port, settings=settings)
    try:
        yield QuotaBroker(f"127.0.0.1:{port}", "kafka" if kafka else "strom")
    finally:
        proc.stop()


def _describe_lines(out: str) -> list[str]:
    return sorted(line.strip() for line in out.splitlines() if line.strip())


def test_kafka_configs_sets_and_describes_quotas(quota_broker: QuotaBroker) -> None:
    user, client = f"u-{uuid.uuid4().hex[:6]}", f"c-{uuid.uuid4().hex[:6]}"
    quota_broker.configs("--alter", "--add-config", "producer_byte_rate=1048576,request_percentage=50",
                         "--entity-type", "users", "--entity-name", user)
    quota_broker.configs("--alter", "--add-config", "consumer_byte_rate=2048",
                         "--entity-type", "users", "--entity-name", user,
                         "--entity-type", "clients", "--entity-name", client)
    quota_broker.configs("--alter", "--add-config", "producer_byte_rate=4096",
                         "--entity-type", "clients", "--entity-default")
    try:
        out = _describe_lines(
            quota_broker.configs("--describe", "--entity-type", "clients", "--entity-default"))
    finally:
        # removing the last key: the entity disappears (and the default throttles no other test)
        quota_broker.configs("--alter", "--delete-config", "producer_byte_rate",
                             "--entity-type", "clients", "--entity-default")
    assert out == ["Quota configs for the default client-id are producer_byte_rate=4096.0"], out
    out = _describe_lines(quota_broker.configs("--describe", "--entity-type", "users", "--entity-name", user))
    # the values in Kafka's order (a java.util.HashMap's)
    assert out == [f"Quota configs for user-principal '{user}' are request_percentage=50.0, "
                   "producer_byte_rate=1048576.0"], out
    out = _describe_lines(quota_broker.configs("--describe", "--entity-type", "users", "--entity-name", user,
                                               "--entity-type", "clients", "--entity-name", client))
    assert out == [f"Quota configs for user-principal '{user}', client-id '{client}' are "
                   "consumer_byte_rate=2048.0"], out
    out = _describe_lines(quota_broker.configs("--describe", "--entity-type", "clients", "--entity-default"))
    assert out == [], out
    # a value a long quota cannot take is refused
    with pytest.raises(Exception, match="producer_byte_rate cannot be a fractional value"):
        quota_broker.configs("--alter", "--add-config", "producer_byte_rate=1.5",
                             "--entity-type", "clients", "--entity-name", client)


Entity = tuple[tuple[str, str | None], ...]


async def _request(bootstrap: str, request: object) -> object:
    host, _, port = bootstrap.rpartition(":")
    conn = await BrokerConnection.open(host, int(port), client_id="quota-test")
    try:
        return await conn.request(request)
    finally:
        await conn.close()


def _alter(bootstrap: str, entries: list[tuple[Entity, list[tuple[str, float | None]]]],
           validate_only: bool = False) -> list[tuple[Entity, int, str | None]]:
    """AlterClientQuotas v1 on the wire: (entity, error code, message) per result."""
    request = alter_rq.AlterClientQuotasRequest(
        entries=tuple(
            alter_rq.EntryData(
                entity=tuple(alter_rq.EntityData(entity_type=t, entity_name=n) for t, n in entity),
                ops=tuple(alter_rq.OpData(key=k, value=v or 0.0, remove=v is None) for k, v in ops),
            )
            for entity, ops in entries
        ),
        validate_only=validate_only,
    )
    response = asyncio.run(_request(bootstrap, request))
    return [(tuple((e.entity_type, e.entity_name) for e in r.entity), int(r.error_code), r.error_message)
            for r in response.entries]  # type: ignore[attr-defined]


def _describe(bootstrap: str, components: list[tuple[str, int, str | None]],
              strict: bool) -> tuple[int, str | None, dict[Entity, dict[str, float]] | None]:
    request = describe_rq.DescribeClientQuotasRequest(
        components=tuple(describe_rq.ComponentData(entity_type=t, match_type=m, match=n)
                         for t, m, n in components),
        strict=strict,
    )
    response: object = asyncio.run(_request(bootstrap, request))
    entries = response.entries  # type: ignore[attr-defined]
    found = None if entries is None else {
        tuple(sorted((e.entity_type, e.entity_name) for e in entry.entity)):
            {v.key: v.value for v in entry.values}
        for entry in entries
    }
    return int(response.error_code), response.error_message, found  # type: ignore[attr-defined]


def _set_client_quota(quota_broker: QuotaBroker, client_id: str, key: str, value: float) -> None:
    entity: Entity = (("client-id", client_id),)
    assert _alter(quota_broker.bootstrap, [(entity, [(key, value)])]) == [(entity, 0, None)]
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:  # Kafka applies it once the metadata reaches the broker
        found = _describe(quota_broker.bootstrap, [("client-id", 0, client_id)], True)[2]
        if found and found.get(entity, {}).get(key) == value:
            return
        time.sleep(0.1)
    raise AssertionError(f"the quota of {client_id} never showed")


def test_client_quota_apis_on_the_wire(quota_broker: QuotaBroker) -> None:
    bootstrap, tag = quota_broker.bootstrap, uuid.uuid4().hex[:6]
    alice: Entity = (("user", f"alice-{tag}"),)
    alice_app: Entity = (("client-id", f"app-{tag}"), ("user", f"alice-{tag}"))
    results = _alter(bootstrap, [
        (alice, [("producer_byte_rate", 1024.0), ("request_percentage", 12.5)]),
        (alice_app, [("consumer_byte_rate", 2048.0)]),
        ((("user", f"bob-{tag}"),), [("producer_byte_rate", 1.5)]),
        ((("group", "g"),), [("producer_byte_rate", 1.0)]),
        ((("user", f"carol-{tag}"),), [("connection_creation_rate", 5.0)]),
        ((("user", f"erin-{tag}"),), [("consumer_byte_rate", -1.0)]),
        ((("ip", "127.0.0.2"), ("user", f"erin-{tag}")), [("connection_creation_rate", 5.0)]),
    ])
    # Kafka answers in its HashMap's order: compare as sets, entity parts sorted
    assert sorted((tuple(sorted(e)), c, m) for e, c, m in results) == sorted([
        (alice, 0, None),
        (alice_app, 0, None),
        ((("user", f"bob-{tag}"),), 42, "producer_byte_rate cannot be a fractional value."),
        ((("group", "g"),), 42, "Unhandled client quota entity type: group"),
        ((("user", f"carol-{tag}"),), 42, "Invalid configuration key connection_creation_rate"),
        ((("user", f"erin-{tag}"),), 42, "Quota consumer_byte_rate must be greater than 0"),
        ((("ip", "127.0.0.2"), ("user", f"erin-{tag}")), 42,
         "Invalid quota entity combination, IP entity shouldnot be combined with User or ClientId"),
    ]), results
    # validate_only changes nothing
    assert _alter(bootstrap, [((("user", f"dave-{tag}"),), [("producer_byte_rate", 1.0)])], True)[0][1] == 0
    deadline = time.monotonic() + 15
    while True:
        code, _msg, found = _describe(bootstrap, [("user", 0, f"alice-{tag}")], False)
        if (found is not None and len(found) == 2) or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert (code, found) == (0, {
        alice: {"producer_byte_rate": 1024.0, "request_percentage": 12.5},
        alice_app: {"consumer_byte_rate": 2048.0},
    })
    assert _describe(bootstrap, [("user", 0, f"alice-{tag}")], True)[2] == {
        alice: {"producer_byte_rate": 1024.0, "request_percentage": 12.5}}
    assert _describe(bootstrap, [("user", 0, f"dave-{tag}")], False)[2] == {}
    assert _describe(bootstrap, [("user", 0, None)], False)[:2] == (
        42, "Request specified MATCH_TYPE_EXACT, but set match string to null.")
    assert _describe(bootstrap, [("ip", 2, None), ("user", 2, None)], False)[:2] == (
        42, "Invalid entity filter component combination. IP filter component should not be used with "
        "user or clientId filter component.")
    assert _describe(bootstrap, [("group", 2, None)], False)[:2] == (35, "Unsupported entity type group")


def _produce_for(bootstrap: str, client_id: str, topic: str, seconds: float) -> list[tuple[float, int]]:
    """Produce as fast as the client may for `seconds`; (monotonic time, bytes) of each acknowledgement."""
    acked: list[tuple[float, int]] = []

    def delivered(err: object, msg: object) -> None:
        if err is None:
            acked.append((time.monotonic(), len(msg.value())))  # type: ignore[attr-defined]

    producer = Producer({"bootstrap.servers": bootstrap, "client.id": client_id, "linger.ms": 5,
                         "queue.buffering.max.kbytes": 32, "log_level": 0})
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            producer.produce(topic, VALUE, callback=delivered)
        except BufferError:
            producer.poll(0.005)
        producer.poll(0)
    producer.purge()
    producer.flush(5)
    return acked


def _rate(events: list[tuple[float, int]], start: float, end: float) -> float:
    return sum(n for t, n in events if start <= t < end) / (end - start)


def test_throttled_producer_holds_its_rate_and_others_are_not_slowed(quota_broker: QuotaBroker) -> None:
    slow, topic = f"slow-{uuid.uuid4().hex[:6]}", f"quota-p-{uuid.uuid4().hex[:6]}"
    _set_client_quota(quota_broker, slow, "producer_byte_rate", QUOTA)
    results: dict[str, list[tuple[float, int]]] = {}

    def run(client_id: str) -> None:
        results[client_id] = _produce_for(quota_broker.bootstrap, client_id, topic, RUN)

    start = time.monotonic()
    threads = [threading.Thread(target=run, args=(c,)) for c in (slow, "free")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(RUN + 30)
    slow_rate = _rate(results[slow], start + WARM_UP, start + RUN)
    free_rate = _rate(results["free"], start + WARM_UP, start + RUN)
    assert abs(slow_rate - QUOTA) <= 0.2 * QUOTA, (slow_rate, QUOTA)
    assert free_rate > 4 * QUOTA, (free_rate, QUOTA)


def test_throttled_consumer_holds_its_rate_and_others_are_not_slowed(quota_broker: QuotaBroker) -> None:
    slow, topic = f"slowc-{uuid.uuid4().hex[:6]}", f"quota-c-{uuid.uuid4().hex[:6]}"
    # Small batches and fetches (Kafka's handleFetchRequest): a fetch that would go over the quota is
    # answered empty and its bytes taken back, so a batch larger than the quota's window (2 x QUOTA) is
    # never delivered (librdkafka's default batches are up to 1 MB), and fetches as large as that window
    # are let through one per expired window, well under the quota (measured: half to two thirds of it)
    producer = Producer({"bootstrap.servers": quota_broker.bootstrap, "linger.ms": 20,
                         "batch.size": 8 * 1024, "log_level": 0})
    total = int(QUOTA * (RUN + 4))
    for _ in range(total // len(VALUE)):
        while True:
            try:
                producer.produce(topic, VALUE)
                break
            except BufferError:
                producer.poll(0.01)
    assert producer.flush(60) == 0
    _set_client_quota(quota_broker, slow, "consumer_byte_rate", QUOTA)
    results: dict[str, list[tuple[float, int]]] = {}

    def run(client_id: str) -> None:
        consumer = Consumer({"bootstrap.servers": quota_broker.bootstrap, "client.id": client_id,
                             "group.id": f"g-{client_id}", "enable.auto.commit": False, "log_level": 0,
                             "max.partition.fetch.bytes": 64 * 1024})
        consumer.assign([TopicPartition(topic, 0, 0)])
        got: list[tuple[float, int]] = []
        end = time.monotonic() + RUN
        while time.monotonic() < end:
            msg = consumer.poll(0.1)
            if msg is not None and msg.error() is None:
                got.append((time.monotonic(), len(msg.value())))
        consumer.close()
        results[client_id] = got

    start = time.monotonic()
    threads = [threading.Thread(target=run, args=(c,)) for c in (slow, f"free-{slow}")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(RUN + 30)
    slow_rate = _rate(results[slow], start + WARM_UP, start + RUN)
    per_second = [_rate(results[slow], start + s, start + s + 1) for s in range(int(RUN))]
    assert abs(slow_rate - QUOTA) <= 0.2 * QUOTA, (slow_rate, QUOTA, per_second)
    # the other consumer read everything there was, long before the slow one could
    free = results[f"free-{slow}"]
    assert sum(n for _t, n in free) >= total - len(VALUE), (sum(n for _t, n in free), total)
    assert free[-1][0] - start < RUN / 2
