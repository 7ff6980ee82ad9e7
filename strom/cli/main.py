"""The `strom` command: `strom serve` runs a broker; the other sub-commands administer a running cluster
the way Kafka's shell tools do (`kafka-topics.sh`, `kafka-configs.sh`, ...)."""

from __future__ import annotations

import importlib

import click

from strom import __version__

# name -> (module, attribute) of each sub-command. Modules are imported only when their command runs (or
# for --help), so `strom serve` does not pay for importing every admin command at start-up.
_COMMANDS: dict[str, tuple[str, str]] = {
    "serve": ("strom.cli.serve", "serve"),
    "topics": ("strom.cli.topics", "topics"),
    "configs": ("strom.cli.configs", "configs"),
    "acls": ("strom.cli.acls", "acls"),
    "users": ("strom.cli.users", "users"),
    "quotas": ("strom.cli.quotas", "quotas"),
    "cluster": ("strom.cli.info", "cluster"),
    "log-dirs": ("strom.cli.info", "log_dirs"),
    "offsets": ("strom.cli.info", "offsets"),
    "produce": ("strom.cli.produce", "produce"),
    "consume": ("strom.cli.consume", "consume"),
    "groups": ("strom.cli.groups", "groups"),
    "dump-log": ("strom.cli.dump_log", "dump_log"),
    "reassign": ("strom.cli.reassign", "reassign"),
    "elect-leaders": ("strom.cli.elect_leaders", "elect_leaders"),
    "storage": ("strom.cli.storage", "storage"),
}


class LazyGroup(click.Group):
    """A click group that imports a sub-command's module only when that command is asked for."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(_COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = _COMMANDS.get(cmd_name)
        if target is None:
            return None
        module = importlib.import_module(target[0])
        command = getattr(module, target[1], None)
        return command if isinstance(command, click.Command) else None


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="strom")
def cli() -> None:
    """Strom: a Kafka-compatible event streaming platform."""


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
