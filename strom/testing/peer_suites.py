"""Run another project's integration tests (franz-go's kgo package tests) against a cluster, and summarise.

`scripts/peer-suites` builds the Go test binary and calls this module, which

1. starts the cluster under test on free loopback ports: three (`--brokers`) `strom serve` processes in
   ZooKeeper mode on a private ZooKeeper (`--target strom`), or franz-go's own fake cluster, kfake, from a
   small server binary (`--target kfake`), for comparison;
2. runs the compiled test binary through `go tool test2json` with KGO_SEEDS pointing at that cluster and
   KGO_TEST_RF / KGO_TEST_RECORDS set, under the binary's own `-test.timeout` and a hard deadline a little
   later (the whole process group is killed then);
3. prints one line per test and subtest (PASS, FAIL, SKIP, or TIMEOUT for the tests still running when
   the binary's timeout fired), the failing tests' own messages, the Kafka error names the clients logged,
   and writes everything (the raw `go test -json` stream as go-test.json.gz, a summary.json and, on
   failure or with `--keep-logs`, the broker logs) under `--out`.

Against Strom the brokers also get a SASL_PLAINTEXT listener laid out as franz-go's own CI lays out its
Kafka (`.github/workflows/lint-and-test.yml`): SCRAM-SHA-256 and OAUTHBEARER enabled on one listener, the
latter with Kafka's default (unsecured JWS) validator and `unsecuredLoginStringClaim_sub="admin"`, and the
SCRAM user `testuser`/`testpass` created with 4096 iterations through AlterUserScramCredentials
(`strom users set-password`, what the CI does with kafka-configs.sh). KGO_TEST_SCRAM_SEEDS,
KGO_TEST_SCRAM (`user:pass`, SHA-256 when no `:512` follows) and KGO_TEST_OAUTH_SEEDS then point at it,
so TestSCRAMAuth, TestSCRAMAuthBadCredentials and TestOAuthAuth run instead of skipping (`--no-sasl`
leaves the listener out). kfake runs without it, as before.

Exit status: 0 when no test failed or timed out, 1 otherwise, 2 when the cluster or the run could not be
set up. SIGTERM and SIGINT stop the tests and the cluster before exiting.

`--serve` (cluster mode) runs no tests: it starts the same cluster (Strom, or kfake with `--kfake-server`),
optionally on fixed ports (`--ports 9092,9095,9098`) with extra named listeners on each broker
(`--listener SSL=9093,9096,9099`, configured by `--set ssl.keystore.location=...`), prints its bootstrap
servers, writes them to `<out>/cluster.json`, and waits until SIGINT/SIGTERM (or `--serve-for` seconds),
so any other project's suite can be pointed at it. It exits 1 if a broker dies meanwhile. `--first-node-id 0`
and `--advertised-host localhost` give the brokers the ids and the advertised name of a suite's own
docker-compose cluster (kafkajs's expects brokers 0, 1, 2 advertised as localhost).
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import gzip
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

from strom.testing.cluster import ProcessCluster
from strom.testing.ports import free_port
from strom.testing.zookeeper import ZooKeeperServer

# go test's -timeout is a Go duration; these are the units the script accepts.
_DURATION_UNITS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
_DURATION_RE = re.compile(r"(\d+(?:\.\d+)?)(h|ms|m|s)")
# Kafka error names as franz-go's kerr spells them (OUT_OF_ORDER_SEQUENCE_NUMBER, NOT_COORDINATOR, ...).
_ERROR_NAME_RE = re.compile(r"\b(?:[A-Z]+_){1,8}[A-Z]+\b")
# A test's own failure messages: "    group_test.go:123: message".
_TEST_MESSAGE_RE = re.compile(r"^\s+\w+_test\.go:\d+: ")
_RUNNING_TEST_RE = re.compile(r"^\s+(Test\S+) \(")
# Words in kgo log lines that are not Kafka error names.
_NOT_ERRORS = {"TLS_", "SASL_"}
_KAFKA_ERROR_HINTS = (
    "ERROR", "EXCEPTION", "SEQUENCE", "EPOCH", "COORDINATOR", "LEADER", "UNKNOWN", "INVALID", "FENCED",
    "TIMEOUT", "REBALANCE", "NOT_", "STALE", "DUPLICATE", "CONCURRENT", "OUT_OF", "UNSTABLE", "TRANSACTION",
    "PRODUCER",
)  # fmt: skip


def parse_duration(text: str) -> float:
    """Seconds in a Go duration such as 10m, 90s, 1h30m."""
    pos, total = 0, 0.0
    for match in _DURATION_RE.finditer(text):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _DURATION_UNITS[match.group(2)]
        pos = match.end()
    if pos != len(text) or not text:
        raise argparse.ArgumentTypeError(f"not a Go duration: {text!r}")
    return total


@dataclass
class TestResult:
    """One test or subtest as the go test -json stream reported it."""

    name: str
    status: str = "RUN"  # PASS, FAIL, SKIP, TIMEOUT, or RUN when it never finished
    elapsed: float | None = None
    output: list[str] = field(default_factory=list)

    @property
    def top_level(self) -> bool:
        return "/" not in self.name


@dataclass
class RunSummary:
    """Everything a run of the test binary produced, folded from its JSON events."""

    tests: dict[str, TestResult] = field(default_factory=dict)
    package_output: list[str] = field(default_factory=list)
    timeout_output: list[str] = field(default_factory=list)
    package_status: str = "RUN"
    timed_out: bool = False
    panic: str | None = None
    error_names: collections.Counter[str] = field(default_factory=collections.Counter)

    def test(self, name: str) -> TestResult:
        result = self.tests.get(name)
        if result is None:
            result = self.tests[name] = TestResult(name)
        return result

    def feed(self, event: dict[str, Any]) -> None:
        action = event.get("Action")
        name = event.get("Test")
        text = event.get("Output")
        if text:
            self._count_errors(text)
            if text.startswith("panic: test timed out after"):
                self.timed_out = True  # test2json attributes this to the running test or to the package
            elif text.startswith("panic: ") and self.panic is None:
                self.panic = text.strip()  # a test goroutine panicked: the whole binary stops
            if self.timed_out:
                self.timeout_output.append(text)
        if name is None:
            if action == "output" and text is not None:
                self.package_output.append(text)
            elif action in ("pass", "fail", "skip"):
                self.package_status = action.upper()
            return
        result = self.test(name)
        if action == "output" and text is not None:
            result.output.append(text)
        elif action in ("pass", "fail", "skip"):
            result.status = action.upper()
            result.elapsed = event.get("Elapsed")

    def _count_errors(self, text: str) -> None:
        for word in _ERROR_NAME_RE.findall(text):
            if any(hint in word for hint in _KAFKA_ERROR_HINTS) and not word.startswith(tuple(_NOT_ERRORS)):
                self.error_names[word] += 1

    def finish(self) -> None:
        """Mark the tests that were still running when the binary timed out (or died)."""
        running: set[str] = set()
        if self.timed_out:
            in_list = False
            for line in self.timeout_output[:1000]:
                if line.strip() == "running tests:":
                    in_list = True
                elif in_list:
                    match = _RUNNING_TEST_RE.match(line)
                    if match is None:
                        break
                    running.add(match.group(1))
        for result in self.tests.values():
            # test2json reports the test the panic is attributed to as FAIL: the panic names them all
            if result.name in running or (self.timed_out and result.status == "RUN"):
                result.status = "TIMEOUT"
            elif result.status == "RUN":
                result.status = "ABORTED"  # the binary exited (a panic) while the test ran"

    def counts(self, top_level: bool) -> dict[str, int]:
        counter = collections.Counter(r.status for r in self.tests.values() if r.top_level == top_level)
        statuses = ("PASS", "FAIL", "TIMEOUT", "ABORTED", "SKIP", "RUN")
        return {status: counter.get(status, 0) for status in statuses}

    @property
    def ok(self) -> bool:
        return (
            not self.timed_out
            and self.panic is None
            and self.package_status in ("PASS", "SKIP")
            and all(r.status in ("PASS", "SKIP") for r in self.tests.values())
        )

    def messages(self, result: TestResult, limit: int = 8) -> list[str]:
        """The test's own t.Error/t.Fatal lines and testConsumer errors, each once, at most `limit`."""
        picked: dict[str, None] = {}
        for line in result.output:
            line = line.strip()
            if "FAILED TESTING -- NOT DELETING" in line or " completed in " in line:
                continue
            if _TEST_MESSAGE_RE.match(" " + line) or line.startswith(("testConsumer sendErr", "panic:")):
                picked.setdefault(line[:300])
        if result.status == "TIMEOUT":
            picked.setdefault("still running when the test binary's -test.timeout fired")
        elif result.status == "ABORTED":
            picked.setdefault("still running when the test binary stopped (see the panic above)")
        # a panic first: it ends the run, and it is what to read
        return sorted(picked, key=lambda line: not line.startswith("panic:"))[:limit]

    def to_json(self) -> dict[str, Any]:
        return {
            "package_status": self.package_status,
            "timed_out": self.timed_out,
            "panic": self.panic,
            "counts": {"tests": self.counts(True), "subtests": self.counts(False)},
            "tests": [
                {"name": r.name, "status": r.status, "elapsed": r.elapsed, "messages": self.messages(r)}
                for r in sorted(self.tests.values(), key=lambda r: r.name)
            ],
            "error_names": dict(self.error_names.most_common()),
        }


# --- the cluster under test ------------------------------------------------------------------------------

# franz-go's CI Kafka: one SASL_PLAINTEXT listener serving SCRAM-SHA-256 (a static KafkaServer JAAS entry
# there; Strom reads only the listener-scoped key, which Kafka also accepts) and OAUTHBEARER with no
# validator configured, which is Kafka's unsecured-JWS one; the kgo tests send tokens with sub "admin".
SASL_LISTENER = "SASL_PLAINTEXT"
SASL_SETTINGS = {
    "sasl.enabled.mechanisms": "SCRAM-SHA-256,OAUTHBEARER",
    "listener.name.sasl_plaintext.scram-sha-256.sasl.jaas.config":
        "org.apache.kafka.common.security.scram.ScramLoginModule required;",
    "listener.name.sasl_plaintext.oauthbearer.sasl.jaas.config":
        "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required "
        'unsecuredLoginStringClaim_sub="admin";',
}  # fmt: skip
# The CI's `kafka-configs.sh --alter --add-config 'SCRAM-SHA-256=[iterations=4096,password=testpass]'
# --entity-type users --entity-name testuser`, and its KGO_TEST_SCRAM.
SCRAM_USER, SCRAM_PASSWORD, SCRAM_MECHANISM, SCRAM_ITERATIONS = "testuser", "testpass", "SCRAM-SHA-256", 4096


def create_scram_user(bootstrap: str, timeout: float = 60) -> None:
    """The kgo tests' SCRAM user, through AlterUserScramCredentials (`strom users set-password`)."""
    argv = [
        sys.executable, "-m", "strom.cli.main", "users", "set-password", SCRAM_USER,
        "--mechanism", SCRAM_MECHANISM, "--iterations", str(SCRAM_ITERATIONS), "--password-stdin",
        "--bootstrap-server", bootstrap,
    ]  # fmt: skip
    done = subprocess.run(
        argv, input=SCRAM_PASSWORD + "\n", text=True, capture_output=True, timeout=timeout, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"could not create the SCRAM user {SCRAM_USER}: {done.stderr.strip()[-500:]}")


def sasl_env(sasl_seeds: str) -> dict[str, str]:
    """The variables kgo's helpers_test.go reads for its SCRAM and OAUTHBEARER tests."""
    return {
        "KGO_TEST_SCRAM_SEEDS": sasl_seeds,
        "KGO_TEST_SCRAM": f"{SCRAM_USER}:{SCRAM_PASSWORD}",  # kgo's default mechanism is SCRAM-SHA-256
        "KGO_TEST_OAUTH_SEEDS": sasl_seeds,
    }


class _Stop(Exception):
    """SIGTERM or SIGINT arrived: unwind so the context managers stop every process."""


def _raise_stop(signum: int, _frame: FrameType | None) -> None:
    raise _Stop(signal.Signals(signum).name)


@contextlib.contextmanager
def strom_cluster(
    brokers: int,
    out: Path,
    *,
    keep_logs: bool,
    ports: list[int] | None = None,
    listeners: dict[str, list[int]] | None = None,
    settings: dict[str, str] | None = None,
    first_node_id: int = 1,
    advertised_host: str | None = None,
) -> Iterator[tuple[str, ProcessCluster]]:
    """A ZooKeeper and `brokers` strom serve processes; broker logs are copied to `out` on the way out.

    `ports` fixes the PLAINTEXT ports (one per broker, else free ones); `listeners` adds named listeners
    ({name: one port per broker}) on 127.0.0.1 beside PLAINTEXT, which stays the inter-broker listener;
    `settings` are broker keys over the cluster preset (the same for every broker). The brokers' ids start
    at `first_node_id`; `advertised_host` is the host name every listener advertises in Metadata and
    FindCoordinator (`advertised.listeners`; the sockets still bind 127.0.0.1), for suites that compare it
    with the name they dial, as kafkajs's do with `localhost`."""
    node_ids = range(first_node_id, first_node_id + brokers)
    node_ports = {node_id: ports[i] if ports else free_port() for i, node_id in enumerate(node_ids)}
    per_broker: dict[int, dict[str, str]] = {}
    for i, (node_id, port) in enumerate(node_ports.items()):
        named = {"PLAINTEXT": port, **{name: ps[i] for name, ps in (listeners or {}).items()}}
        if len(named) > 1:
            per_broker[node_id] = {"listeners": ",".join(f"{n}://127.0.0.1:{p}" for n, p in named.items())}
        if advertised_host:
            advertised = ",".join(f"{n}://{advertised_host}:{p}" for n, p in named.items())
            per_broker.setdefault(node_id, {})["advertised.listeners"] = advertised
    with ZooKeeperServer() as zk:
        cluster = ProcessCluster(
            brokers, zk.connect + "/peer-suites", settings, per_broker=per_broker, ports=node_ports,
            first_node_id=first_node_id,
        )  # fmt: skip
        try:
            cluster.start_all()
            yield cluster.bootstrap_servers, cluster
        finally:
            _stop_brokers(cluster)
            if keep_logs:
                for node_id in cluster.node_ids:
                    if cluster.log_path(node_id).exists():
                        shutil.copy(cluster.log_path(node_id), out / f"broker-{node_id}.log")
            cluster.close()


def _stop_brokers(cluster: ProcessCluster) -> None:
    """A clean SIGTERM stop (bounded), so the logs end with the shutdown and nothing is left running."""
    for node_id in cluster.node_ids:
        if cluster.running(node_id):
            cluster.stop(node_id, timeout=20)


@contextlib.contextmanager
def kfake_cluster(
    server: Path, brokers: int, out: Path, start_timeout: float = 30, extra_args: list[str] | None = None
) -> Iterator[str]:
    """franz-go's kfake, started from `server` (prints its comma-separated addresses, stops on EOF)."""
    log = open(out / "kfake.log", "wb")  # noqa: SIM115 - closed below, after the process
    proc = subprocess.Popen(
        [str(server), "-brokers", str(brokers), *(extra_args or [])],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, start_new_session=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + start_timeout
        os.set_blocking(proc.stdout.fileno(), False)
        buf = b""
        while b"\n" not in buf:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"kfake did not start; see {out / 'kfake.log'}")
            buf += proc.stdout.read() or b""
            time.sleep(0.05)
        yield buf.split(b"\n", 1)[0].decode().strip()
    finally:
        if proc.poll() is None:
            assert proc.stdin is not None
            with contextlib.suppress(OSError):
                proc.stdin.close()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
        log.close()


# --- running the tests -----------------------------------------------------------------------------------


def run_tests(
    args: argparse.Namespace, seeds: str, out: Path, extra_env: dict[str, str] | None = None
) -> RunSummary:
    """Run the test binary under test2json (`extra_env` over the KGO_* variables); return the summary."""
    go_args = [f"-test.timeout={args.timeout}", "-test.count=1", "-test.v=test2json"]
    if args.run:
        go_args.append(f"-test.run={args.run}")
    if args.skip:
        go_args.append(f"-test.skip={args.skip}")
    if args.parallel:
        go_args.append(f"-test.parallel={args.parallel}")
    cmd = [args.go, "tool", "test2json", "-t", "-p", args.package, str(args.test_binary), *go_args]
    env = {
        **os.environ,
        "KGO_SEEDS": seeds,
        "KGO_TEST_RF": str(args.rf or args.brokers),
        "KGO_TEST_RECORDS": str(args.records),
        "KGO_LOG_LEVEL": args.log_level,
        **(extra_env or {}),
    }
    summary = RunSummary()
    deadline = time.monotonic() + parse_duration(args.timeout) + args.grace
    # kgo logs at info level can reach hundreds of MB per run; they compress about 20 to 1
    stream = gzip.open(out / "go-test.json.gz", "wt", encoding="utf-8", compresslevel=1)  # noqa: SIM115
    proc = subprocess.Popen(
        cmd, cwd=args.package_dir, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        os.set_blocking(proc.stdout.fileno(), False)
        pending = b""
        last_progress = time.monotonic()
        while True:
            chunk = proc.stdout.read()
            if chunk:
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for raw in lines:
                    line = raw.decode("utf-8", "replace")
                    stream.write(line + "\n")
                    _feed_line(summary, line, args.verbose)
            elif proc.poll() is not None:
                break
            else:
                time.sleep(0.1)
            now = time.monotonic()
            if now > deadline:
                print(f"peer-suites: the test binary outlived its timeout by {args.grace:.0f} s; killing it",
                      file=sys.stderr)  # fmt: skip
                summary.timed_out = True
                break
            if args.progress and now - last_progress > args.progress:
                last_progress = now
                running = [r.name for r in summary.tests.values() if r.status == "RUN" and r.top_level]
                print(f"peer-suites: still running: {', '.join(running) or '-'}", file=sys.stderr, flush=True)
        if pending:
            line = pending.decode("utf-8", "replace")
            stream.write(line + "\n")
            _feed_line(summary, line, args.verbose)
    finally:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        stream.close()
    summary.finish()
    return summary


def _feed_line(summary: RunSummary, line: str, verbose: bool) -> None:
    try:
        event = json.loads(line)
    except json.JSONDecodeError:
        summary.package_output.append(line + "\n")
        return
    summary.feed(event)
    if verbose and event.get("Action") == "output":
        sys.stdout.write(event.get("Output", ""))


def print_summary(summary: RunSummary, header: str, out: Path) -> None:
    print(header)
    width = max((len(name) for name in summary.tests), default=10) + 2
    for result in sorted(summary.tests.values(), key=lambda r: r.name):
        indent = "" if result.top_level else "  "
        elapsed = f"{result.elapsed:8.1f}s" if result.elapsed is not None else ""
        print(f"{indent}{result.status:<8}{result.name:<{width}}{elapsed}")
    bad = [r for r in summary.tests.values() if r.status not in ("PASS", "SKIP")]
    for result in sorted(bad, key=lambda r: r.name):
        messages = summary.messages(result)
        if messages:
            print(f"\n{result.status} {result.name}:")
            for line in messages:
                print(f"    {line.strip()[:300]}")
    if summary.timed_out:
        print("\nthe test binary timed out; tests still running then are marked TIMEOUT")
    if summary.panic:
        print(f"\nthe binary panicked (tests then running: ABORTED): {summary.panic[:300]}")
    print("(parallel tests share stdout: a line printed by one may be listed under another)")
    if summary.error_names:
        names = ", ".join(f"{name} x{count}" for name, count in summary.error_names.most_common(12))
        print(f"\nKafka error names in the clients' logs: {names}")
    tests, subtests = summary.counts(True), summary.counts(False)
    print(f"\ntests: {_counts_text(tests)}; subtests: {_counts_text(subtests)}")
    print(f"{'OK' if summary.ok else 'FAILED'} (details in {out})")


def _counts_text(counts: dict[str, int]) -> str:
    return ", ".join(f"{v} {k.lower()}" for k, v in counts.items() if v) or "none"


# --- cluster mode ----------------------------------------------------------------------------------------


def _ports(text: str) -> list[int]:
    try:
        ports = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated ports, got {text!r}") from None
    if not ports or any(not 0 < port < 65536 for port in ports):
        raise argparse.ArgumentTypeError(f"expected comma-separated ports, got {text!r}")
    return ports


def _listener(text: str) -> tuple[str, list[int]]:
    name, sep, ports = text.partition("=")
    if not sep or not re.fullmatch(r"[A-Za-z0-9_]+", name):
        raise argparse.ArgumentTypeError(f"expected NAME=PORT,PORT,..., got {text!r}")
    return name.upper(), _ports(ports)


def _setting(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"expected key=value, got {text!r}")
    return key.strip(), value.strip()


def serve(args: argparse.Namespace) -> int:
    """Start the cluster, print where it listens, and wait for SIGINT/SIGTERM (or --serve-for seconds)."""
    listeners = dict(args.listener or [])
    for name, ports in [("PLAINTEXT", args.ports or []), *listeners.items()]:
        if ports and len(ports) != args.brokers:
            print(f"peer-suites: {name} names {len(ports)} ports for {args.brokers} brokers", file=sys.stderr)
            return 2
    deadline = time.monotonic() + args.serve_for if args.serve_for else None
    info: dict[str, Any] = {"target": args.target, "brokers": args.brokers}
    try:
        with contextlib.ExitStack() as stack:
            if args.target == "kfake":
                if listeners or args.set or args.first_node_id != 1 or args.advertised_host:
                    print("peer-suites: kfake takes no --listener, --set, --first-node-id or "
                          "--advertised-host", file=sys.stderr)  # fmt: skip
                    return 2
                extra = ["-auto-create", "-partitions", str(args.kfake_partitions)]
                if args.ports:
                    extra += ["-ports", ",".join(map(str, args.ports))]
                seeds = stack.enter_context(
                    kfake_cluster(args.kfake_server, args.brokers, args.out, extra_args=extra)
                )
                alive: Any = lambda: True
                info["logs"] = [str(args.out / "kfake.log")]
            else:
                seeds, cluster = stack.enter_context(
                    strom_cluster(
                        args.brokers, args.out, keep_logs=True, ports=args.ports, listeners=listeners,
                        settings=dict(args.set or []), first_node_id=args.first_node_id,
                        advertised_host=args.advertised_host,
                    )
                )  # fmt: skip
                alive = lambda: all(cluster.running(i) for i in cluster.node_ids)
                info["logs"] = [str(cluster.log_path(i)) for i in cluster.node_ids]
                info["data_dirs"] = [str(cluster.data_dir(i)) for i in cluster.node_ids]
                info["zookeeper"] = cluster.zk_connect
            info["bootstrap_servers"] = seeds
            info["listeners"] = {
                name: ",".join(f"127.0.0.1:{port}" for port in ports) for name, ports in listeners.items()
            }
            (args.out / "cluster.json").write_text(json.dumps(info, indent=1) + "\n", encoding="utf-8")
            print(f"bootstrap.servers={seeds}")
            for name, servers in info["listeners"].items():
                print(f"{name} bootstrap.servers={servers}")
            print(f"broker logs: {' '.join(info['logs'])}")
            print("serving; stop with Ctrl-C or SIGTERM", flush=True)
            while alive():
                if deadline is not None and time.monotonic() > deadline:
                    return 0
                time.sleep(0.5)
            print("peer-suites: a broker exited; stopping the cluster", file=sys.stderr)
            return 1
    except _Stop as stop:
        print(f"peer-suites: stopped by {stop}", file=sys.stderr)
        return 0
    except (RuntimeError, TimeoutError, OSError) as exc:
        print(f"peer-suites: could not start the cluster: {exc}", file=sys.stderr)
        return 2


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="peer-suites", description=__doc__.split("\n\n")[0])
    parser.add_argument("--target", choices=("strom", "kfake"), default="strom")
    parser.add_argument("--brokers", type=int, default=3)
    parser.add_argument("--rf", type=int, default=0, help="KGO_TEST_RF (default: the broker count)")
    parser.add_argument("--records", type=int, default=20000, help="KGO_TEST_RECORDS")
    parser.add_argument("--log-level", default="info", choices=("info", "debug", "none"),
                        help="KGO_LOG_LEVEL")  # fmt: skip
    parser.add_argument("--run", default="", help="go test -run regular expression")
    parser.add_argument("--skip", default="", help="go test -skip regular expression")
    parser.add_argument("--parallel", type=int, default=0, help="go test -parallel")
    parser.add_argument("--timeout", default="10m", type=str, help="go test -timeout (a Go duration)")
    parser.add_argument("--grace", type=float, default=60.0, help="seconds past --timeout before a hard kill")
    parser.add_argument("--test-binary", type=Path, help="built with go test -c")
    parser.add_argument("--package", default="github.com/twmb/franz-go/pkg/kgo")
    parser.add_argument("--package-dir", type=Path, help="the package's source directory")
    parser.add_argument("--kfake-server", type=Path, help="the kfake server binary (--target kfake)")
    parser.add_argument("--go", default="go")
    parser.add_argument("--out", type=Path, required=True, help="directory for the run's files")
    parser.add_argument("--keep-logs", action="store_true", help="copy broker logs to --out even on success")
    parser.add_argument("--progress", type=float, default=60.0, help="print running tests every N s (0: off)")
    parser.add_argument("-v", "--verbose", action="store_true", help="echo the tests' output")
    parser.add_argument("--label", default="", help="extra words for the summary header")
    parser.add_argument("--no-sasl", action="store_true", help="strom: no SASL_PLAINTEXT listener")
    parser.add_argument("--serve", action="store_true", help="cluster mode: start the cluster, run no tests")
    parser.add_argument("--serve-for", type=float, default=0, help="cluster mode: stop after N s (0: never)")
    parser.add_argument("--ports", type=_ports, help="cluster mode: PLAINTEXT ports, one per broker")
    parser.add_argument("--listener", type=_listener, action="append",
                        help="cluster mode: NAME=PORT,PORT,... an extra listener on each broker")  # fmt: skip
    parser.add_argument("--set", type=_setting, action="append", help="cluster mode: a broker key=value")
    parser.add_argument(
        "--first-node-id",
        type=int,
        default=1,
        help="cluster mode: the first broker's id (0 for a suite written for ids 0, 1, 2)",
    )
    parser.add_argument("--advertised-host", default=None,
                        help="cluster mode: the host name listeners advertise")  # fmt: skip
    parser.add_argument("--kfake-partitions", type=int, default=1,
                        help="cluster mode: kfake's partitions for auto-created topics")  # fmt: skip
    args = parser.parse_args(argv)
    parse_duration(args.timeout)
    args.out.mkdir(parents=True, exist_ok=True)

    signal.signal(signal.SIGTERM, _raise_stop)
    signal.signal(signal.SIGINT, _raise_stop)
    if args.serve:
        if args.target == "kfake" and args.kfake_server is None:
            parser.error("--target kfake needs --kfake-server")
        return serve(args)
    if args.test_binary is None or args.package_dir is None:
        parser.error("--test-binary and --package-dir are needed to run tests")
    header = (
        f"peer-suites: {args.package} {args.label} against {args.target} ({args.brokers} brokers), "
        f"KGO_TEST_RECORDS={args.records}, -run {args.run or '(all)'}, timeout {args.timeout}"
    )
    if args.target == "strom" and not args.no_sasl:
        header += f", SCRAM and OAUTHBEARER on {SASL_LISTENER}"
    started = time.monotonic()
    try:
        if args.target == "kfake":
            if args.kfake_server is None:
                parser.error("--target kfake needs --kfake-server")
            with kfake_cluster(args.kfake_server, args.brokers, args.out) as seeds:
                summary = run_tests(args, seeds, args.out)
        else:
            sasl_ports = [] if args.no_sasl else [free_port() for _ in range(args.brokers)]
            listeners = {SASL_LISTENER: sasl_ports} if sasl_ports else None
            settings = None if args.no_sasl else dict(SASL_SETTINGS)
            with strom_cluster(
                args.brokers, args.out, keep_logs=True, listeners=listeners, settings=settings
            ) as (seeds, _cluster):
                extra_env: dict[str, str] = {}
                if sasl_ports:
                    create_scram_user(seeds)
                    extra_env = sasl_env(",".join(f"127.0.0.1:{port}" for port in sasl_ports))
                summary = run_tests(args, seeds, args.out, extra_env)
            if summary.ok and not args.keep_logs:
                _drop_logs(args.out)  # copied on the way out; only kept when something failed
    except _Stop as stop:
        print(f"peer-suites: stopped by {stop}", file=sys.stderr)
        return 2
    except (RuntimeError, TimeoutError, OSError) as exc:
        print(f"peer-suites: could not run: {exc}", file=sys.stderr)
        return 2
    header += f", took {time.monotonic() - started:.0f} s"
    (args.out / "summary.json").write_text(json.dumps(summary.to_json(), indent=1) + "\n", encoding="utf-8")
    print_summary(summary, header, args.out)
    return 0 if summary.ok else 1


def _drop_logs(out: Path) -> None:
    for path in out.glob("broker-*.log"):
        path.unlink(missing_ok=True)


if __name__ == "__main__":
    sys.exit(main())
