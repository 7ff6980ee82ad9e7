"""`strom storage`: the twin of Kafka's `kafka-storage.sh` for KRaft nodes (KIP-631, KIP-853).

- `random-uuid`: a new cluster id (Kafka's Uuid.randomUuid in base64url without padding).
- `format -t CLUSTER_ID -c server.properties [--standalone | --initial-controllers ID@HOST:PORT:DIRID,... |
  --no-initial-controllers] [--release-version V] [--feature NAME=LEVEL] [--ignore-formatted]
  [--add-scram MECH=[...]]`: writes meta.properties in every log dir and the metadata log dir, and on a
  controller the bootstrap snapshot (see `strom.metadata.formatter`). Refusals print Kafka's one-line
  message to stderr and exit 1.
- `info -c server.properties`: the directories, their meta.properties and any problems, as Kafka prints.
- `version-mapping [--release-version V]`: the feature levels a release starts with.
- `migrate-from-zookeeper -c server.properties [--zookeeper-connect HOST:PORT[/chroot]] [--release-version V]
  [--feature NAME=LEVEL] [--standalone | --initial-controllers ... | --no-initial-controllers]
  [--ignore-formatted]`: Strom's own, the offline move of a stopped ZooKeeper-mode cluster to KRaft (Kafka's
  online path is KIP-866): formats the node with the ZooKeeper cluster's id, a controller's bootstrap
  snapshot holding the ZooKeeper metadata, and rewrites a broker's ZooKeeper-mode meta.properties
  (`strom.metadata.migration`). Refused with one line and exit 1: ZooKeeper unreachable, a broker still
  registered, directories already formatted for KRaft.

Flags, short forms and exit codes are Kafka 4.4's.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from strom.cluster.zk_migration import MigrationError, read_zookeeper
from strom.config import BrokerConfig, ConfigError, load_properties_file
from strom.metadata.features import FeatureError, latest_production, metadata_version
from strom.metadata.formatter import (
    META_PROPERTIES,
    FormatOptions,
    FormatterError,
    NodeStorage,
    format_storage,
    parse_feature_flags,
    random_uuid,
)
from strom.metadata.migration import migrate_storage
from strom.metadata.release_versions import FEATURES
from strom.storage.checkpoint import read_meta_properties, uuid_to_kafka

F = TypeVar("F", bound=Callable[..., Any])


def _config(config_file: str) -> BrokerConfig:
    try:
        return BrokerConfig(load_properties_file(config_file))
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None


def _node(config_file: str) -> NodeStorage:
    try:
        return NodeStorage.from_config(_config(config_file))
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None


def _format_options(command: F) -> F:
    """The options `format` and `migrate-from-zookeeper` share (Kafka's StorageTool format options)."""
    options = [
        click.option("--ignore-formatted", "-g", is_flag=True,
                     help="Skip already formatted directories instead of failing."),
        click.option("--release-version", "-r", default=None,
                     help="The release version for the initial feature levels (default: the latest "
                          "production)."),
        click.option("--feature", "-f", "features", multiple=True, help="A feature level, as feature=level."),
        click.option("--standalone", "-s", is_flag=True,
                     help="Initialize a controller as a one-voter quorum."),
        click.option("--no-initial-controllers", "-N", is_flag=True,
                     help="Initialize a server without a dynamic quorum topology."),
        click.option("--initial-controllers", "-I", default=None,
                     help="The initial dynamic quorum: id@host:port:directory,... (the same on every node)."),
    ]  # fmt: skip
    for option in reversed(options):
        command = option(command)
    return command


def _check_quorum_flags(
    standalone: bool, no_initial_controllers: bool, initial_controllers: str | None
) -> None:
    if sum((standalone, no_initial_controllers, initial_controllers is not None)) > 1:
        raise click.UsageError("--standalone, --no-initial-controllers and --initial-controllers are "
                               "mutually exclusive")


@click.group("storage", context_settings={"help_option_names": ["-h", "--help"]})
def storage() -> None:
    """Format and inspect the directories of a KRaft node (kafka-storage.sh)."""


@storage.command("random-uuid")
def random_uuid_command() -> None:
    """Print a random UUID (a new cluster id)."""
    click.echo(uuid_to_kafka(random_uuid()))


@storage.command("format")
@click.option("--config", "-c", "config_file", required=True, type=click.Path(exists=True, dir_okay=False),
              help="The server.properties file to use.")
@click.option("--cluster-id", "-t", "cluster_id", required=True, help="The cluster ID to use.")
@click.option("--add-scram", "-S", "add_scram", multiple=True,
              help="A SCRAM credential for the __cluster_metadata log, e.g. "
                   "'SCRAM-SHA-256=[name=alice,password=alice-secret]'.")
@_format_options
def format_command(
    config_file: str,
    cluster_id: str,
    add_scram: tuple[str, ...],
    ignore_formatted: bool,
    release_version: str | None,
    features: tuple[str, ...],
    standalone: bool,
    no_initial_controllers: bool,
    initial_controllers: str | None,
) -> None:
    """Format the log directories of this node."""
    _check_quorum_flags(standalone, no_initial_controllers, initial_controllers)
    node = _node(config_file)
    try:
        options = FormatOptions(
            cluster_id=cluster_id,
            release_version=release_version,
            features=parse_feature_flags(features),
            standalone=standalone,
            initial_controllers=initial_controllers,
            no_initial_controllers=no_initial_controllers,
            ignore_formatted=ignore_formatted,
            add_scram=add_scram,
        )
        format_storage(node, options, out=click.echo)
    except FormatterError as exc:
        raise click.ClickException(str(exc)) from None


@storage.command("info")
@click.option("--config", "-c", "config_file", required=True, type=click.Path(exists=True, dir_okay=False),
              help="The server.properties file to use.")
def info_command(config_file: str) -> None:
    """Show the log directories of this node and whether they are formatted."""
    node = _node(config_file)
    problems: list[str] = []
    found: list[str] = []
    first: dict[str, str] | None = None
    for directory in node.directories:
        path = Path(directory)
        if not path.is_dir():
            problems.append(f"{directory} {'is not a directory' if path.exists() else 'does not exist'}")
            continue
        found.append(directory)
        props = read_meta_properties(path / META_PROPERTIES)
        if not props:
            problems.append(f"{directory} is not formatted.")
        elif first is None:
            first = props
        elif first.get("cluster.id") != props.get("cluster.id"):
            problems.append("Mismatched cluster IDs between storage directories.")
        elif first.get("node.id") != props.get("node.id"):
            problems.append("Mismatched node IDs between storage directories.")
    if first is not None and node.process_roles and first.get("version") == "0":
        problems.append("The kafka configuration file appears to be for a cluster in KRaft mode, but the "
                        "directories are formatted for legacy mode.")
    if found:
        click.echo("Found log directory:" if len(found) == 1 else "Found log directories:")
        for directory in found:
            click.echo(f"  {directory}")
        click.echo("")
    if first is not None:
        shown = ", ".join(f"{k}={v}" for k, v in sorted(first.items()) if k != "directory.id")
        click.echo(f"Found metadata: {{{shown}}}")
        click.echo("")
    if problems:
        click.echo("Found problem:" if len(problems) == 1 else "Found problems:")
        for problem in problems:
            click.echo(f"  {problem}")
        click.echo("")
        raise SystemExit(1)


@storage.command("version-mapping")
@click.option("--release-version", "-r", default=None, help="The release version (default: the latest).")
def version_mapping_command(release_version: str | None) -> None:
    """Print the feature levels a release version starts with."""
    try:
        release = metadata_version(release_version) if release_version else latest_production()
    except FeatureError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"metadata.version={release.feature_level} ({release.version})")
    for info in FEATURES:
        click.echo(f"{info.name}={info.default_levels.get(release.version, 0)}")


@storage.command("migrate-from-zookeeper")
@click.option("--config", "-c", "config_file", required=True, type=click.Path(exists=True, dir_okay=False),
              help="The KRaft server.properties of this node (a controller, a broker or both).")
@click.option("--zookeeper-connect", "-z", "zk_connect", default=None,
              help="The ZooKeeper cluster to read, HOST:PORT[,HOST:PORT][/chroot] (default: "
                   "zookeeper.connect of the config).")
@_format_options
@click.option("--zookeeper-timeout", default=10.0, show_default=True, type=float,
              help="Seconds to wait for the ZooKeeper session.")
def migrate_command(
    config_file: str,
    zk_connect: str | None,
    ignore_formatted: bool,
    release_version: str | None,
    features: tuple[str, ...],
    standalone: bool,
    no_initial_controllers: bool,
    initial_controllers: str | None,
    zookeeper_timeout: float,
) -> None:
    """Format this node for KRaft from a stopped ZooKeeper-mode cluster's metadata."""
    _check_quorum_flags(standalone, no_initial_controllers, initial_controllers)
    config = _config(config_file)
    connect = zk_connect or config.get("zookeeper.connect")
    if not connect:
        raise click.ClickException("No ZooKeeper to read: give --zookeeper-connect or set zookeeper.connect")
    node = _node(config_file)
    try:
        cluster = read_zookeeper(str(connect), timeout=zookeeper_timeout)
        options = FormatOptions(
            cluster_id=cluster.cluster_id,
            release_version=release_version,
            features=parse_feature_flags(features),
            standalone=standalone,
            initial_controllers=initial_controllers,
            no_initial_controllers=no_initial_controllers,
            ignore_formatted=ignore_formatted,
        )
        migrate_storage(node, cluster, options, out=click.echo)
    except (MigrationError, FormatterError) as exc:
        raise click.ClickException(str(exc)) from None
