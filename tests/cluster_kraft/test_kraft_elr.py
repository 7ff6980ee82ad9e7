"""Eligible leader replicas (KIP-966) in a KRaft cluster of Strom controllers and brokers, seen through
Kafka 4.4's tools. Controllers 1-3, brokers 4-7; a partition on 4, 5, 6 with min.insync.replicas=2:

1. `kafka-storage format`'s default for 4.4 finalizes eligible.leader.replicas.version 1
   (kafka-features describe), and the controller wrote the cluster-level min.insync.replicas it needs; a
   broker-level one is refused (kafka-configs);
2. 6 stops cleanly: the ISR (4, 5) still meets min ISR, no ELR;
3. 5 is killed: the ISR (4) is below min ISR, 5 joins the ELR (kafka-topics --describe "Elr: 5");
4. 4 stops cleanly: the ISR empties, the partition has no leader, the ELR is 4,5 and the last known ELR
   (the last leader) 4;
5. 5 comes back after its crash: it leaves the ELR (its log may have lost its tail) and may not lead;
6. 4 comes back after its clean stop (it names the broker epoch its clean-shutdown marker holds): it is
   elected from the ELR, alone in the ISR (until 5 catches up), and every acknowledged record is there;
7. 5 and 6 catch up: the ISR is whole again and the ELR empty.
"""

from __future__ import annotations

import re

import pytest

from strom.testing.kraft_cluster import KRaftCluster
from strom.testing.raft_quorum import wait_for
from tests.cluster_kraft.test_kraft_cluster import SETTINGS, consume, leaders, produce, topics_tool
from tests.metadata.kafka_jars import kafka_run

pytest.importorskip("confluent_kafka")
pytestmark = [pytest.mark.slow, pytest.mark.cluster]

TOPIC = "elr"
RECORDS = 50


def describe(cluster: KRaftCluster) -> dict[str, str]:
    """kafka-topics --describe's fields of partition 0 (Leader, Isr, Elr, LastKnownElr, ...)."""
    out = topics_tool(cluster, "--describe", "--topic", TOPIC)
    line = next(line for line in out.splitlines() if "Partition: 0" in line)
    return dict(re.findall(r"(\w+): ([^\t]*)", line))


def wait_describe(cluster: KRaftCluster, what: str, **expected: str) -> dict[str, str]:
    seen: dict[str, str] = {}

    def matches() -> bool:
        nonlocal seen
        seen = describe(cluster)
        return all(seen.get(k) == v for k, v in expected.items())

    try:
        wait_for(matches, 60, what, interval=0.5)
    except TimeoutError:
        raise AssertionError(f"{what}: expected {expected}, kafka-topics shows {seen}") from None
    return seen


def elr_scenario(cluster: KRaftCluster) -> None:
    """The steps above on a started cluster of 3 controllers and 4 brokers (of either kind)."""
    a, b, c, spare = cluster.broker_ids
    features = kafka_run(
        "org.apache.kafka.tools.FeatureCommand", "--bootstrap-server", cluster.bootstrap_servers,
        "describe",
    )  # fmt: skip
    assert features.returncode == 0, features.stderr[-2000:]
    elr_line = next(line for line in features.stdout.splitlines() if "eligible.leader.replicas" in line)
    assert "FinalizedVersionLevel: 1" in elr_line, features.stdout
    configs = kafka_run(
        "org.apache.kafka.tools.ConfigCommand", "--bootstrap-server", cluster.bootstrap_servers,
        "--describe", "--entity-type", "brokers", "--entity-default",
    )  # fmt: skip
    assert "min.insync.replicas=1" in configs.stdout, configs.stdout + configs.stderr
    refused = kafka_run(
        "org.apache.kafka.tools.ConfigCommand", "--bootstrap-server", cluster.bootstrap_servers,
        "--alter", "--entity-type", "brokers", "--entity-name", str(spare),
        "--add-config", "min.insync.replicas=2",
    )  # fmt: skip
    assert refused.returncode != 0
    assert "Broker-level min.insync.replicas cannot be altered while ELR is enabled" in (
        refused.stdout + refused.stderr
    ), refused.stdout + refused.stderr

    topics_tool(cluster, "--create", "--topic", TOPIC, "--replica-assignment", f"{a}:{b}:{c}",
                "--config", "min.insync.replicas=2")  # fmt: skip
    wait_for(lambda: leaders(cluster, TOPIC).get(0) == (a, [a, b, c]), 60, "all three in the ISR")
    produce(cluster, TOPIC, RECORDS)

    cluster.stop(c)
    seen = wait_describe(cluster, "the ISR shrinks to min ISR", Leader=str(a), Isr=f"{a},{b}")
    assert seen["Elr"] == "" and seen["LastKnownElr"] == "", seen

    cluster.kill(b)
    wait_describe(cluster, f"{b} joins the ELR", Leader=str(a), Isr=str(a), Elr=str(b))

    cluster.stop(a)
    wait_describe(
        cluster, "no ISR, no leader", Leader="none", Isr="", Elr=f"{a},{b}", LastKnownElr=str(a)
    )

    cluster.start(b)  # after a crash: out of the ELR, and no leader
    wait_describe(cluster, f"{b} leaves the ELR", Leader="none", Isr="", Elr=str(a))

    cluster.start(a)  # after a clean stop: elected from the ELR
    # the ISR is 4 alone, until 5 catches up again
    seen = wait_describe(cluster, f"{a} is elected from the ELR", Leader=str(a), Elr="")
    assert seen["Isr"] in (str(a), f"{a},{b}"), seen
    values = consume(cluster, TOPIC, RECORDS)
    assert sorted(int(v) for v in values) == list(range(RECORDS))

    cluster.start(c)
    seen = wait_describe(cluster, "the ISR is whole again", Leader=str(a), Isr=f"{a},{b},{c}")
    assert seen["Elr"] == "" and seen["LastKnownElr"] == "", seen


def test_elr_member_returning_after_a_clean_stop_is_elected() -> None:
    with KRaftCluster(controllers=3, brokers=4, settings=SETTINGS) as cluster:
        cluster.start_all()
        elr_scenario(cluster)
