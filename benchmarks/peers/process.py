"""A broker running as a subprocess: start, wait until it serves Kafka requests, stop, clean up.

Readiness is judged the way a client would: the port accepts connections and a Metadata request lists
at least one broker (Apache Kafka opens its port before the KRaft controller has registered it).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path


class BrokerStartError(RuntimeError):
    """The broker exited or did not become ready in time; the message carries its log tail."""


class BrokerProcess:
    """One broker subprocess listening on 127.0.0.1:`port`; its output goes to `workdir`/broker.log."""

    def __init__(self, name: str, argv: Sequence[str], port: int, workdir: Path, *,
                 env: dict[str, str] | None = None, owns_workdir: bool = True) -> None:
        self.name = name
        self.argv = list(argv)
        self.port = port
        self.workdir = workdir
        self.log_path = workdir / "broker.log"
        self._env = env
        self._owns_workdir = owns_workdir
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def start(self, timeout: float = 60.0, clock: Callable[[], float] = time.monotonic) -> BrokerProcess:
        self.workdir.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            # A session of its own so stop() can signal the whole process group (JVM, shell wrappers).
            self._proc = subprocess.Popen(self.argv, stdout=log, stderr=subprocess.STDOUT,
                                          stdin=subprocess.DEVNULL, cwd=self.workdir,
                                          env={**os.environ, **(self._env or {})}, start_new_session=True)
        try:
            self._wait_ready(timeout, clock)
        except BaseException:
            self.stop()
            raise
        return self

    def log_tail(self, limit: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-limit:]
        except OSError:
            return ""

    def _wait_ready(self, timeout: float, clock: Callable[[], float]) -> None:
        deadline = clock() + timeout
        while clock() < deadline:
            assert self._proc is not None
            if self._proc.poll() is not None:
                raise BrokerStartError(f"{self.name} exited with {self._proc.returncode}:\n{self.log_tail()}")
            if _port_open(self.port) and _metadata_lists_a_broker(self.bootstrap):
                return
            time.sleep(0.2)
        raise BrokerStartError(
            f"{self.name} not ready on {self.bootstrap} after {timeout}s:\n{self.log_tail()}")

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM the process group, SIGKILL after `timeout`, then remove the work directory."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)
        if self._owns_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> BrokerProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def make_workdir(prefix: str) -> Path:
    return Path(tempfile.mkdtemp(prefix=prefix))


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def _metadata_lists_a_broker(bootstrap: str) -> bool:
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 0, "logger": _silent_logger()})
    try:
        return len(admin.list_topics(timeout=2).brokers) > 0
    except Exception:
        return False


def _silent_logger() -> object:
    import logging

    logger = logging.getLogger("strom.peers.readiness")
    logger.addHandler(logging.NullHandler())
    logger.propagate = False
    return logger
