"""Multi-broker Strom clusters on loopback for tests and benchmarks, on a real ZooKeeper.

`ProcessCluster(n, zk_connect)`: n `strom serve` subprocesses (node ids 1..n), each with its own data
directory and a port fixed for its lifetime, so a broker can be killed (-9), stopped (SIGTERM, which runs
the controlled shutdown) and restarted on the same address and data, as an operator would:

    with running_zookeeper() as zk, ProcessCluster(3, zk.connect + "/c1") as cluster:
        Producer({"bootstrap.servers": cluster.bootstrap_servers})
        cluster.kill(2); cluster.start(2)

`EmbeddedCluster` (strom.testing.embedded_cluster, re-exported here): n in-process `Broker`s, cheaper
when a test drives partitions directly.

`ProcessCluster` uses `CLUSTER_PRESET`: short ZooKeeper sessions and replica lag so failures are noticed
within seconds, three-way replicated internal topics with few partitions, and no initial rebalance delay.
Temporary directories are removed and every process is killed on exit, also after failures. The functions
at the end (layout, produce, consume_all, log_bytes, raw_produce, ...) are the checks the cluster tests share;
`IdempotentWriter` with `assert_exactly_once_in_order` and `wait_replicas_identical` is the producer load
and the end-of-test check of the fault and pipelining tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from kio.schema.produce.v9 import request as produce_req
from kio.schema.types import TopicName
from kio.static.primitive import i16, i32, i32Timedelta

from strom.client.connection import BrokerConnection
from strom.protocol.records import Record, build_batch
from strom.testing.embedded_cluster import EmbeddedCluster
from strom.testing.ports import free_port

__all__ = [
    "CLUSTER_PRESET",
    "EmbeddedCluster",
    "IdempotentWriter",
    "ProcessCluster",
    "assert_exactly_once_in_order",
    "free_port",
    "wait_replicas_identical",
    "wait_until",
]

REPO = Path(__file__).resolve().parents[2]

CLUSTER_PRESET: dict[str, str] = {
    "auto.create.topics.enable": "true",
    "group.initial.rebalance.delay.ms": "0",
    "offsets.topic.replication.factor": "3",
    "offsets.topic.num.partitions": "3",
    "transaction.state.log.replication.factor": "3",
    "transaction.state.log.num.partitions": "3",
    "default.replication.factor": "3",
    "num.partitions": "1",
    "zookeeper.session.timeout.ms": "4000",
    "replica.lag.time.max.ms": "4000",
    "replica.fetch.wait.max.ms": "200",
    "log.flush.offset.checkpoint.interval.ms": "60000",
}


def _props(overrides: Mapping[str, Any] | None) -> dict[str, str]:
    props = dict(CLUSTER_PRESET)
    props.update({k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in (overrides or {}).items()})
    return props


class ProcessCluster:
    """n `strom serve` processes against one ZooKeeper connect string (with a chroot per cluster)."""

    def __init__(
        self,
        n: int,
        zk_connect: str,
        overrides: Mapping[str, Any] | None = None,
        *,
        per_broker: Mapping[int, Mapping[str, Any]] | None = None,
        start_timeout: float = 30.0,
        ports: Mapping[int, int] | None = None,
        first_node_id: int = 1,
    ) -> None:
        self.n = n
        self.zk_connect = zk_connect
        # broker ids first_node_id .. first_node_id + n - 1 (a peer suite may expect Kafka's 0, 1, 2)
        self.node_ids = list(range(first_node_id, first_node_id + n))
        self.root = Path(tempfile.mkdtemp(prefix="strom-cluster-"))
        # fixed ports (`ports`, by node id) for suites that dial well-known addresses; free ones otherwise
        self.ports = {i: (ports or {}).get(i) or free_port() for i in self.node_ids}
        self._props = _props(overrides)
        self._per_broker = {i: dict(v) for i, v in (per_broker or {}).items()}
        self._procs: dict[int, subprocess.Popen[bytes]] = {}
        self._start_timeout = start_timeout

    # --- addresses ---------------------------------------------------------------------------------
    def address(self, node_id: int) -> str:
        return f"127.0.0.1:{self.ports[node_id]}"

    @property
    def bootstrap_servers(self) -> str:
        return ",".join(self.address(i) for i in self.node_ids)

    def data_dir(self, node_id: int) -> Path:
        return self.root / f"broker-{node_id}"

    def log_path(self, node_id: int) -> Path:
        return self.root / f"broker-{node_id}.log"

    def running(self, node_id: int) -> bool:
        proc = self._procs.get(node_id)
        return proc is not None and proc.poll() is None

    # --- lifecycle ---------------------------------------------------------------------------------
    def start_all(self) -> ProcessCluster:
        try:
            procs = {i: self._spawn(i) for i in self.node_ids}
            for i, proc in procs.items():
                self._wait_ready(i, proc)
        except BaseException:
            self.close()
            raise
        return self

    def start(self, node_id: int) -> None:
        proc = self._spawn(node_id)
        self._wait_ready(node_id, proc)

    def _spawn(self, node_id: int) -> subprocess.Popen[bytes]:
        if self.running(node_id):
            raise RuntimeError(f"broker {node_id} is already running")
        props = dict(self._props)
        props.update({k: str(v) for k, v in self._per_broker.get(node_id, {}).items()})
        props["zookeeper.connect"] = self.zk_connect
        cmd = [
            sys.executable, "-m", "strom.cli.main", "serve",
            "--data-dir", str(self.data_dir(node_id)),
            "--port", str(self.ports[node_id]),
            "--node-id", str(node_id),
        ]  # fmt: skip
        for key, value in props.items():
            cmd += ["--set", f"{key}={value}"]
        env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
        with open(self.log_path(node_id), "ab") as err:
            proc = subprocess.Popen(
                cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=err, stdin=subprocess.DEVNULL, env=env
            )
        self._procs[node_id] = proc
        return proc

    def _wait_ready(self, node_id: int, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdout is not None
        # the broker prints one line once it serves; readline returns b"" if it died first
        deadline = time.monotonic() + self._start_timeout
        os.set_blocking(proc.stdout.fileno(), False)
        buf = b""
        while time.monotonic() < deadline:
            chunk = proc.stdout.read()
            if chunk:
                buf += chunk
                if b"\n" in buf:
                    return
            if proc.poll() is not None:
                break
            time.sleep(0.05)
        tail = self.log_path(node_id).read_text(errors="replace")[-3000:]
        proc.kill()
        raise RuntimeError(f"broker {node_id} did not start: {buf!r}\n{tail}")

    def kill(self, node_id: int) -> None:
        """kill -9: no controlled shutdown, no flush, no checkpoints."""
        proc = self._procs.pop(node_id, None)
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=10)

    def stop(self, node_id: int, timeout: float = 30.0) -> int | None:
        """SIGTERM (controlled shutdown, then a clean stop); returns the exit code."""
        proc = self._procs.pop(node_id, None)
        if proc is None:
            return None
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                return proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
                return None
        return proc.returncode

    def pause(self, node_id: int) -> None:
        self._procs[node_id].send_signal(signal.SIGSTOP)

    def resume(self, node_id: int) -> None:
        self._procs[node_id].send_signal(signal.SIGCONT)

    def close(self) -> None:
        for node_id in list(self._procs):
            proc = self._procs.pop(node_id)
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(signal.SIGCONT)
                    proc.kill()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=10)
            if proc.stdout is not None:
                proc.stdout.close()
        if os.environ.get("STROM_KEEP_CLUSTER_DIR"):
            return
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> ProcessCluster:
        return self.start_all()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


# --- checks shared by the cluster tests, the fault tests and the benchmark --------------------------

Layout = dict[int, tuple[int, list[int], list[int]]]


def wait_until(predicate: Callable[[], Any], timeout: float = 20.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = predicate()
        except KafkaException as exc:
            last = exc
        else:
            if last:
                return last
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}: last {last!r}")


def admin(cluster: ProcessCluster) -> AdminClient:
    return AdminClient({"bootstrap.servers": cluster.bootstrap_servers, "socket.timeout.ms": 5000})


def create_topic(
    cluster: ProcessCluster, name: str, partitions: int = 1, rf: int = 3, **configs: str
) -> None:
    client = admin(cluster)  # must outlive its futures
    futures = client.create_topics(
        [NewTopic(name, partitions, rf, config={k.replace("_", "."): v for k, v in configs.items()})]
    )
    for future in futures.values():
        future.result(20)
    wait_until(lambda: len(layout(cluster, name)) == partitions, what=f"{name} visible")


def create_assigned(cluster: ProcessCluster, name: str, assignment: list[list[int]], **configs: str) -> None:
    client = admin(cluster)  # must outlive its futures
    futures = client.create_topics(
        [
            NewTopic(
                name,
                num_partitions=len(assignment),
                replica_assignment=assignment,
                config={k.replace("_", "."): v for k, v in configs.items()},
            )
        ]
    )
    for future in futures.values():
        future.result(20)
    wait_until(lambda: len(layout(cluster, name)) == len(assignment), what=f"{name} visible")


def layout(cluster: ProcessCluster, topic: str, via: int | None = None) -> Layout:
    """{partition: (leader, replicas, isr)} as Metadata answers it."""
    servers = cluster.address(via) if via is not None else cluster.bootstrap_servers
    client = AdminClient({"bootstrap.servers": servers, "socket.timeout.ms": 5000})
    md = client.list_topics(topic, timeout=5)
    info = md.topics.get(topic)
    if info is None or info.error is not None:
        return {}
    return {p.id: (p.leader, list(p.replicas), sorted(p.isrs)) for p in info.partitions.values()}


def controller_id(cluster: ProcessCluster) -> int:
    client = admin(cluster)
    return int(client.describe_cluster(request_timeout=5).result(10).controller.id)


def produce(
    cluster: ProcessCluster, topic: str, values: list[bytes], partition: int = 0, **conf: Any
) -> None:
    settings = {"bootstrap.servers": cluster.bootstrap_servers, "acks": "all", "linger.ms": 5}
    settings.update(conf)
    producer = Producer(settings)
    errors: list[KafkaError] = []

    def delivered(error: KafkaError | None, _message: Any) -> None:
        if error is not None:
            errors.append(error)

    for value in values:
        producer.produce(topic, value=value, partition=partition, on_delivery=delivered)
    assert producer.flush(60) == 0
    assert not errors, errors[:3]


def consume_all(
    cluster: ProcessCluster, topic: str, partition: int, expected: int, timeout: float = 30
) -> list[bytes]:
    consumer = Consumer(
        {
            "bootstrap.servers": cluster.bootstrap_servers,
            "group.id": f"reader-{time.monotonic_ns()}",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
        }
    )
    try:
        consumer.assign([TopicPartition(topic, partition, 0)])
        out: list[bytes] = []
        deadline = time.monotonic() + timeout
        while len(out) < expected and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is None or msg.error():
                continue
            value = msg.value()
            assert value is not None, f"null value at offset {msg.offset()}"
            out.append(value)
        return out
    finally:
        consumer.close()


def wait_full_isr(admin: AdminClient, topic: str, replicas: int, timeout: float = 30) -> None:
    """Waits until every partition of `topic` has `replicas` replicas in its ISR, as Metadata says."""

    def full() -> bool:
        info = admin.list_topics(topic, timeout=5).topics[topic]
        return all(len(p.isrs) == replicas for p in info.partitions.values())

    wait_until(full, timeout, f"every replica of {topic} in the ISR")


def received_values(consumer: Any, wanted: int, timeout: float = 60) -> set[bytes]:
    """The distinct values a subscribed Consumer or ShareConsumer receives until
    it has `wanted` of them or `timeout` passes; errors are skipped."""
    got: set[bytes] = set()
    deadline = time.monotonic() + timeout
    while len(got) < wanted and time.monotonic() < deadline:
        polled = consumer.poll(0.5)
        # a Consumer answers one message or None, a ShareConsumer a batch of them
        batch = [] if polled is None else [polled] if hasattr(polled, "error") else polled
        got.update(m.value() for m in batch if m.error() is None)
    return got


def high_watermark(cluster: ProcessCluster | EmbeddedCluster, topic: str, partition: int = 0) -> int:
    consumer = Consumer({"bootstrap.servers": cluster.bootstrap_servers, "group.id": "hw-probe"})
    try:
        return int(consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=5)[1])
    finally:
        consumer.close()


def log_bytes(
    cluster: ProcessCluster | EmbeddedCluster, node_id: int, topic: str, partition: int = 0
) -> bytes:
    directory = Path(cluster.data_dir(node_id)) / f"{topic}-{partition}"
    return b"".join(p.read_bytes() for p in sorted(directory.glob("*.log")))


def raw_produce(cluster: ProcessCluster, node_id: int, topic: str, partition: int, acks: int) -> int:
    """One Produce v9 request straight to a broker; returns the partition's error code."""

    async def run() -> int:
        host, port = cluster.address(node_id).split(":")
        conn = await BrokerConnection.open(host, int(port))
        try:
            batch = build_batch([Record(0, 0, None, b"raw", [])])
            request = produce_req.ProduceRequest(
                transactional_id=None,
                acks=i16(acks),
                timeout=i32Timedelta.parse(datetime.timedelta(seconds=5)),
                topic_data=(
                    produce_req.TopicProduceData(
                        name=TopicName(topic),
                        partition_data=(
                            produce_req.PartitionProduceData(index=i32(partition), records=batch),
                        ),
                    ),
                ),
            )
            response = await conn.request(request)
            return int(response.responses[0].partition_responses[0].error_code)
        finally:
            await conn.close()

    return asyncio.run(run())


# --- a producer load that must survive faults, and the check that it did ------------------------------


def writer_value(partition: int, n: int) -> bytes:
    """The n-th value (from 0) an `IdempotentWriter` (or the Go driver's pipeline scenario) sends to a
    partition: the value alone tells where a record belongs in its partition."""
    return f"p{partition}-{n}".encode()


class IdempotentWriter(threading.Thread):
    """An idempotent acks=all librdkafka producer in a thread, pipelining up to 5 requests per broker.

    It writes `writer_value(p, n)` to partitions 0..partitions-1 (round robin, or a seeded random choice
    when `seed` is given, so that batches of different partitions fill unevenly), `pause_s` between rounds
    of `partitions` records, until `stop()` or until `total` records are sent, then flushes. It records
    per partition how many were sent and every acknowledged (offset, value) in acknowledgement order,
    every delivery error, and from librdkafka's statistics (every 100 ms) the most Produce requests in
    flight to one broker (`waitresp_cnt`) and queued for one (`outbuf_cnt`): more than one in flight means
    the requests really were pipelined. `config` overrides or adds producer settings."""

    def __init__(
        self,
        bootstrap: str,
        topic: str,
        partitions: int,
        *,
        total: int | None = None,
        pause_s: float = 0.005,
        seed: int | None = None,
        config: Mapping[str, Any] | None = None,
        flush_timeout: float = 120.0,
    ) -> None:
        super().__init__(daemon=True, name=f"writer-{topic}")
        settings: dict[str, Any] = {
            "bootstrap.servers": bootstrap,
            "acks": "all",
            "enable.idempotence": True,
            "max.in.flight.requests.per.connection": 5,
            "linger.ms": 5,
            "message.timeout.ms": 120000,
            "retry.backoff.ms": 100,
            "statistics.interval.ms": 100,
            "stats_cb": self._stats,
        }
        settings.update(config or {})
        self.producer = Producer(settings)
        self.topic = topic
        self.partitions = partitions
        self.total = total
        self.pause_s = pause_s
        self.flush_timeout = flush_timeout
        self._rng = random.Random(seed) if seed is not None else None
        self._stop_flag = threading.Event()
        self.sent: dict[int, int] = dict.fromkeys(range(partitions), 0)
        self.acked: dict[int, list[tuple[int, bytes]]] = {p: [] for p in range(partitions)}
        self.failed: list[str] = []
        self.max_in_flight = 0
        self.max_queued = 0
        self.unflushed = 0

    @property
    def sent_total(self) -> int:
        return sum(self.sent.values())

    @property
    def acked_total(self) -> int:
        return sum(len(v) for v in self.acked.values())

    def stop(self) -> None:
        """Stop writing and wait until the acknowledgements are in (the flush is bounded by
        `flush_timeout`); `unflushed` then counts records still without an answer."""
        self._stop_flag.set()
        self.join(self.flush_timeout + 30)

    def _delivered(self, err: Any, msg: Any) -> None:
        if err is not None:
            self.failed.append(f"partition {msg.partition()}: {err}")
        else:
            self.acked[msg.partition()].append((msg.offset(), msg.value()))

    def _stats(self, text: str) -> None:
        for broker in json.loads(text).get("brokers", {}).values():
            if broker.get("nodeid", -1) < 0:
                continue  # the bootstrap connections, which carry no Produce requests
            self.max_in_flight = max(self.max_in_flight, int(broker.get("waitresp_cnt", 0)))
            self.max_queued = max(self.max_queued, int(broker.get("outbuf_cnt", 0)))

    def _next_partition(self, i: int) -> int:
        return self._rng.randrange(self.partitions) if self._rng is not None else i % self.partitions

    def run(self) -> None:
        i = 0
        while not self._stop_flag.is_set() and (self.total is None or i < self.total):
            p = self._next_partition(i)
            value = writer_value(p, self.sent[p])
            while True:
                try:
                    self.producer.produce(self.topic, value=value, partition=p, on_delivery=self._delivered)
                    break
                except BufferError:
                    # librdkafka's queue is full: wait for acknowledgements rather than drop the record
                    self.producer.poll(0.05)
            self.sent[p] += 1
            i += 1
            if i % self.partitions == 0:
                self.producer.poll(0)
                if self.pause_s > 0:
                    time.sleep(self.pause_s)
        self.unflushed = self.producer.flush(self.flush_timeout)


def read_records(
    cluster: ProcessCluster | EmbeddedCluster, topic: str, partition: int, end: int, timeout: float = 60
) -> list[tuple[int, bytes]]:
    """(offset, value) of every record of a partition below offset `end`, read from offset 0."""
    consumer = Consumer(
        {
            "bootstrap.servers": cluster.bootstrap_servers,
            "group.id": f"reader-{time.monotonic_ns()}",
            "enable.auto.commit": False,
            "fetch.message.max.bytes": 1 << 20,
        }
    )
    out: list[tuple[int, bytes]] = []
    try:
        consumer.assign([TopicPartition(topic, partition, 0)])
        deadline = time.monotonic() + timeout
        while (not out or out[-1][0] < end - 1) and end > 0 and time.monotonic() < deadline:
            for msg in consumer.consume(10000, 0.5):
                if not msg.error():
                    out.append((msg.offset(), msg.value() or b""))
    finally:
        consumer.close()
    return out


def assert_exactly_once_in_order(
    cluster: ProcessCluster | EmbeddedCluster,
    topic: str,
    sent: Mapping[int, int],
    acked: Mapping[int, Sequence[tuple[int, bytes]]],
) -> None:
    """Every partition holds exactly the `sent[p]` values `writer_value(p, 0..)`, each once and in send
    order at consecutive offsets from 0, and every one was acknowledged at the offset where it is."""
    for p, count in sent.items():
        expected = [writer_value(p, n) for n in range(count)]
        acks = list(acked.get(p, ()))
        assert [v for _o, v in acks] == expected, (
            f"partition {p}: {len(acks)} of {count} acknowledged, or acknowledged out of send order"
        )
        end = high_watermark(cluster, topic, p)
        records = read_records(cluster, topic, p, end)
        values = [v for _o, v in records]
        duplicated = len(values) - len(set(values))
        assert duplicated == 0, f"partition {p}: {duplicated} records are in the log more than once"
        if values != expected:
            first = next(
                (i for i, (a, b) in enumerate(zip(values, expected, strict=False)) if a != b),
                min(len(values), len(expected)),
            )
            raise AssertionError(
                f"partition {p}: the log holds {len(values)} records (high watermark {end}), {count} were "
                f"sent; first difference at index {first}: {values[first : first + 3]}"
            )
        offsets = [o for o, _v in records]
        assert offsets == list(range(count)), f"partition {p}: offsets are not 0..{count - 1}"
        assert acks == records, f"partition {p}: acknowledged offsets differ from where the records are"


def wait_replicas_identical(
    cluster: ProcessCluster | EmbeddedCluster,
    topic: str,
    partition: int,
    node_ids: Sequence[int],
    timeout: float = 60,
) -> None:
    """Waits until the log files of a partition hold the same bytes on every given broker. Call it once
    writing has stopped and every replica is in the ISR: the whole log is then below the high watermark."""
    wait_until(
        lambda: len({log_bytes(cluster, n, topic, partition) for n in node_ids}) == 1,
        timeout,
        f"identical replica logs of {topic}-{partition}",
    )
