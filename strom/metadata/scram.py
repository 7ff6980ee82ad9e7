"""SCRAM credentials given to `storage format --add-scram` (KIP-554, Kafka's ScramParser).

`MECHANISM=[name=alice,password=alice-secret]` or `MECHANISM=[name=alice,iterations=8192,salt="N3E=",
saltedpassword="YCE="]` (salt and salted password in base64); the mechanism is SCRAM-SHA-256 or
SCRAM-SHA-512. Each becomes a UserScramCredentialRecord: salt, StoredKey = H(HMAC(salted, "Client Key")),
ServerKey = HMAC(salted, "Server Key") and the iteration count (RFC 5802), where the salted password is
PBKDF2 of the password unless given. A missing salt is random, as Kafka's ScramFormatter makes it.
"""

from __future__ import annotations

import base64

from strom.metadata.records import UserScramCredentialRecord
from strom.metadata.serde import ApiMessageAndVersion
from strom.security.scram_credentials import (
    SCRAM_MECHANISMS,
    make_credential,
    salted_password,
    secure_random_string,
)

__all__ = ["ScramParseError", "parse_scram"]

# the iteration bounds of Kafka's ScramParser
_MAX_ITERATIONS = 16384
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


def parse_scram(argument: str) -> ApiMessageAndVersion:
    mechanism, eq, rest = argument.partition("=")
    spec = SCRAM_MECHANISMS.get(mechanism.strip())
    if not eq or spec is None:
        raise ScramParseError(f"The add-scram mechanism {mechanism} is not supported.")
    rest = rest.strip()
    if not (rest.startswith("[") and rest.endswith("]")):
        raise ScramParseError(f"Expected configuration string to be enclosed in square brackets: {rest}")
    fields = _fields(rest[1:-1])
    low, high = spec.min_iterations, _MAX_ITERATIONS
    name = fields.get("name")
    if not name:
        raise ScramParseError("You must supply 'name' to add-scram")
    iterations = int(fields.get("iterations", _DEFAULT_ITERATIONS))
    if not low <= iterations <= high:
        raise ScramParseError(f"The 'iterations' value must be >= {low} and <= {high} for add-scram")
    # a missing salt is random, as Kafka's ScramFormatter makes it
    salt = base64.b64decode(fields["salt"]) if "salt" in fields else secure_random_string().encode("ascii")
    if "saltedpassword" in fields:
        if "salt" not in fields:
            raise ScramParseError("You must supply 'salt' with 'saltedpassword' to add-scram")
        salted = base64.b64decode(fields["saltedpassword"])
    elif "password" in fields:
        salted = salted_password(spec, fields["password"], salt, iterations)
    else:
        raise ScramParseError("You must supply one of 'password' or 'saltedpassword' to add-scram")
    credential = make_credential(spec, salted, salt, iterations)
    record = UserScramCredentialRecord(name=name, mechanism=spec.type, salt=salt,
                                       stored_key=credential.stored_key, server_key=credential.server_key,
                                       iterations=iterations)
    return ApiMessageAndVersion(record, 0)
