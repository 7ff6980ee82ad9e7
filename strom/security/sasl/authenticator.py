"""The server side of a SASL connection before it may send anything else: Kafka's SaslServerAuthenticator
(KIP-43 handshake, KIP-152 SaslAuthenticate, KIP-368 re-authentication), sans-io apart from awaiting the
mechanism (a SCRAM credential lookup).

States, as Kafka names them: INITIAL_REQUEST -> (ApiVersions) -> HANDSHAKE_REQUEST -> (SaslHandshake)
-> AUTHENTICATE -> COMPLETE, or FAILED. What each frame gets:
- Before the handshake only ApiVersions (once, served as usual) and SaslHandshake are accepted; anything
  else, or bytes that are no Kafka request (a client with the wrong security protocol, an HTTP probe),
  closes the connection without an answer, as Kafka does.
- SaslHandshake names a mechanism: answered with the enabled mechanisms (in the order Kafka's HashSet gives
  them) and NONE, or UNSUPPORTED_SASL_MECHANISM and the connection closes. Version 0 means the tokens
  that follow are raw size-prefixed frames, answered the same way; version 1 means they come inside
  SaslAuthenticate requests.
- During AUTHENTICATE with SaslAuthenticate framing, any other request is answered with
  ILLEGAL_SASL_STATE and the connection closes. A failed exchange is answered with
  SASL_AUTHENTICATION_FAILED and the mechanism's message (or Kafka's generic "Authentication failed during
  authentication due to invalid credentials with SASL mechanism X"), then the connection closes.
- On completion SaslAuthenticate v1+ carries `session_lifetime_ms`: `connections.max.reauth.ms` (per
  listener and mechanism), or less when the credential expires sooner (an OAUTHBEARER token), 0 when
  neither applies. A connection past its session is closed at its next request unless it has
  re-authenticated: a SaslHandshake on an authenticated connection starts that (at most once a second,
  same mechanism, same principal, else it fails); without a session lifetime a SaslHandshake there is an
  ordinary request, answered ILLEGAL_SASL_STATE by strom.apis.sasl_handshake.

Every frame read before completion is capped by `sasl.server.max.receive.size` (the connection enforces it
while `complete` is false): an unauthenticated peer cannot make the broker allocate more than that.
"""

from __future__ import annotations

import dataclasses
import datetime
import enum
import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from kio.serial import entity_writer
from kio.static.primitive import i64Timedelta

from strom.protocol.errors import ErrorCode
from strom.protocol.frames import FrameError, decode_request_header, encode_response_header, peek_api
from strom.protocol.registry import decode_with_kio, is_flexible, request_type, response_type
from strom.security.principal import USER_TYPE, KafkaPrincipal
from strom.security.sasl import SaslAuthenticationError, SaslError, SaslServer

__all__ = ["SaslServerAuthenticator", "Step", "java_hash_set_order"]

API_VERSIONS, SASL_HANDSHAKE, SASL_AUTHENTICATE = 18, 17, 36
_HANDSHAKE_VERSIONS = (0, 1)
_AUTHENTICATE_VERSIONS = (0, 1, 2)
MIN_REAUTH_INTERVAL_MS = 1000


class State(enum.Enum):
    INITIAL_REQUEST = "initial"
    HANDSHAKE_OR_VERSIONS_REQUEST = "handshake-or-versions"
    HANDSHAKE_REQUEST = "handshake"
    AUTHENTICATE = "authenticate"
    COMPLETE = "complete"
    FAILED = "failed"
    REAUTH_PROCESS_HANDSHAKE = "reauth-handshake"
    REAUTH_BAD_MECHANISM = "reauth-bad-mechanism"


@dataclass(frozen=True, slots=True)
class Step:
    """What the connection does with one frame: write `response` (a frame body without its size), serve the
    frame as an ordinary request (`serve`, ApiVersions), and/or close (`reason` is for the log)."""

    response: bytes | None = None
    serve: bool = False
    close: bool = False
    reason: str = ""


def java_hash_set_order(names: Sequence[str]) -> list[str]:
    """The iteration order of `new ArrayList<>(new HashSet<>(names))` in Java, which is the order Kafka's
    SaslHandshake response lists the enabled mechanisms in."""
    capacity = 16
    while len(set(names)) > capacity * 0.75:
        capacity *= 2
    buckets: dict[int, list[str]] = {}
    for name in dict.fromkeys(names):
        h = 0
        for ch in name:
            h = (31 * h + ord(ch)) & 0xFFFFFFFF
        h ^= h >> 16
        buckets.setdefault(h & (capacity - 1), []).append(name)
    return [name for index in sorted(buckets) for name in buckets[index]]


class SaslServerAuthenticator:
    """One connection's authentication. `receive(frame)` -> Step; `complete`, `principal`,
    `session_expired(now_ms)`, `begin_reauthentication(frame, now_ms)`."""

    def __init__(
        self,
        mechanisms: Sequence[str],
        new_server: Callable[[str], SaslServer],
        reauth_ms: Callable[[str], int],
        clock_ms: Callable[[], int],
        serves_api_versions: Callable[[int], bool],
    ) -> None:
        self._enabled = java_hash_set_order(mechanisms)
        self._new_server = new_server
        self._reauth_ms = reauth_ms
        self._clock_ms = clock_ms
        self._serves_api_versions = serves_api_versions
        self.state = State.INITIAL_REQUEST
        self._server: SaslServer | None = None
        self.mechanism: str | None = None
        self._headers = False  # SaslHandshake v1+: tokens come in SaslAuthenticate requests
        self.principal: KafkaPrincipal | None = None
        self.token_authenticated = False  # SCRAM with a delegation token (KIP-48)
        self.session_expires_ms: int | None = None
        self._previous: tuple[str, KafkaPrincipal] | None = None  # while re-authenticating
        self._bad_mechanism_message = ""
        self._last_reauth_start_ms: int | None = None

    @property
    def complete(self) -> bool:
        return self.state == State.COMPLETE

    def _text(self) -> str:
        return "re-authentication" if self._previous is not None else "authentication"

    # --- session (KIP-368) -------------------------------------------------------------------------
    def session_expired(self, now_ms: int) -> bool:
        return self.session_expires_ms is not None and now_ms >= self.session_expires_ms

    async def begin_reauthentication(self, frame: bytes, now_ms: int) -> Step | None:
        """A SaslHandshake arrived on an authenticated connection: start re-authenticating with it, or None
        when re-authentication does not apply (no session lifetime, or less than a second since the last
        one), and the frame is an ordinary request."""
        if not self.complete or self.session_expires_ms is None or self.mechanism is None:
            return None
        last = self._last_reauth_start_ms
        if last is not None and now_ms - last < MIN_REAUTH_INTERVAL_MS:
            return None
        self._last_reauth_start_ms = now_ms
        assert self.principal is not None
        self._previous = (self.mechanism, self.principal)
        self._server = None
        self.state = State.REAUTH_PROCESS_HANDSHAKE
        return await self.receive(frame)

    def _complete(self) -> int:
        """Authentication done: the principal and the session lifetime to report (ms, 0 for none)."""
        server = self._server
        assert server is not None and self.mechanism is not None
        principal = KafkaPrincipal(USER_TYPE, server.authorization_id)
        if self._previous is not None and self._previous[1] != principal:
            old = self._previous[1]
            raise SaslAuthenticationError(
                f"Cannot change principals during re-authentication from {old.principal_type}.{old.name}: "
                f"{principal.principal_type}.{principal.name}"
            )
        now = self._clock_ms()
        expiration = server.credential_expiration_ms
        max_reauth = self._reauth_ms(self.mechanism)
        lifetime = 0
        self.session_expires_ms = None
        if expiration is not None or max_reauth > 0:
            if expiration is None:
                lifetime = max(0, max_reauth)
            elif max_reauth <= 0:
                lifetime = max(0, expiration - now)
            else:
                lifetime = max(0, min(expiration - now, max_reauth))
            self.session_expires_ms = now + lifetime
        self.principal = principal
        self.token_authenticated = bool(getattr(server, "token_authenticated", False))
        self.state = State.COMPLETE
        self._previous = None
        return lifetime

    # --- frames ------------------------------------------------------------------------------------
    async def receive(self, frame: bytes) -> Step:
        state = self.state
        if state == State.AUTHENTICATE:
            return await self._token(frame)
        if state == State.REAUTH_BAD_MECHANISM:
            return self._fail(self._bad_mechanism_message)
        if state in (State.COMPLETE, State.FAILED):
            return self._fail(f"unexpected frame in SASL state {state.name}")
        return self._kafka_request(frame)

    def _fail(self, reason: str, response: bytes | None = None) -> Step:
        self.state = State.FAILED
        return Step(response=response, close=True, reason=reason)

    def _kafka_request(self, frame: bytes) -> Step:
        try:
            api_key, version, correlation_id = peek_api(frame)
        except FrameError:
            return self._invalid_first(frame)
        if api_key not in (API_VERSIONS, SASL_HANDSHAKE):
            return self._invalid_first(
                frame, f"Unexpected Kafka request of type {api_key} during SASL handshake."
            )
        if self.state == State.INITIAL_REQUEST:
            self.state = State.HANDSHAKE_OR_VERSIONS_REQUEST
        if api_key == API_VERSIONS:
            if self.state != State.HANDSHAKE_OR_VERSIONS_REQUEST:
                return self._fail(f"Unexpected ApiVersions request received during SASL authentication state "
                                  f"{self.state.name}")
            if self._serves_api_versions(version):
                self.state = State.HANDSHAKE_REQUEST
            return Step(serve=True)
        if version not in _HANDSHAKE_VERSIONS:
            return self._fail(f"SaslHandshake v{version} is not supported")
        request = self._decode(frame, api_key, version)
        if request is None:
            return self._fail("cannot parse SaslHandshake")
        mechanism = str(request.mechanism)
        self._headers = version >= 1
        if mechanism not in self._enabled:
            body = self._encode_response(
                api_key, version, correlation_id,
                error_code=ErrorCode.unsupported_sasl_mechanism, mechanisms=tuple(self._enabled),
            )
            return self._fail(f"Unsupported SASL mechanism {mechanism}", body)
        body = self._encode_response(
            api_key, version, correlation_id, error_code=ErrorCode.none, mechanisms=tuple(self._enabled)
        )
        if self._previous is not None and self._previous[0] != mechanism:
            self._bad_mechanism_message = (
                f"SASL mechanism '{mechanism}' requested by client is not supported for re-authentication "
                f"of mechanism '{self._previous[0]}'"
            )
            self.state = State.REAUTH_BAD_MECHANISM
            return Step(response=body)
        self.mechanism = mechanism
        self._server = self._new_server(mechanism)
        self.state = State.AUTHENTICATE
        return Step(response=body)

    def _invalid_first(self, frame: bytes, reason: str = "") -> Step:
        if self.state == State.INITIAL_REQUEST:
            reason = ("Invalid request, potential reasons: kafka client configured with the wrong security "
                      "protocol, it does not support KIP-43 or it is not a kafka client.")
        return self._fail(reason or "invalid request during SASL handshake")

    async def _token(self, frame: bytes) -> Step:
        server = self._server
        assert server is not None
        if not self._headers:
            # SaslHandshake v0: raw tokens both ways; a failure just closes (there is no error field)
            try:
                challenge = await server.evaluate(bytes(frame))
                if server.complete:
                    self._complete()
            except SaslError as exc:
                return self._fail(str(exc))
            return Step(response=challenge)
        try:
            api_key, version, correlation_id = peek_api(frame)
        except FrameError:
            return self._fail("invalid request during SASL authentication")
        if api_key != SASL_AUTHENTICATE:
            message = f"Unexpected Kafka request of type {api_key} during SASL authentication."
            return self._fail(message, _illegal_state_response(frame, api_key, version, correlation_id))
        if version not in _AUTHENTICATE_VERSIONS:
            return self._fail(f"Version {version} is not supported for apiKey SASL_AUTHENTICATE")
        request = self._decode(frame, api_key, version)
        if request is None:
            return self._fail("cannot parse SaslAuthenticate")
        try:
            challenge = await server.evaluate(bytes(request.auth_bytes))
            lifetime = self._complete() if server.complete else 0
        except SaslAuthenticationError as exc:
            message = str(exc)
            body = self._authenticate_error(version, correlation_id, message)
            return self._fail(message, body)
        except SaslError as exc:
            message = (f"Authentication failed during {self._text()} due to invalid credentials with SASL "
                       f"mechanism {self.mechanism}")
            body = self._authenticate_error(version, correlation_id, message)
            return self._fail(f"{message} ({exc})", body)
        body = self._encode_response(
            api_key, version, correlation_id, error_code=ErrorCode.none, error_message=None,
            auth_bytes=challenge or b"", session_lifetime=lifetime,
        )
        return Step(response=body)

    def _authenticate_error(self, version: int, correlation_id: int, message: str) -> bytes:
        return self._encode_response(
            SASL_AUTHENTICATE, version, correlation_id, error_code=ErrorCode.sasl_authentication_failed,
            error_message=message, auth_bytes=b"", session_lifetime=0,
        )

    @staticmethod
    def _decode(frame: bytes, api_key: int, version: int) -> Any:
        cls = request_type(api_key, version)
        try:
            _header, body_at = decode_request_header(frame, is_flexible(api_key, version))
            return decode_with_kio(cls, memoryview(frame)[body_at:]) if cls is not None else None
        except Exception:  # malformed: the caller closes
            return None

    @staticmethod
    def _encode_response(api_key: int, version: int, correlation_id: int, **fields: Any) -> bytes:
        cls = response_type(api_key, version)
        assert cls is not None
        names = {f.name for f in dataclasses.fields(cls)}
        if "session_lifetime" in fields:
            lifetime = fields.pop("session_lifetime")
            if "session_lifetime" in names:
                fields["session_lifetime"] = i64Timedelta.parse(datetime.timedelta(milliseconds=lifetime))
        value = cls(**{k: v for k, v in fields.items() if k in names})
        buf = io.BytesIO()
        buf.write(encode_response_header(correlation_id, 1 if is_flexible(api_key, version) else 0))
        entity_writer(cls)(buf, value)
        return buf.getvalue()


def _illegal_state_response(frame: bytes, api_key: int, version: int, correlation_id: int) -> bytes | None:
    """ILLEGAL_SASL_STATE in the response of whatever API was sent mid-authentication, when its schema
    has a top-level error code (as Kafka's getErrorResponse); otherwise nothing is answered."""
    from strom.server import error_response

    cls = response_type(api_key, version)
    empty = getattr(error_response, "empty_response", None)
    if cls is None or empty is None or "error_code" not in {f.name for f in dataclasses.fields(cls)}:
        return None
    try:
        value = empty(cls, ErrorCode.illegal_sasl_state)
        buf = io.BytesIO()
        buf.write(encode_response_header(correlation_id, 1 if is_flexible(api_key, version) else 0))
        entity_writer(cls)(buf, value)
    except Exception:  # a schema without empty values: close without an answer
        return None
    return buf.getvalue()
