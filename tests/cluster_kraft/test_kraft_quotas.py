"""Client quotas in KRaft mode: Kafka 4.4's kafka-configs alters them through a broker, which forwards
AlterClientQuotas to the controller; the controller appends ClientQuotaRecords (Kafka's own
kafka-dump-log decodes them from the metadata log), the broker's quota manager enforces what it replayed,
and kafka-configs describes them back from the broker."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from strom.cluster.kraft.quotas import quota_records, replayed_quotas
from strom.metadata.image import MetadataState
from strom.security.quotas.entities import QuotaEntity
from strom.testing.kraft_node import EmbeddedKRaftNode
from strom.testing.prerequisites import missing
from strom.testing.raft_quorum import wait_for

ALICE = QuotaEntity.of(user="alice")
DEFAULT_CLIENT = QuotaEntity.of(client_id=None)


def test_quota_records_replay_to_the_table_they_describe() -> None:
    state = MetadataState()
    first = quota_records({}, {ALICE: {"producer_byte_rate": 1024.0, "consumer_byte_rate": 2048.0},
                               DEFAULT_CLIENT: {"request_percentage": 50.0}})
    for offset, record in enumerate(first):
        state.replay(record, offset)
    assert replayed_quotas(state) == {
        ALICE: {"producer_byte_rate": 1024.0, "consumer_byte_rate": 2048.0},
        DEFAULT_CLIENT: {"request_percentage": 50.0},
    }
    # only what changes is written: one key removed, one changed, an entity dropped
    second = quota_records(
        replayed_quotas(state), {ALICE: {"producer_byte_rate": 4096.0}, DEFAULT_CLIENT: {}})
    assert sorted((r.message.key, r.message.remove) for r in second) == [
        ("consumer_byte_rate", True), ("producer_byte_rate", False), ("request_percentage", True)]
    for offset, record in enumerate(second, start=len(first)):
        state.replay(record, offset)
    assert replayed_quotas(state) == {ALICE: {"producer_byte_rate": 4096.0}}


@pytest.fixture(scope="module")
def node() -> Iterator[EmbeddedKRaftNode]:
    with EmbeddedKRaftNode() as node:
        yield node


def _kafka(main_class: str, *args: str) -> str:
    from benchmarks.peers import tools

    try:
        tools.ensure_tools()
    except Exception as exc:  # no network or no Java: the unit test above covers the records
        missing(f"Kafka's Java tools are not available: {exc}")
    done = subprocess.run(tools.java_command(main_class, *args), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_kafka_configs_quotas_live_in_the_metadata_log(node: EmbeddedKRaftNode) -> None:
    assert node.controller is not None and node.broker is not None
    bootstrap = node.bootstrap_servers
    broker = node.broker

    def configs(*args: str) -> str:
        return _kafka("org.apache.kafka.tools.ConfigCommand", "--bootstrap-server", bootstrap, *args)

    configs("--alter", "--add-config", "producer_byte_rate=1048576,consumer_byte_rate=2048",
            "--entity-type", "users", "--entity-name", "alice")
    # written by the controller, replayed by the broker into the table its quota manager enforces
    entity = (("user", "alice"),)
    assert node.controller.controller.state.client_quotas[entity] == {
        "producer_byte_rate": 1048576.0, "consumer_byte_rate": 2048.0}
    wait_for(lambda: broker.quotas.quotas.get(ALICE, {}).get("consumer_byte_rate") == 2048.0, 10,
             "the broker's quota manager to hold alice's quotas")
    described = configs("--describe", "--entity-type", "users", "--entity-name", "alice")
    assert "consumer_byte_rate=2048.0" in described and "producer_byte_rate=1048576.0" in described, described

    configs("--alter", "--delete-config", "consumer_byte_rate",
            "--entity-type", "users", "--entity-name", "alice")
    wait_for(lambda: broker.quotas.quotas.get(ALICE) == {"producer_byte_rate": 1048576.0}, 10,
             "the removal to reach the broker's quota manager")

    # Kafka's own decoder reads the records from the metadata log's segment
    segment = Path(node.data_dir) / "__cluster_metadata-0" / "00000000000000000000.log"
    dumped = _kafka("org.apache.kafka.tools.DumpLogSegments", "--cluster-metadata-decoder",
                    "--files", str(segment))
    quota_lines = [line for line in dumped.splitlines() if "CLIENT_QUOTA_RECORD" in line]
    assert len(quota_lines) == 3, dumped[-3000:]
    assert '"key":"consumer_byte_rate","value":0.0,"remove":true' in quota_lines[-1], quota_lines
