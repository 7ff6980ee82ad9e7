"""A Fetch response's record bytes on a connection without sendfile (TLS): streamed in TLS_CHUNK pieces,
byte for byte, the size and header in the same write as the first piece, a drain between pieces, and a
segment that shrinks under the read fails the connection instead of sending a short frame."""

from __future__ import annotations

import asyncio
import os
import struct
from pathlib import Path
from typing import Any

import pytest

from strom.protocol.frames import FileSlice
from strom.server import connection
from strom.server.connection import Connection


class RecordingStream:
    """What the connection writes, one entry per transport write (writelines counts once)."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.drains = 0

    def write(self, data: Any) -> None:
        self.writes.append(bytes(data))

    def writelines(self, pieces: Any) -> None:
        self.writes.append(b"".join(bytes(p) for p in pieces))

    async def drain(self) -> None:
        self.drains += 1
        await asyncio.sleep(0)  # let the read-ahead run, as a real drain would


def _tls_connection(stream: RecordingStream) -> Connection:
    conn = Connection.__new__(Connection)  # only the write path is exercised
    conn.stream = stream  # type: ignore[assignment]
    conn._zero_copy = False
    conn._nowait_reads = hasattr(os, "RWF_NOWAIT")
    return conn


def test_slice_streams_in_pieces_byte_for_byte(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(connection, "TLS_CHUNK", 4096)
    payload = os.urandom(3 * 4096 + 100)
    path = tmp_path / "segment.log"
    path.write_bytes(b"junk" + payload + b"tail")
    stream = RecordingStream()
    with path.open("rb") as fh:
        chunks = [b"head", FileSlice(fh, 4, len(payload)), b"end"]
        asyncio.run(_tls_connection(stream)._send(chunks))
    total = 4 + len(payload) + 3
    assert b"".join(stream.writes) == struct.pack(">i", total) + b"head" + payload + b"end"
    # size + header ride with the first piece; then one write per piece; the trailer last
    assert [len(w) for w in stream.writes] == [4 + 4 + 4096, 4096, 4096, 100, 3]
    assert stream.drains == 3


def test_slice_of_a_shrunken_segment_fails_the_connection(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(connection, "TLS_CHUNK", 4096)
    path = tmp_path / "segment.log"
    path.write_bytes(os.urandom(6000))
    stream = RecordingStream()
    with path.open("rb") as fh, pytest.raises(ConnectionError, match="truncated"):
        asyncio.run(_tls_connection(stream)._send([b"h", FileSlice(fh, 0, 10_000)]))
    assert sum(len(w) for w in stream.writes) < 4 + 1 + 10_000


def test_uncached_pieces_are_read_in_a_thread(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # a read that would wait for the disk (EAGAIN under RWF_NOWAIT) goes to the worker thread
    monkeypatch.setattr(connection, "TLS_CHUNK", 4096)
    monkeypatch.setattr(connection.os, "RWF_NOWAIT", 8, raising=False)

    def would_block(*_args: Any) -> int:
        raise BlockingIOError

    real = os.preadv
    monkeypatch.setattr(
        connection.os, "preadv", lambda fd, bufs, pos, *flags: would_block() if flags else real(fd, bufs, pos)
    )
    payload = os.urandom(10_000)
    path = tmp_path / "segment.log"
    path.write_bytes(payload)
    stream = RecordingStream()
    conn = _tls_connection(stream)
    conn._nowait_reads = True
    with path.open("rb") as fh:
        asyncio.run(conn._send([FileSlice(fh, 0, len(payload))]))
    assert b"".join(stream.writes) == struct.pack(">i", len(payload)) + payload
