"""Helpers shared by the compatibility tests: topic creation, running kcat and Kafka's Java tools,
reading a partition back with confluent-kafka, and a produce-then-read round trip through kafka-python
or aiokafka with the caller's connection settings (security ones included).

Everything here talks to the broker only through real clients, never through Strom's own code.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import subprocess
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from confluent_kafka import Consumer, KafkaException, Message, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from benchmarks.peers import tools


@dataclass(frozen=True)
class BrokerUnderTest:
    kind: str  # "strom", "kafka" or "external"
    bootstrap: str
    log_path: Path | None = None


def admin_client(bootstrap: str) -> AdminClient:
    return AdminClient({"bootstrap.servers": bootstrap})


@dataclass
class TopicMaker:
    """Creates uniquely named topics and deletes them at the end of the session."""

    bootstrap: str
    created: list[str] = field(default_factory=list)

    def __call__(self, partitions: int = 1, configs: Mapping[str, str] | None = None,
                 name: str | None = None) -> str:
        name = name or f"compat-{uuid.uuid4().hex[:12]}"
        admin = admin_client(self.bootstrap)
        futures = admin.create_topics([NewTopic(name, partitions, 1, config=dict(configs or {}))],
                                      operation_timeout=30, request_timeout=30)
        futures[name].result(timeout=30)
        self.created.append(name)
        wait_for_topic(admin, name, partitions)
        return name

    def delete_all(self) -> None:
        if not self.created:
            return
        with contextlib.suppress(Exception):
            futures = admin_client(self.bootstrap).delete_topics(self.created, operation_timeout=30)
            for fut in futures.values():
                with contextlib.suppress(Exception):
                    fut.result(timeout=30)


T = TypeVar("T")


def poll_until(probe: Callable[[], T], done: Callable[[T], bool], timeout: float = 30.0) -> T:
    """`probe()` again and again until `done` holds for its answer or `timeout` seconds pass; the last answer.
    For reads that Kafka serves from a broker's copy of the metadata, which lags the controller's
    acknowledgement of a write (ACLs, configs) by a moment."""
    deadline = time.monotonic() + timeout
    while True:
        answer = probe()
        if done(answer) or time.monotonic() > deadline:
            return answer
        time.sleep(0.1)


def wait_for_topic(admin: AdminClient, name: str, partitions: int, timeout: float = 15.0) -> None:
    """Wait until Metadata shows the topic with every partition led (creation is asynchronous in Kafka)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        md = admin.list_topics(name, timeout=5).topics.get(name)
        if md is not None and md.error is None and len(md.partitions) == partitions \
                and all(p.leader >= 0 for p in md.partitions.values()):
            return
        time.sleep(0.1)
    raise AssertionError(f"topic {name} did not appear with {partitions} led partitions in {timeout}s")


def consume_partition(bootstrap: str, topic: str, partition: int = 0, *, count: int, offset: int = 0,
                      timeout: float = 20.0, extra: Mapping[str, object] | None = None) -> list[Message]:
    """Read `count` records from one partition with assign() (no consumer group), from `offset`."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "compat-unused",
                         "enable.auto.commit": False, "enable.partition.eof": False,
                         **(extra or {})})
    try:
        consumer.assign([TopicPartition(topic, partition, offset)])
        out: list[Message] = []
        deadline = time.monotonic() + timeout
        while len(out) < count and time.monotonic() < deadline:
            for msg in consumer.consume(num_messages=count - len(out), timeout=0.5):
                if msg.error():
                    raise KafkaException(msg.error())
                out.append(msg)
        assert len(out) == count, f"read {len(out)} of {count} records from {topic}[{partition}]"
        return out
    finally:
        consumer.close()


def kafka_python_round_trip(topic: str, prefix: str, count: int = 20, **common: Any) -> list[bytes]:
    """`count` records written with kafka-python's KafkaProducer, then read back by a KafkaConsumer in a
    group of its own, both built with `common` (bootstrap_servers, security_protocol, ...)."""
    from kafka import KafkaConsumer, KafkaProducer

    producer = KafkaProducer(**common)
    for i in range(count):
        producer.send(topic, f"{prefix}-{i}".encode())
    producer.flush(20)
    producer.close()
    consumer = KafkaConsumer(topic, group_id=f"g-{uuid.uuid4().hex[:8]}", auto_offset_reset="earliest",
                             consumer_timeout_ms=20000, **common)  # fmt: skip
    got = [m.value for _, m in zip(range(count), consumer, strict=False)]
    consumer.close()
    return got


def aiokafka_round_trip(topic: str, prefix: str, count: int = 20, **common: Any) -> list[bytes]:
    """The same round trip through aiokafka's AIOKafkaProducer (send_and_wait, one at a time) and
    AIOKafkaConsumer; `common` may hold an ssl_context."""
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

    async def run() -> list[bytes]:
        producer = AIOKafkaProducer(**common)
        await producer.start()
        try:
            for i in range(count):
                await producer.send_and_wait(topic, f"{prefix}-{i}".encode())
        finally:
            await producer.stop()
        consumer = AIOKafkaConsumer(topic, group_id=f"g-{uuid.uuid4().hex[:8]}", auto_offset_reset="earliest",
                                    **common)  # fmt: skip
        await consumer.start()
        got: list[bytes] = []
        try:
            async with asyncio.timeout(30):
                async for msg in consumer:
                    got.append(msg.value)
                    if len(got) == count:
                        break
        finally:
            await consumer.stop()
        return got

    return asyncio.run(run())


class ToolFailed(AssertionError):
    """A command-line tool exited non-zero; the message holds its output."""


def _run(argv: Sequence[str], input_text: str | None, timeout: float) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(list(argv), input=input_text, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise ToolFailed(f"{' '.join(argv[-12:])} exited {proc.returncode}\n"
                         f"stdout:\n{proc.stdout[-3000:]}\nstderr:\n{proc.stderr[:3000]}")
    return proc


@dataclass(frozen=True)
class JavaTools:
    """Apache Kafka's command-line tools from the kafka-tools jar (org.apache.kafka.tools.*)."""

    bootstrap: str

    def run(self, main_class: str, *args: str, input_text: str | None = None,
            timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
        return _run(tools.java_command(main_class, *args), input_text, timeout)

    def topics(self, *args: str) -> subprocess.CompletedProcess[str]:
        return self.run("org.apache.kafka.tools.TopicCommand", "--bootstrap-server", self.bootstrap, *args)

    def acl_round_trip(self, command_config: Path, principal: str, group: str) -> None:
        """kafka-acls adds READ on `group` for `principal`, lists it, removes it and no longer lists it
        (listings are polled: a Kafka broker applies an ACL a moment after its controller acknowledged it)."""
        acls = ["org.apache.kafka.tools.AclCommand", "--bootstrap-server", self.bootstrap,
                "--command-config", str(command_config)]  # fmt: skip
        self.run(*acls, "--add", "--allow-principal", principal, "--operation", "Read", "--group", group)
        expected = f"principal={principal}, host=*, operation=READ, permissionType=ALLOW"

        def listing() -> str:
            return self.run(*acls, "--list", "--group", group).stdout

        listed = poll_until(listing, lambda out: expected in out)
        assert expected in listed, listed
        self.run(*acls, "--remove", "--force", "--group", group)
        again = poll_until(listing, lambda out: principal not in out)
        assert principal not in again, again


@dataclass(frozen=True)
class Kcat:
    """kcat, librdkafka's command-line producer/consumer/metadata lister."""

    bootstrap: str

    def run(self, *args: str, input_text: str | None = None,
            timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
        exe = shutil.which("kcat") or shutil.which("kafkacat")
        if exe is None:
            raise ToolFailed("kcat is not installed (apt-get install kcat; scripts/test installs it)")
        return _run([exe, "-b", self.bootstrap, *args], input_text, timeout)


def run_script_bounded(cmd: Sequence[str], cwd: Path, timeout: float) -> tuple[int, str]:
    """(exit status, output) of a long script run in a process group of its own. Past `timeout` it gets
    SIGTERM (so it can stop the brokers it started), a minute later the whole group SIGKILL, and the
    test fails with the end of the output."""
    proc = subprocess.Popen(
        list(cmd), cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        start_new_session=True, text=True,
    )  # fmt: skip
    try:
        output, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            output, _ = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            output, _ = proc.communicate(timeout=10)
        what = " ".join(cmd[:4])
        raise AssertionError(f"{what} did not finish in {timeout:.0f} s:\n{output[-6000:]}") from None
    return proc.returncode, output


NODE_SCRIPT = Path(__file__).parent / "node" / "kafkajs_client.js"


def run_kafkajs(node_modules: Path, *args: str, security: Mapping[str, object] | None = None,
                timeout: float = 90.0) -> dict:
    """The JSON result of node/kafkajs_client.js `args`; `security` ({"ssl": {ca, cert, key},
    "sasl": {mechanism, username, password}}) reaches it as KAFKAJS_SECURITY."""
    node = shutil.which("node")
    if node is None:
        raise ToolFailed("node is not installed")
    env = {**os.environ, "NODE_PATH": str(node_modules), "KAFKAJS_NO_PARTITIONER_WARNING": "1"}
    if security is not None:
        env["KAFKAJS_SECURITY"] = json.dumps(security)
    proc = subprocess.run([node, str(NODE_SCRIPT), *args], capture_output=True, text=True, timeout=timeout,
                          env=env)
    if proc.returncode != 0 or not proc.stdout.strip():
        raise ToolFailed(f"kafkajs {args[0]} exited {proc.returncode}:\n{proc.stderr[-3000:]}")
    result: dict = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def run_gocompat(mode: str, bootstrap: str, *args: object, security: Mapping[str, object] | None = None,
                 timeout: float = 90.0) -> dict:
    """The JSON result of the Go driver (built by scripts/fetch-tools: call it after the `fetched_tools`
    fixture); `security` ({"tls": {ca, cert, key}, "sasl": {mechanism, username, password}}) reaches it
    as GOCOMPAT_SECURITY."""
    binary = tools.CACHE_DIR / "go-bin" / "gocompat"
    if not binary.is_file():
        raise ToolFailed(f"{binary} was not built by scripts/fetch-tools")
    env = dict(os.environ)
    if security is not None:
        env["GOCOMPAT_SECURITY"] = json.dumps(security)
    proc = subprocess.run([str(binary), mode, bootstrap, *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, env=env)
    if proc.returncode != 0 or not proc.stdout.strip():
        raise ToolFailed(f"gocompat {mode} exited {proc.returncode}:\n{proc.stderr[-3000:]}")
    result: dict = json.loads(proc.stdout.strip().splitlines()[-1])
    return result
