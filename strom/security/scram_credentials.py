"""SCRAM credentials (RFC 5802, KIP-84, KIP-554): the math and Kafka's stored forms.

A credential is what the broker keeps of a password: the salt, the iteration count, StoredKey =
H(HMAC(SaltedPassword, "Client Key")) and ServerKey = HMAC(SaltedPassword, "Server Key"), where
SaltedPassword = PBKDF2-HMAC-H(password, salt, iterations). The password itself is never stored, and a
client proves it knows it without sending it. Kafka's mechanisms (ScramMechanism): SCRAM-SHA-256 (type 1)
and SCRAM-SHA-512 (type 2), both with at least 4096 iterations; AlterUserScramCredentials also refuses
more than 16384.

Stored forms: in ZooKeeper, `/config/users/<user>` holds `{"SCRAM-SHA-256": "salt=<b64>,stored_key=<b64>,
server_key=<b64>,iterations=<n>"}` (Kafka's ScramCredentialUtils.credentialToString); in KRaft, the
UserScramCredentialRecord (strom.metadata.scram). Random salts and nonces are Kafka's
ScramFormatter.secureRandomString: a 130-bit random number written in base 36.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass

__all__ = [
    "MAX_ITERATIONS",
    "SCRAM_MECHANISMS",
    "ScramCredential",
    "ScramMechanism",
    "credential_from_string",
    "credential_to_string",
    "make_credential",
    "mechanism_by_type",
    "salted_password",
    "secure_random_string",
]

MAX_ITERATIONS = 16384


@dataclass(frozen=True, slots=True)
class ScramMechanism:
    """One SCRAM mechanism: its name, Kafka's type code, hash and minimum iterations."""

    name: str
    type: int
    hash_name: str
    min_iterations: int = 4096


SCRAM_MECHANISMS = {
    "SCRAM-SHA-256": ScramMechanism("SCRAM-SHA-256", 1, "sha256"),
    "SCRAM-SHA-512": ScramMechanism("SCRAM-SHA-512", 2, "sha512"),
}


def mechanism_by_type(code: int) -> ScramMechanism | None:
    return next((m for m in SCRAM_MECHANISMS.values() if m.type == code), None)


@dataclass(frozen=True, slots=True)
class ScramCredential:
    """What the broker stores of one user's password for one mechanism."""

    salt: bytes
    stored_key: bytes
    server_key: bytes
    iterations: int

    def __repr__(self) -> str:  # never show key material, even in a debug log
        return f"ScramCredential(iterations={self.iterations})"


def secure_random_string() -> str:
    """Kafka's ScramFormatter.secureRandomString: `new BigInteger(130, random).toString(36)`."""
    n = secrets.randbits(130)
    digits = ""
    while n:
        n, d = divmod(n, 36)
        digits = "0123456789abcdefghijklmnopqrstuvwxyz"[d] + digits
    return digits or "0"


def salted_password(mechanism: ScramMechanism, password: str, salt: bytes, iterations: int) -> bytes:
    return hashlib.pbkdf2_hmac(mechanism.hash_name, password.encode("utf-8"), salt, iterations)


def client_key(mechanism: ScramMechanism, salted: bytes) -> bytes:
    return hmac.new(salted, b"Client Key", mechanism.hash_name).digest()


def stored_key(mechanism: ScramMechanism, key: bytes) -> bytes:
    return hashlib.new(mechanism.hash_name, key).digest()


def server_key(mechanism: ScramMechanism, salted: bytes) -> bytes:
    return hmac.new(salted, b"Server Key", mechanism.hash_name).digest()


def make_credential(
    mechanism: ScramMechanism, salted: bytes, salt: bytes, iterations: int
) -> ScramCredential:
    """The credential of a salted password (what AlterUserScramCredentials and --add-scram receive)."""
    return ScramCredential(
        salt, stored_key(mechanism, client_key(mechanism, salted)), server_key(mechanism, salted), iterations
    )


def credential_to_string(credential: ScramCredential) -> str:
    b64 = base64.b64encode
    return (
        f"salt={b64(credential.salt).decode()},stored_key={b64(credential.stored_key).decode()},"
        f"server_key={b64(credential.server_key).decode()},iterations={credential.iterations}"
    )


def credential_from_string(text: str) -> ScramCredential:
    """Kafka's ScramCredentialUtils.credentialFromString; ValueError when a field is missing."""
    fields = dict(part.split("=", 1) for part in text.split(",") if "=" in part)
    try:
        return ScramCredential(
            base64.b64decode(fields["salt"]),
            base64.b64decode(fields["stored_key"]),
            base64.b64decode(fields["server_key"]),
            int(fields["iterations"]),
        )
    except (KeyError, ValueError) as exc:
        raise ValueError(f"Invalid credential: {exc}") from None
