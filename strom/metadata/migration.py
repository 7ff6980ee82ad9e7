"""Formatting a KRaft node from a stopped ZooKeeper-mode cluster (`strom storage migrate-from-zookeeper`).

The offline counterpart of Kafka's ZooKeeper-to-KRaft migration (KIP-866): the node's directories are
formatted as `strom storage format` formats them (`strom.metadata.formatter`), with the cluster id the
ZooKeeper cluster has in /cluster/id, and a controller's bootstrap snapshot holds, after the feature
levels, every record of the ZooKeeper tree (`strom.cluster.zk_migration`) in Kafka's snapshot order
(`strom.metadata.image_records`). The active controller appends them to the new metadata log in one
transaction (KIP-868), so brokers replay the topics with their ZooKeeper topic ids, partition leaders,
epochs and ISRs, and find their partition logs (whose `partition.metadata` names the same topic id).

A directory with a ZooKeeper-mode `meta.properties` (Kafka's `version=0` with `broker.id`, or Strom's
ZooKeeper-mode `version=1` with `node.id`; no `__cluster_metadata-0` in it) is rewritten as KRaft's
(`version=1`, `node.id`, `directory.id`, the same `cluster.id`), keeping the partition logs next to it.
Refused with one line: a directory that belongs to another cluster or another node id, and one that is
already formatted for KRaft (it has `__cluster_metadata-0`) unless --ignore-formatted.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from strom.cluster.zk_migration import MigrationError, ZkCluster, migration_state
from strom.metadata.formatter import (
    META_PROPERTIES,
    FormatOptions,
    FormatterError,
    NodeStorage,
    format_storage,
)
from strom.metadata.image_records import image_records
from strom.metadata.records import FeatureLevelRecord
from strom.metadata.release_versions import MetadataVersionInfo
from strom.metadata.serde import ApiMessageAndVersion
from strom.metadata.snapshot import CLUSTER_METADATA_DIR
from strom.storage.checkpoint import read_meta_properties

__all__ = ["migrate_storage", "migration_records"]


def migration_records(cluster: ZkCluster, release: MetadataVersionInfo) -> list[ApiMessageAndVersion]:
    """The ZooKeeper tree as metadata records, features left out (the formatter writes those)."""
    records = image_records(migration_state(cluster, release))
    return [rec for rec in records if not isinstance(rec.message, FeatureLevelRecord)]


def _zookeeper_directories(node: NodeStorage, cluster_id: str, ignore_formatted: bool) -> frozenset[str]:
    adopt = set()
    for directory in node.directories:
        path = Path(directory)
        props = read_meta_properties(path / META_PROPERTIES)
        if (path / CLUSTER_METADATA_DIR).exists():
            if ignore_formatted:
                continue
            raise FormatterError(f"Log directory {directory} is already formatted for KRaft. "
                                 "Use --ignore-formatted to ignore this directory and format the others.")
        if not props:
            continue
        stored_cluster = props.get("cluster.id")
        if stored_cluster not in (None, cluster_id):
            raise FormatterError(f"Log directory {directory} belongs to cluster {stored_cluster}, not to the "
                                 f"ZooKeeper cluster {cluster_id}")
        stored_node = props.get("node.id") if props.get("version") == "1" else props.get("broker.id")
        if stored_node is not None and stored_node != str(node.node_id):
            raise FormatterError(f"Log directory {directory} holds the data of broker {stored_node}, but "
                                 f"node.id is {node.node_id}")
        adopt.add(directory)
    return frozenset(adopt)


def migrate_storage(
    node: NodeStorage,
    cluster: ZkCluster,
    options: FormatOptions,
    *,
    out: Callable[[str], None] = print,
    clock: Callable[[], float] = time.time,
) -> None:
    """Format `node` for the KRaft cluster that continues `cluster` (FormatterError when refused)."""
    adopt = _zookeeper_directories(node, cluster.cluster_id, options.ignore_formatted)

    def extra(release: MetadataVersionInfo) -> list[ApiMessageAndVersion]:
        try:
            return migration_records(cluster, release)
        except MigrationError as exc:
            raise FormatterError(str(exc)) from None

    format_storage(
        node,
        replace(options, cluster_id=cluster.cluster_id, adopt=adopt, extra_records=extra,
                ignore_formatted=True),
        out=out,
        clock=clock,
    )
    if node.is_controller:
        out(f"Bootstrap metadata from ZooKeeper: {len(cluster.topics)} topics, "
            f"{sum(len(parts) for _id, parts in cluster.topics.values())} partitions, "
            f"{len(cluster.configs)} config resources, {len(cluster.acls)} ACLs, "
            f"{len(cluster.scram)} SCRAM credentials, {len(cluster.quotas)} quota entities, "
            f"{len(cluster.tokens)} delegation tokens, next producer id {cluster.next_producer_id}.")
