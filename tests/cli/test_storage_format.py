"""`strom storage format` against Kafka 4.4's own `kafka-storage format` (kafka.tools.StorageTool): the same
server.properties (each pointing at its own directories) must give the same files, the same meta.properties
keys and values, and bootstrap snapshots whose records decode equal (timestamps and random directory ids
aside); what Kafka refuses, Strom refuses. Plus: Kafka 4.4 starts and serves on directories Strom formatted,
and `strom serve` refuses a KRaft config whose directories are not formatted."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from strom.metadata.records import SnapshotHeaderRecord
from strom.metadata.snapshot import BOOTSTRAP_SNAPSHOT, CLUSTER_METADATA_DIR, read_snapshot
from strom.storage.checkpoint import read_meta_properties, uuid_to_kafka
from tests.metadata.kafka_jars import kafka_run

STROM = shutil.which("strom") or str(Path(sys.executable).with_name("strom"))
CLUSTER_ID = "1ItU7OZsR8imfFXYO7mm7g"
VOTER_DIRS = ("CmzPCistS5aKJthGKxF8gg", "LzuxP_8P-I8Hjk4AGLJoDQ")

COMBINED_DYNAMIC = {
    "process.roles": "broker,controller", "node.id": "1",
    "controller.quorum.bootstrap.servers": "localhost:9093",
    "listeners": "PLAINTEXT://:9092,CONTROLLER://:9093", "controller.listener.names": "CONTROLLER",
    "log.dirs": "{root}/data1,{root}/data2", "metadata.log.dir": "{root}/meta",
}
COMBINED_STATIC = {
    "process.roles": "broker,controller", "node.id": "1", "controller.quorum.voters": "1@localhost:9093",
    "listeners": "PLAINTEXT://:9092,CONTROLLER://:9093", "controller.listener.names": "CONTROLLER",
    "log.dirs": "{root}/data",
}
CONTROLLER = {
    "process.roles": "controller", "node.id": "2", "controller.quorum.bootstrap.servers": "localhost:9093",
    "listeners": "CONTROLLER://localhost:9093", "controller.listener.names": "CONTROLLER",
    "log.dirs": "{root}/c",
}
BROKER = {
    "process.roles": "broker", "node.id": "4", "controller.quorum.bootstrap.servers": "localhost:9093",
    "listeners": "PLAINTEXT://:9092", "controller.listener.names": "CONTROLLER", "log.dirs": "{root}/b",
}
INITIAL = f"2@localhost:9093:{VOTER_DIRS[0]},3@localhost:9094:{VOTER_DIRS[1]}"
SCRAM = 'SCRAM-SHA-256=[name=alice,salt="MWx0bHB0aGV6cXZ6Mw==",password=alice-secret,iterations=8192]'


def _write_config(root: Path, props: dict[str, str]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    path = root / "server.properties"
    path.write_text("".join(f"{k}={v.format(root=root)}\n" for k, v in props.items()))
    return path


def _strom(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([STROM, "storage", *args], capture_output=True, text=True, timeout=60)


def _both(tmp_path: Path, props: dict[str, str], *flags: str) -> tuple[
        tuple[subprocess.CompletedProcess[str], Path], tuple[subprocess.CompletedProcess[str], Path]]:
    kafka_root, strom_root = tmp_path / "kafka", tmp_path / "strom"
    kafka_cfg, strom_cfg = _write_config(kafka_root, props), _write_config(strom_root, props)
    kafka = kafka_run("kafka.tools.StorageTool", "format", "-t", CLUSTER_ID, "-c", str(kafka_cfg), *flags)
    strom = _strom("format", "-t", CLUSTER_ID, "-c", str(strom_cfg), *flags)
    return (kafka, kafka_root), (strom, strom_root)


def _files(root: Path) -> list[str]:
    files = (p for p in root.rglob("*") if p.is_file() and p.name != "server.properties")
    return sorted(str(p.relative_to(root)) for p in files)


def _kinds(output: str) -> list[str]:
    """The directory kinds of the "Formatting <kind> <dir> with ..." lines."""
    return sorted(line.split(" /")[0] for line in output.splitlines() if line.startswith("Formatting"))


def _normalized_snapshot(root: Path, meta_dir: str) -> list[object]:
    """The snapshot's records, with timestamps zeroed and the node's own random directory id named."""
    snapshot = read_snapshot(root / meta_dir / CLUSTER_METADATA_DIR / BOOTSTRAP_SNAPSHOT)
    own_dir = read_meta_properties(root / meta_dir / "meta.properties")["directory.id"]
    header = SnapshotHeaderRecord(version=snapshot.header.version)
    voters = None
    if snapshot.voters is not None:
        voters = [(v.voter_id, "OWN" if uuid_to_kafka(v.voter_directory_id) == own_dir
                   else uuid_to_kafka(v.voter_directory_id), v.endpoints, v.kraft_version_feature)
                  for v in snapshot.voters.voters]
    return [header, snapshot.kraft_version, voters, [(r.message, r.version) for r in snapshot.records]]


SCENARIOS = {
    "combined-standalone": (COMBINED_DYNAMIC, ("--standalone",), "meta"),
    "combined-static": (COMBINED_STATIC, (), "data"),
    "combined-static-release-3.9-scram": (COMBINED_STATIC, ("--release-version", "3.9", "--add-scram", SCRAM),
                                          "data"),
    "controller-initial-controllers": (CONTROLLER, ("--initial-controllers", INITIAL), "c"),
    "controller-no-initial-controllers": (CONTROLLER, ("--no-initial-controllers",), "c"),
    "controller-not-a-voter": (CONTROLLER, ("--initial-controllers", INITIAL.replace("2@", "5@")), "c"),
    "controller-features": (CONTROLLER, ("--standalone", "--feature", "group.version=0",
                                         "--feature", "transaction.version=1"), "c"),
    "broker-dynamic": (BROKER, (), "b"),
    "broker-initial-controllers": (BROKER, ("--initial-controllers", INITIAL), "b"),
}


@pytest.mark.parametrize("name", SCENARIOS)
def test_format_writes_what_kafka_writes(tmp_path: Path, name: str) -> None:
    props, flags, meta_dir = SCENARIOS[name]
    (kafka, kafka_root), (strom, strom_root) = _both(tmp_path, props, *flags)
    assert kafka.returncode == 0, kafka.stderr
    assert strom.returncode == 0, strom.stderr
    assert _files(strom_root) == _files(kafka_root)
    for rel in _files(kafka_root):
        if rel.endswith("meta.properties"):
            ours, theirs = read_meta_properties(strom_root / rel), read_meta_properties(kafka_root / rel)
            assert ours.keys() == theirs.keys()
            assert {k: v for k, v in ours.items() if k != "directory.id"} == \
                   {k: v for k, v in theirs.items() if k != "directory.id"}
    # given voter directory ids are kept; the formatting lines name the same directory kinds
    assert _kinds(strom.stdout) == _kinds(kafka.stdout)
    if (kafka_root / meta_dir / CLUSTER_METADATA_DIR).exists():
        assert _normalized_snapshot(strom_root, meta_dir) == _normalized_snapshot(kafka_root, meta_dir)
        if flags[:1] == ("--initial-controllers",) and not flags[1].startswith("5@"):
            ours = read_meta_properties(strom_root / meta_dir / "meta.properties")
            assert ours["directory.id"] == VOTER_DIRS[0]


REFUSALS = {
    "static-voters-with-standalone": (COMBINED_STATIC, ("--standalone",),
                                      "You cannot specify controller.quorum.voters"),
    "broker-standalone": (BROKER, ("--standalone",), "You can only use --standalone on a controller."),
    "controller-without-quorum-flag": (CONTROLLER, (), "Because controller.quorum.voters is not set"),
    "kraft-version-0-dynamic": (CONTROLLER, ("--standalone", "--feature", "kraft.version=0"),
                                "Cannot set kraft.version to 0"),
    "kraft-version-1-static": (COMBINED_STATIC, ("--feature", "kraft.version=1"),
                               "Cannot set kraft.version to 1"),
    "unknown-feature": (CONTROLLER, ("--standalone", "--feature", "foo.version=1"),
                        "Unsupported feature: foo.version"),
    "unknown-release": (COMBINED_STATIC, ("--release-version", "9.9"), "Unknown metadata.version '9.9'"),
    "unknown-level": (COMBINED_STATIC, ("--feature", "group.version=9"),
                      "No feature:group.version with feature level 9"),
    "metadata-version-twice": (COMBINED_STATIC, ("--release-version", "3.9-IV0",
                                                 "--feature", "metadata.version=21"),
                               "Use --release-version instead of --feature metadata.version=X"),
    "voter-without-directory": (CONTROLLER, ("--initial-controllers", "2@localhost:9093"),
                                "No colon following port could be found."),
    "two-quorum-flags": (CONTROLLER, ("--standalone", "--no-initial-controllers"), ""),
}


@pytest.mark.parametrize("name", REFUSALS)
def test_format_refuses_what_kafka_refuses(tmp_path: Path, name: str) -> None:
    props, flags, message = REFUSALS[name]
    (kafka, kafka_root), (strom, strom_root) = _both(tmp_path, props, *flags)
    assert kafka.returncode != 0, kafka.stdout
    assert strom.returncode != 0, strom.stdout
    assert message in kafka.stderr + kafka.stdout
    assert message in strom.stderr
    assert _files(strom_root) == _files(kafka_root) == []


def test_formatting_twice(tmp_path: Path) -> None:
    config = _write_config(tmp_path, COMBINED_DYNAMIC)
    assert _strom("format", "-t", CLUSTER_ID, "-c", str(config), "--standalone").returncode == 0
    again = _strom("format", "-t", CLUSTER_ID, "-c", str(config), "--standalone")
    assert again.returncode == 1
    assert again.stderr.strip().endswith(
        f"Log directory {tmp_path}/data1 is already formatted. Use --ignore-formatted to ignore this "
        "directory and format the others.")
    # a new, empty directory is formatted; the formatted ones are left alone
    before = (tmp_path / "meta" / "meta.properties").read_text()
    props = {**COMBINED_DYNAMIC, "log.dirs": "{root}/data1,{root}/data2,{root}/data3"}
    config = _write_config(tmp_path, props)
    ignored = _strom("format", "-t", CLUSTER_ID, "-c", str(config), "--standalone", "--ignore-formatted")
    assert ignored.returncode == 0, ignored.stderr
    assert (tmp_path / "data3" / "meta.properties").exists()
    assert (tmp_path / "meta" / "meta.properties").read_text() == before
    done = _strom("format", "-t", CLUSTER_ID, "-c", str(config), "--standalone", "--ignore-formatted")
    assert done.stdout.strip() == "All of the log directories are already formatted."


def test_random_uuid() -> None:
    ids = {_strom("random-uuid").stdout.strip() for _ in range(3)}
    assert len(ids) == 3
    for text in ids:
        assert len(text) == 22 and not text.startswith("-") and "=" not in text


def test_serve_refuses_unformatted_kraft_dirs(tmp_path: Path) -> None:
    config = _write_config(tmp_path, COMBINED_DYNAMIC)
    proc = subprocess.run([STROM, "serve", "--config", str(config)], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 1
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1
    assert f"No `meta.properties` found in {tmp_path}/data1" in lines[0]
    assert "strom storage format" in lines[0]


@pytest.mark.slow
def test_kafka_starts_on_directories_strom_formatted(tmp_path: Path) -> None:
    """The strongest check of the bootstrap snapshot and meta.properties: Kafka 4.4 itself boots from them
    (it replays the snapshot's voters and features) and serves."""
    from benchmarks.peers.brokers import kafka_server_properties
    from benchmarks.peers.process import BrokerProcess
    from benchmarks.peers.tools import java_command
    from strom.testing.ports import free_port

    kafka_run("kafka.tools.StorageTool", "random-uuid")  # skips without Java or the jars
    port = free_port()
    config = tmp_path / "server.properties"
    config.write_text(kafka_server_properties(port, free_port(), tmp_path / "data"))
    formatted = _strom("format", "-t", CLUSTER_ID, "-c", str(config), "--standalone")
    assert formatted.returncode == 0, formatted.stderr
    kafka = BrokerProcess("kafka", java_command("kafka.Kafka", str(config), heap="512m"), port, tmp_path,
                          owns_workdir=False)
    with kafka.start(timeout=120):
        from confluent_kafka.admin import AdminClient

        metadata = AdminClient({"bootstrap.servers": kafka.bootstrap}).list_topics(timeout=10)
        assert metadata.cluster_id == CLUSTER_ID
        assert list(metadata.brokers) == [1]
