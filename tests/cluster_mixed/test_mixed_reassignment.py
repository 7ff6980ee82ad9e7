"""Partition reassignment across kinds, one controller (node 1) and brokers 2 and 3. Kafka 4.4's
kafka-reassign-partitions moves a partition with acks=all data from broker 2 to broker 3: broker 3 fetches
it, joins the ISR through AlterPartition, the controller completes the move (3 leads), broker 2 drops its
log, and every record is consumed back from broker 3. Two layouts: a Strom controller with a Strom broker
2 and an Apache Kafka broker 3 (Kafka's broker follows a Strom leader and the Strom controller's
reassignment records), and a Kafka controller over two Strom brokers (Strom's brokers forward the
reassignment APIs to Kafka's controller and act on its records)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from strom.testing.raft_quorum import wait_for
from tests.cluster_kraft.test_kraft_cluster import SETTINGS, consume, produce, topics_tool
from tests.cluster_kraft.test_kraft_reassignments import layout
from tests.cluster_mixed.mixed import MixedCluster
from tests.metadata.kafka_jars import kafka_run

pytest.importorskip("confluent_kafka")
pytestmark = [pytest.mark.slow, pytest.mark.cluster]


LAYOUTS = {"kafka-broker-under-a-strom-controller": {3}, "strom-brokers-under-a-kafka-controller": {1}}


@pytest.mark.parametrize("kafka", list(LAYOUTS.values()), ids=list(LAYOUTS))
def test_a_partition_moves_between_kinds(kafka: set[int], tmp_path: Path) -> None:
    with MixedCluster(controllers=1, brokers=2, kafka=kafka, settings=SETTINGS) as cluster:
        cluster.start_all()
        topics_tool(cluster, "--create", "--topic", "across", "--replica-assignment", "2")
        wait_for(lambda: layout(cluster, "across") == (2, [2], [2]), 30, "the partition on broker 2")
        produce(cluster, "across", 2000)
        plan = tmp_path / "plan.json"
        plan.write_text(
            json.dumps({"version": 1, "partitions": [{"topic": "across", "partition": 0, "replicas": [3]}]})
        )
        executed = kafka_run(
            "org.apache.kafka.tools.reassign.ReassignPartitionsCommand",
            "--bootstrap-server",
            cluster.bootstrap_servers,
            "--execute",
            "--reassignment-json-file",
            str(plan),
        )
        assert executed.returncode == 0, executed.stdout + executed.stderr
        assert "Successfully started partition reassignment for across-0" in executed.stdout
        wait_for(lambda: layout(cluster, "across") == (3, [3], [3]), 60, "the move to broker 3")
        wait_for(lambda: not (cluster.data_dir(2) / "across-0").exists(), 30, "broker 2 to drop its log")
        # the only replica is broker 3's: every record comes from it
        assert sorted(int(v) for v in consume(cluster, "across", 2000)) == list(range(2000))
