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
at the end (layout, produce, consume_all, log_bytes, raw_produce, ...) are the checks the cluster tests share.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
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

__all__ = ["CLUSTER_PRESET", "EmbeddedCluster", "ProcessCluster", "free_port", "wait_until"]

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


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


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
    ) -> None:
        self.n = n
        self.zk_connect = zk_connect
        self.node_ids = list(range(1, n + 1))
        self.root = Path(tempfile.mkdtemp(prefix="strom-cluster-"))
        self.ports = {i: free_port() for i in self.node_ids}
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


def high_watermark(cluster: ProcessCluster, topic: str, partition: int = 0) -> int:
    consumer = Consumer({"bootstrap.servers": cluster.bootstrap_servers, "group.id": "hw-probe"})
    try:
        return int(consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=5)[1])
    finally:
        consumer.close()


def log_bytes(cluster: ProcessCluster, node_id: int, topic: str, partition: int = 0) -> bytes:
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
