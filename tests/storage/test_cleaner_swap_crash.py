"""A process killed between any two renames of the cleaner's swap (.cleaned -> .swap -> live, old ->
.deleted) reopens to a consistent log: the latest value of every key, each surviving record exactly as
written at its offset, strictly increasing offsets, and no leftover temporary files."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import pytest
from test_cleaner_support import COMPACT, latest, put, read_all

from strom.storage.cleaner import prepare_clean, run_clean
from strom.storage.log import Log
from strom.storage.swap import swap_in

REPO = Path(__file__).resolve().parents[2]
TS = 1_700_000_000_000
GROUPED = dataclasses.replace(COMPACT, segment_bytes=4000)  # lets the pass merge the small segments
STOP_STEPS = range(0, 10)

# Builds the same log as `build`, cleans it and dies (os._exit: no cleanup, no close) at step N.
CHILD = r"""
import os, sys
sys.path.insert(0, sys.argv[3])
sys.path.insert(0, os.path.join(sys.argv[3], "tests", "storage"))
from test_cleaner_swap_crash import build, GROUPED, TS
from strom.storage.cleaner import prepare_clean, run_clean
from strom.storage.swap import swap_in

directory, stop_at = sys.argv[1], int(sys.argv[2])
log, _ = build(directory)
log.update_config(GROUPED)
prepared = prepare_clean(log, 0, log.active_segment.base_offset, TS)
result = run_clean(prepared.job)
steps = [0]

def step(name):
    steps[0] += 1
    if steps[0] == stop_at:
        os._exit(0)

if stop_at == 0:
    os._exit(0)          # cleaned files written, nothing renamed yet
for group in prepared.cleaned_groups(result):
    swap_in(log, group, TS, step)
os._exit(3)              # never reached for the steps under test
"""


def build(directory: str | Path) -> tuple[Log, list[tuple[int, bytes, bytes | None]]]:
    log = Log.open(Path(directory) / "topic-0", COMPACT, clock=lambda: TS / 1000)
    written = []
    for r in range(8):
        for k in range(3):
            value = None if (r == 5 and k == 2) else f"v{r}-{k}".encode()
            key = f"k{k}".encode()
            written.append((put(log, key, value, TS), key, value))
    return log, written


def count_steps(tmp_path: Path) -> list[str]:
    log, _ = build(tmp_path / "count")
    log.update_config(GROUPED)
    prepared = prepare_clean(log, 0, log.active_segment.base_offset, TS)
    result = run_clean(prepared.job)
    names: list[str] = []
    assert len(result.groups) == 1 and len(result.groups[0].old_bases) >= 3
    for group in prepared.cleaned_groups(result):
        swap_in(log, group, TS, names.append)
    log.close()
    return names


def test_step_names_cover_every_rename(tmp_path: Path) -> None:
    names = count_steps(tmp_path)
    assert names[0] == "renamed-to-swap"
    assert [n for n in names if n.startswith("old-deleted")] == [
        f"old-deleted-{i}" for i in range(len(names) - 5)
    ]
    assert names[-4:] == ["swap-to-live-.log", "swap-to-live-.index", "swap-to-live-.timeindex", "replaced"]
    assert len(names) <= max(STOP_STEPS), "the crash test must stop at every step of the swap"


def _check_consistent(directory: Path, written: list[tuple[int, bytes, bytes | None]]) -> None:
    log = Log.open(directory / "topic-0", COMPACT, clock=lambda: TS / 1000)
    try:
        after = read_all(log)
        offsets = [o for o, _k, _v in after]
        assert offsets == sorted(set(offsets))
        by_offset = {o: (k, v) for o, k, v in written}
        assert all(by_offset[o] == (k, v) for o, k, v in after)
        assert latest(after) == latest([(o, k, v) for o, k, v in written])
        assert log.log_end_offset == written[-1][0] + 1
        leftovers = [n for n in os.listdir(log.dir) if n.endswith((".cleaned", ".swap", ".deleted"))]
        assert leftovers == []
        bases = [s.base_offset for s in log.segments()]
        assert bases == sorted(set(bases))
    finally:
        log.close()


@pytest.mark.parametrize("stop_at", STOP_STEPS)
def test_kill_at_every_swap_step_recovers(tmp_path: Path, stop_at: int) -> None:
    total = len(count_steps(tmp_path))
    if stop_at > total:
        pytest.skip(f"the swap has {total} steps")
    data = tmp_path / "data"
    data.mkdir()
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, str(data), str(stop_at), str(REPO)],
        capture_output=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr.decode()
    _, written = build(tmp_path / "reference")
    _check_consistent(data, written)
    # and the reopened log can be cleaned again to the same result as an uninterrupted pass
    log = Log.open(data / "topic-0", GROUPED, clock=lambda: TS / 1000)
    try:
        prepared = prepare_clean(log, 0, log.active_segment.base_offset, TS)
        result = run_clean(prepared.job)
        for group in prepared.cleaned_groups(result):
            swap_in(log, group, TS)
        assert latest(read_all(log)) == latest(written)
    finally:
        log.close()
