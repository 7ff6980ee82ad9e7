"""KRaft snapshots written by Strom (KIP-630): a node writes `<end offset>-<epoch>.checkpoint` once
`metadata.log.max.record.bytes.between.snapshots` bytes were replayed, deletes the segments below it
once `metadata.max.retention.bytes` is exceeded (1 byte here, so at once), and on restart loads the
snapshot then the log; Kafka 4.4's `kafka-dump-log --cluster-metadata-decoder` reads
the snapshot file."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from strom.metadata.snapshot import CLUSTER_METADATA_DIR
from strom.testing.kraft_cluster import KRaftCluster
from strom.testing.raft_quorum import wait_for

confluent_kafka = pytest.importorskip("confluent_kafka")
pytestmark = pytest.mark.slow

SETTINGS = {
    "metadata.log.max.record.bytes.between.snapshots": "2000",
    "metadata.log.segment.ms": "300",
    "metadata.max.idle.interval.ms": "100",
    "metadata.max.retention.bytes": "1",
    "offsets.topic.replication.factor": "1",
    "offsets.topic.num.partitions": "1",
}
_SNAPSHOT = re.compile(r"^(\d{20})-(\d{10})\.checkpoint$")


def snapshots(cluster: KRaftCluster, node_id: int) -> list[Path]:
    directory = cluster.data_dir(node_id) / CLUSTER_METADATA_DIR
    return sorted(p for p in directory.iterdir() if _SNAPSHOT.match(p.name))


def segments(cluster: KRaftCluster, node_id: int) -> list[str]:
    return sorted(p.name for p in (cluster.data_dir(node_id) / CLUSTER_METADATA_DIR).glob("*.log"))


def topics(cluster: KRaftCluster) -> dict[str, int]:
    from confluent_kafka.admin import AdminClient

    listed = AdminClient({"bootstrap.servers": cluster.bootstrap_servers}).list_topics(timeout=10).topics
    return {name: len(meta.partitions) for name, meta in listed.items() if name.startswith("snap-")}


def test_snapshot_cleaning_restart_and_kafkas_decoder() -> None:
    from confluent_kafka.admin import AdminClient, NewTopic

    from tests.metadata.kafka_jars import dump_cluster_metadata

    with KRaftCluster(combined=1, settings=SETTINGS) as cluster:
        cluster.start_all()
        admin = AdminClient({"bootstrap.servers": cluster.bootstrap_servers})
        wanted = {f"snap-{i}": i + 1 for i in range(6)}
        futures = admin.create_topics(
            [NewTopic(name, n, 1, config={"retention.ms": "12345"}) for name, n in wanted.items()]
        )
        for future in futures.values():
            future.result(timeout=60)
        wait_for(lambda: topics(cluster) == wanted, 30, "the topics")

        def cleaned() -> bool:
            found = snapshots(cluster, 1)
            return (
                len(found) == 1
                and int(_SNAPSHOT.match(found[0].name).group(1)) > 0  # type: ignore[union-attr]
                and "00000000000000000000.log" not in segments(cluster, 1)
            )

        wait_for(cleaned, 60, "a snapshot and the log below it deleted")
        assert cluster.stop(1) == 0
        snapshot = snapshots(cluster, 1)[-1]
        end_offset = int(_SNAPSHOT.match(snapshot.name).group(1))  # type: ignore[union-attr]
        first_segment = int(segments(cluster, 1)[0][:20])
        assert first_segment <= end_offset

        decoded = dump_cluster_metadata(snapshot)
        kinds = [kind for kind, _ in decoded.values()]
        assert kinds[0] == "SnapshotHeader" and kinds[-1] == "SnapshotFooter", kinds
        assert {"FEATURE_LEVEL_RECORD", "REGISTER_BROKER_RECORD", "TOPIC_RECORD", "PARTITION_RECORD"} <= set(
            kinds
        )
        names = {data["name"] for kind, data in decoded.values() if kind == "TOPIC_RECORD"}
        assert set(wanted) <= names
        configs = {
            (data["resourceName"], data["name"]): data["value"]
            for kind, data in decoded.values()
            if kind == "CONFIG_RECORD"
        }
        assert configs[("snap-0", "retention.ms")] == "12345"

        # the records below the snapshot are gone: the restarted node can only know the topics from it
        cluster.start(1)
        wait_for(lambda: topics(cluster) == wanted, 30, "the topics after the restart")
        described = admin.describe_configs([confluent_kafka.admin.ConfigResource("topic", "snap-3")])
        config = next(iter(described.values())).result(timeout=30)
        assert config["retention.ms"].value == "12345"


def test_a_replica_behind_the_cleaned_log_fetches_the_snapshot() -> None:
    from confluent_kafka.admin import AdminClient, NewTopic

    settings = {
        **SETTINGS,
        "controller.quorum.election.timeout.ms": "1000",
        "controller.quorum.fetch.timeout.ms": "2000",
        "broker.session.timeout.ms": "3000",
        "broker.heartbeat.interval.ms": "500",
    }
    with KRaftCluster(combined=3, settings=settings) as cluster:
        cluster.start_all()
        active, _epoch = wait_for(cluster.active_controller, 15, "an active controller")
        behind = next(i for i in cluster.controller_ids if i != active)
        cluster.kill(behind)
        admin = AdminClient({"bootstrap.servers": cluster.bootstrap_servers})
        # until the controller fences it, Metadata may still name the dead node as the controller
        wait_for(lambda: behind not in admin.list_topics(timeout=10).brokers, 30, f"node {behind} fenced")
        wanted = {f"snap-{i}": 1 for i in range(4)}
        for future in admin.create_topics([NewTopic(name, 1, 2) for name in wanted]).values():
            future.result(timeout=60)
        # the live nodes snapshot and clean past everything the stopped one has
        behind_end = sum(
            p.stat().st_size for p in (cluster.data_dir(behind) / CLUSTER_METADATA_DIR).glob("*.log")
        )
        assert behind_end > 0
        wait_for(
            lambda: all(
                "00000000000000000000.log" not in segments(cluster, i) and len(snapshots(cluster, i)) == 1
                for i in cluster.controller_ids
                if i != behind
            ),
            60,
            "the live nodes to clean their logs",
        )
        cluster.start(behind)
        wait_for(
            lambda: any(int(p.name[:20]) > 0 for p in snapshots(cluster, behind)),
            60,
            "the restarted node to install the leader's snapshot",
        )
        only = AdminClient({"bootstrap.servers": f"127.0.0.1:{cluster.broker_ports[behind]}"})
        wait_for(
            lambda: set(wanted) <= set(only.list_topics(timeout=10).topics),
            30,
            "the topics on the restarted node",
        )
