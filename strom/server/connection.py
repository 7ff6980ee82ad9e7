"""One client connection: frame reader, dispatch, in-order responses, backpressure, limits.

Kafka rules implemented here:
- A request is a 4-byte size and that many bytes. A size over `socket.request.max.bytes` (or negative)
  closes the connection, and only it (Kafka's InvalidReceiveException).
- A connection's requests take effect in request order, as in Kafka (which reads the next request only
  after answering the last): request n+1's handler starts only when request n's handler has returned or
  has called `ctx.effects_applied()` (its changes are in place and it is only waiting: replication for
  acks=all, a fetch's min_bytes, a rebalance). So pipelined produces of an idempotent producer reach
  every partition in order, while their waits overlap. Decoding runs ahead; other connections are
  never held up. Responses leave strictly in request order (clients match responses by order as well as
  by correlation id).
- Unknown API keys, and versions the registry does not serve: ApiVersions answers UNSUPPORTED_VERSION in a
  v0 body listing our versions (KIP-511 fallback); any other API gets an error response when its response
  schema can carry one, otherwise the connection closes, as Kafka closes on a request it cannot parse.
- A request that does not parse closes the connection (logged once per connection).
- A handler answering `CloseConnection` (a failed acks=0 produce) closes the connection after the responses
  to the requests before it are written; requests read after it are dropped unanswered.
- Backpressure: at most `MAX_IN_FLIGHT` requests per connection are read ahead of their responses, and
  every response awaits the transport's drain, so a slow reader stops us from reading its requests.
- `connections.max.idle.ms`: `idle_since()` tells the broker's sweep (strom.server.idle_connections) when
  bytes last moved; a connection with a request in flight is never idle.
- Record payloads of Fetch responses (`FileSlice`) go out with `loop.sendfile` (zero copy), or `os.pread`
  where sendfile is unavailable. Through TLS the bytes must be encrypted in user space, so a TLS
  connection does not try sendfile at all: the slice is streamed in `TLS_CHUNK` pieces, each handed
  whole to the transport (one SSL_write, one socket write) before waiting for its drain. So the client
  receives and decrypts the first megabyte while the broker encrypts the next, instead of waiting for a
  whole 10 MiB response to be encrypted, and the broker holds at most a few pieces of plaintext and
  ciphertext per connection; nothing is done per record. A piece in the page cache is read on the event
  loop (preadv with RWF_NOWAIT, which never waits for the disk); only what is not cached is read in a
  worker thread. The response's size and header go out in the same socket write as the first piece.
- Each connection knows its listener (name, security protocol) and its principal, found once when it
  opens (after the TLS handshake, strom.security.channel); every request's context carries them.
- SASL listeners: frames go to the connection's authenticator (strom.security.sasl.authenticator) until it
  completes, one at a time, each frame capped at `sasl.server.max.receive.size`; its answers are written in
  order like any response. Then the principal is the authenticated user. A SaslHandshake on an
  authenticated connection may start re-authentication (KIP-368); any other request arriving after the
  session's lifetime closes the connection, as Kafka does.
- Quotas (KIP-219): a handler that answers a throttle time calls `ctx.throttle(ms)`; the connection then
  reads and starts none of this client's requests until it has passed (the socket fills and the client
  waits; the event loop never sleeps). With request_percentage quotas in force, each handler's time on
  the event loop is measured (strom.security.quotas.throttling.OnLoopTimer) and counted against them.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime
import errno
import io
import logging
import os
import struct
from typing import TYPE_CHECKING, Any

from kio.serial import entity_writer

from strom.protocol.errors import ErrorCode, KafkaError
from strom.protocol.frames import (
    CloseConnection,
    FileSlice,
    FrameError,
    RawResponse,
    decode_request_header,
    encode_response_header,
    peek_api,
)
from strom.protocol.registry import is_flexible
from strom.security.principal import ANONYMOUS
from strom.security.quotas.throttling import OnLoopTimer, RequestTimeQuota
from strom.server.context import RequestContext
from strom.server.error_response import unsupported_response
from strom.server.frame_protocol import FrameProtocol

if TYPE_CHECKING:
    from strom.security.channel import ListenerSecurity
    from strom.security.sasl.authenticator import SaslServerAuthenticator, Step
    from strom.server.broker import Broker

log = logging.getLogger("strom.connection")

MAX_IN_FLIGHT = 64
# Piece of a fetch's record bytes read, encrypted and written at a time on a TLS connection: large enough
# that thread hand-offs and SSL/socket calls are few (10 per 10 MiB response), small enough that the
# client starts decrypting early and the two sides overlap.
TLS_CHUNK = 1 << 20
API_VERSIONS = 18
SASL_HANDSHAKE = 17
_SIZE = struct.Struct(">i")
_CLOSE = object()
# not counted against request_percentage: version negotiation and authentication (Kafka exempts them)
_REQUEST_QUOTA_EXEMPT = frozenset({API_VERSIONS, SASL_HANDSHAKE, 36})

Chunks = list[Any]


class Connection:
    """Serves one socket until the peer closes, a protocol error, or broker shutdown."""

    def __init__(
        self,
        broker: Broker,
        stream: FrameProtocol,
        connection_id: str,
        security: ListenerSecurity | None = None,
    ) -> None:
        """`security` is the listener's (None: a plaintext connection as `User:ANONYMOUS`); raises
        ValueError when no ssl.principal.mapping.rules rule names the client's certificate."""
        self.broker = broker
        self.stream = stream
        self.connection_id = connection_id
        peer = stream.get_extra_info("peername")
        self.client_host = str(peer[0]) if peer else ""
        self._sasl: SaslServerAuthenticator | None = None
        self.token_authenticated = False
        self._max_request = stream.max_request
        if security is None:
            self.listener_name, self.security_protocol, self.principal = "PLAINTEXT", "PLAINTEXT", ANONYMOUS
        else:
            self.listener_name = security.listener.name
            self.security_protocol = security.listener.security_protocol
            self.principal = security.principal(stream.get_extra_info)
            if security.sasl is not None:
                versions = broker.registry.get(API_VERSIONS)
                store = getattr(broker, "scram_store", None)
                tokens = getattr(broker, "delegation_tokens", None)
                self._sasl = security.sasl.authenticator(
                    lambda version: versions is not None and versions.supports(version),
                    lambda: int(broker.clock() * 1000),
                    store.get if store is not None else None,
                    tokens.scram_lookup if tokens is not None else None,
                )
                # the stream starts capped at sasl.server.max.receive.size; this is the cap once authenticated
                self._max_request = int(broker.config.get("socket.request.max.bytes"))
                stream.max_request = security.frame_limit(self._max_request)
        # sendfile bypasses the transport, so only a plaintext socket can take it
        self._zero_copy = stream.get_extra_info("sslcontext") is None
        self._nowait_reads = hasattr(os, "RWF_NOWAIT")  # Linux: reads that never wait for the disk
        self._slots = asyncio.Semaphore(MAX_IN_FLIGHT)
        self._queue: asyncio.Queue[asyncio.Task[Any] | None] = asyncio.Queue()
        self._read_task: asyncio.Task[None] | None = None
        self._write_task: asyncio.Task[None] | None = None
        self._closing = False
        self._logged_error = False
        self._in_flight = 0  # requests read and not yet answered
        # resolved once the newest request's effects are applied: the next request's handler awaits it
        self._order_tail: asyncio.Future[None] | None = None
        self._unmute_at = 0.0  # the loop time until which this client is throttled (muted)

    # --- lifecycle --------------------------------------------------------------------------------
    async def run(self) -> None:
        self._write_task = asyncio.create_task(self._write_loop())
        self._read_task = asyncio.current_task()  # type: ignore[assignment]
        try:
            await self._read_loop()
        except asyncio.CancelledError:
            if not self._closing:
                raise
        finally:
            self._queue.put_nowait(None)
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._write_task
            self._close_transport()

    async def shutdown(self) -> None:
        """Stop reading new requests; the responses to requests already read are still written."""
        self._closing = True
        if self._read_task is not None and not self._read_task.done():
            self._read_task.cancel()
        if self._write_task is not None:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._write_task

    def idle_since(self) -> float | None:
        """When bytes last moved on this connection (the stream's clock), or None while a request awaits
        its response: a connection with work in flight is never idle."""
        return None if self._in_flight else self.stream.last_active

    def close_idle(self) -> None:
        """Close a connection idle past connections.max.idle.ms (Kafka closes it without a word)."""
        log.debug("%s from %s: closing idle connection", self.connection_id, self.client_host)
        self._closing = True
        self._close_transport()

    def abort(self) -> None:
        if self._write_task is not None:
            self._write_task.cancel()
        self._close_transport()

    def _close_transport(self) -> None:
        self.stream.close()

    def _log_error(self, message: str, *args: Any) -> None:
        # once per connection: a misbehaving client must not flood the log
        if not self._logged_error:
            self._logged_error = True
            log.warning("%s from %s: " + message, self.connection_id, self.client_host, *args)

    # --- reading ----------------------------------------------------------------------------------
    async def _read_loop(self) -> None:
        stream = self.stream
        while not self._closing:
            await self._wait_unmuted()
            frame = await stream.read_frame()
            if frame is None:
                return
            if isinstance(frame, int):
                pre_auth = self._sasl is not None and not self._sasl.complete
                setting = "sasl.server.max.receive.size" if pre_auth else "socket.request.max.bytes"
                self._log_error("request size %d over %s %d", frame, setting, stream.max_request)
                self._in_flight += 1
                self._queue.put_nowait(_done(_CLOSE))
                return
            if self._sasl is not None and not await self._sasl_frame(frame):
                continue
            await self._slots.acquire()
            self._in_flight += 1
            after = self._order_tail
            applied: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._order_tail = applied
            # the frame is ours: handlers may rewrite it in place (a produce's batch base offsets)
            self._queue.put_nowait(asyncio.create_task(self._handle(memoryview(frame), after, applied)))

    # --- SASL -------------------------------------------------------------------------------------
    async def _sasl_frame(self, frame: bytearray) -> bool:
        """Route one frame of a SASL connection: True to serve it as an ordinary request; False when the
        authenticator took it (its answer queued, or the connection closing)."""
        sasl = self._sasl
        assert sasl is not None
        now_ms = int(self.broker.clock() * 1000)
        if sasl.complete:
            if len(frame) >= 2 and frame[0] == 0 and frame[1] == SASL_HANDSHAKE:
                step = await sasl.begin_reauthentication(bytes(frame), now_ms)
                if step is not None:
                    await self._sasl_answer(step)
                    return False
            if sasl.session_expired(now_ms):
                log.info(
                    "%s from %s: closing: SASL session of %s expired",
                    self.connection_id,
                    self.client_host,
                    self.principal,
                )
                await self._enqueue(_CLOSE)
                self._closing = True
                return False
            return True
        step = await sasl.receive(bytes(frame))
        if step.serve:
            return True
        await self._sasl_answer(step)
        return False

    async def _sasl_answer(self, step: Step) -> None:
        sasl = self._sasl
        assert sasl is not None
        if step.response is not None:
            await self._enqueue([step.response])
        if step.close:
            # Kafka logs failed authentications at INFO; the reason never holds a secret
            log.info(
                "%s from %s: failed authentication (%s)", self.connection_id, self.client_host, step.reason
            )
            await self._enqueue(_CLOSE)
            self._closing = True
        elif sasl.complete:
            self.principal = sasl.principal or self.principal
            self.token_authenticated = sasl.token_authenticated
            self.stream.max_request = self._max_request

    async def _enqueue(self, result: Any) -> None:
        """Queue an answer decided here (not by a handler), in order with the responses before it."""
        await self._slots.acquire()
        self._in_flight += 1
        self._queue.put_nowait(_done(result))

    # --- dispatch ---------------------------------------------------------------------------------
    async def _handle(
        self, frame: memoryview, after: asyncio.Future[None] | None, applied: asyncio.Future[None]
    ) -> Any:
        """The encoded response (a list of chunks), None for no response, or _CLOSE. The handler runs
        once `after` (the previous request's effects) is resolved; `applied` resolves when this
        request's effects are in place, at the latest when this returns."""
        try:
            return await self._dispatch(frame, after, applied)
        finally:
            _resolve(applied)

    async def _dispatch(
        self, frame: memoryview, after: asyncio.Future[None] | None, applied: asyncio.Future[None]
    ) -> Any:
        try:
            api_key, api_version, correlation_id = peek_api(frame)
        except FrameError as exc:
            self._log_error("%s", exc)
            return _CLOSE
        registry = self.broker.registry
        spec = registry.get(api_key)
        flexible = is_flexible(api_key, api_version)
        try:
            header, body_at = decode_request_header(
                frame, flexible and spec is not None and spec.supports(api_version)
            )
        except FrameError as exc:
            self._log_error("bad request header: %s", exc)
            return _CLOSE
        if spec is None or not spec.supports(api_version):
            return self._unsupported(api_key, api_version, correlation_id, flexible)
        resp_header_version = 0 if api_key == API_VERSIONS else (1 if flexible else 0)
        try:
            request = spec.decode_request(api_version, frame[body_at:])
        except KafkaError as exc:
            self._log_error("cannot decode api %d v%d: %s", api_key, api_version, exc)
            return _CLOSE
        ctx = RequestContext(
            broker=self.broker,
            api_key=api_key,
            api_version=api_version,
            correlation_id=correlation_id,
            client_id=header.client_id,
            client_host=self.client_host,
            connection_id=self.connection_id,
            listener_name=self.listener_name,
            security_protocol=self.security_protocol,
            principal=self.principal,
            token_authenticated=self.token_authenticated,
            header_version=header.header_version,
            effects_applied=lambda: _resolve(applied),
            request_size=len(frame),
            throttle=self._throttle,
        )
        if after is not None and not after.done():
            await after
        await self._wait_unmuted()
        try:
            response = await self._call(spec, ctx, request)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("%s: handler of api %d v%d failed", self.connection_id, api_key, api_version)
            return _CLOSE
        if response is None:
            return None
        if isinstance(response, CloseConnection):
            log.info("%s from %s: closing: %s", self.connection_id, self.client_host, response.reason)
            return _CLOSE
        head = encode_response_header(correlation_id, resp_header_version)
        if isinstance(response, RawResponse):
            return [head, *response.chunks]
        buf = io.BytesIO()
        buf.write(head)
        entity_writer(type(response))(buf, response)
        return [buf.getvalue()]

    # --- quotas -----------------------------------------------------------------------------------
    def _throttle(self, ms: int) -> None:
        if ms > 0:
            loop = asyncio.get_running_loop()
            self._unmute_at = max(self._unmute_at, loop.time() + ms / 1000)

    async def _wait_unmuted(self) -> None:
        loop = asyncio.get_running_loop()
        while (wait := self._unmute_at - loop.time()) > 0:
            await asyncio.sleep(wait)

    async def _call(self, spec: Any, ctx: RequestContext, request: Any) -> Any:
        """Run the handler; under a request_percentage quota, count its time on the event loop and
        throttle. Produce, Fetch and Metadata ask for the throttle themselves (`ctx.request_throttle`)
        and answer it; for the others the connection writes it into the response's throttle_time_ms when
        longer than the one already there: a kio response's field, or the leading i32 of a body encoded
        by hand that says it starts so (`RawResponse.leading_throttle`)."""
        quotas = getattr(self.broker, "quotas", None)
        if quotas is None or not quotas.enabled("request_percentage") or ctx.api_key in _REQUEST_QUOTA_EXEMPT:
            return await spec.handler(ctx, request)
        if ctx.api_key == 1 and getattr(request, "replica_id", -1) >= 0:
            return await spec.handler(ctx, request)  # followers are not clients
        quota = RequestTimeQuota(quotas, ctx.principal.name, ctx.client_id)
        ctx = dataclasses.replace(ctx, request_throttle=quota.record)
        quota.timer = OnLoopTimer(spec.handler(ctx, request))
        response = await quota.timer
        ms = quota.finish()  # 0 when the handler asked for its throttle and applied it itself
        if ms <= 0:
            return response
        self._throttle(ms)
        if isinstance(response, RawResponse):
            first = response.chunks[0] if response.chunks else None
            leading = response.leading_throttle and isinstance(first, (bytes, bytearray, memoryview))
            if leading and ms > _SIZE.unpack_from(first)[0]:  # type: ignore[arg-type]
                response.chunks[0] = _SIZE.pack(ms) + bytes(first[4:])  # type: ignore[index]
            return response
        current = getattr(response, "throttle_time", None)
        if current is not None and dataclasses.is_dataclass(response) and ms > current.total_seconds() * 1000:
            delay = type(current).parse(datetime.timedelta(milliseconds=ms))
            response = dataclasses.replace(response, throttle_time=delay)  # type: ignore[type-var]
        return response

    def _unsupported(self, api_key: int, api_version: int, correlation_id: int, flexible: bool) -> Any:
        body = unsupported_response(self.broker.registry, api_key, api_version)
        if body is None:
            self._log_error("unsupported api %d v%d", api_key, api_version)
            return _CLOSE
        header_version = 0 if api_key == API_VERSIONS or not flexible else 1
        return [encode_response_header(correlation_id, header_version), body]

    # --- writing ----------------------------------------------------------------------------------
    async def _write_loop(self) -> None:
        writer = self.stream
        while True:
            task = await self._queue.get()
            if task is None:
                return
            try:
                try:
                    result = await task
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("%s: request failed", self.connection_id)
                    result = _CLOSE
                if result is _CLOSE:
                    self._drain_pending()
                    self._close_transport()
                    if self._read_task is not None and not self._read_task.done():
                        self._closing = True
                        self._read_task.cancel()
                    return
                if result is None:
                    continue
                await self._send(result)
                await writer.drain()
            except (ConnectionError, RuntimeError) as exc:
                self._log_error("write failed: %s", exc)
                self._drain_pending()
                self._close_transport()
                return
            finally:
                self._in_flight -= 1
                self._slots.release()

    def _drain_pending(self) -> None:
        while not self._queue.empty():
            item = self._queue.get_nowait()
            if item is not None:
                item.cancel()

    async def _send(self, chunks: Chunks) -> None:
        total = sum(c.length if isinstance(c, FileSlice) else len(c) for c in chunks)
        writer = self.stream
        # one write per run of encoded pieces: each transport.write on an idle socket is a send()
        pending: list[Any] = [_SIZE.pack(total)]
        for chunk in chunks:
            if isinstance(chunk, FileSlice):
                if not chunk.length:
                    continue
                if self._zero_copy:
                    writer.write(b"".join(pending))
                    pending = []
                    await self._sendfile(chunk)
                else:
                    await self._stream_slice(b"".join(pending), chunk)
                    pending = []
            else:
                pending.append(chunk)
        if pending:
            writer.write(b"".join(pending))

    async def _stream_slice(self, head: bytes, piece: FileSlice) -> None:
        """Write `head` and then the slice's bytes in TLS_CHUNK pieces, each handed whole to the transport
        (encrypted and sent at once), waiting for the transport's drain after each piece so a slow reader
        holds at most a few pieces in memory."""
        fd = piece.file.fileno()
        position, left = piece.position, piece.length
        while left:
            want = min(TLS_CHUNK, left)
            data = await self._read_piece(fd, position, want)
            position += want
            left -= want
            if head:
                # one SSL write and one socket write for the header and the first piece
                self.stream.writelines((head, data))
                head = b""
            else:
                self.stream.write(data)
            del data
            if left:
                await self.stream.drain()

    async def _read_piece(self, fd: int, position: int, length: int) -> bytearray:
        """`length` bytes of the file at `position`. What the page cache holds is read right here
        (preadv with RWF_NOWAIT: a memory copy, tens of microseconds a megabyte, as Kafka's network
        threads read); only what would wait for the disk is read in a worker thread, so the event loop
        never blocks on I/O and a hot fetch costs no thread hand-off."""
        buf = bytearray(length)
        got = 0
        if self._nowait_reads:
            try:
                got = os.preadv(fd, [buf], position, os.RWF_NOWAIT)
            except BlockingIOError:
                pass  # nothing of it cached
            except OSError as exc:
                if exc.errno not in (errno.EOPNOTSUPP, errno.EINVAL):
                    raise
                self._nowait_reads = False  # this kernel or file system cannot: always use the thread
        while got < length:
            more = await asyncio.get_running_loop().run_in_executor(
                None, os.preadv, fd, [memoryview(buf)[got:]], position + got
            )
            if not more:
                # the segment shrank under us (truncation): the frame length is already on the wire
                raise ConnectionError("segment truncated while being sent")
            got += more
        return buf

    async def _sendfile(self, piece: FileSlice) -> None:
        sent = 0
        if self._zero_copy:
            loop = asyncio.get_running_loop()
            transport = self.stream.transport
            try:
                sent = await loop.sendfile(
                    transport, piece.file, piece.position, piece.length, fallback=False
                )
            except (NotImplementedError, asyncio.SendfileNotAvailableError, AttributeError):
                self._zero_copy = False  # this loop or transport has none: do not ask again
        if sent < piece.length:
            # pread never moves a shared file position
            data = await asyncio.to_thread(
                os.pread, piece.file.fileno(), piece.length - sent, piece.position + sent
            )
            if len(data) < piece.length - sent:
                # the segment shrank under us (truncation): the frame length is already on the wire
                raise ConnectionError("segment truncated while being sent")
            self.stream.write(data)


def _resolve(applied: asyncio.Future[None]) -> None:
    if not applied.done():
        applied.set_result(None)


def _done(value: Any) -> asyncio.Future[Any]:
    fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    fut.set_result(value)
    return fut


__all__ = ["MAX_IN_FLIGHT", "Connection", "ErrorCode"]
