"""Missing test prerequisites (Java, ZooKeeper, Kafka's tools): a skip on a developer's machine, a
failure where the suite promises to have installed them (scripts/test exports STROM_REQUIRE_TOOLS=1, and
CI systems set CI), so a broken CI image cannot turn whole suites into silent skips."""

from __future__ import annotations

import os
from typing import NoReturn

import pytest

_TRUE = {"1", "true", "yes"}


def tools_required() -> bool:
    return any(os.environ.get(name, "").strip().lower() in _TRUE for name in ("STROM_REQUIRE_TOOLS", "CI"))


def missing(reason: str) -> NoReturn:
    """End the current test or fixture because `reason` is missing: skip, or fail when required."""
    if tools_required():
        pytest.fail(f"{reason} (required: STROM_REQUIRE_TOOLS or CI is set)", pytrace=False)
    pytest.skip(reason)
