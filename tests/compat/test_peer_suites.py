"""franz-go's own ETL integration tests (TestGroupETL, TestTxnEtl from github.com/twmb/franz-go/pkg/kgo),
its share-group tests and its SASL tests against a three-broker Strom cluster in ZooKeeper mode, through
scripts/peer-suites, with 20,000 records.

TestGroupETL chains three consumer groups (range, cooperative-sticky, static members) through idempotent
producers with members joining and leaving; TestTxnEtl does the same with transactional
consume-transform-produce sessions (read_committed, TxnOffsetCommit, KIP-447 fencing). Both check that
every record arrives exactly once, in order per partition; the "848" subtests use KIP-848 consumer groups
(ConsumerGroupHeartbeat) and TestTxnEtl uses transaction version 2 (KIP-890 part 2). The run is bounded:
go test's own -timeout, a hard kill a minute later, and this test's timeout around both.
docs/peer-suites.md has the results and how to run the whole kgo package.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from compat_support import run_script_bounded

from strom.testing.prerequisites import missing
from strom.testing.zookeeper import DEFAULT_CLASSPATH

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "peer-suites"
GO_TIMEOUT_S = 420  # go test -timeout; on an idle 2-core machine both tests take about 2 minutes together
GRACE_S = 60  # scripts/peer-suites kills the test binary this long after its timeout
BUILD_S = 240  # a cold Go build cache (the test binary is cached under .cache/peer-suites afterwards)

pytestmark = [pytest.mark.slow, pytest.mark.peer, pytest.mark.compat, pytest.mark.cluster]


SHARE_TESTS = (
    "TestShareGroup", "TestShareGroupETL", "TestShareGroupAckOnClose", "TestShareGroupOffsetsAdmin",
    "TestConsumeRegexShareSkipsInternal",
)  # fmt: skip


SASL_TESTS = ("TestSCRAMAuth", "TestSCRAMAuthBadCredentials", "TestOAuthAuth")


def _run(out: Path, *selection: str) -> tuple[int, str]:
    cmd = [
        str(SCRIPT), *(selection or ("--suite", "etl")), "--records", "20000",
        "--timeout", f"{GO_TIMEOUT_S}s", "--out", str(out), "--progress", "0",
    ]  # fmt: skip
    return run_script_bounded(cmd, REPO, GO_TIMEOUT_S + GRACE_S + BUILD_S)


def _statuses(out: Path, code: int, output: str) -> dict[str, str]:
    summary_path = out / "summary.json"
    assert summary_path.exists(), f"exit {code}, no summary:\n{output[-6000:]}"
    summary = json.loads(summary_path.read_text())
    assert code == 0, f"exit {code}:\n{output[-8000:]}\nbroker logs and the go test stream in {out}"
    return {t["name"]: t["status"] for t in summary["tests"]}


def _require_tools() -> None:
    if shutil.which("go") is None:
        missing("go is needed to build franz-go's tests")
    if shutil.which("java") is None or not Path(DEFAULT_CLASSPATH).exists():
        missing("java and Debian's zookeeper package are needed")


@pytest.mark.timeout(GO_TIMEOUT_S + GRACE_S + BUILD_S + 120)
def test_franz_go_etl_suites_pass_against_a_three_broker_cluster(tmp_path: Path) -> None:
    _require_tools()
    out = tmp_path / "run"
    statuses = _statuses(out, *_run(out))
    assert statuses.get("TestGroupETL") == "PASS" and statuses.get("TestTxnEtl") == "PASS", statuses
    ran = [name for name, status in statuses.items() if "/" in name and status == "PASS"]
    assert len(ran) >= 6, statuses  # range, cooperative-sticky and static members, in both tests


@pytest.mark.timeout(GO_TIMEOUT_S + GRACE_S + BUILD_S + 120)
def test_franz_go_share_group_tests_pass_against_a_three_broker_cluster(tmp_path: Path) -> None:
    """franz-go's share-group tests (KIP-932): a share consumer reading records produced before it joined
    (share.auto.offset.reset=earliest set as a GROUP config), acknowledgements on close, a two-level share
    ETL with rejects and killed members where every record is accepted exactly once, and the share-group
    offsets admin APIs."""
    _require_tools()
    out = tmp_path / "run"
    run = "^(" + "|".join(SHARE_TESTS) + ")$"
    statuses = _statuses(out, *_run(out, "--suite", "kgo", "--run", run))
    assert {name: statuses.get(name) for name in SHARE_TESTS} == dict.fromkeys(SHARE_TESTS, "PASS"), statuses


@pytest.mark.timeout(GO_TIMEOUT_S + GRACE_S + BUILD_S + 120)
def test_franz_go_sasl_tests_pass_against_a_three_broker_cluster(tmp_path: Path) -> None:
    """franz-go's SCRAM and OAUTHBEARER tests against the SASL_PLAINTEXT listener scripts/peer-suites adds
    (franz-go's CI layout: SCRAM-SHA-256 user testuser created through AlterUserScramCredentials, and
    OAUTHBEARER with Kafka's unsecured-JWS validator): a SCRAM login then Metadata through it, an unknown
    user refused, an unsecured token accepted and an expired one refused with SASL_AUTHENTICATION_FAILED
    carrying invalid_token. A skip would mean the KGO_TEST_SCRAM* / KGO_TEST_OAUTH_SEEDS variables were
    not set, so only PASS counts. About 5 s once the test binary is built."""
    _require_tools()
    out = tmp_path / "run"
    run = "^(" + "|".join(SASL_TESTS) + ")$"
    statuses = _statuses(out, *_run(out, "--suite", "kgo", "--run", run))
    assert {name: statuses.get(name) for name in SASL_TESTS} == dict.fromkeys(SASL_TESTS, "PASS"), statuses
