"""FrameProtocol: Kafka frames split and joined arbitrarily by the socket come out whole, in order."""

from __future__ import annotations

import asyncio
import os
import struct
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from strom.server.frame_protocol import FrameProtocol


class FakeTransport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.paused = False
        self.pauses = 0
        self.written: list[bytes] = []
        self.closed = False

    def pause_reading(self) -> None:
        self.paused = True
        self.pauses += 1

    def resume_reading(self) -> None:
        self.paused = False

    def is_reading(self) -> bool:
        return not self.paused

    def write(self, data: Any) -> None:
        self.written.append(bytes(data))

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 1) if name == "peername" else default


def frame(payload: bytes) -> bytes:
    return struct.pack(">i", len(payload)) + payload


def feed(proto: FrameProtocol, data: bytes, cuts: list[int]) -> None:
    """Deliver `data` the way the transport does: into get_buffer(), in pieces no bigger than asked."""
    pos = 0
    pieces = iter(cuts)
    while pos < len(data):
        buf = proto.get_buffer(-1)
        assert len(buf) > 0
        want = next(pieces, len(data)) or 1
        n = min(len(buf), want, len(data) - pos)
        buf[:n] = data[pos : pos + n]
        proto.buffer_updated(n)
        pos += n


async def drain_frames(proto: FrameProtocol, count: int) -> list[Any]:
    return [await asyncio.wait_for(proto.read_frame(), 1) for _ in range(count)]


async def noop(_proto: FrameProtocol) -> None:
    return None


def make(max_request: int = 1 << 24, max_queued: int = 1000) -> tuple[FrameProtocol, FakeTransport]:
    proto = FrameProtocol(max_request, noop, max_queued=max_queued)
    transport = FakeTransport()
    proto.connection_made(transport)
    return proto, transport


async def test_small_and_large_frames_in_any_split() -> None:
    payloads = [b"a" * 10, os.urandom(200_000), b"", os.urandom(70_000), b"xyz", os.urandom(65_532)]
    data = b"".join(frame(p) for p in payloads)
    for cuts in ([1] * 9 + [3, 5000], [len(data)], [65_536, 7, 131_072], [2, 2, 2, 100_000]):
        proto, _ = make()
        feed(proto, data, list(cuts))
        got = await drain_frames(proto, len(payloads))
        assert [bytes(f) for f in got] == payloads
        assert all(isinstance(f, bytearray) for f in got)


@settings(max_examples=60, deadline=None)
@given(
    sizes=st.lists(st.integers(0, 150_000), min_size=1, max_size=6),
    cuts=st.lists(st.integers(1, 90_000), max_size=30),
)
def test_frames_survive_arbitrary_splits(sizes: list[int], cuts: list[int]) -> None:
    payloads = [os.urandom(n) for n in sizes]

    async def run() -> list[bytes]:
        proto, _ = make()
        feed(proto, b"".join(frame(p) for p in payloads), cuts)
        return [bytes(f) for f in await drain_frames(proto, len(payloads))]

    assert asyncio.run(run()) == payloads


async def test_oversized_and_negative_sizes_are_reported_and_stop_reading() -> None:
    for bad in (1001, -5):
        proto, transport = make(max_request=1000)
        feed(proto, frame(b"ok") + struct.pack(">i", bad) + b"garbage", [])
        assert bytes(await proto.read_frame()) == b"ok"  # type: ignore[arg-type]
        assert await proto.read_frame() == bad
        assert transport.paused


async def test_eof_ends_the_stream_after_queued_frames() -> None:
    proto, _ = make()
    feed(proto, frame(b"one") + b"\x00\x00", [])
    assert proto.eof_received() is True  # half-close: responses can still be written
    assert bytes(await proto.read_frame()) == b"one"  # type: ignore[arg-type]
    assert await proto.read_frame() is None


async def test_reading_pauses_while_frames_wait_and_resumes_when_taken() -> None:
    proto, transport = make(max_queued=2)
    feed(proto, frame(b"1") + frame(b"2") + frame(b"3"), [])
    assert transport.paused
    await proto.read_frame()
    await proto.read_frame()
    assert not transport.paused
    assert bytes(await proto.read_frame()) == b"3"  # type: ignore[arg-type]


async def test_drain_waits_for_resume_and_fails_on_loss() -> None:
    proto, _ = make()
    await proto.drain()  # not paused: returns at once
    proto.pause_writing()
    waiter = asyncio.ensure_future(proto.drain())
    await asyncio.sleep(0)
    assert not waiter.done()
    proto.resume_writing()
    await asyncio.wait_for(waiter, 1)
    proto.pause_writing()
    waiter = asyncio.ensure_future(proto.drain())
    await asyncio.sleep(0)
    proto.connection_lost(None)
    try:
        await asyncio.wait_for(waiter, 1)
        raise AssertionError("drain should fail once the connection is lost")
    except ConnectionError:
        pass
