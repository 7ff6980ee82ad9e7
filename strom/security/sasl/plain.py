"""SASL/PLAIN (RFC 4616) as Kafka's PlainSaslServer and PlainServerCallbackHandler serve it.

The client sends one message, `[authzid] NUL username NUL password`. The broker's users are the
`user_<name>="<password>"` options of the listener's PlainLoginModule JAAS entry
(`listener.name.<listener>.plain.sasl.jaas.config`); its `username`/`password` options are what this
broker itself sends to other brokers. Passwords are compared in constant time.

Kafka's messages, sent to the client with SASL_AUTHENTICATION_FAILED:
- `Invalid SASL/PLAIN response: expected 3 tokens, got N`
- `Authentication failed: username not specified` / `... password not specified`
- `Authentication failed: Invalid username or password` (unknown user and wrong password alike)
- `Authentication failed: Client requested an authorization id that is different from username`
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping

from strom.security.sasl import SaslAuthenticationError

__all__ = ["LOGIN_MODULE", "PlainServer", "plain_client_token"]

LOGIN_MODULE = "org.apache.kafka.common.security.plain.PlainLoginModule"
MECHANISM = "PLAIN"


def _split(message: str) -> list[str]:
    # PlainSaslServer.extractTokens: at most 4 pieces, so a 4th NUL is counted, not swallowed
    tokens: list[str] = []
    start = 0
    for _ in range(4):
        end = message.find("\x00", start)
        if end < 0:
            tokens.append(message[start:])
            break
        tokens.append(message[start:end])
        start = end + 1
    return tokens


class PlainServer:
    """One connection's PLAIN exchange against `users` (name -> password)."""

    mechanism = MECHANISM
    credential_expiration_ms: int | None = None

    def __init__(self, users: Mapping[str, str]) -> None:
        self._users = users
        self._authorization_id: str | None = None

    @property
    def complete(self) -> bool:
        return self._authorization_id is not None

    @property
    def authorization_id(self) -> str:
        if self._authorization_id is None:
            raise RuntimeError("Authentication exchange has not completed")
        return self._authorization_id

    async def evaluate(self, token: bytes) -> bytes | None:
        tokens = _split(token.decode("utf-8", errors="replace"))
        if len(tokens) != 3:
            raise SaslAuthenticationError(
                f"Invalid SASL/PLAIN response: expected 3 tokens, got {len(tokens)}"
            )
        authzid, username, password = tokens
        if not username:
            raise SaslAuthenticationError("Authentication failed: username not specified")
        if not password:
            raise SaslAuthenticationError("Authentication failed: password not specified")
        expected = self._users.get(username)
        # compare even for an unknown user, so its absence costs the same time as a wrong password
        matches = hmac.compare_digest(password.encode("utf-8"), (expected or "").encode("utf-8"))
        if expected is None or not matches:
            raise SaslAuthenticationError("Authentication failed: Invalid username or password")
        if authzid and authzid != username:
            raise SaslAuthenticationError(
                "Authentication failed: Client requested an authorization id that is different from username"
            )
        self._authorization_id = username
        return b""


def plain_client_token(username: str, password: str) -> bytes:
    """The client's only message (no authorization id, as Kafka's PlainSaslClient sends it)."""
    return b"\x00" + username.encode("utf-8") + b"\x00" + password.encode("utf-8")
