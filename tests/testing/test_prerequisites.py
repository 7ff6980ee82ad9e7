"""A missing prerequisite skips on a developer machine and fails where the tools are promised."""

from __future__ import annotations

import pytest

from strom.testing.prerequisites import missing, tools_required


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    monkeypatch.delenv("STROM_REQUIRE_TOOLS", raising=False)
    monkeypatch.delenv("CI", raising=False)
    return monkeypatch


def test_skips_when_not_required(clean_env: pytest.MonkeyPatch) -> None:
    assert not tools_required()
    with pytest.raises(pytest.skip.Exception, match="java"):
        missing("java")


@pytest.mark.parametrize(("name", "value"), [("STROM_REQUIRE_TOOLS", "1"), ("CI", "true")])
def test_fails_when_required(clean_env: pytest.MonkeyPatch, name: str, value: str) -> None:
    clean_env.setenv(name, value)
    with pytest.raises(pytest.fail.Exception, match="java"):
        missing("java")


def test_false_values_do_not_require(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("CI", "false")
    assert not tools_required()
