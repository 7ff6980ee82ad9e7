"""The API registry: which Kafka APIs and versions this broker serves, and how to decode their requests.

Each API module in `strom.apis` declares one `ApiSpec`; the registry collects them. ApiVersions answers from
`ApiRegistry.specs()`, so what the broker advertises is exactly what it implements. Requests are decoded with
kio's native reader for the exact version; a spec may give its own `decode` for versions kio lacks (Fetch
v0-3) or hot paths. kio raises KeyError on a tagged field it does not know, which KIP-482 says to skip:
we then drop the unknown tags (`strom.protocol.tagged`) and parse again.

Sans-io: no asyncio here; handlers are only referenced.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from kio.index import KioIndexError, load_request_schema, load_response_schema
from kio.serial import entity_reader

from strom.protocol.errors import InvalidRequestError
from strom.protocol.tagged import strip_unknown_tags

__all__ = ["ApiRegistry", "ApiSpec", "Decoder", "Handler", "is_flexible", "request_type", "response_type"]

Handler = Callable[[Any, Any], Awaitable[Any]]
Decoder = Callable[[int, memoryview], Any]


@lru_cache(maxsize=1024)
def request_type(api_key: int, version: int) -> type | None:
    """kio's request dataclass for (api_key, version), or None if kio lacks it."""
    try:
        return load_request_schema(api_key, version)
    except KioIndexError:
        return None


@lru_cache(maxsize=1024)
def response_type(api_key: int, version: int) -> type | None:
    try:
        return load_response_schema(api_key, version)
    except KioIndexError:
        return None


@lru_cache(maxsize=1024)
def is_flexible(api_key: int, version: int) -> bool:
    """Whether (api_key, version) uses flexible encoding (compact types, tagged fields, header v2). A
    version newer than kio's schemas is flexible when kio's newest older version is: no API has ever
    gone back to the old encoding."""
    for known in range(version, -1, -1):
        req = request_type(api_key, known)
        if req is not None:
            return bool(req.__flexible__)
    # an API kio does not know at all is newer than kio, hence newer than KIP-482: every API added since
    # (StreamsGroupTopologyDescriptionUpdate, 93, ...) is flexible from its first version
    return request_type(api_key, 0) is None and not any(request_type(api_key, v) for v in range(1, 20))


@lru_cache(maxsize=1024)
def _reader(cls: type) -> Any:
    return entity_reader(cls)


@dataclass(frozen=True, slots=True)
class ApiSpec:
    """One API this broker serves: its key, version range, handler and optional own decoder.

    `handler(ctx, request)` returns a kio response dataclass, a `RawResponse`, or None (no response).
    `decode(version, body)` replaces kio's reader for every version of this API when given.
    `advertised_min_version`, when set, is the lowest version ApiVersions lists, below `min_version`: Kafka 4
    lists Produce from v0 although it serves v3 and up (KAFKA-18659: librdkafka before 2.8 turns compression
    off against a broker whose Produce range does not start at v0), and so does Strom.
    """

    api_key: int
    min_version: int
    max_version: int
    handler: Handler
    decode: Decoder | None = None
    name: str = field(default="")
    advertised_min_version: int | None = None

    @property
    def listed_min_version(self) -> int:
        """The lowest version ApiVersions advertises for this API."""
        if self.advertised_min_version is None:
            return self.min_version
        return self.advertised_min_version

    def supports(self, version: int) -> bool:
        return self.min_version <= version <= self.max_version

    def decode_request(self, version: int, body: memoryview) -> Any:
        """Decode a request body of this API; raises InvalidRequestError when it does not parse."""
        if self.decode is not None:
            return self.decode(version, body)
        cls = request_type(self.api_key, version)
        if cls is None:
            raise InvalidRequestError(f"no schema for api {self.api_key} v{version}")
        return decode_with_kio(cls, body)


def decode_with_kio(cls: type, body: memoryview | bytes) -> Any:
    """Parse `body` as `cls` with kio, skipping unknown tagged fields; the whole body must be consumed
    apart from trailing bytes, which Kafka also ignores."""
    reader = _reader(cls)
    if isinstance(body, memoryview) and not body.readonly:
        body = body.toreadonly()  # kio refuses writable buffers; a read-only view copies nothing
    try:
        value, _size = reader(body, 0)
        return value
    except KeyError:
        pass
    except Exception as exc:  # kio raises assorted errors on malformed input
        raise InvalidRequestError(f"cannot parse {cls.__name__}: {exc}") from None
    try:
        cleaned = strip_unknown_tags(cls, body)
        value, _size = reader(cleaned, 0)
        return value
    except InvalidRequestError:
        raise
    except Exception as exc:
        raise InvalidRequestError(f"cannot parse {cls.__name__}: {exc}") from None


class ApiRegistry:
    """All `ApiSpec`s of the broker, by API key."""

    def __init__(self, specs: Iterable[ApiSpec] = ()) -> None:
        self._specs: dict[int, ApiSpec] = {}
        for spec in specs:
            self.register(spec)

    def register(self, spec: ApiSpec) -> None:
        if spec.api_key in self._specs:
            raise ValueError(f"api key {spec.api_key} registered twice")
        if spec.min_version > spec.max_version:
            raise ValueError(f"api key {spec.api_key}: empty version range")
        self._specs[spec.api_key] = spec

    def get(self, api_key: int) -> ApiSpec | None:
        return self._specs.get(api_key)

    def supports(self, api_key: int, version: int) -> bool:
        spec = self._specs.get(api_key)
        return spec is not None and spec.supports(version)

    def specs(self) -> list[ApiSpec]:
        return [self._specs[key] for key in sorted(self._specs)]
