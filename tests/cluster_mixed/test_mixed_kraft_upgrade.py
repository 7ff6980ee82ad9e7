"""KIP-853's static-to-dynamic quorum upgrade across kinds: three voters from controller.quorum.voters
(kraft.version 0) run `kafka-features upgrade --feature kraft.version=1`. The Kafka voters tell the leader
their directory ids and endpoints with UpdateRaftVoter (KAFKA-16538), and the leader writes them, with
the KRaftVersionRecord, into the first VotersRecord. Under a Strom leader (two Kafka voters) and under a
Kafka leader (one Strom voter), and with every node Kafka (the yardstick): every voter reports
kraft.version 1, `kafka-metadata-quorum describe` names every voter's directory id, the voters hold the
same metadata log byte for byte, and the quorum elects a new leader and takes writes after kill -9 of
the old one. (A restarted voter's level after the upgrade is tested on the Raft core:
tests/raft/test_kraft_version_upgrade.py.)"""

from __future__ import annotations

import json
import re

import pytest

from strom.testing.raft_quorum import wait_for
from tests.cluster_kraft.test_kraft_cluster import SETTINGS, consume, produce, topics_tool
from tests.cluster_mixed.mixed import MixedCluster
from tests.cluster_mixed.test_mixed_kraft import _election_timeout, metadata_logs_agree

pytest.importorskip("confluent_kafka")
pytestmark = [pytest.mark.slow, pytest.mark.cluster]

# (Kafka nodes, the voter that should lead first); nodes 1-3 are controllers, 4 and 5 brokers
LAYOUTS = {
    "strom-leader": ({1, 2, 4}, 3),
    "kafka-leader": ({1, 2, 4}, 1),
    "all-kafka": ({1, 2, 3, 4, 5}, 1),
}


def _tool(cluster: MixedCluster, node_id: int, main: str, *args: str) -> tuple[int, str]:
    from tests.metadata.kafka_jars import kafka_run

    port = cluster.controller_ports[node_id]
    proc = kafka_run(main, "--bootstrap-controller", f"127.0.0.1:{port}", *args)
    return proc.returncode, proc.stdout + proc.stderr


_LAST_DESCRIBE: dict[int, tuple[int, str]] = {}


def _kraft_level(cluster: MixedCluster, node_id: int) -> str | None:
    code, out = _tool(cluster, node_id, "org.apache.kafka.tools.FeatureCommand", "describe")
    _LAST_DESCRIBE[node_id] = (code, out)
    found = re.search(r"Feature: kraft\.version\s.*?FinalizedVersionLevel: (\S+)", out)
    return found.group(1) if code == 0 and found else None


def _upgraded(cluster: MixedCluster, leader: int) -> bool:
    # refused (INVALID_UPDATE_VERSION) until every voter has told the leader its directory id
    code, _ = _tool(
        cluster, leader, "org.apache.kafka.tools.FeatureCommand", "upgrade", "--feature", "kraft.version=1"
    )
    return code == 0


def _wait_level(cluster: MixedCluster, node_id: int, who: str) -> None:
    try:
        wait_for(lambda: _kraft_level(cluster, node_id) == "1", 60, f"kraft.version 1 on {who}")
    except TimeoutError as exc:
        described = f"last attempt: {_LAST_DESCRIBE.get(node_id)}\nnow: " + repr(
            _tool(cluster, node_id, "org.apache.kafka.tools.FeatureCommand", "describe")
        )
        tail = cluster.log_path(node_id).read_text(errors="replace")[-5000:]
        raise AssertionError(f"{exc}\nkafka-features describe:\n{described}\nits log ends:\n{tail}") from None


@pytest.mark.parametrize("layout", list(LAYOUTS), ids=list(LAYOUTS))
def test_a_static_quorum_upgrades_to_kraft_version_1(layout: str) -> None:
    kafka, first = LAYOUTS[layout]
    with MixedCluster(controllers=3, brokers=2, kafka=kafka, settings=SETTINGS) as cluster:
        for voter in cluster.controller_ids:
            _election_timeout(cluster, voter, 300 if voter == first else 3000)
        cluster.start_all()
        leader, epoch = wait_for(cluster.active_controller, 30, "an active controller")
        assert leader == first, f"voter {first} should lead first, not {leader}"
        assert _kraft_level(cluster, leader) == "0"

        wait_for(lambda: _upgraded(cluster, leader), 60, "kraft.version 1", interval=1.0)
        for voter in cluster.controller_ids:
            _wait_level(cluster, voter, f"voter {voter}")
        code, out = _tool(
            cluster, leader, "org.apache.kafka.tools.MetadataQuorumCommand", "describe", "--status"
        )
        assert code == 0, out
        voters = json.loads(
            next(line.split(":", 1)[1] for line in out.splitlines() if line.startswith("CurrentVoters:"))
        )
        assert sorted(v["id"] for v in voters) == cluster.controller_ids
        assert all(v["directoryId"] != "AAAAAAAAAAAAAAAAAAAAAA" for v in voters), voters
        assert all(v["endpoints"][0].startswith("CONTROLLER://") for v in voters), voters
        wait_for(lambda: metadata_logs_agree(cluster), 30, "identical metadata logs", interval=0.5)

        # the dynamic quorum goes on without its first leader
        topics_tool(cluster, "--create", "--topic", "up", "--partitions", "1", "--replication-factor", "1")
        produce(cluster, "up", 50)
        cluster.kill(leader)
        wait_for(lambda: (cluster.active_controller() or (leader, epoch))[1] > epoch, 60, "a new leader")
        successor, _ = wait_for(cluster.active_controller, 10, "the new active controller")
        assert successor != leader
        assert _kraft_level(cluster, successor) == "1"
        topics_tool(cluster, "--create", "--topic", "after", "--partitions", "1", "--replication-factor", "1")
        produce(cluster, "up", 50, start=50)
        assert sorted(int(v) for v in consume(cluster, "up", 100)) == list(range(100))
        wait_for(lambda: metadata_logs_agree(cluster), 30, "identical metadata logs", interval=0.5)
