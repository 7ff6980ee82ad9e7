"""`strom configs describe|alter`: what `kafka-configs.sh` does for topics and brokers.

`alter` uses IncrementalAlterConfigs (KIP-339): `--set k=v` is a SET, `--delete k` a DELETE, so other
overrides stay as they are.
"""

from __future__ import annotations

import click

from strom.cli.common import ClientOptions, client_options, emit_json, emit_table, fail, parse_key_values, run

_TOPIC, _BROKER = 2, 4
_SOURCES = {
    1: "DYNAMIC_TOPIC_CONFIG",
    2: "DYNAMIC_BROKER_CONFIG",
    3: "DYNAMIC_DEFAULT_BROKER_CONFIG",
    4: "STATIC_BROKER_CONFIG",
    5: "DEFAULT_CONFIG",
    6: "DYNAMIC_BROKER_LOGGER_CONFIG",
}


def _resource(topic: str | None, broker: int | None) -> tuple[int, str]:
    if (topic is None) == (broker is None):
        fail("give exactly one of --topic or --broker", code=2)
    return (_TOPIC, str(topic)) if topic is not None else (_BROKER, str(broker))


@click.group("configs")
def configs() -> None:
    """Describe and alter topic and broker configs."""


@configs.command("describe")
@click.option("--topic", default=None, help="Topic whose configs to show.")
@click.option("--broker", type=int, default=None, help="Broker id whose configs to show.")
@click.option("--all", "show_all", is_flag=True, help="Every key, not only overrides.")
@client_options
def describe(topic: str | None, broker: int | None, show_all: bool, opts: ClientOptions) -> None:
    """Show the configs of a topic or a broker (overrides only, unless --all)."""
    rtype, name = _resource(topic, broker)

    async def go() -> list[tuple[str, str | None, str, bool]]:
        async with opts.client() as client:
            result = await client.describe_configs(rtype, name)
        rows = []
        for entry in result.configs:
            source = int(entry.config_source)
            if not show_all and source in (4, 5):
                continue
            value = None if entry.is_sensitive else entry.value
            rows.append((str(entry.name), value, _SOURCES.get(source, "UNKNOWN"), bool(entry.read_only)))
        return sorted(rows)

    rows = run(go())
    if opts.output == "json":
        emit_json([{"name": n, "value": v, "source": s, "read_only": r} for n, v, s, r in rows])
    else:
        emit_table(["NAME", "VALUE", "SOURCE"], [(n, v, s) for n, v, s, _ in rows])


@configs.command("alter")
@click.option("--topic", default=None, help="Topic to alter.")
@click.option("--broker", type=int, default=None, help="Broker id to alter (dynamic broker configs).")
@click.option("--set", "sets", multiple=True, help="key=value to set (repeatable).")
@click.option("--delete", "deletes", multiple=True, help="key to remove, back to its default (repeatable).")
@click.option("--validate-only", is_flag=True, help="Check the change without applying it.")
@client_options
def alter(
    topic: str | None,
    broker: int | None,
    sets: tuple[str, ...],
    deletes: tuple[str, ...],
    validate_only: bool,
    opts: ClientOptions,
) -> None:
    """Set or delete config overrides of a topic or a broker."""
    rtype, name = _resource(topic, broker)
    if not sets and not deletes:
        fail("nothing to do: give --set k=v or --delete k", code=2)
    ops: list[tuple[str, int, str | None]] = [(k, 0, v) for k, v in parse_key_values(sets, "--set").items()]
    ops += [(k, 1, None) for k in deletes]

    async def go() -> None:
        async with opts.client() as client:
            await client.alter_configs(rtype, name, ops, validate_only=validate_only)

    run(go())
    if opts.output == "json":
        emit_json({"resource": name, "altered": [k for k, _, _ in ops], "validate_only": validate_only})
    else:
        click.echo(f"Completed updating config for {'topic' if rtype == _TOPIC else 'broker'} {name}.")
