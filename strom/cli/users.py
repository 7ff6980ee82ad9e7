"""`strom users list|describe|set-password|delete-credential`: SCRAM credentials, what
`kafka-configs --entity-type users --entity-name U --alter --add-config 'SCRAM-SHA-256=[iterations=8192,
password=...]'` (and `--delete-config SCRAM-SHA-256`, `--describe`) does, through
DescribeUserScramCredentials and AlterUserScramCredentials (KIP-554).

As with Kafka's tool the password never leaves the client: it is salted here (a random salt of Kafka's
form, PBKDF2 with the mechanism's hash and `--iterations`, 4096 by default as kafka-configs uses) and only
the salt and the salted password are sent; the broker checks the iterations (4096 to 16384) and the
mechanism. The password comes from `--password`, the first line of standard input with
`--password-stdin`, or a prompt on a terminal. `describe` prints kafka-configs' line ("SCRAM credential
configs for user-principal 'alice' are SCRAM-SHA-256=iterations=8192"); a user without credentials is an
error (RESOURCE_NOT_FOUND).
"""

from __future__ import annotations

import sys
from typing import Any

import click
from kio.static.primitive import i8, i32

from strom.cli.common import ClientOptions, client_options, emit_json, emit_table, fail, run
from strom.client.cluster import raise_for_error
from strom.protocol.errors import ErrorCode, KafkaError
from strom.security.scram_credentials import (
    SCRAM_MECHANISMS,
    mechanism_by_type,
    salted_password,
    secure_random_string,
)

DEFAULT_ITERATIONS = 4096  # kafka-configs' default when `iterations=` is not given

_mechanism_option = click.option(
    "--mechanism",
    type=click.Choice(sorted(SCRAM_MECHANISMS), case_sensitive=False),
    required=True,
    help="SCRAM mechanism of the credential.",
)


@click.group("users")
def users() -> None:
    """List, describe, set and delete users' SCRAM credentials."""


async def _describe(opts: ClientOptions, names: tuple[str, ...] | None) -> list[tuple[str, list[Any]]]:
    """[(user, credential infos)] for `names` (every user with a credential when None); KafkaError for the
    request or, after the users found, for the first user it refused."""
    from kio.schema.describe_user_scram_credentials.v0.request import (
        DescribeUserScramCredentialsRequest,
        UserName,
    )

    users_asked = None if names is None else tuple(UserName(name=n) for n in names)
    async with opts.client() as client:
        response = await client.request_any(DescribeUserScramCredentialsRequest(users=users_asked))
    raise_for_error(response.error_code, response.error_message, "describe SCRAM credentials")
    order = {name: i for i, name in enumerate(names or ())}
    found = sorted(
        ((str(r.user), list(r.credential_infos)) for r in response.results if not r.error_code),
        key=lambda item: (order.get(item[0], len(order)), item[0]),
    )
    refused = [r for r in response.results if r.error_code]
    if refused:
        _print_users(found, opts.output)
        first = refused[0]
        message = "; ".join(str(r.error_message or ErrorCode(r.error_code).name.upper()) for r in refused)
        raise KafkaError(message, code=ErrorCode(first.error_code))
    return found


def _mechanism_name(code: int) -> str:
    mechanism = mechanism_by_type(int(code))
    return mechanism.name if mechanism is not None else f"UNKNOWN({int(code)})"


def _print_users(found: list[tuple[str, list[Any]]], output: str) -> None:
    if output == "json":
        emit_json([
            {"user": user, "credentials": [
                {"mechanism": _mechanism_name(c.mechanism), "iterations": int(c.iterations)} for c in infos
            ]}
            for user, infos in found
        ])  # fmt: skip
        return
    for user, infos in found:
        described = ", ".join(f"{_mechanism_name(c.mechanism)}=iterations={int(c.iterations)}" for c in infos)
        click.echo(f"SCRAM credential configs for user-principal '{user}' are {described}")


@users.command("list")
@client_options
def list_users(opts: ClientOptions) -> None:
    """Every user with a SCRAM credential, with its mechanisms and iterations."""
    found = run(_describe(opts, None))
    if opts.output == "json":
        _print_users(found, "json")
        return
    rows = [(user, _mechanism_name(c.mechanism), int(c.iterations)) for user, infos in found for c in infos]
    emit_table(["USER", "MECHANISM", "ITERATIONS"], sorted(rows))


@users.command("describe")
@click.argument("user", nargs=-1, required=True)
@client_options
def describe(user: tuple[str, ...], opts: ClientOptions) -> None:
    """The SCRAM credentials (mechanisms and iterations) of USER..."""
    _print_users(run(_describe(opts, user)), opts.output)


def _read_password(password: str | None, password_stdin: bool) -> str:
    if password is not None and password_stdin:
        fail("give --password or --password-stdin, not both", 2)
    if password_stdin:
        line = sys.stdin.readline()
        password = line[:-1] if line.endswith("\n") else line
        password = password[:-1] if password.endswith("\r") else password
    elif password is None:
        if not sys.stdin.isatty():
            fail("give the password with --password-stdin (or --password)", 2)
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True, err=True)
    if not password:
        fail("the password is empty", 2)
    return password


async def _alter(opts: ClientOptions, upsertions: tuple[Any, ...], deletions: tuple[Any, ...]) -> None:
    from kio.schema.alter_user_scram_credentials.v0.request import AlterUserScramCredentialsRequest

    request = AlterUserScramCredentialsRequest(deletions=deletions, upsertions=upsertions)
    async with opts.client() as client:
        response = await client.request_any(request)
    for result in response.results:
        raise_for_error(result.error_code, result.error_message, f"user {result.user}")


@users.command("set-password")
@click.argument("user")
@_mechanism_option
@click.option(
    "--iterations",
    type=int,
    default=DEFAULT_ITERATIONS,
    show_default=True,
    help="PBKDF2 iterations (the broker takes 4096 to 16384).",
)
@click.option("--password", default=None, help="The password (visible to other local users: prefer stdin).")
@click.option("--password-stdin", is_flag=True, help="Read the password from the first line of stdin.")
@client_options
def set_password(
    user: str,
    mechanism: str,
    iterations: int,
    password: str | None,
    password_stdin: bool,
    opts: ClientOptions,
) -> None:
    """Create or replace USER's credential for one SCRAM mechanism."""
    from kio.schema.alter_user_scram_credentials.v0.request import ScramCredentialUpsertion

    spec = SCRAM_MECHANISMS[mechanism.upper()]
    secret = _read_password(password, password_stdin)
    salt = secure_random_string().encode("ascii")
    upsertion = ScramCredentialUpsertion(
        name=user, mechanism=i8(spec.type), iterations=i32(iterations), salt=salt,
        salted_password=salted_password(spec, secret, salt, iterations),
    )  # fmt: skip
    run(_alter(opts, (upsertion,), ()))
    if opts.output == "json":
        emit_json({"user": user, "mechanism": spec.name, "iterations": iterations})
    else:
        click.echo(f"Completed updating the {spec.name} credential of user {user}.")


@users.command("delete-credential")
@click.argument("user")
@_mechanism_option
@client_options
def delete_credential(user: str, mechanism: str, opts: ClientOptions) -> None:
    """Remove USER's credential for one SCRAM mechanism."""
    from kio.schema.alter_user_scram_credentials.v0.request import ScramCredentialDeletion

    spec = SCRAM_MECHANISMS[mechanism.upper()]
    run(_alter(opts, (), (ScramCredentialDeletion(name=user, mechanism=i8(spec.type)),)))
    if opts.output == "json":
        emit_json({"user": user, "mechanism": spec.name, "deleted": True})
    else:
        click.echo(f"Completed deleting the {spec.name} credential of user {user}.")
