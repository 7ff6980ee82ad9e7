"""Kafka's own share consumer (KafkaShareConsumer, KIP-932, explicit acknowledgement mode) driven from tests.

tests/compat/java/ShareWorkers.java runs one or more members of a share group in one JVM and prints a line
for everything they do (its header describes the modes and the lines). `compile_share_workers(kafka_home,
out)` compiles it against the Kafka jars under `kafka_home` (benchmarks.peers.tools.kafka_home(), which
scripts/fetch-tools fills); `ShareWorkers(...)` starts the JVM and collects its lines in a thread:
`wait_for(condition, timeout, what)` / `wait_line(prefix, timeout)` bound every wait (and fail at once on
an ERROR, COMMIT-ERROR or NOT-READY line unless told to tolerate commit errors), `records()` parses the REC
lines, `committed()` says which acknowledgements a successful commitSync carried (and
`delivered_after_commit()` which records came back after that), `finish()` closes the members and
returns the partition's (start offset, lag) from ListShareGroupOffsets, `kill()` is kill -9.
"""

from __future__ import annotations

import queue
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

SOURCE = Path(__file__).resolve().parents[2] / "tests" / "compat" / "java" / "ShareWorkers.java"


def compile_share_workers(kafka_home: Path, out: Path) -> Path:
    """javac of ShareWorkers.java against Kafka's jars into `out`; returns `out`."""
    classpath = str(kafka_home / "libs" / "*")
    subprocess.run(
        ["javac", "-d", str(out), "-cp", classpath, str(SOURCE)], check=True, timeout=120, capture_output=True
    )
    return out


@dataclass(frozen=True)
class Rec:
    """One REC line: a record a member got, and what it did with it."""

    client: str
    value: str
    offset: int
    delivery_count: int
    action: str


class ShareWorkers:
    """One ShareWorkers JVM: its members' output lines, collected by a thread as they come."""

    def __init__(
        self,
        classes: Path,
        kafka_home: Path,
        bootstrap: str,
        group: str,
        topic: str,
        *,
        members: int = 1,
        mode: str = "ack",
        work_ms: int = 0,
        max_poll_records: int = 100,
        tolerate_commit_errors: bool = False,
    ) -> None:
        argv = ["java", "-Xmx192m", "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC",
                f"-Dlog4j2.configurationFile={kafka_home / 'log4j2.properties'}",
                "-cp", f"{classes}:{kafka_home / 'libs' / '*'}",
                "ShareWorkers", bootstrap, group, topic, str(members), mode, str(work_ms),
                str(max_poll_records), "100000"]  # fmt: skip
        self.proc = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
        )
        self.fatal = (
            ("ERROR", "NOT-READY") if tolerate_commit_errors else ("ERROR", "COMMIT-ERROR", "NOT-READY")
        )
        self.lines: list[str] = []
        self._new: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._new.put(line.strip())
        self._new.put(None)

    def wait_for(self, condition: Callable[[ShareWorkers], bool], timeout: float, what: str) -> None:
        """Collects lines until `condition(self)` holds; fails after `timeout` s or when the JVM ends."""
        deadline = time.monotonic() + timeout
        while not condition(self):
            left = deadline - time.monotonic()
            try:
                line = self._new.get(timeout=max(left, 0.01))
            except queue.Empty:
                tail = self.lines[-30:]
                raise AssertionError(f"timed out after {timeout}s waiting for {what}: {tail}") from None
            if line is None:
                raise AssertionError(f"ShareWorkers ended before {what}: {self.lines[-30:]}")
            self.lines.append(line)
            assert not line.startswith(self.fatal), self.lines[-30:]

    def wait_line(self, start: str, timeout: float) -> str:
        self.wait_for(lambda w: any(line.startswith(start) for line in w.lines), timeout, start)
        return next(line for line in self.lines if line.startswith(start))

    def records(self) -> list[Rec]:
        out = []
        for line in self.lines:
            if line.startswith("REC "):
                _, client, value, offset, count, action = line.split()
                out.append(Rec(client, value, int(offset), int(count), action))
        return out

    def accepted(self) -> set[str]:
        return {r.value for r in self.records() if r.action == "ACCEPT"}

    def committed(self) -> list[tuple[int, Rec]]:
        """(line index, record) of the records whose acknowledgement a commitSync without errors carried:
        each member's REC lines since its previous COMMITTED or COMMIT-ERROR line, when the next such line
        is COMMITTED."""
        pending: dict[str, list[tuple[int, Rec]]] = {}
        out: list[tuple[int, Rec]] = []
        for i, line in enumerate(self.lines):
            word, _, rest = line.partition(" ")
            if word == "REC":
                client, value, offset, count, action = rest.split()
                pending.setdefault(client, []).append(
                    (i, Rec(client, value, int(offset), int(count), action))
                )
            elif word in ("COMMITTED", "COMMIT-ERROR"):
                done = pending.pop(rest.split()[0], [])
                if word == "COMMITTED":
                    out.extend(done)
        return out

    def delivered_after_commit(self) -> list[Rec]:
        """Records delivered again after an ACCEPT of theirs was committed without errors."""
        accepted_at: dict[str, int] = {}
        for i, rec in self.committed():
            if rec.action == "ACCEPT":
                accepted_at.setdefault(rec.value, i)
        recs = [(i, line) for i, line in enumerate(self.lines) if line.startswith("REC ")]
        return [
            Rec(c, v, int(o), int(n), a)
            for i, line in recs
            for _, c, v, o, n, a in [line.split()]
            if v in accepted_at and i > accepted_at[v]
        ]

    def finish(self, timeout: float = 60) -> tuple[int, int]:
        """Closes the members (standard input ends) and returns (start offset, lag) of partition 0 once
        no record waits (or ListShareGroupOffsets' last answer)."""
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.wait_line("CLOSED", timeout)
        self.proc.wait(timeout=10)
        lag = self.wait_line("LAG", 1).split()
        assert lag[1:] != ["none"], self.lines[-10:]
        return int(lag[1]), int(lag[2])

    def kill(self) -> None:
        """kill -9 of the JVM: its members neither acknowledge nor leave the group."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)
