"""Kafka's principal serde (KIP-590): how a forwarding broker names the client inside an Envelope.

Kafka's DefaultKafkaPrincipalBuilder is also its `KafkaPrincipalSerde`: a principal travels as the
`DefaultPrincipalData` message (version 0, flexible: compact strings `Type` and `Name`, a bool
`TokenAuthenticated`, an empty tagged-field section) prefixed with its version as an int16, exactly what
`MessageUtil.toVersionPrefixedBytes` writes. Kafka 4.4 brokers put these bytes in EnvelopeRequest's
`RequestPrincipal`; the controller reads them back and authorizes the forwarded request as that
principal. Bytes that do not parse raise `PrincipalSerdeError`, which the controller answers with
PRINCIPAL_DESERIALIZATION_FAILURE.

The client's address travels beside it as the raw IPv4 (4 bytes) or IPv6 (16 bytes) address, Java's
`InetAddress.getAddress()`: `encode_client_address` / `decode_client_address`.
"""

from __future__ import annotations

import ipaddress

from strom.protocol.wire import EMPTY_TAGS, I16, read_compact_string, skip_tagged_fields, uvarint
from strom.security.principal import KafkaPrincipal

__all__ = [
    "PrincipalSerdeError",
    "decode_client_address",
    "deserialize_principal",
    "deserialize_principal_data",
    "encode_client_address",
    "serialize_principal",
]

DEFAULT_PRINCIPAL_DATA_VERSION = 0


class PrincipalSerdeError(ValueError):
    """Envelope bytes that name no principal (or no address) Kafka could read."""


def _compact(text: str) -> bytes:
    raw = text.encode("utf-8")
    return uvarint(len(raw) + 1) + raw


def serialize_principal(principal: KafkaPrincipal, token_authenticated: bool = False) -> bytes:
    """The bytes Kafka's DefaultKafkaPrincipalBuilder.serialize writes for `principal`."""
    return (
        I16.pack(DEFAULT_PRINCIPAL_DATA_VERSION)
        + _compact(principal.principal_type)
        + _compact(principal.name)
        + (b"\x01" if token_authenticated else b"\x00")
        + EMPTY_TAGS
    )


def deserialize_principal(data: bytes | memoryview) -> KafkaPrincipal:
    """The principal in `data` (DefaultKafkaPrincipalBuilder.deserialize); PrincipalSerdeError."""
    return deserialize_principal_data(data)[0]


def deserialize_principal_data(data: bytes | memoryview) -> tuple[KafkaPrincipal, bool]:
    """(principal, token authenticated) in `data`; PrincipalSerdeError."""
    buf = bytes(data)
    try:
        (version,) = I16.unpack_from(buf, 0)
        if version != DEFAULT_PRINCIPAL_DATA_VERSION:
            raise PrincipalSerdeError(f"unsupported DefaultPrincipalData version {version}")
        kind, pos = read_compact_string(buf, 2)
        name, pos = read_compact_string(buf, pos)
        if kind is None or name is None or pos >= len(buf):
            raise PrincipalSerdeError("a principal needs a type and a name")
        skip_tagged_fields(buf, pos + 1)
    except PrincipalSerdeError:
        raise
    except Exception as exc:  # struct.error, wire format errors: the bytes are not a principal
        raise PrincipalSerdeError(f"cannot read the forwarded principal: {exc}") from None
    return KafkaPrincipal(kind, name), buf[pos] != 0


def encode_client_address(host: str) -> bytes:
    """The 4 or 16 address bytes of `host` (an IP literal; anything else becomes 0.0.0.0)."""
    try:
        return ipaddress.ip_address(host.split("%", 1)[0]).packed
    except ValueError:
        return bytes(4)


def decode_client_address(data: bytes | memoryview) -> str:
    """The address a forwarding broker sent, as text; PrincipalSerdeError unless 4 or 16 bytes."""
    raw = bytes(data)
    if len(raw) not in (4, 16):
        raise PrincipalSerdeError(f"a client address has 4 or 16 bytes, not {len(raw)}")
    address = ipaddress.ip_address(raw)
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return str(address)
