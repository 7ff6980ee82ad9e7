"""Unclean leader election and diverging-log truncation across kinds. Controllers 1-3, brokers 4 (Strom)
and 5 (Apache Kafka 4.4); a partition on both brokers, first led by A, then:

1. records produced with acks=all reach both replicas;
2. B is killed (-9), the ISR shrinks to A, and A takes records with acks=1 that B never sees;
3. A is killed, B comes back, and Kafka's kafka-leader-election --election-type unclean makes B leader
   (a new leader epoch whose log lacks A's tail);
4. B takes new records (acks=all: the ISR is B alone) at the offsets A's lost tail had;
5. A comes back as a follower, finds its log diverged (OffsetForLeaderEpoch / the diverging epoch in
   Fetch), truncates the tail that B never had, fetches B's records and rejoins the ISR.

Afterwards a consumer reads exactly the acks=all records and B's new ones (none of A's lost tail), and
below the high watermark both replicas hold the same batches byte for byte. Each direction (A Strom and
B Kafka, then A Kafka and B Strom) runs under Strom controllers and under Kafka controllers, and the
yardstick run has every node Apache Kafka."""

from __future__ import annotations

import struct

import pytest

from strom.testing.raft_quorum import wait_for
from tests.cluster_kraft.test_kraft_cluster import SETTINGS, consume, leaders, produce, topics_tool
from tests.cluster_mixed.mixed import MixedCluster
from tests.cluster_mixed.test_mixed_kraft import batches_below, high_watermarks
from tests.metadata.kafka_jars import kafka_run

confluent_kafka = pytest.importorskip("confluent_kafka")
pytestmark = [pytest.mark.slow, pytest.mark.cluster]

STROM, KAFKA = 4, 5
LAYOUTS = {"strom-controllers": {KAFKA}, "kafka-controllers": {1, 2, 3, KAFKA}, "all-kafka": {1, 2, 3, 4, 5}}
CLEAN, LOST, NEW = 100, 50, 30


def _produce_acks_one(cluster: MixedCluster, topic: str, n: int) -> None:
    """Records acknowledged by the leader alone (the ISR is the leader): the ones an unclean election
    loses."""
    producer = confluent_kafka.Producer(
        {"bootstrap.servers": cluster.bootstrap_servers, "acks": "1", "enable.idempotence": False}
    )
    errors: list[object] = []
    for i in range(n):
        producer.produce(topic, value=b"lost-%d" % i, on_delivery=lambda err, _m: err and errors.append(err))
    assert producer.flush(60) == 0 and not errors, errors


def _summary(cluster: MixedCluster, broker: int, topic: str) -> list[tuple[int, ...]]:
    return [
        (*struct.unpack_from(">q", b), struct.unpack_from(">i", b, 23)[0], struct.unpack_from(">i", b, 12)[0],
         len(b))
        for b in batches_below(cluster.data_dir(broker) / f"{topic}-0", 1 << 62)
    ]  # fmt: skip


def _log_lines(cluster: MixedCluster, broker: int, topic: str) -> str:
    lines = cluster.log_path(broker).read_text(errors="replace").splitlines()
    return f"broker {broker} log lines naming {topic}:\n" + "\n".join(
        line[:400] for line in lines if topic in line
    )[-6000:]


def _wait_state(cluster: MixedCluster, topic: str, leader: int, isr: list[int], what: str) -> None:
    wait_for(lambda: leaders(cluster, topic).get(0) == (leader, isr), 60, f"{topic}: {what}")


def _diverge_and_heal(cluster: MixedCluster, topic: str, first: int, second: int) -> None:
    topics_tool(cluster, "--create", "--topic", topic, "--replica-assignment", f"{first}:{second}",
                "--config", "min.insync.replicas=1")  # fmt: skip
    both = sorted((first, second))
    _wait_state(cluster, topic, first, both, f"{first} leads, both in the ISR")
    produce(cluster, topic, CLEAN)

    cluster.kill(second)
    _wait_state(cluster, topic, first, [first], f"the ISR shrinks to {first}")
    _produce_acks_one(cluster, topic, LOST)

    cluster.kill(first)
    cluster.start(second)
    wait_for(lambda: leaders(cluster, topic).get(0, (None,))[0] == -1, 30, f"{topic}: no leader")
    elected = kafka_run("org.apache.kafka.tools.LeaderElectionCommand", "--bootstrap-server",
                        cluster.bootstrap_servers, "--election-type", "unclean", "--topic", topic,
                        "--partition", "0")  # fmt: skip
    assert elected.returncode == 0, elected.stdout + elected.stderr
    assert "Successfully completed leader election (UNCLEAN)" in elected.stdout, elected.stdout
    _wait_state(cluster, topic, second, [second], f"{second} leads")
    produce(cluster, topic, NEW, start=CLEAN)

    cluster.start(first)
    _wait_state(cluster, topic, second, both, f"{first} rejoins the ISR")
    values = consume(cluster, topic, CLEAN + NEW)
    assert sorted(int(v) for v in values) == list(range(CLEAN + NEW)), values

    def replicas_agree() -> bool:
        hw = high_watermarks(cluster, topic, 1)[0]
        ours = batches_below(cluster.data_dir(first) / f"{topic}-0", hw)
        theirs = batches_below(cluster.data_dir(second) / f"{topic}-0", hw)
        return hw == CLEAN + NEW and bool(ours) and ours == theirs

    try:
        wait_for(replicas_agree, 30, f"{topic}: identical batches below the high watermark", interval=0.5)
    except TimeoutError:
        hw = high_watermarks(cluster, topic, 1)[0]
        raise AssertionError(
            f"high watermark {hw}; batches (base offset, last offset delta, leader epoch, size):\n"
            f"{first}: {_summary(cluster, first, topic)}\n{second}: {_summary(cluster, second, topic)}\n"
            + "\n".join(_log_lines(cluster, b, topic) for b in (first, second))
        ) from None
    # the truncated tail is gone from the old leader's files too, not just hidden below the high watermark
    tail = b"".join(batches_below(cluster.data_dir(first) / f"{topic}-0", 1 << 62))
    assert b"lost-" not in tail


@pytest.mark.parametrize("kafka", list(LAYOUTS.values()), ids=list(LAYOUTS))
def test_unclean_election_truncates_the_old_leader_of_either_kind(kafka: set[int]) -> None:
    with MixedCluster(controllers=3, brokers=2, kafka=kafka, settings=SETTINGS) as cluster:
        cluster.start_all()
        _diverge_and_heal(cluster, "strom-then-kafka", STROM, KAFKA)
        _diverge_and_heal(cluster, "kafka-then-strom", KAFKA, STROM)
