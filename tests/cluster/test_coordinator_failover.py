"""Group coordinator fail-over through the broker, in a three-broker cluster: the broker FindCoordinator names
for a group is killed (-9) and the group goes on at the leader that takes over its partition of
__consumer_offsets (and, for a share group, of __share_group_state), as with Kafka.

- A KIP-848 consumer group (two confluent-kafka members, group.protocol=consumer) reads records an
  idempotent producer keeps writing, committing as it goes; its coordinator is killed mid-stream, with the
  group steady or just as the second member joins. Both members carry on with the new coordinator (which
  FindCoordinator and DescribeGroups name) with disjoint assignments, their commits succeed there, no record
  below an offset committed before the kill is delivered again, the committed offsets only move forward; a
  new member starts at exactly the offsets committed last, and every acknowledged record was read.
- A share group (KIP-932, confluent-kafka's ShareConsumer in explicit acknowledgement mode) whose group
  coordinator and share coordinator (FindCoordinator key type 2) are one broker, which also leads the
  share-partition or not: a member accepts some records and holds others unacknowledged, the broker is
  killed, and a new member gets every record held but never one that was accepted, nor one accepted through
  the new share coordinator after a second move. Kafka 4.4's own KafkaShareConsumer (two members) goes on
  across the same kill, and never gets a record again once its ACCEPT was committed.
"""

from __future__ import annotations

import asyncio
import base64
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import (
    Consumer,
    ConsumerGroupTopicPartitions,
    KafkaError,
    KafkaException,
    ShareConsumer,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource
from kio.schema.find_coordinator.v6.request import FindCoordinatorRequest

from benchmarks.peers import tools
from strom.client.cluster import ClusterClient
from strom.testing.cluster import (
    IdempotentWriter,
    ProcessCluster,
    admin,
    controller_id,
    create_assigned,
    produce,
    wait_full_isr,
    wait_until,
)
from strom.testing.share_workers import ShareWorkers, compile_share_workers

pytestmark = [pytest.mark.cluster, pytest.mark.slow]

GROUP_KEY, SHARE_KEY = 0, 2


@pytest.fixture
def cluster(chroot_connect: str) -> Iterator[ProcessCluster]:
    settings = {
        "share.coordinator.state.topic.num.partitions": "3",
        "share.coordinator.state.topic.replication.factor": "3",
        "share.coordinator.state.topic.min.isr": "2",
    }
    with ProcessCluster(3, chroot_connect, settings) as running:
        yield running


def find_coordinator(cluster: ProcessCluster, key: str, key_type: int = GROUP_KEY) -> int:
    """The node FindCoordinator (v6, batched keys) names for `key`; -1 while there is none."""

    async def ask() -> int:
        live = ",".join(cluster.address(i) for i in cluster.node_ids if cluster.running(i))
        async with ClusterClient(live, timeout=5) as client:
            request = FindCoordinatorRequest(key_type=key_type, coordinator_keys=(key,))
            response = await client.request_any(request)
        (entry,) = response.coordinators
        return int(entry.node_id) if entry.error_code == 0 else -1

    return asyncio.run(ask())


def _topic_id(cluster: ProcessCluster, topic: str) -> str:
    """The topic's id as Kafka writes it (Uuid.toString: base64url without padding)."""

    async def ask() -> str:
        async with ClusterClient(cluster.bootstrap_servers, timeout=5) as client:
            meta = await client.metadata([topic])
        return base64.urlsafe_b64encode(meta.topics[topic].topic_id.bytes).rstrip(b"=").decode()

    return asyncio.run(ask())


def _commit(consumer: Consumer) -> bool:
    """A synchronous commit of the consumer's positions; False if it failed (nothing new to commit, which
    librdkafka reports as _NO_OFFSET, is no failure)."""
    try:
        result = consumer.commit(asynchronous=False)
    except KafkaException as exc:
        return bool(exc.args[0].code() == KafkaError._NO_OFFSET)
    return result is not None and all(tp.error is None for tp in result)


def _group_offsets(client: AdminClient, group: str, topic: str) -> dict[int, int]:
    """The group's committed offsets of `topic` (OffsetFetch at its coordinator), partitions without one
    left out."""
    request = ConsumerGroupTopicPartitions(group, [TopicPartition(topic, p) for p in range(3)])
    answer = client.list_consumer_group_offsets([request])[group].result(30)
    return {tp.partition: tp.offset for tp in answer.topic_partitions if tp.error is None and tp.offset >= 0}


@pytest.mark.parametrize("joining", [False, True], ids=["steady", "member-joining"])
def test_consumer_group_survives_its_coordinator(cluster: ProcessCluster, joining: bool) -> None:
    """`joining`: the second member joins just before the kill, so the new coordinator finishes the
    rebalance (member 0 giving partitions up to member 1) that the old one started."""
    topic = f"cg-{uuid.uuid4().hex[:8]}"
    controller = controller_id(cluster)
    others = [i for i in cluster.node_ids if i != controller]
    # leaders spread over the brokers, so the kill also moves a partition the members read
    create_assigned(cluster, topic, [[1, 2, 3], [2, 3, 1], [3, 1, 2]], min_insync_replicas="2")
    client = admin(cluster)
    wait_full_isr(client, topic, 3)
    # a group coordinated by a broker that is not the controller: the kill moves the group, not the cluster
    candidates = (f"g-{uuid.uuid4().hex[:8]}" for _ in range(100))
    group = next(g for g in candidates if find_coordinator(cluster, g) in others)
    victim = find_coordinator(cluster, group)

    writer = IdempotentWriter(cluster.bootstrap_servers, topic, 3, pause_s=0.01)
    writer.start()
    conf = {
        "bootstrap.servers": cluster.bootstrap_servers,
        "group.id": group,
        "group.protocol": "consumer",
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
        "log_level": 0,
    }
    members = [Consumer({**conf, "client.id": f"member-{i}"}) for i in range(1 if joining else 2)]
    for member in members:
        member.subscribe([topic])
    seen: set[bytes] = set()
    after_kill: list[tuple[int, int]] = []
    before: dict[int, int] = {}
    commits_after = 0
    killed = False

    def settled() -> bool:
        """Two members, each with partitions, none with another's."""
        assignments = [{tp.partition for tp in m.assignment()} for m in members]
        return len(members) == 2 and all(assignments) and sum(map(len, assignments)) == 3

    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline and (commits_after < 6 or not settled()):
            for member in members:
                for msg in member.consume(100, 0.1):
                    if msg.error() is None:
                        seen.add(msg.value())
                        if killed:
                            after_kill.append((msg.partition(), msg.offset()))
                if killed:
                    commits_after += len(seen) >= 600 and _commit(member)
                elif len(seen) >= 300 and (joining or settled()) and _commit(member):
                    before = _group_offsets(client, group, topic)
                    if len(before) == 3:
                        if joining:  # member 1 joins (its first heartbeat) and the coordinator dies
                            members.append(Consumer({**conf, "client.id": "member-1"}))
                            members[1].subscribe([topic])
                            members[1].consume(100, 0.3)
                        cluster.kill(victim)
                        killed = True
                        break
        assert killed and commits_after >= 6, (len(seen), before, commits_after)
        new = find_coordinator(cluster, group)
        assert new not in (-1, victim), new
        description = client.describe_consumer_groups([group])[group].result(30)
        assert description.coordinator.id == new, description
        # both members are still in the group and share the partitions (no rebalance lost one of them)
        assignments = [{tp.partition for tp in m.assignment()} for m in members]
        assert all(assignments) and not set.intersection(*assignments), assignments
        assert set.union(*assignments) == {0, 1, 2}, assignments
        assert len(description.members) == 2, description
        # a committed record is not delivered again: the members kept their places across the fail-over
        behind = [(p, o) for p, o in after_kill if o < before[p]]
        assert not behind, (behind[:5], before)
        for member in members:
            wait_until(lambda m=member: _commit(m), 30, "a commit at the new coordinator")
    finally:
        for member in members:
            member.close()
    writer.stop()
    assert not writer.failed and writer.unflushed == 0, writer.failed[:3]
    last = _group_offsets(client, group, topic)
    assert all(last[p] >= before[p] for p in range(3)) and last != before, (last, before)

    # a new member starts exactly where the group committed, reads to the end of every partition, and the
    # members read every acknowledged record between them
    end = {p: max(o for o, _v in records) + 1 for p, records in writer.acked.items()}
    assert any(end[p] > last[p] for p in range(3)), (end, last)  # records written after the last commit
    successor = Consumer({**conf, "client.id": "successor"})
    successor.subscribe([topic])
    first: dict[int, int] = {}
    position = dict(last)
    try:
        deadline = time.monotonic() + 60
        while position != end and time.monotonic() < deadline:
            for msg in successor.consume(500, 0.2):
                if msg.error() is None:
                    first.setdefault(msg.partition(), msg.offset())
                    position[msg.partition()] = msg.offset() + 1
                    seen.add(msg.value())
    finally:
        successor.close()
    assert position == end, (position, end)
    assert first == {p: last[p] for p in range(3) if end[p] > last[p]}, (first, last)
    acked = {v for records in writer.acked.values() for _o, v in records}
    assert acked <= seen, f"{len(acked - seen)} acknowledged records never delivered"


def _share_consumer(cluster: ProcessCluster, group: str) -> ShareConsumer:
    return ShareConsumer(
        {
            "bootstrap.servers": cluster.bootstrap_servers,
            "group.id": group,
            "share.acknowledgement.mode": "explicit",
            "log_level": 0,
        }
    )


def _poll(consumer: ShareConsumer, timeout: float = 0.5) -> list[Any]:
    return [m for m in consumer.poll(timeout) if m.error() is None]


@pytest.mark.parametrize("leader_too", [True, False], ids=["leader-killed", "leader-stays"])
def test_share_group_survives_its_coordinators(cluster: ProcessCluster, leader_too: bool) -> None:
    topic = f"sg-{uuid.uuid4().hex[:8]}"
    controller = controller_id(cluster)
    victim = next(i for i in cluster.node_ids if i != controller)
    # the share-partition's leader is the broker killed, or one that stays (whose share-partition then
    # writes its state through the share coordinator that takes over)
    leader = victim if leader_too else next(i for i in cluster.node_ids if i != victim)
    replicas = [leader, *[i for i in cluster.node_ids if i != leader]]
    create_assigned(cluster, topic, [replicas], min_insync_replicas="2")
    client = admin(cluster)
    wait_full_isr(client, topic, 3)
    topic_id = _topic_id(cluster, topic)

    def on_victim(group: str) -> bool:
        return (
            find_coordinator(cluster, group)
            == victim
            == find_coordinator(cluster, f"{group}:{topic_id}:0", SHARE_KEY)
        )

    # one broker leads the partition and coordinates both the group and its share-partition's state (the
    # first share key creates __share_group_state)
    wait_until(
        lambda: find_coordinator(cluster, f"s:{topic_id}:0", SHARE_KEY) >= 0, 30, "a share coordinator"
    )
    group = next(g for g in (f"s-{uuid.uuid4().hex[:8]}" for _ in range(200)) if on_victim(g))
    configs = [
        ConfigEntry("share.auto.offset.reset", "earliest", incremental_operation=AlterConfigOpType.SET),
        # a live leader keeps the first member's records acquired until their locks run out
        ConfigEntry("share.record.lock.duration.ms", "15000", incremental_operation=AlterConfigOpType.SET),
    ]
    resource = ConfigResource(ConfigResource.Type.GROUP, group, incremental_configs=configs)
    client.incremental_alter_configs([resource])[resource].result(30)
    values = [f"v{i}".encode() for i in range(40)]
    produce(cluster, topic, values)
    wait_full_isr(client, topic, 3)

    first = _share_consumer(cluster, group)
    first.subscribe([topic])
    got: list[Any] = []
    deadline = time.monotonic() + 60
    while len(got) < 10 and time.monotonic() < deadline:
        got += _poll(first)
    assert len(got) >= 2, got
    accepted = {m.value() for m in got[: len(got) // 2]}
    held = {m.value() for m in got[len(got) // 2 :]}
    for m in got[: len(got) // 2]:
        first.acknowledge(m)
    result = first.commit_sync(30)
    assert result and all(error is None for error in result.values()), result

    cluster.kill(victim)
    second = _share_consumer(cluster, group)
    second.subscribe([topic])
    again: list[Any] = []

    def take(wanted: set[bytes], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not wanted <= {m.value() for m in again} | accepted and time.monotonic() < deadline:
            batch = _poll(second)
            for m in batch:
                second.acknowledge(m)
            if batch:
                second.commit_sync(30)
            again.extend(batch)

    try:
        take(set(values), 90)
        # records written after the fail-over: an accepted record delivered again would come before them
        late = [b"late-0", b"late-1"]
        produce(cluster, topic, late)
        take(set(late), 60)
    finally:
        second.close()
        first.close()
    redelivered = {m.value() for m in again}
    print(
        "STATS",
        len(got),
        len(accepted),
        len(held),
        len(again),
        sorted((m.value(), m.delivery_count()) for m in again)[:50],
    )
    assert set(late) <= redelivered, sorted(late)
    assert not redelivered & accepted, sorted(redelivered & accepted)  # accepted records stay accepted
    assert held <= redelivered, sorted(held - redelivered)  # held ones come back
    assert redelivered | accepted == set(values + late), sorted(set(values) - redelivered - accepted)
    assert find_coordinator(cluster, group) not in (-1, victim)


def test_share_state_survives_a_second_move(cluster: ProcessCluster) -> None:
    """Acknowledgements written through the share coordinator that took over are kept when that one dies
    too: the killed broker comes back, the new share coordinator is killed, and a third member gets only
    the records nobody accepted."""
    topic = f"sg2-{uuid.uuid4().hex[:8]}"
    controller = controller_id(cluster)
    victim = next(i for i in cluster.node_ids if i != controller)
    create_assigned(cluster, topic, [[victim, *[i for i in cluster.node_ids if i != victim]]])
    client = admin(cluster)
    wait_full_isr(client, topic, 3)
    topic_id = _topic_id(cluster, topic)

    def share_coordinator(group: str) -> int:
        return find_coordinator(cluster, f"{group}:{topic_id}:0", SHARE_KEY)

    wait_until(lambda: share_coordinator("s") >= 0, 30, "a share coordinator")
    group = next(
        g for g in (f"s-{uuid.uuid4().hex[:8]}" for _ in range(200)) if share_coordinator(g) == victim
    )
    earliest = ConfigEntry("share.auto.offset.reset", "earliest", incremental_operation=AlterConfigOpType.SET)
    resource = ConfigResource(ConfigResource.Type.GROUP, group, incremental_configs=[earliest])
    client.incremental_alter_configs([resource])[resource].result(30)

    def accept_all(batch_name: str) -> list[bytes]:
        """A new member accepts records until it has the 20 of `batch_name`; what it got, in order."""
        wanted = {f"{batch_name}{i}".encode() for i in range(20)}
        consumer = _share_consumer(cluster, group)
        consumer.subscribe([topic])
        got: list[bytes] = []
        deadline = time.monotonic() + 90
        try:
            while not wanted <= set(got) and time.monotonic() < deadline:
                batch = _poll(consumer)
                for m in batch:
                    consumer.acknowledge(m)
                if batch:
                    consumer.commit_sync(30)
                got.extend(m.value() for m in batch)
        finally:
            consumer.close()
        return got

    produce(cluster, topic, [f"a{i}".encode() for i in range(20)])
    assert sorted(accept_all("a")) == sorted(f"a{i}".encode() for i in range(20))
    cluster.kill(victim)
    produce(cluster, topic, [f"b{i}".encode() for i in range(20)])
    assert sorted(accept_all("b")) == sorted(f"b{i}".encode() for i in range(20))  # no "a" again
    cluster.start(victim)
    wait_full_isr(client, topic, 3)
    wait_full_isr(client, "__share_group_state", 3)
    second = share_coordinator(group)
    assert second not in (-1, victim), second
    cluster.kill(second)
    produce(cluster, topic, [f"c{i}".encode() for i in range(20)])
    assert sorted(accept_all("c")) == sorted(f"c{i}".encode() for i in range(20))  # no "a" nor "b" again


def test_java_share_consumers_across_the_failover(cluster: ProcessCluster, tmp_path: Path) -> None:
    """Two members of Kafka 4.4's KafkaShareConsumer (explicit acknowledgement, strom.testing.share_workers)
    accept records while the broker leading the share-partition and coordinating the group and its state is
    killed: they carry on at the new leader and coordinators, every record is accepted, none is delivered
    again once its ACCEPT was committed, and ListShareGroupOffsets then reports no lag."""
    tools.ensure_tools()
    classes = compile_share_workers(tools.kafka_home(), tmp_path)
    topic = f"sgj-{uuid.uuid4().hex[:8]}"
    controller = controller_id(cluster)
    victim = next(i for i in cluster.node_ids if i != controller)
    create_assigned(cluster, topic, [[victim, *[i for i in cluster.node_ids if i != victim]]])
    client = admin(cluster)
    wait_full_isr(client, topic, 3)
    topic_id = _topic_id(cluster, topic)
    wait_until(
        lambda: find_coordinator(cluster, f"s:{topic_id}:0", SHARE_KEY) >= 0, 30, "a share coordinator"
    )

    def on_victim(group: str) -> bool:
        share = find_coordinator(cluster, f"{group}:{topic_id}:0", SHARE_KEY)
        return find_coordinator(cluster, group) == victim == share

    group = next(g for g in (f"s-{uuid.uuid4().hex[:8]}" for _ in range(200)) if on_victim(g))
    earliest = ConfigEntry("share.auto.offset.reset", "earliest", incremental_operation=AlterConfigOpType.SET)
    resource = ConfigResource(ConfigResource.Type.GROUP, group, incremental_configs=[earliest])
    client.incremental_alter_configs([resource])[resource].result(30)

    # acknowledgements in flight to the killed leader fail (the client reports UnknownServerException, see
    # docs/client-quirks.md): those records come back, which is why commit errors are tolerated here
    workers = ShareWorkers(
        classes, tools.kafka_home(), cluster.bootstrap_servers, group, topic,
        members=2, work_ms=20, max_poll_records=5, tolerate_commit_errors=True,
    )  # fmt: skip
    try:
        workers.wait_line("READY", 90)
        one_by_one = {"linger.ms": 0, "batch.num.messages": 1}  # batches Strom can hand out a few at a time
        values = [f"a{i}" for i in range(60)]
        produce(cluster, topic, [v.encode() for v in values], **one_by_one)
        workers.wait_for(lambda w: len(w.accepted()) >= 15, 60, "15 records accepted")
        cluster.kill(victim)
        late = [f"b{i}" for i in range(20)]
        produce(cluster, topic, [v.encode() for v in late], **one_by_one)
        workers.wait_for(lambda w: w.accepted() >= set(values + late), 120, "every record accepted")
        start, lag = workers.finish()
    finally:
        workers.kill()
    assert not workers.delivered_after_commit(), workers.delivered_after_commit()[:5]
    assert (start, lag) == (len(values) + len(late), 0), (start, lag)
