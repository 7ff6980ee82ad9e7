"""kafkajs (node, pure JavaScript client) against the broker under test: an idempotent producer with
keys, headers and gzip, the admin ListOffsets and Metadata calls, a consumer group reading
fromBeginning (FindCoordinator, JoinGroup, SyncGroup, Heartbeat, OffsetFetch), and AlterConfigs /
DescribeConfigs on a topic and on a broker with keys the broker does not know (as kafkajs's own admin
test does)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from compat_support import BrokerUnderTest, ToolFailed

pytestmark = pytest.mark.compat

SCRIPT = Path(__file__).parent / "node" / "kafkajs_client.js"


def _run_node(node_modules: Path, *args: str, timeout: float = 60.0) -> dict:
    node = shutil.which("node")
    if node is None:
        raise ToolFailed("node is not installed")
    env = {**os.environ, "NODE_PATH": str(node_modules), "KAFKAJS_NO_PARTITIONER_WARNING": "1"}
    proc = subprocess.run([node, str(SCRIPT), *args], capture_output=True, text=True, timeout=timeout,
                          env=env)
    if proc.returncode != 0:
        raise ToolFailed(f"kafkajs {args[0]} exited {proc.returncode}:\n{proc.stderr[-3000:]}")
    if not proc.stdout.strip():
        raise ToolFailed(f"kafkajs {args[0]} printed no result:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_kafkajs_produce_and_offsets(node_modules: Path, broker: str, topic: str) -> None:
    result = _run_node(node_modules, "produce-offsets", broker, topic, "10")
    assert result["listed"] is True
    assert [a["partition"] for a in result["acks"]] == [0, 0]
    assert sorted(int(a["baseOffset"]) for a in result["acks"]) == [0, 5]
    [offsets] = result["offsets"]
    assert (offsets["partition"], offsets["low"], offsets["high"]) == (0, "0", "10")


def test_kafkajs_consumer_group_from_beginning(request: pytest.FixtureRequest, node_modules: Path,
                                               broker_under_test: BrokerUnderTest, topic: str) -> None:
    broker = broker_under_test.bootstrap
    _run_node(node_modules, "produce-offsets", broker, topic, "6")
    result = _run_node(node_modules, "group-consume", broker, topic, "6", timeout=90)
    seen = result["seen"]
    assert [s["offset"] for s in seen] == [str(i) for i in range(6)]
    assert [s["key"] for s in seen] == [f"k{i}" for i in range(6)]
    assert [s["value"] for s in seen] == [f"v{i}" for i in range(6)]
    assert [s["headers"] for s in seen] == [{"n": str(i)} for i in range(6)]


def test_kafkajs_alter_configs_with_unknown_broker_keys(node_modules: Path, broker: str, topic: str) -> None:
    result = _run_node(node_modules, "alter-configs", broker, topic)
    assert [a["errorCode"] for a in result["altered"]] == [0, 0]
    described = {r["type"]: r for r in result["described"]}
    topic_entries = {e["name"]: e for e in described[2]["entries"]}
    assert topic_entries["cleanup.policy"]["value"] == "compact"
    broker_entries = {e["name"]: e for e in described[4]["entries"]}
    # unknown broker keys: kept as dynamic configs, shown without a value, read-only and sensitive
    for key in ("cleanup.policy", result["unknownKey"]):
        entry = broker_entries[key]
        shown = (entry["value"], entry["readOnly"], entry["sensitive"], entry["source"])
        assert shown == (None, True, True, 2)
