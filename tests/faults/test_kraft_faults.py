"""Faults on a KRaft cluster of Strom processes, judged by the history checker of strom.testing.history.

- An acks=all idempotent producer writes without pause through kill -9 of a partition leader and of the
  active controller (three combined nodes): the quorum elects a new active controller within the fetch
  timeout (when followers notice the leader is gone) plus an election timeout plus a little, the producer
  keeps being acknowledged, and afterwards no acknowledged record is lost, none is duplicated and every
  partition is in send order.
- A corrupt `__cluster_metadata` segment tail is truncated when the node recovers its log, like any log.
- A metadata record of a version this Strom cannot read stops the node with one clear line on stderr
  instead of applying half a record (Kafka's fatal fault handler).
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest

from strom.metadata.batches import build_encoded_batch
from strom.metadata.records import TopicRecord
from strom.metadata.serde import encode_metadata_record
from strom.metadata.snapshot import CLUSTER_METADATA_DIR
from strom.raft.metadata_log import MetadataLog
from strom.testing.history import History, check
from strom.testing.kraft_cluster import KRaftCluster
from strom.testing.raft_quorum import wait_for

confluent_kafka = pytest.importorskip("confluent_kafka")
pytestmark = pytest.mark.slow

ELECTION_TIMEOUT_MS = 1000
FETCH_TIMEOUT_MS = 2000
SETTINGS = {
    "broker.session.timeout.ms": "3000",
    "broker.heartbeat.interval.ms": "500",
    "controller.quorum.election.timeout.ms": str(ELECTION_TIMEOUT_MS),
    "controller.quorum.fetch.timeout.ms": str(FETCH_TIMEOUT_MS),
    "offsets.topic.replication.factor": "1",
    "offsets.topic.num.partitions": "2",
}
TOPIC = "history"
PARTITIONS = 3


def layout(cluster: KRaftCluster, topic: str) -> dict[int, tuple[int, list[int]]]:
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": cluster.bootstrap_servers})
    meta = admin.list_topics(topic, timeout=10).topics[topic]
    return {p: (m.leader, sorted(m.isrs)) for p, m in meta.partitions.items()}


def create_topic(cluster: KRaftCluster, topic: str, partitions: int, rf: int, **configs: str) -> None:
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": cluster.bootstrap_servers})
    futures = admin.create_topics([NewTopic(topic, partitions, rf, config=configs)], operation_timeout=30)
    futures[topic].result(timeout=60)


def full_isrs(cluster: KRaftCluster) -> bool:
    try:
        found = layout(cluster, TOPIC)
    except Exception:  # a broker that is starting answers with errors for a moment
        return False
    return len(found) == PARTITIONS and all(len(isr) == 3 and leader >= 0 for leader, isr in found.values())


def test_idempotent_producer_through_kill_9_of_leaders_and_the_active_controller() -> None:
    from strom.testing.history_clients import HistoryProducer, read_back

    with KRaftCluster(combined=3, settings=SETTINGS) as cluster:
        cluster.start_all()
        create_topic(cluster, TOPIC, PARTITIONS, 3, **{"min.insync.replicas": "2"})
        wait_for(lambda: full_isrs(cluster), 60, "full ISRs")
        history = History()
        producer = HistoryProducer(cluster.bootstrap_servers, TOPIC, PARTITIONS, history)
        producer.start()
        try:
            wait_for(lambda: producer.acked > 200, 60, "acknowledgements before the kills")

            # kill -9 of a partition leader that is not the active controller
            active, _epoch = wait_for(cluster.active_controller, 15, "an active controller")
            leader = next(
                (lead for lead, _isr in layout(cluster, TOPIC).values() if lead != active),
                layout(cluster, TOPIC)[0][0],
            )
            before = producer.acked
            cluster.kill(leader)
            wait_for(lambda: producer.acked > before + 200, 60, f"acknowledgements with node {leader} dead")
            cluster.start(leader)
            wait_for(lambda: full_isrs(cluster), 60, f"full ISRs after node {leader} came back")

            # kill -9 of the active controller
            active, epoch = wait_for(cluster.active_controller, 15, "an active controller")
            survivors = [i for i in cluster.controller_ids if i != active]
            before = producer.acked
            killed = time.monotonic()
            cluster.kill(active)
            new, new_epoch = wait_for(lambda: cluster.active_controller(survivors), 20, "a new controller")
            elapsed = time.monotonic() - killed
            assert new != active and new_epoch > epoch
            # followers notice after the fetch timeout, then pre-vote and vote within an election timeout
            assert elapsed < (FETCH_TIMEOUT_MS + ELECTION_TIMEOUT_MS) / 1000 + 1.5, elapsed
            wait_for(lambda: producer.acked > before + 200, 60, "acknowledgements after the fail-over")
            cluster.start(active)
            wait_for(lambda: full_isrs(cluster), 60, f"full ISRs after node {active} came back")
            before = producer.acked
            wait_for(lambda: producer.acked > before + 200, 60, "acknowledgements after the restarts")
        finally:
            producer.stop()
        assert producer.unflushed == 0
        read_back(cluster.bootstrap_servers, TOPIC, PARTITIONS, history, timeout=60)
        verdict = check(history)
        assert verdict.ok, verdict.summary()
        assert verdict.acked > 800 and verdict.read >= verdict.acked, verdict.summary()


def _last_segment(cluster: KRaftCluster, node_id: int) -> Path:
    return sorted((cluster.data_dir(node_id) / CLUSTER_METADATA_DIR).glob("*.log"))[-1]


def test_corrupt_metadata_segment_tail_is_truncated_on_recovery() -> None:
    with KRaftCluster(combined=1, settings=SETTINGS) as cluster:
        cluster.start_all()
        create_topic(cluster, "kept", 2, 1)
        wait_for(lambda: all(lead == 1 for lead, _ in layout(cluster, "kept").values()), 30, "leaders")
        assert cluster.stop(1) == 0
        segment = _last_segment(cluster, 1)
        good = segment.read_bytes()
        # a torn write: the last batch again with a byte of its records flipped (its CRC no longer holds)
        metadata_log = MetadataLog.open(cluster.data_dir(1))
        end, epoch = metadata_log.end_offset, metadata_log.last_fetched_epoch
        metadata_log.close()
        value = encode_metadata_record(TopicRecord(name="ghost", topic_id=uuid.uuid4()), 0)
        bad = bytearray(build_encoded_batch([value], base_offset=end, timestamp_ms=0, leader_epoch=epoch))
        bad[-3] ^= 0xFF
        segment.write_bytes(good + bytes(bad))

        cluster.start(1)
        data = segment.read_bytes()
        assert data[: len(good)] == good
        assert data[len(good) : len(good) + len(bad)] != bytes(bad)
        assert sorted(layout(cluster, "kept")) == [0, 1]
        from confluent_kafka.admin import AdminClient

        topics = AdminClient({"bootstrap.servers": cluster.bootstrap_servers}).list_topics(timeout=10).topics
        assert "ghost" not in topics


def test_unknown_metadata_record_version_stops_the_node() -> None:
    with KRaftCluster(combined=1, settings=SETTINGS) as cluster:
        cluster.start_all()
        assert cluster.stop(1) == 0
        metadata_log = MetadataLog.open(cluster.data_dir(1))
        value = bytearray(encode_metadata_record(TopicRecord(name="future", topic_id=uuid.uuid4()), 0))
        assert value[:3] == b"\x01\x02\x00"  # frame version 1, TopicRecord (api key 2), version 0
        value[2] = 99  # a version from a future Kafka
        metadata_log.append_as_follower(
            build_encoded_batch(
                [bytes(value)],
                base_offset=metadata_log.end_offset,
                timestamp_ms=int(time.time() * 1000),
                leader_epoch=metadata_log.last_fetched_epoch,
            )
        )
        metadata_log.flush()
        metadata_log.close()

        since = cluster.log_path(1).stat().st_size
        cluster.start(1, wait=False)
        proc = cluster.procs[1]
        wait_for(lambda: proc.poll() is not None, 60, "the node to stop")
        assert proc.returncode == 1
        output = cluster.log_path(1).read_bytes()[since:].decode(errors="replace")
        fatal = [line for line in output.splitlines() if line.startswith("strom: stopping:")]
        assert len(fatal) == 1, output[-3000:]
        assert "TopicRecord" in fatal[0] or "TOPIC_RECORD" in fatal[0], fatal[0]
        assert "99" in fatal[0], fatal[0]
        assert "Traceback" not in output, output[-3000:]
