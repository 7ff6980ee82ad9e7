"""The eligible.leader.replicas.version feature (KIP-966) through Kafka 4.4's kafka-features and
kafka-configs on one KRaft node: finalized at 1 from formatting, with the cluster-level
min.insync.replicas the controller wrote at bootstrap; a broker-level min.insync.replicas refused while it
is on and allowed once it is disabled; enabling it again removes the broker-level value, as Kafka's
maybeGenerateElrSafetyRecords does."""

from __future__ import annotations

import re

import pytest

from strom.testing.kraft_node import EmbeddedKRaftNode
from tests.metadata.kafka_jars import kafka_run

pytestmark = pytest.mark.slow

ELR = "eligible.leader.replicas.version"


def finalized(bootstrap: str) -> str:
    proc = kafka_run("org.apache.kafka.tools.FeatureCommand", "--bootstrap-server", bootstrap, "describe")
    assert proc.returncode == 0, proc.stderr[-2000:]
    match = re.search(rf"Feature: {re.escape(ELR)}\s.*FinalizedVersionLevel: (\S+)", proc.stdout)
    assert match, proc.stdout
    return match.group(1)


def configs(bootstrap: str, *args: str) -> tuple[int, str]:
    proc = kafka_run("org.apache.kafka.tools.ConfigCommand", "--bootstrap-server", bootstrap, *args)
    return proc.returncode, proc.stdout + proc.stderr


def test_elr_feature_and_min_isr_configs() -> None:
    with EmbeddedKRaftNode() as node:
        bootstrap = node.bootstrap_servers
        assert finalized(bootstrap) == "1"
        code, out = configs(bootstrap, "--describe", "--entity-type", "brokers", "--entity-default")
        assert code == 0 and "min.insync.replicas=1" in out, out
        set_broker = ("--alter", "--entity-type", "brokers", "--entity-name", "1",
                      "--add-config", "min.insync.replicas=2")  # fmt: skip
        code, out = configs(bootstrap, *set_broker)
        assert code != 0 and "Broker-level min.insync.replicas cannot be altered while ELR is enabled" in out
        code, out = configs(bootstrap, "--alter", "--entity-type", "brokers", "--entity-default",
                            "--delete-config", "min.insync.replicas")  # fmt: skip
        assert code != 0 and "Cluster-level min.insync.replicas cannot be removed while ELR is enabled" in out

        proc = kafka_run("org.apache.kafka.tools.FeatureCommand", "--bootstrap-server", bootstrap,
                         "disable", "--feature", ELR)  # fmt: skip
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert finalized(bootstrap) == "0"
        code, out = configs(bootstrap, *set_broker)
        assert code == 0, out
        code, out = configs(bootstrap, "--describe", "--entity-type", "brokers", "--entity-name", "1")
        assert "min.insync.replicas=2" in out, out

        proc = kafka_run("org.apache.kafka.tools.FeatureCommand", "--bootstrap-server", bootstrap,
                         "upgrade", "--feature", f"{ELR}=1")  # fmt: skip
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert finalized(bootstrap) == "1"
        code, out = configs(bootstrap, "--describe", "--entity-type", "brokers", "--entity-name", "1")
        assert code == 0 and "min.insync.replicas" not in out, out
