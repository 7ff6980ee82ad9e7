"""kafkajs's own test suite (jest over a kafkajs source checkout) against three Strom brokers and against
franz-go's kfake, shaped like the cluster of kafkajs's `docker-compose.2_4.yml`.

kafkajs's npm package ships no tests, so `--kafkajs-dir` names a checkout (tag v2.2.4 was run; its
`node_modules` installed with `yarn install --frozen-lockfile`). Its tests dial fixed addresses: brokers 0,
1, 2 on localhost:9092/9095/9098 (PLAINTEXT), 9093/9096/9099 (SSL, its `testHelpers/certs`) and
9094/9097/9100 (SASL_SSL with PLAIN users test/bob/alice and SCRAM-SHA-256/512 user testscram, or only
OAUTHBEARER with unsecured tokens and `connections.max.reauth.ms=15000` for its OAUTHBEARER group,
`--oauthbearer`). So the Strom target is `strom.testing.peer_suites.strom_cluster` with those listeners,
`--first-node-id 0`, `--advertised-host localhost` and the compose file's broker settings; then what its
`scripts/testWithKafka.sh` does (the SCRAM credentials, the topic `test-topic-already-exists`), then
`jest --ci --forceExit` with `KAFKA_VERSION=4.4`. The key store's certificate is signed with SHA-1, which
OpenSSL refuses (docs/GAPS.md), so it is re-signed with SHA-256 by the suite's own CA key into `--out`.
kfake (`scripts/peer-suites --serve --target kfake`) serves PLAINTEXT only, so the SSL and SASL tests fail
there.

Targets run one after another (the ports are fixed); the tallies (from jest's JUnit XML) are printed side
by side and `summary.json` in `--out` holds every test's outcome per target, beside jest's output.
Exit status: 0 when Strom passed at least as many tests as kfake (when both ran) or nothing failed, 1
otherwise, 2 when the suite or a cluster could not be set up.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from strom.testing.kafka_python_suite import CACHE, REPO_ROOT, Tally
from strom.testing.peer_suites import strom_cluster

PLAINTEXT = [9092, 9095, 9098]
SSL = [9093, 9096, 9099]
SASL_SSL = [9094, 9097, 9100]
KAFKA_VERSION = "4.4"
PASSWORD = "testtest"  # kafkajs's testHelpers/certs/*_creds
PLAIN_JAAS = (
    'org.apache.kafka.common.security.plain.PlainLoginModule required username="test" password="testtest" '
    'user_test="testtest" user_bob="bobbob" user_alice="alicealice";'
)
SCRAM_JAAS = "org.apache.kafka.common.security.scram.ScramLoginModule required;"
OAUTH_JAAS = (
    "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required "
    'unsecuredLoginStringClaim_sub="admin";'
)
# package.json's test:group:oauthbearer
OAUTHBEARER_FILES = [
    "src/producer/index.spec.js", "src/broker/__tests__/connect.spec.js",
    "src/consumer/__tests__/connection.spec.js", "src/broker/__tests__/disconnect.spec.js",
    "src/admin/__tests__/connection.spec.js", "src/broker/__tests__/reauthenticate.spec.js",
]  # fmt: skip


def _run(argv: list[str], **kwargs: object) -> None:
    subprocess.run(argv, check=True, capture_output=True, timeout=120, **kwargs)  # type: ignore[call-overload]


def make_certs(kafkajs: Path, out: Path) -> tuple[Path, Path]:
    """(key store PEM, CA PEM) from kafkajs's JKS stores, the certificate re-signed with SHA-256."""
    certs = kafkajs / "testHelpers" / "certs"
    out.mkdir(parents=True, exist_ok=True)
    for store in ("keystore", "truststore"):
        target = out / f"{store}.p12"
        target.unlink(missing_ok=True)
        source = certs / f"kafka.server.{store}.jks"
        _run(["keytool", "-importkeystore", "-noprompt", "-srckeystore", str(source),
              "-srcstorepass", PASSWORD, "-destkeystore", str(target), "-deststoretype", "PKCS12",
              "-deststorepass", PASSWORD])  # fmt: skip
    pass_in = ["-passin", f"pass:{PASSWORD}"]
    _run(["openssl", "pkcs12", "-in", str(out / "keystore.p12"), *pass_in, "-nocerts", "-nodes",
          "-out", str(out / "leaf.key")])  # fmt: skip
    _run(["openssl", "pkcs12", "-in", str(out / "truststore.p12"), *pass_in, "-nokeys",
          "-out", str(out / "ca.crt")])  # fmt: skip
    _run(["openssl", "x509", "-req", "-in", str(certs / "cert-file"), "-CA", str(out / "ca.crt"),
          "-CAkey", str(certs / "ca-key"), *pass_in, "-CAcreateserial", "-CAserial", str(out / "ca.srl"),
          "-days", "3650", "-sha256", "-out", str(out / "leaf.crt")])  # fmt: skip
    keystore = out / "keystore.pem"
    keystore.write_text("".join((out / name).read_text() for name in ("leaf.key", "leaf.crt", "ca.crt")))
    return keystore, out / "ca.crt"


def broker_settings(keystore: Path, ca: Path, *, oauthbearer: bool) -> dict[str, str]:
    """docker-compose.2_4.yml's (or 2_4_oauthbearer.yml's) broker settings, as Strom keys."""
    settings = {
        "num.partitions": "2", "default.replication.factor": "2", "auto.create.topics.enable": "true",
        "delete.topic.enable": "true", "group.initial.rebalance.delay.ms": "0",
        "ssl.keystore.type": "PEM", "ssl.keystore.location": str(keystore),
        "ssl.truststore.type": "PEM", "ssl.truststore.location": str(ca),
        "sasl.mechanism.inter.broker.protocol": "PLAIN",
        "authorizer.class.name": "kafka.security.authorizer.AclAuthorizer",
        "allow.everyone.if.no.acl.found": "true",
    }  # fmt: skip
    if oauthbearer:
        settings["sasl.enabled.mechanisms"] = "OAUTHBEARER"
        settings["listener.name.sasl_ssl.oauthbearer.sasl.jaas.config"] = OAUTH_JAAS
        settings["connections.max.reauth.ms"] = "15000"
    else:
        settings["sasl.enabled.mechanisms"] = "PLAIN,SCRAM-SHA-256,SCRAM-SHA-512"
        settings["listener.name.sasl_ssl.plain.sasl.jaas.config"] = PLAIN_JAAS
        settings["listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config"] = SCRAM_JAAS
        settings["listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config"] = SCRAM_JAAS
    return settings


def _strom_cli(*args: str, stdin: str | None = None) -> None:
    """`strom ...` of this checkout against the first broker."""
    bootstrap = f"127.0.0.1:{PLAINTEXT[0]}"
    argv = [sys.executable, "-m", "strom.cli.main", *args, "--bootstrap-server", bootstrap]
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    subprocess.run(argv, input=stdin, text=True, check=True, capture_output=True, timeout=60, env=env)


def prepare(*, scram: bool) -> None:
    """What kafkajs's testWithKafka.sh does once the brokers are up."""
    if scram:
        _strom_cli("users", "set-password", "testscram", "--mechanism", "SCRAM-SHA-256",
                   "--iterations", "8192", "--password-stdin", stdin="testtestscram=256")  # fmt: skip
        _strom_cli("users", "set-password", "testscram", "--mechanism", "SCRAM-SHA-512", "--password-stdin",
                   stdin="testtestscram=512")  # fmt: skip
    _strom_cli("topics", "create", "test-topic-already-exists", "--partitions", "2",
               "--replication-factor", "1")  # fmt: skip


@contextmanager
def kfake(out: Path, start_timeout: float = 600) -> Iterator[None]:
    """kfake on the PLAINTEXT ports through `scripts/peer-suites --serve --target kfake` (which builds it)."""
    argv = [str(REPO_ROOT / "scripts" / "peer-suites"), "--serve", "--target", "kfake", "--partitions", "2",
            "--ports", ",".join(map(str, PLAINTEXT)), "--out", str(out)]  # fmt: skip
    log = open(out / "serve.out", "wb")  # noqa: SIM115 - closed below, after the process
    proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + start_timeout
        while b"serving" not in (out / "serve.out").read_bytes():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"kfake did not start; see {out / 'serve.out'}")
            time.sleep(0.2)
        yield
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
        log.close()


@contextmanager
def cluster(target: str, kafkajs: Path, out: Path, *, oauthbearer: bool) -> Iterator[None]:
    """The target cluster on kafkajs's ports, prepared as its test script prepares Kafka."""
    out.mkdir(parents=True, exist_ok=True)
    if target == "kfake":
        with kfake(out):
            prepare(scram=False)
            yield
        return
    keystore, ca = make_certs(kafkajs, out / "certs")
    with strom_cluster(
        3, out, keep_logs=True, ports=PLAINTEXT, listeners={"SSL": SSL, "SASL_SSL": SASL_SSL},
        settings=broker_settings(keystore, ca, oauthbearer=oauthbearer), first_node_id=0,
        advertised_host="localhost",
    ):  # fmt: skip
        prepare(scram=not oauthbearer)
        yield


def read_jest_junit(path: Path) -> Tally:
    """jest-junit's XML: one outcome per test case, named by its full title (kafkajs repeats some titles,
    as its SASL tests run per mechanism: repeats get " #2", " #3", ...)."""
    tally = Tally()
    for case in ET.parse(path).getroot().iter("testcase"):
        name, n = case.get("name", ""), 1
        while (f"{name} #{n}" if n > 1 else name) in tally.outcomes:
            n += 1
        outcome = "passed"
        for child in case:
            if child.tag in ("failure", "error", "skipped"):
                outcome = {"failure": "failed", "error": "failed", "skipped": "skipped"}[child.tag]
                break
        tally.outcomes[f"{name} #{n}" if n > 1 else name] = outcome
    return tally


def run_jest(
    kafkajs: Path, out: Path, files: list[str], *, oauthbearer: bool, workers: int, timeout: float
) -> Tally:
    """kafkajs's `yarn jest` (jest --ci --forceExit) over `files` (all when empty); the outcomes come from
    jest-junit's XML."""
    junit = out / "junit.xml"
    junit.unlink(missing_ok=True)
    env = {
        **os.environ, "KAFKA_VERSION": KAFKA_VERSION, "KAFKAJS_DEBUG_PROTOCOL_BUFFERS": "1",
        "NODE_ENV": "test",
        "JEST_JUNIT_OUTPUT_DIR": str(out), "JEST_JUNIT_OUTPUT_NAME": junit.name,
    }  # fmt: skip
    if oauthbearer:
        env["OAUTHBEARER_ENABLED"] = "1"
    argv = [str(kafkajs / "node_modules" / ".bin" / "jest"), "--ci", f"--maxWorkers={workers}",
            "--no-watchman", "--forceExit", *files]  # fmt: skip
    started = time.monotonic()
    with open(out / "jest.out", "wb") as log:
        proc = subprocess.Popen(argv, cwd=kafkajs, env=env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)  # fmt: skip
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
            log.write(f"\nkafkajs suite: killed after {timeout:.0f} s\n".encode())
    tally = read_jest_junit(junit) if junit.exists() else Tally()
    tally.seconds = time.monotonic() - started
    return tally


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="peer-suites --suite kafkajs", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--suite", default="kafkajs", help=argparse.SUPPRESS)
    parser.add_argument("--kafkajs-dir", type=Path, required=True,
                        help="a kafkajs checkout with node_modules")  # fmt: skip
    parser.add_argument("--target", default="both", help="comma-separated: strom, kfake (both: strom,kfake)")
    parser.add_argument("--oauthbearer", action="store_true", help="its OAUTHBEARER group instead")
    parser.add_argument("--max-workers", type=int, default=2, help="jest --maxWorkers")
    parser.add_argument("--timeout", type=float, default=2400, help="seconds for one target's run")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("files", nargs="*", help="jest test path patterns (default: the whole suite)")
    args = parser.parse_args(argv)
    kafkajs = args.kafkajs_dir.resolve()
    if not (kafkajs / "node_modules" / ".bin" / "jest").exists():
        print(f"peer-suites: {kafkajs} is no kafkajs checkout with node_modules installed", file=sys.stderr)
        return 2
    targets = ["strom", "kfake"] if args.target == "both" else args.target.split(",")
    if set(targets) - {"strom", "kfake"}:
        parser.error("targets are strom and kfake")
    files = args.files or (OAUTHBEARER_FILES if args.oauthbearer else [])
    out = (args.out or CACHE / "runs" / f"kafkajs-{args.target}-{time.strftime('%Y%m%d-%H%M%S')}").resolve()
    tallies: dict[str, Tally] = {}
    for target in targets:
        print(f"peer-suites: kafkajs ({kafkajs}) against {target}", flush=True)
        try:
            with cluster(target, kafkajs, out / target, oauthbearer=args.oauthbearer):
                tallies[target] = run_jest(kafkajs, out / target, files, oauthbearer=args.oauthbearer,
                                           workers=args.max_workers, timeout=args.timeout)  # fmt: skip
        except (RuntimeError, TimeoutError, OSError, subprocess.SubprocessError) as exc:
            print(f"peer-suites: could not set up {target}: {exc}", file=sys.stderr)
            return 2
        tally = tallies[target]
        where = out / target / "jest.out"
        print(f"peer-suites: {target}: {tally.text()} in {tally.seconds:.0f} s ({where})", flush=True)
    summary = {t: {"outcomes": x.outcomes, "seconds": round(x.seconds, 1)} for t, x in tallies.items()}
    (out / "summary.json").write_text(json.dumps(summary, indent=1, sort_keys=True))
    strom, other = tallies.get("strom"), tallies.get("kfake")
    if strom is None or other is None:
        return 0 if all(x.count("failed") == 0 for x in tallies.values()) else 1
    for name in sorted(set(strom.outcomes) | set(other.outcomes)):
        a, b = strom.outcomes.get(name, "-"), other.outcomes.get(name, "-")
        if a != b and "failed" in (a, b):
            print(f"  {name}: strom {a}, kfake {b}")
    print(f"peer-suites: strom passed {strom.passed}, kfake passed {other.passed} ({out})")
    return 0 if strom.passed >= other.passed else 1


if __name__ == "__main__":
    sys.exit(main())
