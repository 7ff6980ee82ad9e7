"""The test tree itself: pytest's default import mode puts each test directory without an __init__.py on
sys.path and imports its modules by basename, so two such modules with one name cannot run in one
session (pytest stops with "import file mismatch"). New test modules need names of their own.

The compatibility suite's yardstick pass (`.ci/run`: `-m compat tests/compat --kafka-reference`) runs
only tests marked `compat`: a module of tests/compat without the mark would never be checked against
Kafka. The few that test Strom alone (they start a Strom broker of their own) are listed here."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

TESTS = Path(__file__).resolve().parent


def test_test_module_basenames_are_unique() -> None:
    by_name: dict[str, list[str]] = defaultdict(list)
    for path in TESTS.rglob("test_*.py"):
        if (path.parent / "__init__.py").exists():
            continue  # imported as part of its package, under a qualified name
        by_name[path.name].append(str(path.relative_to(TESTS)))
    clashes = {name: paths for name, paths in by_name.items() if len(paths) > 1}
    assert not clashes, f"test modules sharing a basename: {clashes}"


STROM_ONLY_COMPAT_MODULES = {"test_bad_input.py", "test_compaction.py"}


def test_compat_modules_run_in_the_kafka_reference_pass() -> None:
    unmarked = [
        path.name
        for path in sorted((TESTS / "compat").glob("test_*.py"))
        if "pytest.mark.compat" not in path.read_text() and path.name not in STROM_ONLY_COMPAT_MODULES
    ]
    assert not unmarked, f"tests/compat modules without pytest.mark.compat: {unmarked}"
