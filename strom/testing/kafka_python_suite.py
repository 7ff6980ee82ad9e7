"""kafka-python's own integration suite (`test/integration` of its source distribution) against one broker.

kafka-python ships its integration tests in the sdist on PyPI (`pip download --no-binary kafka-python`),
without the helpers that spawn brokers (`test/service.py`, `test/__init__.py`): this module adds stand-ins
for those (only the external-broker path is used) and points the suite at a running broker through the
variables its conftest reads: `KAFKA_URI` (the bootstrap address; the fixtures then use that broker for
every test instead of spawning one), `KAFKA_VERSION` (the broker version the clients pin as `api_version`)
and `KAFKA_ROOT` (must name an existing directory). The SASL and SSL tests ask for brokers with those
listeners; with `KAFKA_URI` they get the plain one, so they fail alike on every target.

The targets: `strom` (one `strom serve`, the default single-node mode), `strom-kraft` (one Strom node with
process.roles=broker,controller, formatted by `strom storage format`: the shape of Kafka's reference node)
and `kafka` (Apache Kafka 4.4, single-node KRaft), all with the compatibility suite's single-node settings
and the same listener keys (benchmarks.peers.brokers). `--target` takes a comma-separated list; `both` is
`strom,kafka`. Targets run one after another and the tallies are printed side by side; `summary.json` in
`--out` holds every test's outcome per target (JUnit XML from pytest underneath).

Exit status: 0 when every Strom target passed at least as many tests as Kafka (when Kafka ran) or nothing
failed (no Kafka target), 1 otherwise, 2 when the suite or a broker could not be set up.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tarfile
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
CACHE = REPO_ROOT / ".cache" / "peer-suites"
KAFKA_VERSION = "4.4.0"

# test/service.py as the suite imports it: ExternalService is all an external broker needs; spawning
# a broker from the sdist is not possible (it ships no broker scripts and no server properties).
_SERVICE_SHIM = '''"""Stand-in for kafka-python's test/service.py (not in its sdist): external brokers."""


class ExternalService:
    def __init__(self, host, port):
        self.host = host
        self.port = port

    def open(self):
        pass

    def close(self):
        pass

    def wait_for(self, pattern, timeout=30):
        return True

    def dump_logs(self):
        pass


class SpawnedService:
    def __init__(self, *args, **kwargs):
        raise RuntimeError("spawning brokers is not available: set KAFKA_URI")
'''


@dataclass
class Tally:
    """Outcomes of one run: test id -> passed, failed, error or skipped."""

    outcomes: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0

    def count(self, outcome: str) -> int:
        return sum(1 for o in self.outcomes.values() if o == outcome)

    @property
    def passed(self) -> int:
        return self.count("passed")

    def text(self) -> str:
        parts = [f"{self.count(o)} {o}" for o in ("passed", "failed", "error", "skipped") if self.count(o)]
        return ", ".join(parts) or "no tests"


def fetch_suite(version: str) -> Path:
    """The sdist of kafka-python `version`, downloaded from PyPI once and unpacked under .cache, with the
    stand-ins it lacks; returns the source root (holding `test/integration`)."""
    base = CACHE / f"kafka-python-{version}"
    root = base / f"kafka_python-{version}"
    if not (root / "test" / "integration" / "conftest.py").exists():
        base.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--no-binary", "kafka-python", "--no-deps",
             f"kafka-python=={version}", "-d", str(base)],
            check=True, timeout=300,
        )  # fmt: skip
        archive = next(base.glob(f"kafka_python-{version}.tar.gz"))
        with tarfile.open(archive) as tar:
            tar.extractall(base, filter="data")
    test = root / "test"
    (test / "__init__.py").touch()
    (test / "service.py").write_text(_SERVICE_SHIM)
    return root


@contextmanager
def running_broker(target: str) -> Iterator[str]:
    """A fresh single-node broker (strom or kafka); yields its bootstrap address."""
    sys.path.insert(0, str(REPO_ROOT))
    from benchmarks.peers import brokers, tools

    if target == "kafka":
        tools.ensure_tools()
        proc = brokers.start_kafka()
    elif target == "strom-kraft":
        with _combined_strom_node(brokers.SINGLE_NODE_SETTINGS) as bootstrap:
            yield bootstrap
        return
    else:
        # Kafka's server.properties names listeners and advertised.listeners (benchmarks.peers.brokers), and
        # the suite asks where broker configs come from, so Strom gets the same keys rather than --port alone.
        port = brokers.free_port()
        proc = brokers.start_strom(port=port, settings=brokers.listener_settings(port))
    try:
        yield proc.bootstrap
    finally:
        proc.stop()


@contextmanager
def _combined_strom_node(settings: dict[str, str]) -> Iterator[str]:
    """One formatted Strom node with process.roles=broker,controller, advertising its PLAINTEXT listener as
    Kafka's reference node does."""
    from strom.testing.kraft_cluster import KRaftCluster

    with KRaftCluster(combined=1, settings=settings) as cluster:
        port = cluster.broker_ports[1]
        with cluster.config_path(1).open("a") as config:
            config.write(f"advertised.listeners=PLAINTEXT://127.0.0.1:{port}\n")
        cluster.start_all()
        yield cluster.bootstrap_servers


def run_suite(root: Path, bootstrap: str, out: Path, *, select: str = "", timeout: float = 1200) -> Tally:
    """pytest over `test/integration` against `bootstrap`; the outcomes come from its JUnit XML."""
    out.mkdir(parents=True, exist_ok=True)
    junit = out / "junit.xml"
    env = {
        **os.environ,
        "KAFKA_URI": f"PLAINTEXT://{bootstrap}",
        "KAFKA_VERSION": KAFKA_VERSION,
        # the fixtures insist that the broker install dir exists, though an external broker needs none
        "KAFKA_ROOT": str(root),
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    # the suite runs from its own root, so `test.*` imports resolve to the sdist; `kafka` is the
    # installed package of the same version (the sdist's copy shadows nothing it does not equal)
    argv = [
        sys.executable, "-m", "pytest", "test/integration", "-p", "no:cacheprovider", "-q", "-rfE",
        "--timeout=120", "-o", "log_level=WARNING", "-o", "addopts=", f"--junitxml={junit}",
        "--rootdir", str(root),
    ]  # fmt: skip
    if select:
        argv += ["-k", select]
    started = time.monotonic()
    with open(out / "pytest.log", "wb") as log:
        try:
            subprocess.run(argv, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT, timeout=timeout)
        except subprocess.TimeoutExpired:
            log.write(f"\nkafka-python suite: killed after {timeout:.0f} s\n".encode())
    tally = read_junit(junit) if junit.exists() else Tally()
    tally.seconds = time.monotonic() - started
    return tally


def read_junit(path: Path) -> Tally:
    tally = Tally()
    for case in ET.parse(path).getroot().iter("testcase"):
        name = f"{case.get('classname', '')}::{case.get('name', '')}"
        outcome = "passed"
        for child in case:
            if child.tag in ("failure", "error", "skipped"):
                outcome = {"failure": "failed", "error": "error", "skipped": "skipped"}[child.tag]
                break
        tally.outcomes[name] = outcome
    return tally


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="peer-suites --suite kafka-python", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--suite", default="kafka-python", help=argparse.SUPPRESS)
    parser.add_argument(
        "--target", default="both", help="comma-separated: strom, strom-kraft, kafka (both: strom,kafka)"
    )
    parser.add_argument("--kafka-python-version", default=None, help="default: the installed kafka-python")
    parser.add_argument("--select", default="", help="pytest -k expression")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--timeout", type=float, default=1200, help="seconds for one target's run")
    args = parser.parse_args(argv)
    version = args.kafka_python_version
    if version is None:
        from importlib.metadata import version as installed

        version = installed("kafka-python")
    out = args.out or CACHE / "runs" / f"kafka-python-{args.target}-{time.strftime('%Y%m%d-%H%M%S')}"
    try:
        root = fetch_suite(version)
    except (subprocess.SubprocessError, OSError, StopIteration) as exc:
        print(f"peer-suites: could not fetch kafka-python {version}'s sdist: {exc}", file=sys.stderr)
        return 2
    targets = ["strom", "kafka"] if args.target == "both" else args.target.split(",")
    unknown = set(targets) - {"strom", "strom-kraft", "kafka"}
    if unknown:
        parser.error(f"unknown target {', '.join(sorted(unknown))} (strom, strom-kraft, kafka)")
    tallies: dict[str, Tally] = {}
    for target in targets:
        print(f"peer-suites: kafka-python {version} test/integration against {target}", flush=True)
        try:
            with running_broker(target) as bootstrap:
                tallies[target] = run_suite(
                    root, bootstrap, out / target, select=args.select, timeout=args.timeout
                )
        except Exception as exc:  # a broker that does not start: nothing to compare
            print(f"peer-suites: could not start {target}: {exc}", file=sys.stderr)
            return 2
        tally = tallies[target]
        print(f"peer-suites: {target}: {tally.text()} in {tally.seconds:.0f} s", flush=True)
    summary = {t: {"outcomes": x.outcomes, "seconds": round(x.seconds, 1)} for t, x in tallies.items()}
    (out / "summary.json").write_text(json.dumps(summary, indent=1, sort_keys=True))
    kafka = tallies.get("kafka")
    stroms = {t: x for t, x in tallies.items() if t != "kafka"}
    if kafka is None:
        return 0 if all(x.count("failed") + x.count("error") == 0 for x in stroms.values()) else 1
    ok = True
    for target, strom in stroms.items():
        for name in sorted(set(strom.outcomes) | set(kafka.outcomes)):
            a, b = strom.outcomes.get(name, "-"), kafka.outcomes.get(name, "-")
            if a != b:
                print(f"  {name}: {target} {a}, kafka {b}")
        print(f"peer-suites: {target} passed {strom.passed}, kafka passed {kafka.passed} ({out})")
        ok = ok and strom.passed >= kafka.passed
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
