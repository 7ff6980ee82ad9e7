"""`strom quotas describe|alter`: client quotas, what `kafka-configs --entity-type users|clients|ips
[--entity-name N | --entity-default] --describe` and `--alter --add-config producer_byte_rate=1024
--delete-config consumer_byte_rate` do, through DescribeClientQuotas and AlterClientQuotas (KIP-546).

An entity is named with `--user U` / `--user-default`, `--client C` / `--client-default` (alone or with a
user: that user's client) or `--ip IP` / `--ip-default`. Keys are Kafka's: producer_byte_rate,
consumer_byte_rate, request_percentage, controller_mutation_rate (users and clients) and
connection_creation_rate (ips); the broker validates keys and values with Kafka's rules and messages.
`describe` without an entity lists every entity with quotas; with one it shows exactly that entity. Text
output is kafka-configs' line ("Quota configs for user-principal 'alice', client-id 'c1' are
consumer_byte_rate=2048.0", values as Java prints doubles); JSON gives the entity as {type: name} with null
for a default entity.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import click
from kio.static.primitive import f64, i8

from strom.cli.common import ClientOptions, client_options, emit_json, fail, parse_key_values, run
from strom.client.cluster import raise_for_error
from strom.protocol.errors import ErrorCode, KafkaError

_USER, _CLIENT, _IP = "user", "client-id", "ip"
_MATCH_EXACT, _MATCH_DEFAULT = 0, 1
_LABELS = {_USER: "user-principal", _CLIENT: "client-id", _IP: "ip"}
_ORDER = {_USER: 0, _CLIENT: 1, _IP: 2}

Entity = tuple[tuple[str, str | None], ...]
"""(entity type, name) pairs, user before client-id; a name of None is the default entity."""


def _entity_options(func: Any) -> Any:
    for option in reversed((
        click.option("--user", default=None, help="A user principal name."),
        click.option("--user-default", is_flag=True, help="The default user entity."),
        click.option("--client", default=None, help="A client id (alone, or of --user/--user-default)."),
        click.option("--client-default", is_flag=True, help="The default client-id entity."),
        click.option("--ip", default=None, help="A client IP address (connection_creation_rate)."),
        click.option("--ip-default", is_flag=True, help="The default IP entity."),
    )):  # fmt: skip
        func = option(func)
    return func


def _entity(kw: dict[str, Any]) -> Entity:
    parts: list[tuple[str, str | None]] = []
    for kind, flag in ((_USER, "user"), (_CLIENT, "client"), (_IP, "ip")):
        name, default = kw.pop(flag), kw.pop(f"{flag}_default")
        if name is not None and default:
            fail(f"give --{flag} or --{flag}-default, not both", 2)
        if name is not None or default:
            parts.append((kind, name))
    kinds = {kind for kind, _ in parts}
    if _IP in kinds and len(kinds) > 1:
        fail("an --ip entity cannot be combined with --user or --client", 2)
    return tuple(parts)


def describe_entity(entity: Entity) -> str:
    """kafka-configs' words for an entity: "user-principal 'alice', client-id 'c1'", "the default ip"."""
    return ", ".join(
        f"the default {_LABELS[kind]}" if name is None else f"{_LABELS[kind]} '{name}'"
        for kind, name in entity
    )


def java_double(value: float) -> str:
    """Java's Double.toString: 1024.0, 50.5, 1.0E7, 1.5E-4 (kafka-configs prints quota values so)."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    if value == 0:
        return "0.0"
    if 1e-3 <= abs(value) < 1e7:
        text = repr(float(value))
        return text if "." in text or "e" in text else text + ".0"
    sign, digits, exponent = Decimal(repr(float(value))).normalize().as_tuple()
    assert isinstance(exponent, int)
    mantissa = "".join(map(str, digits))
    power = exponent + len(mantissa) - 1
    fraction = mantissa[1:] or "0"
    return f"{'-' if sign else ''}{mantissa[0]}.{fraction}E{power}"


def _java_hash(key: str) -> int:
    h = 0
    units = key.encode("utf-16-be")  # String.hashCode runs over UTF-16 code units
    for i in range(0, len(units), 2):
        h = (31 * h + int.from_bytes(units[i : i + 2], "big")) & 0xFFFFFFFF
    return h ^ (h >> 16)  # HashMap's spread


def kafka_configs_order(keys: Sequence[str]) -> list[str]:
    """`keys` (in the response's order) as kafka-configs prints them: the admin client puts an entity's
    values into a java.util.HashMap sized for them, which iterates by bucket (the table doubles while the
    entries pass 3/4 of it), and in insertion order within a bucket."""
    capacity = 1
    while capacity < len(keys):
        capacity *= 2
    while len(keys) > int(capacity * 0.75):
        capacity *= 2
    return sorted(keys, key=lambda k: _java_hash(k) & (capacity - 1))


def _entry_entity(item: Any) -> Entity:
    parts = [(str(e.entity_type), e.entity_name) for e in item.entity]
    return tuple(sorted(parts, key=lambda p: _ORDER.get(p[0], 9)))


@click.group("quotas")
def quotas() -> None:
    """Describe and alter client quotas of users, client ids and IPs."""


@quotas.command("describe")
@_entity_options
@client_options
def describe(opts: ClientOptions, **kw: Any) -> None:
    """Show the quotas of one entity, or of every entity with quotas."""
    from kio.schema.describe_client_quotas.v1.request import ComponentData, DescribeClientQuotasRequest

    entity = _entity(kw)
    components = tuple(
        ComponentData(entity_type=kind, match_type=i8(_MATCH_DEFAULT if name is None else _MATCH_EXACT),
                      match=name)
        for kind, name in entity
    )  # fmt: skip
    request = DescribeClientQuotasRequest(components=components, strict=bool(entity))

    async def go() -> list[tuple[Entity, list[tuple[str, float]]]]:
        async with opts.client() as client:
            response = await client.request_any(request)
        raise_for_error(response.error_code, response.error_message, "describe client quotas")
        return [
            (_entry_entity(item), [(str(v.key), float(v.value)) for v in item.values])
            for item in response.entries or ()
        ]

    found = run(go())
    if opts.output == "json":
        emit_json([{"entity": dict(entity), "quotas": dict(values)} for entity, values in found])
        return
    for found_entity, values in found:
        by_key = dict(values)
        listed = ", ".join(f"{k}={java_double(by_key[k])}" for k in kafka_configs_order(list(by_key)))
        click.echo(f"Quota configs for {describe_entity(found_entity)} are {listed}")


def _parse_sets(sets: Sequence[str]) -> list[tuple[str, float]]:
    out = []
    for key, raw in parse_key_values(sets, "--set").items():
        try:
            out.append((key, float(raw)))
        except ValueError:
            raise click.BadParameter(
                f"Cannot parse quota configuration value for {key}: {raw}", param_hint="--set"
            ) from None
    return out


@quotas.command("alter")
@_entity_options
@click.option("--set", "sets", multiple=True, help="quota=value to set, e.g. producer_byte_rate=1048576.")
@click.option("--delete", "deletes", multiple=True, help="quota to remove (repeatable).")
@click.option("--validate-only", is_flag=True, help="Check the change without applying it.")
@client_options
def alter(
    sets: tuple[str, ...], deletes: tuple[str, ...], validate_only: bool, opts: ClientOptions, **kw: Any
) -> None:
    """Set or remove quotas of one entity."""
    from kio.schema.alter_client_quotas.v1.request import (
        AlterClientQuotasRequest,
        EntityData,
        EntryData,
        OpData,
    )

    entity = _entity(kw)
    if not entity:
        fail("name an entity: --user, --client, --ip (or their -default flags)", 2)
    if not sets and not deletes:
        fail("nothing to do: give --set quota=value or --delete quota", 2)
    ops = [OpData(key=k, value=f64(v), remove=False) for k, v in _parse_sets(sets)]
    ops += [OpData(key=k, value=f64(0.0), remove=True) for k in deletes]
    request = AlterClientQuotasRequest(
        entries=(EntryData(entity=tuple(EntityData(entity_type=t, entity_name=n) for t, n in entity),
                           ops=tuple(ops)),),
        validate_only=validate_only,
    )  # fmt: skip

    async def go() -> None:
        async with opts.client() as client:
            response = await client.request_any(request)
        for item in response.entries:
            if item.error_code:
                text = item.error_message or ErrorCode(item.error_code).name.upper()
                raise KafkaError(f"{describe_entity(entity)}: {text}", code=ErrorCode(item.error_code))

    run(go())
    if opts.output == "json":
        emit_json({"entity": dict(entity), "set": dict(_parse_sets(sets)), "deleted": list(deletes),
                   "validate_only": validate_only})  # fmt: skip
    else:
        verb = "Validated" if validate_only else "Completed updating"
        click.echo(f"{verb} quotas for {describe_entity(entity)}.")
