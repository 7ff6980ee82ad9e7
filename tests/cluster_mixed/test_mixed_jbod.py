"""A Kafka 4.4 broker with two log directories (JBOD, KIP-858) under a Strom controller: the controller
places new replicas in no directory (it cannot know which), the Kafka broker picks one for each and tells
the controller with AssignReplicasToDirs, and the controller records it in PartitionChangeRecords, which
Kafka's own kafka-dump-log reads back from the Strom controller's metadata log. Records produced to the
topic are consumed back."""

from __future__ import annotations

import uuid

import pytest

from benchmarks.peers.brokers import format_kafka_storage
from strom.metadata.snapshot import CLUSTER_METADATA_DIR
from strom.testing.raft_quorum import wait_for
from tests.cluster_kraft.test_kraft_cluster import SETTINGS, consume, produce, topics_tool
from tests.cluster_mixed.mixed import MixedCluster
from tests.metadata.kafka_jars import dump_cluster_metadata

pytest.importorskip("confluent_kafka")
pytestmark = [pytest.mark.slow, pytest.mark.cluster]

UNASSIGNED = "AAAAAAAAAAAAAAAAAAAAAA"  # Uuid.ZERO_UUID as kafka-dump-log prints it


def test_a_jbod_kafka_broker_assigns_its_replicas_directories() -> None:
    settings = {**SETTINGS, "offsets.topic.replication.factor": "1"}
    with MixedCluster(controllers=1, brokers=1, kafka={2}, settings=settings) as cluster:
        # node 2, the Kafka broker, gets two log directories and is formatted again with them
        config = cluster.config_path(2)
        dirs = [cluster.data_dir(2) / "a", cluster.data_dir(2) / "b"]
        joined = ",".join(map(str, dirs))
        text = config.read_text().replace(f"log.dirs={cluster.data_dir(2)}", f"log.dirs={joined}")
        config.write_text(text)
        format_kafka_storage(config, cluster.cluster_id)
        cluster.start_all()
        topic = f"jbod-{uuid.uuid4().hex[:6]}"
        topics_tool(cluster, "--create", "--topic", topic, "--partitions", "4", "--replication-factor", "1")
        produce(cluster, topic, 40)
        assert sorted(consume(cluster, topic, 40)) == sorted(b"%d" % i for i in range(40))

        log = cluster.data_dir(1) / CLUSTER_METADATA_DIR / "00000000000000000000.log"

        def assigned() -> dict[int, str]:
            out: dict[int, str] = {}
            for _offset, (kind, data) in sorted(dump_cluster_metadata(log).items()):
                if kind in ("PARTITION_RECORD", "PARTITION_CHANGE_RECORD") and data.get("directories"):
                    out[data["partitionId"]] = data["directories"][0]
            return out

        wait_for(lambda: len(assigned()) == 4 and UNASSIGNED not in assigned().values(), 60,
                 "every partition's directory to be assigned")
        # the directories are the broker's own (its meta.properties directory.id of a or b)
        ids = {d.name: d.joinpath("meta.properties").read_text() for d in dirs}
        for directory in assigned().values():
            assert any(f"directory.id={directory}" in props for props in ids.values()), (directory, ids)
