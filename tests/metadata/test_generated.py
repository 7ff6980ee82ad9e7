"""strom/metadata/records.py and release_versions.py are exactly what scripts/gen-metadata-records makes
from the Kafka jars of scripts/fetch-tools: regenerating changes nothing."""

from __future__ import annotations

import subprocess
import sys

import pytest

from benchmarks.peers.tools import REPO_ROOT, ToolUnavailable, ensure_tools


def test_generated_files_are_current() -> None:
    try:
        ensure_tools()
    except ToolUnavailable as exc:
        pytest.skip(str(exc))
    proc = subprocess.run([sys.executable, str(REPO_ROOT / "scripts" / "gen-metadata-records"), "--check"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr + proc.stdout
