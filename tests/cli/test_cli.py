"""The installed `strom` executable against a running broker: outputs and exit codes, including failures
(unknown topic, unknown group, broker down, bad usage)."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from kafka.partitioner.default import murmur2

from strom.testing.embedded import EmbeddedBroker

STROM = shutil.which("strom") or str(Path(sys.executable).with_name("strom"))


@pytest.fixture(scope="module")
def cli_broker() -> Iterator[EmbeddedBroker]:
    with EmbeddedBroker({"num.partitions": "1"}) as broker:
        yield broker


def strom(
    broker: EmbeddedBroker | str, *args: str, stdin: str | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    bootstrap = broker if isinstance(broker, str) else broker.bootstrap_servers
    env = {**os.environ, "STROM_BOOTSTRAP_SERVER": bootstrap}
    proc = subprocess.run([STROM, *args], input=stdin, capture_output=True, text=True, env=env, timeout=60)
    if check:
        assert proc.returncode == 0, f"strom {' '.join(args)} exited {proc.returncode}: {proc.stderr}"
    return proc


def name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def test_executable_lists_every_command() -> None:
    out = subprocess.run([STROM, "--help"], capture_output=True, text=True, check=True).stdout
    for command in ("topics", "produce", "consume", "groups", "configs", "offsets", "dump-log", "cluster"):
        assert command in out


def test_topics_lifecycle(cli_broker: EmbeddedBroker) -> None:
    topic = name("cli-topics")
    assert (
        "Created topic"
        in strom(
            cli_broker, "topics", "create", topic, "--partitions", "2", "--config", "retention.ms=60000"
        ).stdout
    )
    again = strom(cli_broker, "topics", "create", topic, check=False)
    assert again.returncode == 1 and "TOPIC_ALREADY_EXISTS" in again.stderr
    strom(cli_broker, "topics", "create", topic, "--if-not-exists")
    assert topic in strom(cli_broker, "topics", "list").stdout.split()

    described = json.loads(strom(cli_broker, "topics", "describe", topic, "--format", "json").stdout)
    assert [p["partition"] for p in described[0]["partitions"]] == [0, 1]
    assert described[0]["configs"] == {"retention.ms": "60000"}
    text = strom(cli_broker, "topics", "describe", topic).stdout
    assert f"Topic: {topic}\tPartition: 1\tLeader: 1\tReplicas: 1\tIsr: 1" in text

    strom(cli_broker, "topics", "alter", topic, "--partitions", "3")
    described = json.loads(strom(cli_broker, "topics", "describe", topic, "--format", "json").stdout)
    assert len(described[0]["partitions"]) == 3
    shrink = strom(cli_broker, "topics", "alter", topic, "--partitions", "2", check=False)
    assert shrink.returncode == 1 and "INVALID_PARTITIONS" in shrink.stderr

    strom(cli_broker, "topics", "delete", topic)
    assert topic not in strom(cli_broker, "topics", "list").stdout.split()
    gone = strom(cli_broker, "topics", "describe", topic, check=False)
    assert gone.returncode == 1 and "UNKNOWN_TOPIC_OR_PARTITION" in gone.stderr


def test_produce_then_consume_with_keys_headers_and_format(cli_broker: EmbeddedBroker) -> None:
    topic = name("cli-data")
    strom(cli_broker, "topics", "create", topic, "--partitions", "3")
    lines = [f"key{i}:value{i}" for i in range(30)]
    produced = strom(
        cli_broker,
        "produce",
        topic,
        "--key-separator",
        ":",
        "--header",
        "src=test",
        "--compression",
        "lz4",
        "--format",
        "json",
        stdin="\n".join(lines) + "\n",
    )
    report = json.loads(produced.stdout)
    assert report["records"] == 30

    out = strom(
        cli_broker, "consume", topic, "--from-beginning", "--exit", "--format", r"%p|%o|%k|%v|%h\n"
    ).stdout
    rows = [line.split("|") for line in out.splitlines()]
    assert sorted(r[3] for r in rows) == sorted(f"value{i}" for i in range(30))
    for part, _offset, key, value, headers in rows:
        assert value == "value" + key.removeprefix("key")
        assert headers == "src=test"
        # keyed records land where Kafka's default (murmur2) partitioner puts them
        assert int(part) == (murmur2(key.encode()) & 0x7FFFFFFF) % 3
    per_partition: dict[str, list[int]] = {}
    for part, offset, *_ in rows:
        per_partition.setdefault(part, []).append(int(offset))
    for offsets in per_partition.values():
        assert offsets == list(range(len(offsets)))
    assert {int(p): (v["first_offset"], v["last_offset"]) for p, v in report["partitions"].items()} == {
        int(p): (0, len(o) - 1) for p, o in per_partition.items()
    }

    tail = strom(
        cli_broker,
        "consume",
        topic,
        "--partition",
        "0",
        "--offset",
        "-2",
        "--max-messages",
        "5",
        "--timeout-ms",
        "500",
        "--format",
        "json",
    ).stdout.splitlines()
    assert len(tail) == min(2, len(per_partition.get("0", [])))
    for line in tail:
        record = json.loads(line)
        assert record["partition"] == 0 and record["key"].startswith("key")


def test_produce_to_pinned_partition_and_max_messages(cli_broker: EmbeddedBroker, tmp_path: Path) -> None:
    topic = name("cli-pinned")
    strom(cli_broker, "topics", "create", topic, "--partitions", "2")
    data = tmp_path / "lines.txt"
    data.write_text("".join(f"line {i}\n" for i in range(1000)))
    strom(
        cli_broker,
        "produce",
        topic,
        "--file",
        str(data),
        "--partition",
        "1",
        "--batch-size",
        "100",
        "--acks",
        "1",
    )
    offsets = strom(cli_broker, "offsets", topic).stdout.split()
    assert offsets == [f"{topic}:0:0", f"{topic}:1:1000"]
    first = strom(cli_broker, "consume", topic, "--from-beginning", "--max-messages", "3").stdout
    assert first.splitlines() == ["line 0", "line 1", "line 2"]
    bad = strom(cli_broker, "produce", topic, "--partition", "7", stdin="x\n", check=False)
    assert bad.returncode == 1 and "no partition 7" in bad.stderr


@pytest.mark.slow
def test_groups_describe_reset_and_delete(cli_broker: EmbeddedBroker) -> None:
    topic, group = name("cli-groups"), name("g")
    strom(cli_broker, "topics", "create", topic, "--partitions", "2")
    strom(cli_broker, "produce", topic, "--partition", "0", stdin="".join(f"{i}\n" for i in range(10)))
    strom(cli_broker, "produce", topic, "--partition", "1", stdin="".join(f"{i}\n" for i in range(4)))
    consumed = strom(
        cli_broker,
        "consume",
        topic,
        "--group",
        group,
        "--from-beginning",
        "--partition",
        "0",
        "--max-messages",
        "6",
    )
    assert consumed.stdout.split() == [str(i) for i in range(6)]
    assert group in strom(cli_broker, "groups", "list").stdout.split()

    view = json.loads(strom(cli_broker, "groups", "describe", group, "--format", "json").stdout)
    assert view["state"] == "Empty"
    rows = {(r["topic"], r["partition"]): r for r in view["partitions"]}
    assert rows[(topic, 0)]["current_offset"] == 6
    assert rows[(topic, 0)]["log_end_offset"] == 10
    assert rows[(topic, 0)]["lag"] == 4
    text = strom(cli_broker, "groups", "describe", group).stdout
    assert "GROUP" in text and "CURRENT-OFFSET" in text and "LOG-END-OFFSET" in text and "CLIENT-ID" in text

    # a second run resumes at the committed offset
    resumed = strom(cli_broker, "consume", topic, "--group", group, "--partition", "0", "--exit")
    assert resumed.stdout.split() == ["6", "7", "8", "9"]

    plan = strom(
        cli_broker, "groups", "reset-offsets", group, "--topic", topic, "--to-earliest", "--format", "json"
    )
    planned = {(o["topic"], o["partition"]): o["new_offset"] for o in json.loads(plan.stdout)["offsets"]}
    assert planned == {(topic, 0): 0, (topic, 1): 0}
    view = json.loads(strom(cli_broker, "groups", "describe", group, "--format", "json").stdout)
    assert {r["partition"]: r["current_offset"] for r in view["partitions"]} == {0: 10}  # dry run only

    strom(
        cli_broker, "groups", "reset-offsets", group, "--topic", f"{topic}:0", "--shift-by", "-3", "--execute"
    )
    strom(
        cli_broker,
        "groups",
        "reset-offsets",
        group,
        "--topic",
        f"{topic}:1",
        "--to-offset",
        "99",
        "--execute",
    )
    view = json.loads(strom(cli_broker, "groups", "describe", group, "--format", "json").stdout)
    assert {r["partition"]: r["current_offset"] for r in view["partitions"]} == {0: 7, 1: 4}

    usage = strom(cli_broker, "groups", "reset-offsets", group, "--all-topics", check=False)
    assert usage.returncode == 2

    assert "successful" in strom(cli_broker, "groups", "delete", group).stdout
    missing = strom(cli_broker, "groups", "describe", group, check=False)
    assert missing.returncode == 1 and "does not exist" in missing.stderr


def test_configs_offsets_and_cluster(cli_broker: EmbeddedBroker) -> None:
    topic = name("cli-configs")
    strom(cli_broker, "topics", "create", topic)
    strom(cli_broker, "configs", "alter", "--topic", topic, "--set", "cleanup.policy=compact")
    described = json.loads(
        strom(cli_broker, "configs", "describe", "--topic", topic, "--format", "json").stdout
    )
    assert {
        "name": "cleanup.policy",
        "value": "compact",
        "source": "DYNAMIC_TOPIC_CONFIG",
        "read_only": False,
    } in described
    strom(cli_broker, "configs", "alter", "--topic", topic, "--delete", "cleanup.policy")
    described = json.loads(
        strom(cli_broker, "configs", "describe", "--topic", topic, "--format", "json").stdout
    )
    assert all(c["name"] != "cleanup.policy" for c in described)
    cluster = json.loads(strom(cli_broker, "cluster", "--format", "json").stdout)
    assert cluster["controller"] == 1 and cluster["brokers"][0]["port"] == cli_broker.port
    assert strom(cli_broker, "offsets", topic, "--time", "earliest").stdout.strip() == f"{topic}:0:0"


def test_unknown_topic_fails_cleanly(cli_broker: EmbeddedBroker) -> None:
    missing = strom(cli_broker, "consume", name("missing"), "--exit", check=False)
    assert missing.returncode == 1
    assert "UNKNOWN_TOPIC_OR_PARTITION" in missing.stderr
    assert "Traceback" not in missing.stderr
    offsets = strom(cli_broker, "offsets", name("missing"), check=False)
    assert offsets.returncode == 1 and "UNKNOWN_TOPIC_OR_PARTITION" in offsets.stderr


def test_broker_down_fails_cleanly() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens once the socket closes
    for args in (("topics", "list"), ("consume", "t", "--exit"), ("groups", "list")):
        proc = strom(f"127.0.0.1:{port}", *args, stdin="", check=False)
        assert proc.returncode == 1, args
        assert "cannot reach" in proc.stderr and "Traceback" not in proc.stderr


def test_command_config_file_sets_bootstrap(cli_broker: EmbeddedBroker, tmp_path: Path) -> None:
    props = tmp_path / "client.properties"
    props.write_text(f"bootstrap.servers={cli_broker.bootstrap_servers}\nclient.id=from-file\n")
    proc = strom("127.0.0.1:1", "topics", "list", "--command-config", str(props))
    assert proc.returncode == 0


def test_dump_log_reads_segments_and_checks_indexes(cli_broker: EmbeddedBroker, tmp_path: Path) -> None:
    topic = name("cli-dump")
    strom(cli_broker, "topics", "create", topic, "--config", "index.interval.bytes=64")
    strom(
        cli_broker,
        "produce",
        topic,
        "--batch-size",
        "3",
        "--key-separator",
        "=",
        stdin="".join(f"k{i}=v{i}\n" for i in range(12)),
    )
    segment_dir = cli_broker.data_dir / f"{topic}-0"
    log = segment_dir / "00000000000000000000.log"
    out = strom(cli_broker, "dump-log", str(log), "--print-data").stdout
    batches = [line for line in out.splitlines() if line.startswith("baseOffset:")]
    assert len(batches) == 4
    assert batches[1].startswith("baseOffset: 3 lastOffset: 5 count: 3")
    assert all("isvalid: true" in line for line in batches)
    assert "| offset: 11 " in out and "key: k11 payload: v11" in out

    index = strom(cli_broker, "dump-log", str(log.with_suffix(".index"))).stdout
    assert "offset: 5 position:" in index and "Mismatches" not in index
    sanity = strom(
        cli_broker,
        "dump-log",
        "--index-sanity-check",
        str(log.with_suffix(".index")),
        str(log.with_suffix(".timeindex")),
    ).stdout
    assert sanity.count("passed sanity check") == 2

    # a flipped payload byte fails the CRC; a bad index entry fails the index check
    copy = tmp_path / log.name
    raw = bytearray(log.read_bytes())
    raw[-2] ^= 0xFF
    copy.write_bytes(raw)
    corrupt = strom(cli_broker, "dump-log", str(copy), check=False)
    assert corrupt.returncode == 1 and "isvalid: false" in corrupt.stdout
    bad_index = tmp_path / "00000000000000000000.index"
    bad_index.write_bytes((5).to_bytes(4, "big") + (7).to_bytes(4, "big"))
    failed = strom(cli_broker, "dump-log", "--verify-index-only", str(bad_index), check=False)
    assert failed.returncode == 1 and "Mismatches in" in failed.stdout
