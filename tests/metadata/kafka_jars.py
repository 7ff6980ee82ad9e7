"""Running Apache Kafka's own classes (the Maven Central jars of scripts/fetch-tools) from the metadata
tests; tests skip when Java or the jars are not available."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from benchmarks.peers.tools import ToolUnavailable, ensure_tools, java_command

_PAYLOAD = re.compile(r"^\| offset: (\d+) .*? payload: (\{.*\})$")
_CONTROL = re.compile(r"^\| offset: (\d+) .*? headerKeys: \[\] (\w+):? (\{.*\})$")


def kafka_run(main_class: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run one of Kafka's main classes; skips the test when the tools cannot be had."""
    try:
        ensure_tools()
        cmd = java_command(main_class, *args)
    except ToolUnavailable as exc:
        pytest.skip(str(exc))
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


def dump_cluster_metadata(path: Path) -> dict[int, tuple[str, dict[str, Any]]]:
    """kafka-dump-log --cluster-metadata-decoder of one file: offset -> (type, JSON) per record, where the
    type is the metadata record type (TOPIC_RECORD, ...) with the JSON's "data", or the control record's
    label (LeaderChange, SnapshotHeader, KRaftVersion, KRaftVoters, ...) with its JSON."""
    proc = kafka_run("org.apache.kafka.tools.DumpLogSegments", "--cluster-metadata-decoder",
                     "--files", str(path))
    assert proc.returncode == 0, proc.stderr
    records: dict[int, tuple[str, dict[str, Any]]] = {}
    for line in proc.stdout.splitlines():
        if m := _PAYLOAD.match(line):
            payload = json.loads(m.group(2))
            records[int(m.group(1))] = (payload["type"], {"version": payload["version"], **payload["data"]})
        elif m := _CONTROL.match(line):
            records[int(m.group(1))] = (m.group(2), json.loads(m.group(3)))
        elif line.startswith("|"):
            raise AssertionError(f"kafka-dump-log line not understood: {line}")
    return records
