"""Start and stop a real standalone ZooKeeper server for tests (Debian's `zookeeper` package).

The server runs `org.apache.zookeeper.server.ZooKeeperServerMain` with its own temporary dataDir and
zoo.cfg, bound to a free loopback port. `start()` returns once the server answers the `ruok` four-letter
command (the config whitelists it); `stop()` kills the JVM and removes the temporary directory, also when
start-up failed. Short tick times let tests use session timeouts of a few seconds.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType

from strom.testing.ports import free_port

DEFAULT_CLASSPATH = "/usr/share/java/zookeeper.jar"
SERVER_MAIN = "org.apache.zookeeper.server.ZooKeeperServerMain"


def four_letter_word(host: str, port: int, word: bytes, timeout: float = 1.0) -> bytes:
    """Send a ZooKeeper four-letter command and return the whole answer."""
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(word)
        chunks: list[bytes] = []
        while True:
            chunk = sock.recv(4096)
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)


class ZooKeeperServer:
    """A standalone ZooKeeper on 127.0.0.1:<free port>. Use as a context manager or start()/stop()."""

    def __init__(
        self,
        *,
        java: str | None = None,
        classpath: str = DEFAULT_CLASSPATH,
        tick_time_ms: int = 500,
        host: str = "127.0.0.1",
    ) -> None:
        self.host = host
        self.port = 0
        self._java = java or shutil.which("java") or "/usr/bin/java"
        self._classpath = classpath
        self._tick_time_ms = tick_time_ms
        self._dir: Path | None = None
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def connect(self) -> str:
        """The connect string (no chroot)."""
        return f"{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self, timeout: float = 30.0) -> ZooKeeperServer:
        self._dir = Path(tempfile.mkdtemp(prefix="strom-zk-"))
        data_dir = self._dir / "data"
        data_dir.mkdir()
        self.port = free_port(self.host)
        config = self._dir / "zoo.cfg"
        config.write_text(
            "\n".join(
                [
                    f"tickTime={self._tick_time_ms}",
                    f"dataDir={data_dir}",
                    f"clientPort={self.port}",
                    f"clientPortAddress={self.host}",
                    # sessions as short as two ticks, so tests can expire sessions quickly
                    f"minSessionTimeout={2 * self._tick_time_ms}",
                    "maxSessionTimeout=60000",
                    "admin.enableServer=false",
                    "4lw.commands.whitelist=*",
                    "",
                ]
            ),
            encoding="utf-8",
        )
        log_path = self._dir / "zookeeper.out"
        try:
            with open(log_path, "wb") as out:
                self._proc = subprocess.Popen(
                    [self._java, "-Xmx256m", "-cp", self._classpath, SERVER_MAIN, str(config)],
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    start_new_session=True,
                )
            self._wait_ready(timeout, log_path)
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self, timeout: float, log_path: Path) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc is None or self._proc.poll() is not None:
                output = log_path.read_text(errors="replace") if log_path.exists() else ""
                raise RuntimeError(f"ZooKeeper exited during start-up:\n{output[-2000:]}")
            with contextlib.suppress(OSError):
                if four_letter_word(self.host, self.port, b"ruok", timeout=0.5) == b"imok":
                    return
            time.sleep(0.1)
        raise TimeoutError(f"ZooKeeper did not answer on {self.connect} within {timeout} s")

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=10)
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    def __enter__(self) -> ZooKeeperServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


@contextlib.contextmanager
def running_zookeeper(**kwargs: object) -> Iterator[ZooKeeperServer]:
    """`with running_zookeeper() as zk: ... zk.connect ...`"""
    server = ZooKeeperServer(**kwargs)  # type: ignore[arg-type]
    server.start()
    try:
        yield server
    finally:
        server.stop()


def java_available() -> bool:
    """True when a JVM and the ZooKeeper jar are installed (tests skip otherwise)."""
    return (shutil.which("java") is not None or os.path.exists("/usr/bin/java")) and os.path.exists(
        DEFAULT_CLASSPATH
    )
