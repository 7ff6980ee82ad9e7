"""ApiVersions on KRaft nodes reports the finalized levels of the metadata log (metadata.version included)
with the log's offset as the epoch, as Kafka 4.4's FeaturesImage does: Kafka's kafka-features describe
reads them through a broker and through a controller."""

from __future__ import annotations

import json
import re

from strom.metadata.features import finalized_features, supported_features
from strom.testing.kraft_node import EmbeddedKRaftNode


def test_levels() -> None:
    assert supported_features()["metadata.version"][0] == 7
    assert finalized_features({"metadata.version": 33, "group.version": 0}, 1) == {
        "kraft.version": 1,
        "metadata.version": 33,
    }


def _describe(*bootstrap: str) -> dict[str, dict[str, str]]:
    from tests.metadata.kafka_jars import kafka_run

    proc = kafka_run("org.apache.kafka.tools.FeatureCommand", *bootstrap, "describe")
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = {}
    for line in proc.stdout.splitlines():
        fields = dict(re.findall(r"(\w+): (\S+)", line))
        if "Feature" in fields:
            rows[fields.pop("Feature")] = fields
    return rows


def test_kafka_features_describe_reads_the_metadata_log() -> None:
    with EmbeddedKRaftNode() as node:
        for bootstrap in (
            ("--bootstrap-server", node.bootstrap_servers),
            ("--bootstrap-controller", node.bootstrap_controllers),
        ):
            rows = _describe(*bootstrap)
            assert rows["metadata.version"]["FinalizedVersionLevel"] == "4.4-IV2"
            assert rows["metadata.version"]["SupportedMinVersion"] == "3.3-IV3"
            assert rows["transaction.version"]["FinalizedVersionLevel"] == "2"
            assert rows["kraft.version"]["FinalizedVersionLevel"] == "0"  # static voters
            assert int(rows["metadata.version"]["Epoch"]) > 0


def test_kafka_features_upgrades_kraft_version_to_a_dynamic_quorum() -> None:
    """KIP-853's static-to-dynamic upgrade with Kafka's own tool: `kafka-features upgrade --feature
    kraft.version=1` through the controller listener; afterwards the quorum is described with the voter's
    directory id and endpoint, as a dynamic quorum is."""
    from tests.metadata.kafka_jars import kafka_run

    with EmbeddedKRaftNode() as node:
        controller = ("--bootstrap-controller", node.bootstrap_controllers)
        dry = kafka_run(
            "org.apache.kafka.tools.FeatureCommand",
            *controller,
            "upgrade",
            "--feature",
            "kraft.version=1",
            "--dry-run",
        )
        assert dry.returncode == 0, dry.stderr[-2000:]
        assert _describe(*controller)["kraft.version"]["FinalizedVersionLevel"] == "0"
        done = kafka_run(
            "org.apache.kafka.tools.FeatureCommand", *controller, "upgrade", "--feature", "kraft.version=1"
        )
        assert done.returncode == 0, done.stderr[-2000:]
        assert "kraft.version was upgraded to 1." in done.stdout
        for bootstrap in (controller, ("--bootstrap-server", node.bootstrap_servers)):
            assert _describe(*bootstrap)["kraft.version"]["FinalizedVersionLevel"] == "1"
        quorum = kafka_run(
            "org.apache.kafka.tools.MetadataQuorumCommand", *controller, "describe", "--replication"
        )
        assert quorum.returncode == 0, quorum.stderr[-2000:]
        status = kafka_run(
            "org.apache.kafka.tools.MetadataQuorumCommand", *controller, "describe", "--status"
        )
        voters = json.loads(
            next(
                line.split(":", 1)[1]
                for line in status.stdout.splitlines()
                if line.startswith("CurrentVoters:")
            )
        )
        assert [v["id"] for v in voters] == [1] and voters[0]["endpoints"][0].startswith("CONTROLLER://")
        directory_id = voters[0]["directoryId"]
        assert directory_id != "AAAAAAAAAAAAAAAAAAAAAA" and directory_id in quorum.stdout
        again = kafka_run(
            "org.apache.kafka.tools.FeatureCommand", *controller, "downgrade", "--feature", "kraft.version=0"
        )
        assert again.returncode != 0
        assert "Can't downgrade the version of this feature." in again.stdout + again.stderr
