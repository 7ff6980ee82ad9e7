"""SASL/SCRAM-SHA-256 and SCRAM-SHA-512 (RFC 5802, RFC 7677) as Kafka's ScramSaslServer/Client run them.

Server, two rounds: client-first `n,[a=authzid],n=<saslname>,r=<client nonce>[,ext=value...]` -> the
user's stored credential is looked up (ScramCredential: salt, StoredKey, ServerKey, iterations) and the
server answers `r=<client nonce + server nonce>,s=<salt>,i=<iterations>`; client-final `c=biws,
r=<nonce>,p=<proof>` -> H(proof XOR HMAC(StoredKey, AuthMessage)) must equal StoredKey (compared in
constant time) and the server answers `v=<HMAC(ServerKey, AuthMessage)>`, proving it knows the credential
too. Nonces are Kafka's 130-bit base-36 random strings. Only the gs2 header `n` (no channel binding) is
accepted, as in Kafka.

Extensions: `tokenauth=true` asks to authenticate with a delegation token (KIP-48): the user name is the
token id and the password the base64 of the token's HMAC; the credential comes from the broker's token
manager (`TokenLookup`), an unknown or expired token fails as Kafka's "Invalid tokenId", and the
authorization id becomes the token's owner, with the token's expiry as the credential's expiry (KIP-368
re-authentication ends the session there). Other extensions are ignored.

Failures, as Kafka reports them: every credential problem (unknown user, wrong password, a malformed
message, a nonce mismatch, too few iterations) raises SaslError, so the client sees only "Authentication
failed during authentication due to invalid credentials with SASL mechanism SCRAM-SHA-256"; a requested
authorization id other than the user is reported as such.
"""

from __future__ import annotations

import base64
import hmac
import re
from collections.abc import Awaitable, Callable

from strom.security.sasl import SaslAuthenticationError, SaslError
from strom.security.scram_credentials import (
    SCRAM_MECHANISMS,
    ScramCredential,
    ScramMechanism,
    client_key,
    salted_password,
    secure_random_string,
    server_key,
    stored_key,
)

__all__ = ["LOGIN_MODULE", "CredentialLookup", "ScramClient", "ScramServer", "TokenLookup"]

LOGIN_MODULE = "org.apache.kafka.common.security.scram.ScramLoginModule"

CredentialLookup = Callable[[str, str], Awaitable[ScramCredential | None]]
"""(user, mechanism name) -> the stored credential, or None."""

TokenLookup = Callable[[str, str], Awaitable[tuple[ScramCredential, str, int] | None]]
"""(token id, mechanism name) -> (credential, owner name, expiry ms) of a live delegation token, or None."""

# ScramMessages' patterns: Java's [\x01-\x7F&&[^=,]] etc. written out as Python classes
_SASLNAME = r"(?:[\x01-\x2B\x2D-\x3C\x3E-\x7F]|=2C|=3D)+"
_VALUE = r"[\x01-\x2B\x2D-\x7F]+"
_PRINTABLE = r"[\x21-\x2B\x2D-\x7E]+"
_B64 = r"(?:[a-zA-Z0-9/+]{4})*(?:[a-zA-Z0-9/+]{3}=|[a-zA-Z0-9/+]{2}==)?"
_RESERVED = rf"(?:m={_VALUE},)?"
_EXTENSIONS = rf"(?:,[A-Za-z]+={_VALUE})*"
_CLIENT_FIRST = re.compile(
    rf"n,(?:a=(?P<authzid>{_SASLNAME}))?,{_RESERVED}n=(?P<saslname>{_SASLNAME}),r=(?P<nonce>{_PRINTABLE})"
    rf"(?P<extensions>{_EXTENSIONS})"
)
_CLIENT_FINAL = re.compile(
    rf"c=(?P<channel>{_B64}),r=(?P<nonce>{_PRINTABLE}){_EXTENSIONS},p=(?P<proof>{_B64})"
)
_SERVER_FIRST = re.compile(
    rf"{_RESERVED}r=(?P<nonce>{_PRINTABLE}),s=(?P<salt>{_B64}),i=(?P<iterations>[0-9]+){_EXTENSIONS}"
)
_VALUE_SAFE = r"[\x01-\x2B\x2D-\x3C\x3E-\x7F]+"
_SERVER_FINAL = re.compile(rf"(?:e=(?P<error>{_VALUE_SAFE}))|(?:v=(?P<signature>{_B64})){_EXTENSIONS}")


def _hmac(key: bytes, message: str, mechanism: ScramMechanism) -> bytes:
    return hmac.new(key, message.encode("utf-8"), mechanism.hash_name).digest()


def _xor(a: bytes, b: bytes) -> bytes:
    if len(a) != len(b):
        raise SaslError("Argument arrays must be of the same length")
    return bytes(x ^ y for x, y in zip(a, b, strict=True))


def username_of(sasl_name: str) -> str:
    """RFC 5802 saslname -> user name (`=2C` is a comma, `=3D` an equals sign)."""
    return sasl_name.replace("=2C", ",").replace("=3D", "=")


def sasl_name_of(username: str) -> str:
    return username.replace("=", "=3D").replace(",", "=2C")


class ScramServer:
    """One connection's SCRAM exchange; `lookup(user, mechanism)` finds stored credentials."""

    credential_expiration_ms: int | None = None
    token_authenticated = False

    def __init__(
        self, mechanism: str, lookup: CredentialLookup, token_lookup: TokenLookup | None = None
    ) -> None:
        self.mechanism = mechanism
        self._token_lookup = token_lookup
        self._spec = SCRAM_MECHANISMS[mechanism]
        self._lookup = lookup
        self._credential: ScramCredential | None = None
        self._client_first_bare = ""
        self._server_first = ""
        self._nonce = ""
        self._authorization_id: str | None = None
        self._state = "first"

    @property
    def complete(self) -> bool:
        return self._state == "complete"

    @property
    def authorization_id(self) -> str:
        if self._authorization_id is None or not self.complete:
            raise RuntimeError("Authentication exchange has not completed")
        return self._authorization_id

    async def evaluate(self, token: bytes) -> bytes | None:
        try:
            if self._state == "first":
                return await self._first(token.decode("utf-8", errors="replace"))
            if self._state == "final":
                return self._final(token.decode("utf-8", errors="replace"))
            raise SaslError(f"Unexpected challenge in Sasl server state {self._state}")
        except SaslError:
            self._state = "failed"
            self._credential = None
            raise

    async def _first(self, message: str) -> bytes:
        match = _CLIENT_FIRST.fullmatch(message)
        if match is None:
            raise SaslError("Invalid SCRAM client first message format")
        sasl_name, client_nonce = match["saslname"], match["nonce"]
        extensions = match["extensions"][1:]
        username = username_of(sasl_name)
        authorization_id = username
        if any(part.lower() == "tokenauth=true" for part in extensions.split(",")):
            found = await self._token_lookup(username, self.mechanism) if self._token_lookup else None
            if found is None:
                raise SaslError(f"Token Authentication failed: Invalid tokenId : {username}")
            credential, authorization_id, self.credential_expiration_ms = found
            self.token_authenticated = True
        else:
            user_credential = await self._lookup(username, self.mechanism)
            if user_credential is None:
                raise SaslError("Authentication failed: Invalid user credentials")
            credential = user_credential
        authzid = match["authzid"] or ""
        if authzid and authzid != username:
            raise SaslAuthenticationError(
                "Authentication failed: Client requested an authorization id that is different from username"
            )
        if credential.iterations < self._spec.min_iterations:
            raise SaslError(
                f"Iterations {credential.iterations} is less than the minimum {self._spec.min_iterations} "
                f"for {self.mechanism}"
            )
        self._credential = credential
        self._authorization_id = authorization_id
        # AuthMessage uses the client-first-message-bare as Kafka rebuilds it
        self._client_first_bare = f"n={sasl_name},r={client_nonce}" + (f",{extensions}" if extensions else "")
        self._nonce = client_nonce + secure_random_string()
        salt = base64.b64encode(credential.salt).decode("ascii")
        self._server_first = f"r={self._nonce},s={salt},i={credential.iterations}"
        self._state = "final"
        return self._server_first.encode("utf-8")

    def _final(self, message: str) -> bytes:
        match = _CLIENT_FINAL.fullmatch(message)
        if match is None:
            raise SaslError("Invalid SCRAM client final message format")
        if match["nonce"] != self._nonce:
            raise SaslError("Invalid client nonce in the final client message.")
        credential = self._credential
        assert credential is not None
        without_proof = message[: message.rindex(",p=")]
        auth_message = f"{self._client_first_bare},{self._server_first},{without_proof}"
        try:
            proof = base64.b64decode(match["proof"], validate=True)
        except ValueError:
            raise SaslError("Invalid SCRAM client final message format") from None
        client_signature = _hmac(credential.stored_key, auth_message, self._spec)
        computed = stored_key(self._spec, _xor(proof, client_signature))
        if not hmac.compare_digest(computed, credential.stored_key):
            raise SaslError("Invalid client credentials")
        signature = _hmac(credential.server_key, auth_message, self._spec)
        self._credential = None
        self._state = "complete"
        return b"v=" + base64.b64encode(signature)


class ScramClient:
    """The client side (brokers to each other, the strom CLI): `first()`, `final(server_first)`,
    `verify(server_final)`; SaslError when the server's answers do not check out."""

    def __init__(self, mechanism: str, username: str, password: str, token: bool = False) -> None:
        """`token`: authenticate with a delegation token (username = token id, password = its HMAC in
        base64), sent as the `tokenauth=true` extension as Kafka's ScramLoginModule option sends it."""
        self._spec = SCRAM_MECHANISMS[mechanism]
        self._username = username
        self._password = password
        self._nonce = secure_random_string()
        self._bare = f"n={sasl_name_of(username)},r={self._nonce}" + (",tokenauth=true" if token else "")
        self._expected_signature = b""

    def first(self) -> bytes:
        return ("n,," + self._bare).encode("utf-8")

    def final(self, server_first: bytes) -> bytes:
        text = server_first.decode("utf-8", errors="replace")
        match = _SERVER_FIRST.fullmatch(text)
        if match is None:
            raise SaslError(f"Invalid SCRAM server first message format: {text}")
        nonce, iterations = match["nonce"], int(match["iterations"])
        if not nonce.startswith(self._nonce):
            raise SaslError("Invalid server nonce: does not start with client nonce")
        if iterations < self._spec.min_iterations:
            raise SaslError(f"Requested iterations {iterations} is less than the minimum "
                            f"{self._spec.min_iterations} for {self._spec.name}")
        salted = salted_password(self._spec, self._password, base64.b64decode(match["salt"]), iterations)
        without_proof = f"c=biws,r={nonce}"
        auth_message = f"{self._bare},{text},{without_proof}"
        key = client_key(self._spec, salted)
        proof = _xor(key, _hmac(stored_key(self._spec, key), auth_message, self._spec))
        self._expected_signature = _hmac(server_key(self._spec, salted), auth_message, self._spec)
        return f"{without_proof},p={base64.b64encode(proof).decode('ascii')}".encode()

    def verify(self, server_final: bytes) -> None:
        text = server_final.decode("utf-8", errors="replace")
        match = _SERVER_FINAL.fullmatch(text)
        if match is None:
            raise SaslError(f"Invalid SCRAM server final message format: {text}")
        if match["error"] is not None:
            raise SaslError(
                f"Sasl authentication using {self._spec.name} failed with error: {match['error']}"
            )
        if not hmac.compare_digest(base64.b64decode(match["signature"]), self._expected_signature):
            raise SaslError("Invalid server signature in server final message")
