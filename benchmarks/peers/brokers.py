"""Start Apache Kafka 4.x (KRaft, single node), Tansu (in memory) or Strom on a free loopback port, and
Apache Kafka controllers and brokers of a multi-node KRaft cluster from their server.properties.

Kafka 4.x has no ZooKeeper mode: the one process is broker and controller (process.roles), its storage is
formatted first with `kafka.tools.StorageTool format --standalone` (KIP-853 dynamic quorum of one voter).
Internal topics get replication factor 1 and consumer groups no initial rebalance delay, so a single node
behaves like a test cluster should. A node of a larger cluster (`format_kafka_storage`, `kafka_node_command`)
is formatted against the static voters of its controller.quorum.voters (kraft.version 0), as Kafka's
config/controller.properties and config/broker.properties examples are.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

from strom.metadata.formatter import random_uuid
from strom.storage.checkpoint import uuid_to_kafka
from strom.testing.ports import free_port

from .process import BrokerProcess, make_workdir
from .tools import REPO_ROOT, java_command, tansu_binary

# Settings both Kafka and Strom get so they answer tests alike on one node.
SINGLE_NODE_SETTINGS: dict[str, str] = {
    "num.partitions": "1",
    "offsets.topic.replication.factor": "1",
    "transaction.state.log.replication.factor": "1",
    "transaction.state.log.min.isr": "1",
    "group.initial.rebalance.delay.ms": "0",
}


Listeners = Mapping[str, tuple[str, int]]
"""Extra named listeners beside PLAINTEXT on `port`: {name: (security protocol, port)}."""


def listener_settings(port: int, listeners: Listeners | None = None) -> dict[str, str]:
    """listeners, advertised.listeners and listener.security.protocol.map for PLAINTEXT on `port` plus
    `listeners`, all on 127.0.0.1: the same keys configure Strom and Kafka alike."""
    named = {"PLAINTEXT": ("PLAINTEXT", port), **(listeners or {})}
    endpoints = ",".join(f"{name}://127.0.0.1:{p}" for name, (_proto, p) in named.items())
    return {
        "listeners": endpoints,
        "advertised.listeners": endpoints,
        "listener.security.protocol.map": ",".join(f"{name}:{proto}" for name, (proto, _p) in named.items()),
    }


def kafka_server_properties(port: int, controller_port: int, log_dir: Path,
                            extra: Mapping[str, str] | None = None,
                            listeners: Listeners | None = None) -> str:
    named = listener_settings(port, listeners)
    props = {
        "process.roles": "broker,controller",
        "node.id": "1",
        "controller.quorum.bootstrap.servers": f"127.0.0.1:{controller_port}",
        "listeners": f"{named['listeners']},CONTROLLER://127.0.0.1:{controller_port}",
        "advertised.listeners": named["advertised.listeners"],
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": f"{named['listener.security.protocol.map']},CONTROLLER:PLAINTEXT",
        "log.dirs": str(log_dir),
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        **SINGLE_NODE_SETTINGS,
        **(extra or {}),
    }
    return "".join(f"{k}={v}\n" for k, v in props.items())


def start_kafka(*, port: int | None = None, heap: str = "1g", settings: Mapping[str, str] | None = None,
                timeout: float = 90.0, listeners: Listeners | None = None) -> BrokerProcess:
    """Format a fresh KRaft log dir and start Apache Kafka on it; returns the ready process. `settings`
    are broker keys (e.g. ssl.*), `listeners` extra named listeners beside PLAINTEXT on `port`."""
    port = port or free_port()
    workdir = make_workdir("strom-kafka-ref-")
    try:
        config = workdir / "server.properties"
        config.write_text(kafka_server_properties(port, free_port(), workdir / "data", settings, listeners))
        # Kafka's Uuid.randomUuid never starts with "-", which kafka-storage would read as an option
        cluster_id = uuid_to_kafka(random_uuid())
        fmt = subprocess.run(
            java_command("kafka.tools.StorageTool", "format", "--standalone", "-t", cluster_id,
                         "-c", str(config)),
            capture_output=True, text=True, timeout=120)
        if fmt.returncode != 0:
            raise RuntimeError(f"kafka-storage format failed:\n{fmt.stdout}\n{fmt.stderr}")
        argv = java_command("kafka.Kafka", str(config), heap=heap)
        argv[1:1] = [f"-Xms{heap}", "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20"]
    except BaseException:
        shutil.rmtree(workdir, ignore_errors=True)
        raise
    return BrokerProcess("kafka", argv, port, workdir).start(timeout)


def format_kafka_storage(config: Path, cluster_id: str, *, timeout: float = 120.0) -> None:
    """`kafka-storage format -t <cluster_id> -c <config>` of one KRaft node whose config names its voters in
    controller.quorum.voters (so neither --standalone nor --initial-controllers applies)."""
    argv = java_command("kafka.tools.StorageTool", "format", "-t", cluster_id, "-c", str(config))
    fmt = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    if fmt.returncode != 0:
        raise RuntimeError(f"kafka-storage format of {config} failed:\n{fmt.stdout}\n{fmt.stderr}")


def kafka_node_command(config: Path, *, heap: str = "384m") -> list[str]:
    """The command line of `kafka-server-start.sh <config>` for one controller, broker or combined node.
    Serial GC keeps several JVMs on a small test machine from each claiming a G1 thread per core."""
    argv = java_command("kafka.Kafka", str(config), heap=heap)
    argv[1:1] = [f"-Xms{heap}", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1"]
    return argv


def start_tansu(*, port: int | None = None, timeout: float = 30.0) -> BrokerProcess:
    """Start Tansu with its in-memory storage engine."""
    port = port or free_port()
    url = f"tcp://127.0.0.1:{port}"
    argv = [tansu_binary(), "broker", "--listener-url", url, "--advertised-listener-url", url,
            "--storage-engine", "memory://tansu/"]
    return BrokerProcess("tansu", argv, port, make_workdir("strom-tansu-")).start(timeout)


def strom_command() -> list[str]:
    """The `strom` entry point of this checkout, through this interpreter (not whatever is on PATH)."""
    return [sys.executable, "-c", "import sys; from strom.cli.main import main; sys.exit(main())"]


def _strom_env() -> dict[str, str]:
    path = os.environ.get("PYTHONPATH")
    return {"PYTHONPATH": f"{REPO_ROOT}{os.pathsep}{path}" if path else str(REPO_ROOT)}


def start_strom(*, port: int | None = None, settings: Mapping[str, str] | None = None,
                timeout: float = 30.0, listeners: Listeners | None = None) -> BrokerProcess:
    """Start `strom serve` on a fresh data directory (PLAINTEXT on `port`, plus `listeners`)."""
    port = port or free_port()
    workdir = make_workdir("strom-serve-")
    argv = [*strom_command(), "serve", "--data-dir", str(workdir / "data"), "--port", str(port)]
    named = listener_settings(port, listeners) if listeners else {}
    for key, value in {**SINGLE_NODE_SETTINGS, **named, **(settings or {})}.items():
        argv += ["--set", f"{key}={value}"]
    return BrokerProcess("strom", argv, port, workdir, env=_strom_env()).start(timeout)
