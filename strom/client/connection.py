"""One client connection to a Kafka broker: framing, request headers, pipelined requests.

Requests are kio request dataclasses of a fixed version; the header version follows the request
(v2 for flexible versions, v1 otherwise) and the response header is v1 for flexible responses except
ApiVersions, whose response header is always v0 so that old clients can parse a version mismatch (KIP-511).
Responses are matched to requests by correlation id, so many requests may be in flight at once.

Used by the `strom` CLI, the follower fetcher and tests; it is deliberately small: no retries, no metadata
cache (see `strom.client.cluster` for that).
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import itertools
import ssl as ssl_module
import struct
from typing import TYPE_CHECKING, Any, TypeVar

from kio.index import load_response_schema
from kio.serial import entity_reader, entity_writer
from kio.static.protocol import RequestPayload, ResponsePayload

from strom.protocol.errors import ErrorCode, KafkaError
from strom.protocol.wire import EMPTY_TAGS, I32, nullable_string, skip_tagged_fields

if TYPE_CHECKING:
    from strom.security.sasl.client import SaslClientSettings

__all__ = ["BrokerConnection", "ConnectionClosedError"]

_HEADER_V1 = struct.Struct(">hhi")
_API_VERSIONS_KEY = 18
R = TypeVar("R", bound=ResponsePayload)


class ConnectionClosedError(ConnectionError):
    """The broker closed the connection (or it was never open) while requests were in flight."""


def encode_request_header(
    api_key: int, version: int, correlation_id: int, client_id: str | None, flexible: bool
) -> bytes:
    """Request header v1 (non-flexible) or v2 (flexible: with an empty tagged-field section)."""
    # client_id is a legacy (int16-length) string even in header v2
    header = _HEADER_V1.pack(api_key, version, correlation_id) + nullable_string(client_id, flexible=False)
    return header + EMPTY_TAGS if flexible else header


class BrokerConnection:
    """A pipelined connection to one broker. Create with `await BrokerConnection.open(host, port)`."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, client_id: str) -> None:
        self._reader = reader
        self._writer = writer
        self.client_id = client_id
        self._correlation = itertools.count(1)
        self._pending: dict[int, tuple[asyncio.Future[Any], type[ResponsePayload]]] = {}
        self._read_task = asyncio.get_running_loop().create_task(self._read_loop())
        self._closed_error: BaseException | None = None
        self.api_versions: dict[int, tuple[int, int]] = {}

    @classmethod
    async def open(
        cls,
        host: str,
        port: int,
        *,
        client_id: str = "strom",
        timeout: float = 10.0,
        negotiate: bool = True,
        ssl: ssl_module.SSLContext | None = None,
        sasl: SaslClientSettings | None = None,
    ) -> BrokerConnection:
        """Connect (through TLS when `ssl` is given, checking the broker's name if the context asks), and
        authenticate when `sasl` is given (strom.security.sasl.client)."""
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port, ssl=ssl), timeout)
        conn = cls(reader, writer, client_id)
        try:
            if negotiate:
                await conn.negotiate_versions(timeout=timeout)
            if sasl is not None:
                from strom.security.sasl.client import authenticate

                await authenticate(conn, sasl, timeout=timeout)
        except BaseException:
            await conn.close()
            raise
        return conn

    async def negotiate_versions(self, timeout: float = 10.0) -> dict[int, tuple[int, int]]:
        """Ask the broker which API versions it serves (ApiVersions v3, KIP-511)."""
        from kio.schema.api_versions.v3 import ApiVersionsRequest

        response = await self.request(
            ApiVersionsRequest(client_software_name="strom", client_software_version="1"), timeout=timeout
        )
        if response.error_code != ErrorCode.none:
            raise KafkaError("ApiVersions failed", code=response.error_code)
        self.api_versions = {
            int(k.api_key): (int(k.min_version), int(k.max_version)) for k in response.api_keys
        }
        return self.api_versions

    def pick_version(self, api_key: int, ours: tuple[int, ...]) -> int:
        """The highest of `ours` that the broker serves; KafkaError(UNSUPPORTED_VERSION) if none."""
        lo, hi = self.api_versions.get(api_key, (0, -1))
        for version in sorted(ours, reverse=True):
            if lo <= version <= hi:
                return version
        raise KafkaError(
            f"broker serves no version of API {api_key} among {ours}", code=ErrorCode.unsupported_version
        )

    async def request(
        self, request: RequestPayload, *, timeout: float = 30.0, expect_response: bool = True
    ) -> Any:
        """Send one request and wait for its response (a kio response dataclass of the same version)."""
        if self._closed_error is not None:
            raise ConnectionClosedError(str(self._closed_error))
        api_key = int(request.__api_key__)
        version = int(request.__version__)
        correlation_id = next(self._correlation)
        body = io.BytesIO()
        entity_writer(type(request))(body, request)
        header = encode_request_header(api_key, version, correlation_id, self.client_id, request.__flexible__)
        payload = header + body.getvalue()
        future: asyncio.Future[Any] | None = None
        if expect_response:
            future = asyncio.get_running_loop().create_future()
            self._pending[correlation_id] = (future, load_response_schema(api_key, version))
        self._writer.write(I32.pack(len(payload)) + payload)
        try:
            await self._writer.drain()
        except BaseException:
            if future is not None:  # the write's error is the one raised; the read loop's is not reported
                self._pending.pop(correlation_id, None)
                if future.done() and not future.cancelled():
                    future.exception()
                future.cancel()
            raise
        if future is None:
            return None
        try:
            return await asyncio.wait_for(future, timeout)
        finally:
            self._pending.pop(correlation_id, None)

    async def _read_loop(self) -> None:
        try:
            while True:
                size_bytes = await self._reader.readexactly(4)
                (size,) = I32.unpack(size_bytes)
                frame = memoryview(await self._reader.readexactly(size))
                (correlation_id,) = I32.unpack_from(frame, 0)
                entry = self._pending.pop(correlation_id, None)
                if entry is None:
                    continue
                future, schema = entry
                pos = 4
                try:
                    if schema.__flexible__ and int(schema.__api_key__) != _API_VERSIONS_KEY:
                        pos = skip_tagged_fields(frame, pos)
                    value, _size = entity_reader(schema)(frame, pos)
                except Exception as exc:  # a response we cannot parse fails that request only
                    if not future.done():
                        future.set_exception(exc)
                    continue
                if not future.done():
                    future.set_result(value)
        except asyncio.IncompleteReadError:
            self._fail_all(ConnectionClosedError("the broker closed the connection"))
        except (ConnectionError, OSError) as exc:
            self._fail_all(ConnectionClosedError(f"connection closed: {exc!r}"))
        except asyncio.CancelledError:
            self._fail_all(ConnectionClosedError("connection closed"))
            raise

    def _fail_all(self, exc: BaseException) -> None:
        self._closed_error = exc
        for future, _schema in self._pending.values():
            if not future.done():
                future.set_exception(exc)
        self._pending.clear()

    @property
    def closed(self) -> bool:
        return self._closed_error is not None

    async def close(self) -> None:
        self._read_task.cancel()
        with contextlib.suppress(BaseException):
            await self._read_task
        self._writer.close()
        with contextlib.suppress(Exception):
            await self._writer.wait_closed()

    async def __aenter__(self) -> BrokerConnection:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
