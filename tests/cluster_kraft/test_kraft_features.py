"""ApiVersions on KRaft nodes reports the finalized levels of the metadata log (metadata.version included)
with the log's offset as the epoch, as Kafka 4.4's FeaturesImage does: Kafka's kafka-features describe
reads them through a broker and through a controller."""

from __future__ import annotations

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
