"""SCRAM credentials given to `storage format --add-scram` (KIP-554, Kafka's ScramParser).

`MECHANISM=[name=alice,password=alice-secret]` or `MECHANISM=[name=alice,iterations=8192,salt="N3E=",
saltedpassword="YCE="]` (salt and salted password in base64); the mechanism is SCRAM-SHA-256 or
SCRAM-SHA-512. Each becomes a UserScramCredentialRecord: salt, StoredKey = H(HMAC(salted, "Client Key")),
ServerKey = HMAC(salted, "Server Key") and the iteration count (RFC 5802), where the salted password is
PBKDF2 of the password unless given. A missing salt is random, as Kafka's ScramFormatter makes it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

from strom.metadata.records import UserScramCredentialRecord
from strom.metadata.serde import ApiMessageAndVersion

__all__ = ["ScramParseError", "parse_scram"]

# mechanism name -> (UserScramCredentialRecord.mechanism, hash name, min iterations, max iterations)
_MECHANISMS = {"SCRAM-SHA-256": (1, "sha256", 4096, 16384), "SCRAM-SHA-512": (2, "sha512", 4096, 16384)}
_DEFAULT_ITERATIONS = 4096


class ScramParseError(ValueError):
    """An --add-scram value that cannot be used."""


def _fields(text: str) -> dict[str, str]:
    fields: dict[str, str] = {}
    for part in text.split(","):
        key, eq, value = part.partition("=")
        if not eq:
            raise ScramParseError(f"Unable to parse configuration {part!r}: expected key=value")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] == '"':
            value = value[1:-1]
        fields[key.strip().lower()] = value
    return fields


def _salt() -> bytes:
    # ScramFormatter.secureRandomBytes: a 130-bit random number in base 36, as ASCII
    n = secrets.randbits(130)
    digits = ""
    while n:
        n, d = divmod(n, 36)
        digits = "0123456789abcdefghijklmnopqrstuvwxyz"[d] + digits
    return (digits or "0").encode("ascii")


def parse_scram(argument: str) -> ApiMessageAndVersion:
    mechanism, eq, rest = argument.partition("=")
    spec = _MECHANISMS.get(mechanism.strip())
    if not eq or spec is None:
        raise ScramParseError(f"The add-scram mechanism {mechanism} is not supported.")
    rest = rest.strip()
    if not (rest.startswith("[") and rest.endswith("]")):
        raise ScramParseError(f"Expected configuration string to be enclosed in square brackets: {rest}")
    fields = _fields(rest[1:-1])
    kind, hash_name, low, high = spec
    name = fields.get("name")
    if not name:
        raise ScramParseError("You must supply 'name' to add-scram")
    iterations = int(fields.get("iterations", _DEFAULT_ITERATIONS))
    if not low <= iterations <= high:
        raise ScramParseError(f"The 'iterations' value must be >= {low} and <= {high} for add-scram")
    salt = base64.b64decode(fields["salt"]) if "salt" in fields else _salt()
    if "saltedpassword" in fields:
        if "salt" not in fields:
            raise ScramParseError("You must supply 'salt' with 'saltedpassword' to add-scram")
        salted = base64.b64decode(fields["saltedpassword"])
    elif "password" in fields:
        salted = hashlib.pbkdf2_hmac(hash_name, fields["password"].encode("utf-8"), salt, iterations)
    else:
        raise ScramParseError("You must supply one of 'password' or 'saltedpassword' to add-scram")
    client_key = hmac.new(salted, b"Client Key", hash_name).digest()
    stored_key = hashlib.new(hash_name, client_key).digest()
    server_key = hmac.new(salted, b"Server Key", hash_name).digest()
    record = UserScramCredentialRecord(name=name, mechanism=kind, salt=salt, stored_key=stored_key,
                                       server_key=server_key, iterations=iterations)
    return ApiMessageAndVersion(record, 0)
