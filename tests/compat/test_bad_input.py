"""Bad input against a running `strom serve`: every case closes (or answers) only the offending connection;
other connections keep working and the broker stays up.

Cases: a size over socket.request.max.bytes, a negative size, a truncated frame, garbage, an impossible
array length, an unknown API key, unknown versions (ApiVersions answers UNSUPPORTED_VERSION in a v0 body).
"""

from __future__ import annotations

import os
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from strom.testing.ports import free_port

REPO = Path(__file__).resolve().parents[2]


class Served:
    def __init__(self, port: int, proc: subprocess.Popen[bytes], log_path: Path) -> None:
        self.port = port
        self.proc = proc
        self.log_path = log_path


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    tmp = tmp_path_factory.mktemp("bad-input")
    port = free_port()
    log_path = tmp / "broker.log"
    with open(log_path, "wb") as log_file:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "strom.cli.main",
                "serve",
                "--data-dir",
                str(tmp / "data"),
                "--port",
                str(port),
                "--set",
                "socket.request.max.bytes=1048576",
            ],
            cwd=REPO,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONPATH": str(REPO)},
        )
    try:
        deadline = time.time() + 15
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if proc.poll() is not None:
                    raise RuntimeError(log_path.read_text()) from None
                time.sleep(0.05)
        yield Served(port, proc, log_path)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _connect(served: Served) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", served.port), timeout=5)
    return sock


def _frame(api_key: int, version: int, corr: int, body: bytes = b"", client_id: bytes = b"t") -> bytes:
    payload = struct.pack(">hhih", api_key, version, corr, len(client_id)) + client_id + body
    return struct.pack(">i", len(payload)) + payload


def _recv_frame(sock: socket.socket) -> bytes | None:
    head = _recv_exact(sock, 4)
    if head is None:
        return None
    (size,) = struct.unpack(">i", head)
    return _recv_exact(sock, size)


def _recv_exact(sock: socket.socket, n: int) -> bytes | None:
    out = b""
    while len(out) < n:
        try:
            chunk = sock.recv(n - len(out))
        except (ConnectionResetError, TimeoutError):
            return None
        if not chunk:
            return None
        out += chunk
    return out


def _closed(sock: socket.socket) -> bool:
    sock.settimeout(5)
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True


def _api_versions_ok(served: Served) -> None:
    """A fresh connection gets a well-formed ApiVersions v0 answer."""
    with _connect(served) as sock:
        sock.sendall(_frame(18, 0, 42))
        resp = _recv_frame(sock)
        assert resp is not None
        corr, error, count = struct.unpack_from(">ihi", resp, 0)
        assert (corr, error) == (42, 0)
        assert count >= 5


@pytest.fixture
def other(served: Served) -> Iterator[socket.socket]:
    """A connection opened before the bad input, which must keep working after it."""
    sock = _connect(served)
    sock.sendall(_frame(18, 0, 1))
    assert _recv_frame(sock) is not None
    yield sock
    sock.sendall(_frame(18, 0, 2))
    resp = _recv_frame(sock)
    assert resp is not None and struct.unpack_from(">i", resp)[0] == 2
    sock.close()
    _api_versions_ok(served)
    assert served.proc.poll() is None


def test_oversized_frame_closes_connection(served: Served, other: socket.socket) -> None:
    with _connect(served) as sock:
        sock.sendall(struct.pack(">i", 100 * 1024 * 1024) + b"\x00" * 64)
        assert _closed(sock)
    assert "socket.request.max.bytes" in served.log_path.read_text()


def test_negative_size_closes_connection(served: Served, other: socket.socket) -> None:
    with _connect(served) as sock:
        sock.sendall(struct.pack(">i", -5))
        assert _closed(sock)


def test_truncated_frame(served: Served, other: socket.socket) -> None:
    with _connect(served) as sock:
        sock.sendall(struct.pack(">i", 1000) + b"\x00\x12\x00\x00")
        sock.shutdown(socket.SHUT_WR)
        assert _closed(sock)
    # a frame too short for a request header
    with _connect(served) as sock:
        sock.sendall(struct.pack(">i", 3) + b"\x00\x12\x00")
        assert _closed(sock)


def test_garbage(served: Served, other: socket.socket) -> None:
    with _connect(served) as sock:
        sock.sendall(struct.pack(">i", 64) + os.urandom(64))
        sock.settimeout(5)
        try:
            data = sock.recv(65536)
        except ConnectionResetError:
            data = b""
        # either closed, or a well-formed answer if the random key/version happened to be served
        assert data == b"" or len(data) >= 4


def test_impossible_array_length(served: Served, other: socket.socket) -> None:
    # Metadata v1 whose topics array claims 2^31-1 entries in a 4-byte body
    with _connect(served) as sock:
        sock.sendall(_frame(3, 1, 7, struct.pack(">i", 2**31 - 1)))
        assert _closed(sock)
    # Fetch v2 (our own decoder) likewise
    with _connect(served) as sock:
        sock.sendall(_frame(1, 2, 8, struct.pack(">iiii", -1, 100, 1, 2**30)))
        assert _closed(sock)
    # Produce v3 with a records length far past the frame
    with _connect(served) as sock:
        body = (
            struct.pack(">hhii", -1, 1, 1000, 1)
            + struct.pack(">h", 1)
            + b"t"
            + struct.pack(">iii", 1, 0, 2**30)
        )
        sock.sendall(_frame(0, 3, 9, body))
        assert _closed(sock)


def test_unknown_api_key(served: Served, other: socket.socket) -> None:
    with _connect(served) as sock:
        sock.sendall(_frame(9999, 0, 5))
        assert _closed(sock)


def test_unknown_versions(served: Served, other: socket.socket) -> None:
    with _connect(served) as sock:
        sock.sendall(_frame(18, 99, 11))
        resp = _recv_frame(sock)
        assert resp is not None
        corr, error, count = struct.unpack_from(">ihi", resp, 0)
        assert (corr, error) == (11, 35)  # UNSUPPORTED_VERSION, v0 body with our versions
        keys = {struct.unpack_from(">hhh", resp, 10 + 6 * i)[0] for i in range(count)}
        assert {0, 1, 2, 3, 18} <= keys
        # the connection stays usable for a version we serve
        sock.sendall(_frame(18, 0, 12))
        assert _recv_frame(sock) is not None
    with _connect(served) as sock:
        sock.sendall(_frame(3, 999, 13))
        data = _recv_frame(sock)
        # no well-formed Metadata v999 answer exists: the connection closes
        assert data is None or struct.unpack_from(">i", data)[0] == 13
