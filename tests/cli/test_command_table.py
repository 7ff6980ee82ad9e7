"""The `strom` command's table of sub-commands: every entry imports and is the click command of that
name (the group imports a command's module only when it runs, so a wrong entry would go unnoticed)."""

from __future__ import annotations

import click
from click.testing import CliRunner

from strom.cli.main import _COMMANDS, cli


def test_every_listed_command_resolves_to_itself() -> None:
    ctx = click.Context(cli)
    for name in _COMMANDS:
        command = cli.get_command(ctx, name)
        assert command is not None and command.name == name, name
    assert cli.get_command(ctx, "no-such-command") is None


def test_help_lists_every_command() -> None:
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0
    for name in _COMMANDS:
        assert f"  {name} " in result.output
