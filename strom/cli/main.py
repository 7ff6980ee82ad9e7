"""The `strom` command: `strom serve` runs a broker; the other sub-commands administer a running cluster
the way Kafka's shell tools do (`kafka-topics.sh`, `kafka-configs.sh`, ...)."""

from __future__ import annotations

import importlib

import click

from strom import __version__

# (module, attribute) of each sub-command; imported here so `strom --help` lists them all
_COMMANDS = (
    ("strom.cli.serve", "serve"),
    ("strom.cli.topics", "topics"),
    ("strom.cli.configs", "configs"),
    ("strom.cli.acls", "acls"),
    ("strom.cli.info", "cluster"),
    ("strom.cli.info", "log_dirs"),
    ("strom.cli.info", "offsets"),
    ("strom.cli.produce", "produce"),
    ("strom.cli.consume", "consume"),
    ("strom.cli.groups", "groups"),
    ("strom.cli.dump_log", "dump_log"),
    ("strom.cli.reassign", "reassign"),
    ("strom.cli.elect_leaders", "elect_leaders"),
    ("strom.cli.storage", "storage"),
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="strom")
def cli() -> None:
    """Strom: a Kafka-compatible event streaming platform."""


def _register() -> None:
    for module_name, attr in _COMMANDS:
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        command = getattr(module, attr, None)
        if isinstance(command, click.Command):
            cli.add_command(command)


_register()


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
