"""Shared plumbing of the `strom` admin sub-commands: connection options, output, errors, exit codes.

Every client command takes `--bootstrap-server` (default `localhost:9092`, or `STROM_BOOTSTRAP_SERVER`),
`--command-config FILE` (Java client properties: `bootstrap.servers`, `client.id`, and the security keys
`security.protocol`, `ssl.*`, `sasl.mechanism`, `sasl.jaas.config` that strom.client.security reads, as
Kafka's tools read the same file) and `--format text|json`. Failures print one clear line on stderr and
exit non-zero, as Kafka's tools do: 1 for a failure (a bad property in the --command-config file too), 2 for
usage.
"""

from __future__ import annotations

import asyncio
import functools
import json
import sys
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn, TypeVar

import click

from strom.client.cluster import ClusterClient
from strom.client.connection import ConnectionClosedError
from strom.client.security import PLAINTEXT, ClientSecurity
from strom.config import ConfigError, load_properties_file
from strom.protocol.errors import KafkaError

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True, slots=True)
class ClientOptions:
    bootstrap: str
    client_id: str
    output: str
    security: ClientSecurity = PLAINTEXT

    def client(self) -> ClusterClient:
        return ClusterClient(
            self.bootstrap, client_id=self.client_id, ssl=self.security.ssl_context, sasl=self.security.sasl
        )


bootstrap_option = click.option(
    "--bootstrap-server",
    "bootstrap",
    envvar="STROM_BOOTSTRAP_SERVER",
    default="localhost:9092",
    show_default=True,
    help="host:port[,host:port] of the cluster (env STROM_BOOTSTRAP_SERVER).",
)
command_config_option = click.option(
    "--command-config",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="Java client properties file, as Kafka's tools take (bootstrap.servers, client.id, "
    "security.protocol, ssl.*, sasl.mechanism, sasl.jaas.config).",
)


def resolve_connection(bootstrap: str, command_config: str | None) -> tuple[str, str]:
    """(bootstrap servers, client id): a --command-config file's values win, as with Kafka's tools."""
    opts = connection_options(bootstrap, command_config, "text")
    return opts.bootstrap, opts.client_id


def connection_options(bootstrap: str, command_config: str | None, output: str) -> ClientOptions:
    """The bootstrap servers, client id and security settings to connect with: a --command-config file's
    values win, as with Kafka's tools. A property that does not make a connection exits 1 with one line."""
    client_id = "strom-cli"
    security = PLAINTEXT
    if command_config:
        props = load_properties_file(command_config)
        bootstrap = props.get("bootstrap.servers", bootstrap)
        client_id = props.get("client.id", client_id)
        try:
            security = ClientSecurity.from_properties(props)
        except ConfigError as exc:
            fail(f"{command_config}: {exc}")
    return ClientOptions(bootstrap, client_id, output, security)


def client_options(func: F) -> F:
    """Add --bootstrap-server, --command-config and --format; pass a ClientOptions as `opts`."""

    @bootstrap_option
    @command_config_option
    @click.option(
        "--format", "output", type=click.Choice(["text", "json"]), default="text", show_default=True
    )
    @functools.wraps(func)
    def wrapper(*args: Any, bootstrap: str, command_config: str | None, output: str, **kwargs: Any) -> Any:
        return func(*args, opts=connection_options(bootstrap, command_config, output), **kwargs)

    return wrapper  # type: ignore[return-value]


def fail(message: str, code: int = 1) -> NoReturn:
    click.echo(f"Error: {message}", err=True)
    sys.exit(code)


def run(coro: Awaitable[T]) -> T:
    """Run a command's coroutine; turn broker errors and unreachable brokers into one line and exit 1."""
    try:
        return asyncio.run(coro)  # type: ignore[arg-type]
    except KafkaError as exc:
        fail(f"{exc} ({exc.code.name.upper()})")
    except (ConnectionError, OSError, TimeoutError) as exc:
        fail(f"cannot reach the cluster: {str(exc) or type(exc).__name__}{_closed_hint(exc)}")
    raise AssertionError("unreachable")


def _closed_hint(exc: BaseException) -> str:
    """What a connection the broker closed at once usually means: a security.protocol that is not the
    listener's (or, on an SSL listener that requires one, no accepted client certificate)."""
    if not isinstance(exc, ConnectionClosedError | ConnectionResetError):
        return ""
    return (": does security.protocol in --command-config match the listener, and does an SSL listener "
            "that requires one get a client certificate (ssl.keystore.*)?")


def emit_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, sort_keys=False, default=str))


def emit_table(headers: Sequence[str], rows: Sequence[Sequence[Any]], *, title: str | None = None) -> None:
    """A rich table on a terminal; whitespace-aligned columns, like Kafka's tools, otherwise."""
    if sys.stdout.isatty():
        from rich.console import Console
        from rich.table import Table

        table = Table(title=title)
        for header in headers:
            table.add_column(header)
        for row in rows:
            table.add_row(*("-" if cell is None else str(cell) for cell in row))
        Console().print(table)
        return
    cells = [list(headers)] + [["-" if c is None else str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    for row in cells:
        click.echo(" ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())


def parse_key_values(items: Sequence[str], flag: str) -> dict[str, str]:
    """['k=v', ...] -> {k: v}; a clear usage error otherwise."""
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"expected key=value, got {item!r}", param_hint=flag)
        out[key.strip()] = value
    return out
