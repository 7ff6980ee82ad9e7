"""API version parity with Apache Kafka, measured by Kafka's own `kafka-broker-api-versions` tool.

The tool (org.apache.kafka.tools.BrokerApiVersionsCommand) runs against a reference Apache Kafka broker and
the broker under test, side by side. Every (api, version) pair the reference lists must be served by the
broker under test, except the pairs docs/GAPS.md lists in its "API versions not served yet" table, each
with the issue that will bring it. The table must be exact: a pair served now must leave it, so the gap
list can never go stale. With `--kafka-reference` the broker under test is Kafka itself and the two lists
must simply agree (which checks the tool and the parsing).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from compat_support import BrokerUnderTest, JavaTools

from benchmarks.peers import brokers

pytestmark = pytest.mark.compat

GAPS = Path(__file__).resolve().parents[2] / "docs" / "GAPS.md"
GAPS_HEADING = "## API versions not served yet"
TOOL = "org.apache.kafka.tools.BrokerApiVersionsCommand"

# "Produce(0): 3 to 9 [usable: 9]," / "WriteTxnMarkers(27): 1 [usable: 1]," / "SaslHandshake(17): UNSUPPORTED"
_TOOL_LINE = re.compile(r"^\s*(\w+)\((\d+)\): (?:(UNSUPPORTED)|(\d+)(?: to (\d+))?)", re.M)
# "| Produce (0) | 0-2, 10-13 | #13 |"
_GAP_ROW = re.compile(r"^\| (\w+) \((\d+)\) \| ([\d, -]+) \| (#\d+)[^|]*\|", re.M)

Versions = dict[int, tuple[str, frozenset[int]]]


def parse_tool_output(text: str) -> Versions:
    """{api key: (name, versions served)} from kafka-broker-api-versions output for one broker."""
    found: Versions = {}
    for m in _TOOL_LINE.finditer(text):
        name, key = m.group(1), int(m.group(2))
        if m.group(3):
            found[key] = (name, frozenset())
        else:
            low = int(m.group(4))
            high = int(m.group(5) or low)
            found[key] = (name, frozenset(range(low, high + 1)))
    return found


def _parse_ranges(text: str) -> frozenset[int]:
    versions: set[int] = set()
    for part in text.split(","):
        low, _, high = part.strip().partition("-")
        versions.update(range(int(low), int(high or low) + 1))
    return frozenset(versions)


def listed_gaps(markdown: str) -> dict[int, tuple[str, frozenset[int], str]]:
    """{api key: (name, versions not served, issue)} from GAPS.md's API-versions table."""
    _, _, section = markdown.partition(GAPS_HEADING)
    section = section.split("\n## ", 1)[0]
    return {
        int(m.group(2)): (m.group(1), _parse_ranges(m.group(3)), m.group(4))
        for m in _GAP_ROW.finditer(section)
    }


def _format(versions: frozenset[int]) -> str:
    ordered = sorted(versions)
    runs: list[str] = []
    start = prev = ordered[0]
    for v in [*ordered[1:], None]:
        if v is not None and v == prev + 1:
            prev = v
            continue
        runs.append(str(start) if start == prev else f"{start}-{prev}")
        if v is not None:
            start = prev = v
    return ", ".join(runs)


def _versions_of(java_tools: JavaTools, bootstrap: str) -> Versions:
    out = java_tools.run(TOOL, "--bootstrap-server", bootstrap, timeout=120).stdout
    versions = parse_tool_output(out)
    assert len(versions) > 60, f"could not parse {TOOL} output:\n{out[:2000]}"
    return versions


@pytest.fixture(scope="module")
def reference_bootstrap(broker_under_test: BrokerUnderTest) -> Iterator[str]:
    """An Apache Kafka broker to compare with: the broker under test when it is Kafka, else a fresh one."""
    if broker_under_test.kind == "kafka":
        yield broker_under_test.bootstrap
        return
    proc = brokers.start_kafka()
    try:
        yield proc.bootstrap
    finally:
        proc.stop()


def test_parse_helpers() -> None:
    text = (
        "\tProduce(0): 3 to 9 [usable: 9],\n\tWriteTxnMarkers(27): 1 [usable: 1],\n"
        "\tSaslHandshake(17): UNSUPPORTED,"
    )
    assert parse_tool_output(text) == {
        0: ("Produce", frozenset(range(3, 10))),
        27: ("WriteTxnMarkers", frozenset({1})),
        17: ("SaslHandshake", frozenset()),
    }
    assert _parse_ranges("0-2, 10-13") == frozenset({0, 1, 2, 10, 11, 12, 13})
    assert _format(frozenset({0, 1, 2, 10, 11, 12, 13})) == "0-2, 10-13"
    table = f"{GAPS_HEADING}\n\n| API | versions | issue |\n| --- | --- | --- |\n| Fetch (1) | 13-18 | #13 |"
    assert listed_gaps(table) == {1: ("Fetch", frozenset(range(13, 19)), "#13")}


def test_every_kafka_api_version_is_served_or_listed(
    java_tools: JavaTools, broker_under_test: BrokerUnderTest, reference_bootstrap: str
) -> None:
    kafka = _versions_of(java_tools, reference_bootstrap)
    ours = _versions_of(java_tools, broker_under_test.bootstrap)
    missing = {
        key: (name, versions - ours.get(key, (name, frozenset()))[1])
        for key, (name, versions) in kafka.items()
    }
    missing = {key: gap for key, gap in missing.items() if gap[1]}
    if broker_under_test.kind == "kafka":
        assert missing == {}
        return
    listed = listed_gaps(GAPS.read_text())
    unlisted = [
        f"| {name} ({key}) | {_format(gap - listed.get(key, ('', frozenset(), ''))[1])} |"
        for key, (name, gap) in sorted(missing.items())
        if gap - listed.get(key, ("", frozenset(), ""))[1]
    ]
    assert not unlisted, "Kafka serves these (api, version) pairs; serve them or list them in GAPS.md:\n" + (
        "\n".join(unlisted)
    )
    stale = [
        f"{name} ({key}): {_format(versions - missing.get(key, (name, frozenset()))[1])}"
        for key, (name, versions, _) in sorted(listed.items())
        if versions - missing.get(key, (name, frozenset()))[1]
    ]
    assert not stale, "GAPS.md lists versions that are served now (or that Kafka does not have):\n" + (
        "\n".join(stale)
    )
