"""SASL authentication as Kafka's brokers and clients do it (KIP-43, KIP-152, KIP-368).

One module per mechanism, each with the server side a SASL listener runs and the client side brokers use
to reach each other: `plain` (RFC 4616, users from the listener's JAAS line), `scram` (RFC 5802/7677,
SCRAM-SHA-256 and SCRAM-SHA-512 against stored credentials), `oauthbearer` (RFC 7628 with Kafka's
unsecured-JWS validator, `unsecured_jws`). `jaas` reads Kafka's `sasl.jaas.config` lines, `jaas_file`
the static JAAS file of `java.security.auth.login.config` and Kafka's choice between the two, `listener`
builds a listener's mechanisms from the broker config, `authenticator` is the server's exchange before a
connection may send anything else (Kafka's SaslServerAuthenticator), `client` the client's.

Mechanism servers share one small shape (`SaslServer`): `evaluate(token)` answers the next challenge, or
raises `SaslAuthenticationError` (its message goes to the client as it is, as Kafka's
SaslAuthenticationException does) or `SaslError` (the client gets Kafka's generic "invalid credentials"
text: a detail such as "unknown user" is never revealed). Secrets are compared with hmac.compare_digest
and never logged.
"""

from __future__ import annotations

from typing import Protocol

__all__ = [
    "MECHANISMS",
    "SaslAuthenticationError",
    "SaslError",
    "SaslServer",
]

MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER")
"""The mechanisms Strom serves (Kafka also has GSSAPI, Kerberos)."""


class SaslError(Exception):
    """Authentication failed; the client is told only Kafka's generic message (javax SaslException)."""


class SaslAuthenticationError(SaslError):
    """Authentication failed with a message the client may see (Kafka's SaslAuthenticationException)."""


class SaslServer(Protocol):
    """One connection's server side of one mechanism."""

    mechanism: str

    async def evaluate(self, token: bytes) -> bytes | None:
        """The challenge to send back (None: nothing, only with SaslHandshake v0); raises SaslError."""
        ...

    @property
    def complete(self) -> bool: ...

    @property
    def authorization_id(self) -> str:
        """The authenticated user's name (valid once complete)."""
        ...

    @property
    def credential_expiration_ms(self) -> int | None:
        """When the credential stops being valid (an OAUTHBEARER token's exp), or None."""
        ...
