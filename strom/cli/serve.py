"""`strom serve`: run a single broker in the foreground.

Options mirror a Kafka broker's configuration: `--config` reads a server.properties file, `--set k=v`
overrides any broker key by Kafka's name, and `--data-dir`, `--host`, `--port`, `--node-id` set log.dirs,
listeners and node.id. With process.roles set (KRaft) the directories must have been formatted with
`strom storage format`; an unformatted one stops the command with one line. A controller
(`process.roles=controller`) runs its CONTROLLER listener, the Raft quorum and the quorum controller; a
broker (`process.roles=broker`) registers with the active controller and follows the metadata log
(strom.cluster.kraft); a combined node (`broker,controller`) runs both over one Raft replica.
Prints one line with the address when ready. The first SIGTERM/SIGINT shuts down
cleanly (stop accepting, finish in-flight requests, flush, checkpoints, clean-shutdown marker; exit 0);
a second one exits at once.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from typing import TYPE_CHECKING

import click

from strom.config import BrokerConfig, ConfigError, load_properties_file

if TYPE_CHECKING:
    from strom.raft.controller_server import ControllerServer


def build_config(
    data_dir: str | None,
    host: str | None,
    port: int | None,
    node_id: int | None,
    config_file: str | None,
    sets: tuple[str, ...],
) -> BrokerConfig:
    """File first, then the explicit flags, then `--set` (the most specific wins)."""
    props: dict[str, str] = {}
    if config_file:
        props.update(load_properties_file(config_file))
    if data_dir is not None or ("log.dirs" not in props and "log.dir" not in props):
        props["log.dirs"] = data_dir or "./strom-data"
    if host is not None or port is not None or "listeners" not in props:
        props["listeners"] = f"PLAINTEXT://{host or '127.0.0.1'}:{9092 if port is None else port}"
    if node_id is not None:
        props["node.id"] = str(node_id)
    for item in sets:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(f"expected key=value, got {item!r}", param_hint="--set")
        props[key.strip()] = value.strip()
    return BrokerConfig(props)


async def _run(config: BrokerConfig) -> int:
    from strom.server.broker import Broker

    broker = Broker(config)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    signals = 0

    def on_signal() -> None:
        nonlocal signals
        signals += 1
        if signals > 1:
            os._exit(1)
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal)
    await broker.start()
    host, port = broker.bound_address
    adv_host, adv_port = broker.advertised_address
    click.echo(f"Strom broker {broker.node_id} listening on {host}:{port} (advertised {adv_host}:{adv_port})")
    sys.stdout.flush()
    await stop.wait()
    await broker.stop()
    return 0


@click.command("serve")
@click.option("--data-dir", default=None, help="Log directory (log.dirs). Default ./strom-data.")
@click.option("--host", default=None, help="Listen address. Default 127.0.0.1.")
@click.option("--port", type=int, default=None, help="Listen port. Default 9092.")
@click.option("--node-id", type=int, default=None, help="Broker id (node.id). Default 1.")
@click.option(
    "--config",
    "config_file",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="A server.properties file.",
)
@click.option(
    "--set",
    "sets",
    multiple=True,
    metavar="KEY=VALUE",
    help="Override a broker config by Kafka's key name (repeatable).",
)
@click.option(
    "--log-level",
    default="INFO",
    show_default=True,
    envvar="STROM_LOG_LEVEL",
    show_envvar=True,
    help="Python logging level.",
)
def serve(
    data_dir: str | None,
    host: str | None,
    port: int | None,
    node_id: int | None,
    config_file: str | None,
    sets: tuple[str, ...],
    log_level: str,
) -> None:
    """Run a Strom broker in the foreground."""
    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    try:
        config = build_config(data_dir, host, port, node_id, config_file, sets)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    if config.get("process.roles"):
        sys.exit(_serve_kraft(config))
    try:
        code = asyncio.run(_run(config))
    except ConfigError as exc:  # listeners and TLS settings are checked as the broker is built
        raise click.ClickException(str(exc)) from None
    sys.exit(code)


def _fatal(exc: BaseException) -> None:
    """A metadata record this node cannot apply stops it at once, as Kafka's fatal fault handler does."""
    click.echo(f"strom: stopping: cannot replay the cluster metadata log: {exc}", err=True)
    sys.stderr.flush()
    os._exit(1)


def _serve_kraft(config: BrokerConfig) -> int:
    """A KRaft node: its controller (CONTROLLER listener and the Raft quorum, strom.raft.controller_server)
    and/or its broker (strom.cluster.kraft.broker), sharing one Raft replica when combined."""
    from strom.metadata.formatter import FormatterError, NodeStorage, check_formatted
    from strom.raft.controller_server import ControllerServer

    raw = config.get("process.roles")
    roles = {str(r).strip() for r in (raw if isinstance(raw, list | tuple) else str(raw).split(","))}
    try:
        check_formatted(NodeStorage.from_config(config))
        server = ControllerServer(config, on_fatal=_fatal) if "controller" in roles else None
    except (FormatterError, ConfigError) as exc:
        raise click.ClickException(str(exc)) from None
    try:
        return asyncio.run(_run_kraft(config, server, "broker" in roles))
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None


async def _run_kraft(config: BrokerConfig, server: ControllerServer | None, broker_role: bool) -> int:
    from strom.server.broker import Broker

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    signals = 0

    def on_signal() -> None:
        nonlocal signals
        signals += 1
        if signals > 1:
            os._exit(1)
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal)
    broker = Broker(config, raft=server.raft if server else None, on_fatal=_fatal) if broker_role else None
    if server is not None:
        await server.start()
        host, port = server.bound_address
        click.echo(f"Strom controller {server.node_id} listening on {host}:{port} ({server.listener_name})")
        sys.stdout.flush()
    if broker is not None:
        await broker.start()
        host, port = broker.bound_address
        adv_host, adv_port = broker.advertised_address
        click.echo(
            f"Strom broker {broker.node_id} listening on {host}:{port} (advertised {adv_host}:{adv_port})"
        )
        sys.stdout.flush()
    await stop.wait()
    if broker is not None:
        await broker.stop()
    if server is not None:
        await server.stop()
    return 0
