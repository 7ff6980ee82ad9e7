"""The socket side of one client connection: Kafka frames in, response bytes out, with flow control.

Kafka frames a request as a 4-byte big-endian size and that many bytes. This protocol (an asyncio
`BufferedProtocol`) has the kernel copy received bytes straight into Python buffers: small frames are
gathered in a 64 KiB staging buffer and copied out once each; a frame too big for it gets its own
`bytearray`, which the socket fills directly (recv_into), so a produce request's record payload lands in
memory once and is never copied again in Python. Each frame is handed over as a `bytearray` the consumer
owns (it may rewrite it in place, e.g. batch base offsets).

A size that is negative or over `max_request` (socket.request.max.bytes) is reported as that size (an int)
and nothing more is read (Kafka closes the connection). Reading pauses while `max_queued` frames wait to be
taken (backpressure towards a client that sends faster than we serve); writing follows the transport's
high/low water marks (`drain`). A peer's half-close (EOF) keeps the transport open so the responses to
requests already read still go out. `last_active` is the (monotonic) time bytes last moved either way, for
the idle-connection sweep (connections.max.idle.ms).
"""

from __future__ import annotations

import asyncio
import collections
import struct
from collections.abc import Callable
from typing import Any

__all__ = ["FrameProtocol"]

_STAGING = 64 * 1024
_SIZE = struct.Struct(">i")


class FrameProtocol(asyncio.BufferedProtocol):
    """Frame reader and writer for one connection; `on_connect(protocol)` runs once the socket is up."""

    def __init__(
        self,
        max_request: int,
        on_connect: Callable[[FrameProtocol], Any],
        *,
        max_queued: int = 4,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.max_request = max_request
        self._clock = clock  # monotonic seconds; the loop's clock unless given
        self.last_active = 0.0  # when bytes last came in or went out (connections.max.idle.ms)
        self._on_connect = on_connect
        self._max_queued = max_queued
        self.transport: asyncio.Transport | None = None
        self._staging = bytearray(_STAGING)
        self._view = memoryview(self._staging)
        self._start = 0  # first unconsumed byte in staging
        self._end = 0  # end of received bytes in staging
        self._frame: bytearray | None = None  # a large frame being filled directly by the socket
        self._frame_view: memoryview | None = None
        self._filled = 0
        self._frames: collections.deque[bytearray | int] = collections.deque()
        self._reader_waiter: asyncio.Future[None] | None = None
        self._eof = False
        self._stopped = False  # an oversized frame: read nothing more
        self._reading_paused = False
        self._write_paused = False
        self._drain_waiters: list[asyncio.Future[None]] = []
        self._lost: Exception | None = None
        self._closed = False
        self.task: asyncio.Task[Any] | None = None

    # --- asyncio callbacks ----------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        loop = asyncio.get_running_loop()
        if self._clock is None:
            self._clock = loop.time
        self.last_active = self._clock()
        self.task = loop.create_task(self._on_connect(self))

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        self._eof = True
        self._lost = exc or ConnectionResetError("connection lost")
        self._wake_reader()
        for waiter in self._drain_waiters:
            if not waiter.done():
                waiter.set_exception(self._lost)
        self._drain_waiters.clear()

    def eof_received(self) -> bool:
        self._eof = True
        self._wake_reader()
        # keep the transport open: pending responses are still written. TLS has no half-close (the
        # transport closes whatever we answer, and warns if we ask otherwise).
        return self.transport is None or self.transport.get_extra_info("sslcontext") is None

    def get_buffer(self, sizehint: int) -> memoryview:
        if self._frame_view is not None:
            return self._frame_view[self._filled :]
        if self._stopped:
            self._start = self._end = 0  # nothing more is parsed: bytes after an oversized size
        elif self._end == _STAGING:
            self._compact()
        return self._view[self._end :]

    def buffer_updated(self, nbytes: int) -> None:
        self.last_active = self._clock()  # type: ignore[misc]
        if self._frame is not None:
            self._filled += nbytes
            if self._filled == len(self._frame):
                self._push(self._frame)
                self._frame = None
                self._frame_view = None
            return
        self._end += nbytes
        self._split_staging()

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        for waiter in self._drain_waiters:
            if not waiter.done():
                waiter.set_result(None)
        self._drain_waiters.clear()

    # --- frames ---------------------------------------------------------------------------------
    def _split_staging(self) -> None:
        view = self._view
        while not self._stopped:
            start = self._start
            available = self._end - start
            if available < 4:
                break
            (size,) = _SIZE.unpack_from(view, start)
            if size < 0 or size > self.max_request:
                self._stopped = True
                self._push(size)
                break
            if available - 4 >= size:
                self._push(bytearray(view[start + 4 : start + 4 + size]))
                self._start = start + 4 + size
                continue
            if size + 4 > _STAGING:
                # its own buffer: the socket writes the rest of it there directly
                frame = bytearray(size)
                have = available - 4
                frame[:have] = view[start + 4 : self._end]
                self._start = self._end = 0
                self._frame = frame
                self._frame_view = memoryview(frame)
                self._filled = have
            break
        if self._start == self._end:
            self._start = self._end = 0

    def _compact(self) -> None:
        left = self._end - self._start
        self._staging[:left] = self._view[self._start : self._end]
        self._start, self._end = 0, left

    def _push(self, frame: bytearray | int) -> None:
        self._frames.append(frame)
        self._wake_reader()
        if (
            (len(self._frames) >= self._max_queued or self._stopped)
            and not self._reading_paused
            and self.transport is not None
        ):
            self._reading_paused = True
            self.transport.pause_reading()

    def _wake_reader(self) -> None:
        waiter = self._reader_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def read_frame(self) -> bytearray | int | None:
        """The next frame (an owned bytearray), the size (an int) of a frame refused as negative or
        too big, or None at end of stream."""
        while not self._frames:
            if self._eof:
                return None
            self._reader_waiter = asyncio.get_running_loop().create_future()
            try:
                await self._reader_waiter
            finally:
                self._reader_waiter = None
        frame = self._frames.popleft()
        if self._reading_paused and not self._stopped and len(self._frames) < self._max_queued:
            self._reading_paused = False
            if self.transport is not None and not self._closed:
                self.transport.resume_reading()
        return frame

    # --- writing --------------------------------------------------------------------------------
    def write(self, data: bytes | bytearray | memoryview) -> None:
        # like StreamWriter: writing to a lost connection is silently dropped; drain() raises
        if self.transport is not None:
            self.last_active = self._clock()  # type: ignore[misc]
            self.transport.write(data)

    def writelines(self, pieces: Any) -> None:
        """Write several buffers at once: through TLS one socket write carries all of them."""
        if self.transport is not None:
            self.last_active = self._clock()  # type: ignore[misc]
            self.transport.writelines(pieces)

    async def drain(self) -> None:
        """Wait while the transport's write buffer is over its high-water mark; raises once the
        connection is lost."""
        if self._lost is not None:
            raise ConnectionResetError("connection lost")
        if not self._write_paused:
            return
        waiter = asyncio.get_running_loop().create_future()
        self._drain_waiters.append(waiter)
        await waiter

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return default if self.transport is None else self.transport.get_extra_info(name, default)

    def is_closing(self) -> bool:
        return self.transport is None or self.transport.is_closing()

    def close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()
