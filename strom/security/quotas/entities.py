"""Client quota entities, their keys, and Kafka's rules for altering, describing and matching them
(KIP-13, KIP-55, KIP-124, KIP-546, KIP-599, KIP-612).

An entity is a set of (type, name) pairs over the types `user`, `client-id` and `ip`; a name of None is the
default entity (`<default>` in ZooKeeper paths and in kafka-configs). Valid combinations are {user},
{client-id}, {user, client-id} (keys producer_byte_rate, consumer_byte_rate, request_percentage,
controller_mutation_rate) and {ip} (connection_creation_rate).

- `alter(current, entries)` applies AlterClientQuotas entries as Kafka 4.4's ClientQuotaControlManager
  does: one result per distinct entity, in request order; "Ignoring duplicate entity <e>" for an entity
  given twice (and, as in Kafka, for an entity whose ops repeat a key); "Invalid empty client quota
  entity", "Unhandled client quota entity type: <t>", "Empty <t> not supported", "Invalid quota entity
  combination, IP entity shouldnot be combined with User or ClientId", "Invalid configuration key <k>",
  "Quota <k> must be a finite number", "Quota <k> must be greater than 0", "<k> cannot be a fractional
  value.", "Proposed value for <k> is too large for a LONG.", "<ip> is not a valid IP or resolvable
  host." as INVALID_REQUEST. `java_hash_order` lists a describe's values in Kafka's (HashMap) order.
  A removal of a key the entity does not have is a no-op; an entity left without keys disappears.
- `describe(current, components, strict)` is ClientQuotasImage.describe: exact (0), default (1) and
  specified (2) match types, strict meaning the entity has exactly the filter's types; filter errors raise
  `QuotaFilterError` (INVALID_REQUEST, or UNSUPPORTED_VERSION for an unknown entity type).
- `resolve(current, key, user, client_id)` is Kafka's DefaultQuotaCallback: the most specific entity with
  the key wins, in this order: users/<user>/clients/<client-id>, users/<user>/clients/<default>,
  users/<user>, users/<default>/clients/<client-id>, users/<default>/clients/<default>, users/<default>,
  clients/<client-id>, clients/<default>. It answers the bound and the metric tags (user, client-id) whose
  traffic shares it: an entity naming only the user is shared by all that user's clients; a default
  entity gives each user or client its own budget of the default size.
"""

from __future__ import annotations

import ipaddress
import math
import socket
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from strom.protocol.errors import ErrorCode

__all__ = [
    "CLIENT_ID",
    "IP",
    "QUOTA_KEYS",
    "USER",
    "QuotaEntity",
    "QuotaFilterError",
    "Quotas",
    "alter",
    "describe",
    "resolve",
]

USER = "user"
CLIENT_ID = "client-id"
IP = "ip"
ENTITY_TYPES = (USER, CLIENT_ID, IP)

PRODUCER_BYTE_RATE = "producer_byte_rate"
CONSUMER_BYTE_RATE = "consumer_byte_rate"
REQUEST_PERCENTAGE = "request_percentage"
CONTROLLER_MUTATION_RATE = "controller_mutation_rate"
CONNECTION_CREATION_RATE = "connection_creation_rate"

# key -> whether Kafka's ConfigDef types it LONG (whole numbers only) rather than DOUBLE
CLIENT_KEYS = {
    PRODUCER_BYTE_RATE: True,
    CONSUMER_BYTE_RATE: True,
    REQUEST_PERCENTAGE: False,
    CONTROLLER_MUTATION_RATE: False,
}
IP_KEYS = {CONNECTION_CREATION_RATE: True}
QUOTA_KEYS = (*CLIENT_KEYS, *IP_KEYS)

MATCH_EXACT, MATCH_DEFAULT, MATCH_SPECIFIED = 0, 1, 2


@dataclass(frozen=True, slots=True)
class QuotaEntity:
    """(type, name) pairs sorted by type; a name of None is the default entity."""

    parts: tuple[tuple[str, str | None], ...]

    @classmethod
    def of(cls, **names: str | None) -> QuotaEntity:
        """`QuotaEntity.of(user="alice", client_id=None)`: keyword names, `client_id` for client-id."""
        return cls(tuple(sorted((k.replace("_", "-"), v) for k, v in names.items())))

    def get(self, entity_type: str) -> str | None:
        return dict(self.parts).get(entity_type)

    def has(self, entity_type: str) -> bool:
        return any(t == entity_type for t, _ in self.parts)

    @property
    def types(self) -> frozenset[str]:
        return frozenset(t for t, _ in self.parts)

    def sort_key(self) -> tuple[tuple[str, bool, str], ...]:
        """An order for listings (a default entity, name None, after the named ones)."""
        return tuple((t, n is None, n or "") for t, n in self.parts)

    def __str__(self) -> str:  # Kafka's ClientQuotaEntity.toString
        return "ClientQuotaEntity(entries=" + repr({t: n for t, n in self.parts}).replace("'", "") + ")"


Quotas = dict[QuotaEntity, dict[str, float]]
"""Every entity's quota keys and values."""


class QuotaFilterError(Exception):
    """A DescribeClientQuotas filter Kafka refuses as a whole."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class AlterEntry:
    """One AlterClientQuotas entry: raw entity parts (types may repeat) and ops (value None = remove)."""

    entity: tuple[tuple[str, str | None], ...]
    ops: tuple[tuple[str, float | None], ...]


def _valid_ip(name: str | None) -> bool:
    if name is None:
        return True
    try:
        ipaddress.ip_address(name)
        return True
    except ValueError:
        pass
    try:
        socket.getaddrinfo(name, None)
        return True
    except OSError:
        return False


def _check_entity(parts: Iterable[tuple[str, str | None]]) -> tuple[QuotaEntity | None, str | None]:
    """Kafka's validateEntity and configKeysForEntityType: the entity, or the INVALID_REQUEST message."""
    seen: dict[str, str | None] = {}
    for entity_type, name in parts:
        if entity_type in seen:
            return None, f"Invalid client quota entity, duplicate entity entry {entity_type}"
        if entity_type not in ENTITY_TYPES:
            return None, f"Unhandled client quota entity type: {entity_type}"
        seen[entity_type] = name
        if name is not None and name == "":
            return None, f"Empty {entity_type} not supported"
    if not seen:
        return None, "Invalid empty client quota entity"
    if IP in seen and len(seen) > 1:
        return None, "Invalid quota entity combination, IP entity shouldnot be combined with User or ClientId"
    if IP in seen and not _valid_ip(seen[IP]):
        return None, f"{seen[IP]} is not a valid IP or resolvable host."
    return QuotaEntity(tuple(sorted(seen.items()))), None


def keys_for(entity: QuotaEntity) -> Mapping[str, bool]:
    return IP_KEYS if entity.has(IP) else CLIENT_KEYS


def _check_value(keys: Mapping[str, bool], key: str, value: float) -> str | None:
    """Kafka 4.4's validateQuotaKeyValue messages, in its order."""
    if key not in keys:
        return f"Invalid configuration key {key}"
    if math.isnan(value) or math.isinf(value):
        return f"Quota {key} must be a finite number"
    if value <= 0:
        return f"Quota {key} must be greater than 0"
    if keys[key]:
        if value != math.floor(value):
            return f"{key} cannot be a fractional value."
        limit, kind = (2**31 - 1, "an INT") if key in IP_KEYS else (2**63 - 1, "a LONG")
        if value > limit:
            return f"Proposed value for {key} is too large for {kind}."
    return None


def _entity_key(parts: tuple[tuple[str, str | None], ...]) -> tuple[tuple[str, str | None], ...]:
    return tuple(sorted(parts, key=lambda p: (p[0], p[1] is None, p[1] or "")))


def alter(
    current: Quotas, entries: Iterable[AlterEntry]
) -> tuple[list[tuple[tuple[tuple[str, str | None], ...], str | None]], Quotas]:
    """Apply AlterClientQuotas entries to `current`: (per distinct entity in request order, its raw parts
    and the INVALID_REQUEST message or None), and the quotas after the successful entries."""
    results: dict[tuple[tuple[str, str | None], ...], str | None] = {}
    raw: dict[tuple[tuple[str, str | None], ...], tuple[tuple[str, str | None], ...]] = {}
    changes: dict[tuple[tuple[str, str | None], ...], tuple[QuotaEntity, dict[str, float | None]]] = {}
    for entry in entries:
        key = _entity_key(entry.entity)
        ops: dict[str, float | None] = {}
        for op_key, value in entry.ops:
            if op_key in ops:
                shown = _show(entry.entity)
                results[key] = f"Duplicate quota key {op_key} not updating quota for this entity {shown}"
            else:
                ops[op_key] = value
        if key in results:
            shown = _show(entry.entity)
            # as in Kafka, an earlier entry of the same entity still takes effect
            results[key] = f"Ignoring duplicate entity {shown}"
            continue
        raw[key] = entry.entity
        entity, error = _check_entity(entry.entity)
        if error is None and entity is not None:
            keys = keys_for(entity)
            for op_key, value in ops.items():
                if value is not None:
                    error = error or _check_value(keys, op_key, float(value))
        results[key] = error
        if error is None and entity is not None:
            changes[key] = (entity, ops)
    updated: Quotas = {e: dict(v) for e, v in current.items()}
    for entity, ops in changes.values():
        values = updated.setdefault(entity, {})
        for op_key, value in ops.items():
            if value is None:
                values.pop(op_key, None)
            else:
                values[op_key] = float(value)
        if not values:
            del updated[entity]
    return [(raw.get(k, k), msg) for k, msg in results.items()], updated


def java_hash_order(keys: Iterable[str]) -> list[str]:
    """Keys in the order a small java.util.HashMap of them iterates (Kafka answers quota values from
    one, and kafka-configs prints them in that order)."""

    def bucket(key: str) -> int:
        h = 0
        units = key.encode("utf-16-be")  # String.hashCode runs over UTF-16 code units
        for i in range(0, len(units), 2):
            h = (31 * h + int.from_bytes(units[i : i + 2], "big")) & 0xFFFFFFFF
        return (h ^ (h >> 16)) & 15

    return sorted(keys, key=bucket)


def _show(parts: Iterable[tuple[str, str | None]]) -> str:
    return "ClientQuotaEntity(entries=" + repr(dict(parts)).replace("'", "") + ")"


def describe(
    current: Quotas, components: Iterable[tuple[str, int, str | None]], strict: bool
) -> list[tuple[QuotaEntity, dict[str, float]]]:
    """The entities a DescribeClientQuotas filter matches, with their values; raises QuotaFilterError."""
    exact: dict[str, str | None] = {}
    typed: set[str] = set()
    for entity_type, match_type, match in components:
        if not entity_type:
            raise QuotaFilterError(ErrorCode.invalid_request, "Invalid empty entity type.")
        if entity_type in exact or entity_type in typed:
            raise QuotaFilterError(
                ErrorCode.invalid_request,
                f"Entity type {entity_type} cannot appear more than once in the filter.",
            )
        if entity_type not in ENTITY_TYPES:
            raise QuotaFilterError(ErrorCode.unsupported_version, f"Unsupported entity type {entity_type}")
        if match_type == MATCH_EXACT:
            if match is None:
                raise QuotaFilterError(
                    ErrorCode.invalid_request,
                    "Request specified MATCH_TYPE_EXACT, but set match string to null.",
                )
            exact[entity_type] = match
        elif match_type == MATCH_DEFAULT:
            if match is not None:
                raise QuotaFilterError(
                    ErrorCode.invalid_request,
                    "Request specified MATCH_TYPE_DEFAULT, but also specified a match string.",
                )
            exact[entity_type] = None
        elif match_type == MATCH_SPECIFIED:
            if match is not None:
                raise QuotaFilterError(
                    ErrorCode.invalid_request,
                    "Request specified MATCH_TYPE_SPECIFIED, but also specified a match string.",
                )
            typed.add(entity_type)
        else:
            raise QuotaFilterError(ErrorCode.invalid_request, f"Unknown match type {match_type}")
    named = set(exact) | typed
    if IP in named and (USER in named or CLIENT_ID in named):
        raise QuotaFilterError(
            ErrorCode.invalid_request,
            "Invalid entity filter component combination. IP filter component should not be used with "
            "user or clientId filter component.",
        )
    found = []
    for entity, values in sorted(current.items(), key=lambda item: item[0].sort_key()):
        if not named:
            if strict:
                continue
        else:
            if any(not entity.has(t) or entity.get(t) != name for t, name in exact.items()):
                continue
            if any(not entity.has(t) for t in typed):
                continue
            if strict and len(entity.parts) != len(named):
                continue
        found.append((entity, dict(values)))
    return found


@dataclass(frozen=True, slots=True)
class Resolved:
    """The bound that applies to a client and the (user, client-id) tags of the budget it shares."""

    bound: float
    user: str
    client_id: str


def resolve(current: Quotas, key: str, user: str, client_id: str) -> Resolved | None:
    """The most specific quota with `key` for this user and client id (Kafka's precedence), or None."""
    order: tuple[tuple[QuotaEntity, str, str], ...] = (
        (QuotaEntity(((CLIENT_ID, client_id), (USER, user))), user, client_id),
        (QuotaEntity(((CLIENT_ID, None), (USER, user))), user, client_id),
        (QuotaEntity(((USER, user),)), user, ""),
        (QuotaEntity(((CLIENT_ID, client_id), (USER, None))), user, client_id),
        (QuotaEntity(((CLIENT_ID, None), (USER, None))), user, client_id),
        (QuotaEntity(((USER, None),)), user, ""),
        (QuotaEntity(((CLIENT_ID, client_id),)), "", client_id),
        (QuotaEntity(((CLIENT_ID, None),)), "", client_id),
    )
    for entity, user_tag, client_tag in order:
        values = current.get(entity)
        if values is not None and key in values:
            return Resolved(values[key], user_tag, client_tag)
    return None


def ip_rate(current: Quotas, ip: str) -> float | None:
    """The connection_creation_rate of one IP: its own entity, else the default IP entity (KIP-612)."""
    for entity in (QuotaEntity(((IP, ip),)), QuotaEntity(((IP, None),))):
        values = current.get(entity)
        if values is not None and CONNECTION_CREATION_RATE in values:
            return values[CONNECTION_CREATION_RATE]
    return None
