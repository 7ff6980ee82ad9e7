"""The test tree itself: pytest's default import mode puts each test directory without an __init__.py on
sys.path and imports its modules by basename, so two such modules with one name cannot run in one
session (pytest stops with "import file mismatch"). New test modules need names of their own."""

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
