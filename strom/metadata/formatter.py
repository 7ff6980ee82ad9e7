"""Formatting a KRaft node's directories, as Kafka 4.4's `kafka-storage format` does (KIP-631, KIP-853).

Every log dir and the metadata log dir (metadata.log.dir, else the first log dir) gets a `meta.properties`
(`version=1`, `node.id`, `directory.id`, `cluster.id`; KIP-858 directory ids). On a controller the
metadata log dir also gets the bootstrap snapshot `__cluster_metadata-0/00000000000000000000-0000000000
.checkpoint` (`strom.metadata.snapshot`): the FeatureLevelRecords of the chosen release and any SCRAM
credentials, with KRaftVersion (and, for --standalone or --initial-controllers, the voters) in its header
when the quorum is dynamic. Kafka 4.4 writes no `bootstrap.checkpoint` file any more, and neither do we.

What Kafka refuses is refused here, with Kafka's messages: a node without process.roles; --standalone or
--initial-controllers together with a static controller.quorum.voters; --standalone on a broker-only node;
a controller with neither static voters nor one of the three quorum flags; kraft.version levels against
the quorum kind; unknown features, levels or release versions; formatting an already formatted
directory without --ignore-formatted (then only the unformatted ones are written).

`FormatOptions.extra_records` and `adopt` serve the offline ZooKeeper migration (`strom.metadata.migration`):
more bootstrap records after the features, and ZooKeeper-mode directories rewritten rather than refused.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from strom.config import BrokerConfig
from strom.metadata.features import (
    KRAFT_VERSION,
    METADATA_VERSION,
    FeatureError,
    bootstrap_records,
    effective_feature_levels,
    feature,
    latest_production,
    metadata_version,
    metadata_version_from_level,
)
from strom.metadata.release_versions import MetadataVersionInfo
from strom.metadata.scram import ScramParseError, parse_scram
from strom.metadata.serde import ApiMessageAndVersion
from strom.metadata.snapshot import BOOTSTRAP_SNAPSHOT, CLUSTER_METADATA_DIR, write_snapshot
from strom.metadata.voters import DynamicVoter, VoterParseError, parse_dynamic_voters, voters_record
from strom.storage.checkpoint import (
    read_meta_properties,
    uuid_from_kafka,
    uuid_to_kafka,
    write_meta_properties,
)

__all__ = [
    "META_PROPERTIES",
    "FormatOptions",
    "FormatterError",
    "NodeStorage",
    "check_formatted",
    "format_storage",
    "random_uuid",
]

META_PROPERTIES = "meta.properties"


class FormatterError(Exception):
    """A format (or start) Kafka would refuse; the message is one line for the operator."""


def random_uuid() -> uuid.UUID:
    """Kafka's Uuid.randomUuid: a random (version 4) UUID, never 0 or 1 (reserved: the metadata topic id
    is 1) and never one whose base64 form starts with "-"."""
    while True:
        value = uuid.uuid4()
        if value.int > 1 and not uuid_to_kafka(value).startswith("-"):
            return value


@dataclass(frozen=True, slots=True)
class NodeStorage:
    """What formatting needs from a node's configuration (server.properties)."""

    node_id: int
    process_roles: tuple[str, ...]
    log_dirs: tuple[str, ...]
    metadata_log_dir: str
    controller_listener_names: tuple[str, ...]
    static_voters: tuple[str, ...]
    controller_endpoint: tuple[str | None, int] | None
    """(host, port) of the first controller listener (advertised if given); host None when unset."""
    unstable_features: bool = False

    @property
    def is_controller(self) -> bool:
        return "controller" in self.process_roles

    @property
    def directories(self) -> list[str]:
        return sorted({*self.log_dirs, self.metadata_log_dir})

    @classmethod
    def from_config(cls, config: BrokerConfig) -> NodeStorage:
        roles = tuple(config.get("process.roles") or ())
        log_dirs = tuple(str(p) for p in config.log_dirs)
        listeners = tuple(str(n) for n in _list(config.get("controller.listener.names")))
        return cls(
            node_id=config.node_id,
            process_roles=roles,
            log_dirs=log_dirs,
            metadata_log_dir=str(config.get("metadata.log.dir") or log_dirs[0]),
            controller_listener_names=listeners,
            static_voters=tuple(config.get("controller.quorum.voters") or ()),
            controller_endpoint=_controller_endpoint(config, listeners),
            unstable_features=bool(config.get("unstable.feature.versions.enable")),
        )


def _list(value: object) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    return [str(v) for v in value]  # type: ignore[attr-defined]


def _controller_endpoint(config: BrokerConfig, names: Sequence[str]) -> tuple[str | None, int] | None:
    if not names:
        return None
    for key in ("advertised.listeners", "listeners"):
        for entry in _list(config.get(key)):
            name, sep, address = entry.partition("://")
            if sep and name == names[0]:
                host, _, port = address.rpartition(":")
                host = host.strip("[]")
                return (host or None, int(port))
    return None


@dataclass(frozen=True, slots=True)
class FormatOptions:
    """The format command's flags."""

    cluster_id: str
    release_version: str | None = None
    features: Mapping[str, int] = field(default_factory=dict)
    standalone: bool = False
    initial_controllers: str | None = None
    no_initial_controllers: bool = False
    ignore_formatted: bool = False
    add_scram: Sequence[str] = ()
    extra_records: Callable[[MetadataVersionInfo], Sequence[ApiMessageAndVersion]] | None = None
    """Records for a controller's bootstrap snapshot after the features (a ZooKeeper migration's)."""
    adopt: frozenset[str] = frozenset()
    """Directories whose meta.properties (a ZooKeeper-mode broker's, already checked by the caller) is
    rewritten for KRaft, keeping its directory.id, instead of counting as formatted."""


def parse_feature_flags(flags: Sequence[str]) -> dict[str, int]:
    """`--feature NAME=LEVEL` values."""
    levels: dict[str, int] = {}
    for flag in flags:
        name, eq, level = flag.partition("=")
        if not eq or not name.strip():
            raise FormatterError(f"Can't parse feature={flag}. The argument must be feature=level.")
        try:
            levels[name.strip()] = int(level)
        except ValueError:
            raise FormatterError(f"Can't parse feature={flag}. The level must be a number.") from None
    return levels


def format_storage(
    node: NodeStorage,
    options: FormatOptions,
    *,
    out: Callable[[str], None] = print,
    clock: Callable[[], float] = time.time,
) -> None:
    """Format the node's directories; FormatterError (nothing written) for anything Kafka refuses."""
    if not node.process_roles:
        raise FormatterError("The kafka configuration file appears to be for a legacy cluster. "
                             "Formatting is only supported for clusters in KRaft mode.")
    if node.node_id < 0:
        raise FormatterError("You must specify a valid non-negative node ID.")
    if not node.controller_listener_names:
        raise FormatterError("You must specify the name of the initial controller listener.")
    try:
        voters = _initial_voters(node, options)
        release = _release(node, options)
        dynamic = not node.static_voters and (voters is not None or options.no_initial_controllers)
        levels = effective_feature_levels(release, _requested(options), dynamic_quorum=dynamic,
                                          unstable=node.unstable_features)
        records = bootstrap_records(release, levels)
        if options.add_scram:
            if not release.scram:
                raise FormatterError("SCRAM is only supported in metadata.version 3.5-IV2 or later.")
            records += [parse_scram(arg) for arg in options.add_scram]
        if options.extra_records is not None and node.is_controller:
            records += list(options.extra_records(release))
    except (FeatureError, VoterParseError, ScramParseError) as exc:
        raise FormatterError(str(exc)) from None

    existing = _formatted(node, options.cluster_id, options.adopt)
    if existing and not options.ignore_formatted:
        raise FormatterError(f"Log directory {existing[0]} is already formatted. "
                             "Use --ignore-formatted to ignore this directory and format the others.")
    empty = [d for d in node.directories if d not in existing]
    if not empty:
        out("All of the log directories are already formatted.")
        return
    now_ms = int(clock() * 1000)
    used: set[str] = set()
    for directory in empty:
        kind, directory_id = _directory_kind(node, directory, voters)
        kept = read_meta_properties(Path(directory) / META_PROPERTIES).get("directory.id")
        if directory_id is None and kept and directory in options.adopt:
            directory_id = uuid_from_kafka(kept)
        if directory_id is None:
            directory_id = random_uuid()
            while uuid_to_kafka(directory_id) in used:
                directory_id = random_uuid()
        used.add(uuid_to_kafka(directory_id))
        out(f"Formatting {kind} {directory} with {METADATA_VERSION} {release.version}.")
        path = Path(directory)
        path.mkdir(parents=True, exist_ok=True)
        if directory == node.metadata_log_dir and node.is_controller:
            kraft = levels[KRAFT_VERSION]
            record = None
            if voters is not None and kraft > 0:
                info = feature(KRAFT_VERSION)
                supported = (0, info.latest_production if info else kraft)
                record = voters_record(voters, node.controller_listener_names[0], supported)
            write_snapshot(path / CLUSTER_METADATA_DIR / BOOTSTRAP_SNAPSHOT, records, kraft_version=kraft,
                           voters=record, timestamp_ms=now_ms)
        # meta.properties last: a directory counts as formatted only once everything else is in place
        write_meta_properties(path / META_PROPERTIES, {
            "version": "1",
            "node.id": str(node.node_id),
            "directory.id": uuid_to_kafka(directory_id),
            "cluster.id": options.cluster_id,
        })


def _initial_voters(node: NodeStorage, options: FormatOptions) -> dict[int, DynamicVoter] | None:
    flags = sum((options.standalone, options.initial_controllers is not None, options.no_initial_controllers))
    if flags > 1:
        raise FormatterError("Only one of --standalone, --initial-controllers and --no-initial-controllers "
                             "may be given.")
    if node.static_voters and (options.standalone or options.initial_controllers is not None):
        raise FormatterError(
            "You cannot specify controller.quorum.voters and format the node with --initial-controllers or "
            "--standalone. If you want to use dynamic quorum, please remove controller.quorum.voters and "
            "specify controller.quorum.bootstrap.servers instead."
        )
    voters = None
    if options.initial_controllers is not None:
        voters = parse_dynamic_voters(options.initial_controllers)
    if options.standalone:
        if not node.is_controller:
            raise FormatterError("You can only use --standalone on a controller.")
        if node.controller_endpoint is None:
            raise FormatterError("No controller listeners found.")
        host, port = node.controller_endpoint
        voters = {node.node_id: DynamicVoter(node.node_id, host or "localhost", port, random_uuid())}
    if (not options.no_initial_controllers and node.is_controller and not node.static_voters
            and voters is None):
        raise FormatterError(
            "Because controller.quorum.voters is not set on this controller, you must specify one of the "
            "following: --standalone, --initial-controllers, or --no-initial-controllers."
        )
    return voters


def _requested(options: FormatOptions) -> dict[str, int]:
    return dict(options.features)


def _release(node: NodeStorage, options: FormatOptions) -> MetadataVersionInfo:
    unstable = node.unstable_features
    if METADATA_VERSION in options.features:
        if options.release_version is not None:
            raise FormatterError(f"Use --release-version instead of --feature {METADATA_VERSION}=X to avoid "
                                 "ambiguity.")
        release = metadata_version_from_level(options.features[METADATA_VERSION])
    elif options.release_version is not None:
        release = metadata_version(options.release_version, unstable=unstable)
    else:
        return latest_production()
    if not release.production and not unstable:
        raise FormatterError(f"{METADATA_VERSION} {release.version} is not yet stable.")
    return release


def _directory_kind(
    node: NodeStorage, directory: str, voters: dict[int, DynamicVoter] | None
) -> tuple[str, uuid.UUID | None]:
    if directory != node.metadata_log_dir:
        return "data directory", None
    if voters is None:
        return "metadata directory", None
    if node.node_id in voters:
        # the voter's directory id is the one the other controllers were told
        return "dynamic metadata voter directory", voters[node.node_id].directory_id
    return "dynamic metadata directory", None


def _formatted(node: NodeStorage, cluster_id: str | None, adopt: frozenset[str] = frozenset()) -> list[str]:
    """Directories that already have a meta.properties, after checking they agree with this node."""
    formatted = []
    for directory in node.directories:
        if directory in adopt:
            continue
        props = read_meta_properties(Path(directory) / META_PROPERTIES)
        if not props:
            continue
        stored_node = props.get("node.id")
        if stored_node is not None and stored_node != str(node.node_id):
            raise FormatterError(f"Stored node id {stored_node} doesn't match previous node id "
                                 f"{node.node_id} in {directory}. If you moved your data, make sure your "
                                 "configured node id matches. If you intend to create a new node, you should "
                                 "remove all data in your data directories.")
        stored_cluster = props.get("cluster.id")
        if cluster_id is not None and stored_cluster not in (None, cluster_id):
            raise FormatterError(f"Invalid cluster.id in: {Path(directory) / META_PROPERTIES}. "
                                 f"Expected {cluster_id}, but read {stored_cluster}")
        formatted.append(directory)
    return formatted


def check_formatted(node: NodeStorage) -> str:
    """Before a KRaft node starts: every directory formatted for this node and one cluster. Returns the
    cluster id; FormatterError with a one-line reason otherwise."""
    cluster_id: str | None = None
    for directory in node.directories:
        path = Path(directory) / META_PROPERTIES
        props = read_meta_properties(path)
        if not props:
            raise FormatterError(f"No `meta.properties` found in {directory} (have you run "
                                 "`strom storage format` to format the directory?)")
        if props.get("version") != "1":
            raise FormatterError(f"{path} is not formatted for KRaft (version {props.get('version')}, "
                                 "expected 1): format the directory with `strom storage format`")
        if props.get("node.id") != str(node.node_id):
            raise FormatterError(f"Stored node id {props.get('node.id')} doesn't match the configured "
                                 f"node.id {node.node_id} in {directory}")
        if cluster_id is not None and props.get("cluster.id") != cluster_id:
            raise FormatterError(f"Mismatched cluster IDs between storage directories: {cluster_id} and "
                                 f"{props.get('cluster.id')} in {directory}")
        cluster_id = props.get("cluster.id")
    assert cluster_id is not None
    return cluster_id
