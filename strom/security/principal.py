"""Kafka principals: who a connection acts as, as Kafka's `KafkaPrincipal` (type and name, written
`User:alice`).

A PLAINTEXT connection is `User:ANONYMOUS`, as in Kafka's DefaultKafkaPrincipalBuilder; an SSL connection
with a client certificate is `User:<subject DN shaped by ssl.principal.mapping.rules>` (KIP-371, see
strom.security.ssl_principal), and `User:ANONYMOUS` when the client sent no certificate
(ssl.client.auth=none or requested). SASL will name its principals here too.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ANONYMOUS", "USER_TYPE", "KafkaPrincipal"]

USER_TYPE = "User"


@dataclass(frozen=True, slots=True)
class KafkaPrincipal:
    """A principal as ACLs name it: `principal_type` (Kafka knows "User", and "Group" in some authorizers)
    and `name`."""

    principal_type: str
    name: str

    def __str__(self) -> str:
        return f"{self.principal_type}:{self.name}"

    @classmethod
    def parse(cls, text: str) -> KafkaPrincipal:
        """`User:alice` -> KafkaPrincipal("User", "alice") (Kafka's SecurityUtils.parseKafkaPrincipal:
        the type is everything before the first colon)."""
        kind, sep, name = text.partition(":")
        if not sep or not kind:
            raise ValueError(f"expected a string in format principalType:principalName but got {text}")
        return cls(kind, name)


ANONYMOUS = KafkaPrincipal(USER_TYPE, "ANONYMOUS")
