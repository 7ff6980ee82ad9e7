"""Metadata while a topic is deleted, on a three-broker ZooKeeper cluster, through librdkafka.

librdkafka's 0033 regex_subscribe deletes its topics one after the other from a consumer created with
`allow.auto.create.topics=true`; on Strom one of them came back about a second later. While the controller
removed the topic's state znodes one by one, every broker still served the topic, its partitions without a
leader (LEADER_NOT_AVAILABLE). librdkafka re-queries a topic with a leaderless partition a second later,
with auto-creation allowed, and by then the topic was gone, so that Metadata request created it again.
Kafka 4.4 never shows a topic half deleted (probed on the wire with the loop below: three brokers, four
rounds, not one such answer; its ZooKeeper mode took a topic out of every broker's metadata as soon as
its deletion began). A topic with a pending deletion request is now left out of every Strom broker's
metadata, and DeleteTopics still answers only once the topic's znodes are gone, so the name can be
created again right away.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator

import pytest
from confluent_kafka.admin import AdminClient, NewTopic

from strom.testing.cluster import ProcessCluster, wait_until
from strom.testing.zookeeper import ZooKeeperServer

pytestmark = pytest.mark.cluster

PARTITIONS = 4


@pytest.fixture(scope="module")
def cluster(zookeeper: ZooKeeperServer) -> Iterator[ProcessCluster]:
    with ProcessCluster(3, f"{zookeeper.connect}/topic-deletion-metadata") as running:
        yield running


def _create(admin: AdminClient, topic: str) -> None:
    admin.create_topics([NewTopic(topic, PARTITIONS, 3)])[topic].result(timeout=60)


def _whole(admin: AdminClient, topic: str) -> bool:
    found = admin.list_topics(timeout=10).topics.get(topic)
    partitions = found.partitions.values() if found is not None else ()
    return len(partitions) == PARTITIONS and all(p.leader >= 0 and not p.error for p in partitions)


def _partial_answers(cluster: ProcessCluster, topic: str, seen: list[str], stop: threading.Event) -> None:
    """Ask every broker for all topics (no auto-creation) until `stop`; note each answer that shows
    `topic` other than whole (an error, a partition missing or without a leader)."""
    admins = [AdminClient({"bootstrap.servers": server}) for server in cluster.bootstrap_servers.split(",")]

    def watch(admin: AdminClient) -> None:
        while not stop.is_set():
            found = admin.list_topics(timeout=10).topics.get(topic)
            if found is None:
                continue
            partitions = found.partitions.values()
            if (
                found.error
                or len(partitions) != PARTITIONS
                or any(p.leader < 0 or p.error for p in partitions)
            ):
                seen.append(f"{found.error} {[(p.id, p.leader, str(p.error)) for p in partitions]}")

    threads = [threading.Thread(target=watch, args=(admin,)) for admin in admins]
    for thread in threads:
        thread.start()
    stop.wait()
    for thread in threads:
        thread.join()


def test_a_topic_being_deleted_is_never_served_leaderless(cluster: ProcessCluster) -> None:
    admin = AdminClient({"bootstrap.servers": cluster.bootstrap_servers})
    per_broker = [AdminClient({"bootstrap.servers": s}) for s in cluster.bootstrap_servers.split(",")]
    for _ in range(3):
        topic = f"deleting-{uuid.uuid4().hex[:8]}"
        _create(admin, topic)
        # every broker serves the new topic whole first (it too is leaderless for a moment after creation)
        wait_until(lambda name=topic: all(_whole(a, name) for a in per_broker), timeout=30)
        seen: list[str] = []
        stop = threading.Event()
        watcher = threading.Thread(target=_partial_answers, args=(cluster, topic, seen, stop))
        watcher.start()
        try:
            time.sleep(0.3)
            admin.delete_topics([topic], operation_timeout=25)[topic].result(timeout=60)
            time.sleep(1.0)  # the other brokers' images catch up well within this
        finally:
            stop.set()
            watcher.join()
        assert not seen, f"{topic} served half deleted {len(seen)} times, e.g. {seen[:2]}"


def test_a_deleted_topic_can_be_created_again_at_once(cluster: ProcessCluster) -> None:
    admin = AdminClient({"bootstrap.servers": cluster.bootstrap_servers})
    topic = f"recreated-{uuid.uuid4().hex[:8]}"
    _create(admin, topic)
    admin.delete_topics([topic], operation_timeout=25)[topic].result(timeout=60)
    _create(admin, topic)  # not TOPIC_ALREADY_EXISTS ("marked for deletion")
    wait_until(lambda: topic in admin.list_topics(timeout=10).topics, timeout=30)
