"""Partition reassignment on a real 3-broker cluster (`strom serve` processes on a real ZooKeeper, KIP-455):
moving a partition with data while an idempotent acks=all producer keeps writing (no acknowledged record
lost, the removed broker drops its log, the new replicas hold identical logs), the reassignment listed while
it runs (a paused broker keeps it running), cancellation, the `strom reassign` and `strom elect-leaders`
commands, and kafka-python's admin client (confluent-kafka 2.16's Python AdminClient has no reassignment
calls)."""

from __future__ import annotations

import asyncio
import itertools
import json
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Producer

from strom.client.cluster import ClusterClient
from strom.protocol.errors import ErrorCode
from strom.testing.cluster import (
    REPO,
    ProcessCluster,
    consume_all,
    controller_id,
    create_assigned,
    layout,
    log_bytes,
    produce,
    wait_until,
)
from strom.testing.prerequisites import missing
from strom.testing.zookeeper import ZooKeeperServer

pytestmark = [pytest.mark.cluster]
_chroots = itertools.count()


@pytest.fixture(scope="module")
def cluster(zookeeper: ZooKeeperServer) -> Iterator[ProcessCluster]:
    with ProcessCluster(3, f"{zookeeper.connect}/reassign-{next(_chroots)}") as running:
        yield running


@pytest.fixture(autouse=True)
def all_running(cluster: ProcessCluster) -> Iterator[None]:
    yield
    for node_id in cluster.node_ids:
        if cluster.running(node_id):
            cluster.resume(node_id)
        else:
            cluster.start(node_id)


def roles(cluster: ProcessCluster) -> tuple[int, int, int]:
    """(controller, other, other): only a broker that is not the controller may be paused."""
    controller = controller_id(cluster)
    a, b = (n for n in cluster.node_ids if n != controller)
    return controller, a, b


def call(cluster: ProcessCluster, method: str, *args: Any) -> Any:
    """A ClusterClient call bootstrapped through the controller (the others may be paused)."""

    async def go() -> Any:
        async with ClusterClient(cluster.address(controller_id(cluster))) as client:
            return await getattr(client, method)(*args)

    return asyncio.run(go())


def has_log(cluster: ProcessCluster, node_id: int, topic: str, partition: int = 0) -> bool:
    return (cluster.data_dir(node_id) / f"{topic}-{partition}").is_dir()


def settled(cluster: ProcessCluster, topic: str, replicas: list[int]) -> bool:
    parts = layout(cluster, topic, via=controller_id(cluster))
    return bool(parts) and parts[0][1] == replicas and sorted(parts[0][2]) == sorted(replicas)


class LiveProducer:
    """An idempotent acks=all producer writing numbered values from a thread until stopped."""

    def __init__(self, cluster: ProcessCluster, topic: str) -> None:
        self.producer = Producer(
            {
                "bootstrap.servers": cluster.bootstrap_servers,
                "acks": "all",
                "enable.idempotence": True,
                "linger.ms": 5,
            }
        )
        self.topic = topic
        self.acked: list[bytes] = []
        self.errors: list[Any] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _delivered(self, err: Any, msg: Any) -> None:
        if err is not None:
            self.errors.append(err)
        else:
            self.acked.append(msg.value())

    def _run(self) -> None:
        for i in itertools.count():
            if self._stop.is_set():
                break
            self.producer.produce(self.topic, b"live-%d" % i, partition=0, on_delivery=self._delivered)
            self.producer.poll(0.002)

    def __enter__(self) -> LiveProducer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)
        assert self.producer.flush(60) == 0


def test_move_with_data_while_producing(cluster: ProcessCluster) -> None:
    topic = "moved"
    c, a, b = roles(cluster)
    create_assigned(cluster, topic, [[c, a]], min_insync_replicas="2")
    wait_until(lambda: settled(cluster, topic, [c, a]), what="full ISR")
    preload = [b"pre-%05d-" % i + b"x" * 1000 for i in range(4000)]
    produce(cluster, topic, preload)

    with LiveProducer(cluster, topic) as live:
        wait_until(lambda: len(live.acked) > 100, what="live produce acknowledged")
        # a paused target replica keeps the reassignment from completing while we look at it
        cluster.pause(b)
        try:
            results = call(cluster, "alter_partition_reassignments", {(topic, 0): [a, b]})
            assert results == {(topic, 0): (0, None)}
            ongoing = call(cluster, "list_partition_reassignments")
            assert ongoing == {(topic, 0): ((a, b, c), (b,), (c,))}
            assert layout(cluster, topic, via=c)[0][1] == [a, b, c]
        finally:
            cluster.resume(b)
        wait_until(lambda: settled(cluster, topic, [a, b]), 30, "reassignment done")
        acked_during_move = len(live.acked)
        wait_until(lambda: len(live.acked) > acked_during_move + 100, what="produce after the move")

    assert not live.errors, live.errors[:3]
    leader, replicas, isr = layout(cluster, topic)[0]
    assert leader == a and replicas == [a, b] and sorted(isr) == sorted([a, b])
    assert call(cluster, "list_partition_reassignments") == {}
    wait_until(lambda: not has_log(cluster, c, topic), what="the removed broker dropped its log")
    wait_until(
        lambda: (x := log_bytes(cluster, a, topic)) == log_bytes(cluster, b, topic) and len(x) > 0,
        what="identical logs on the new replicas",
    )
    expected = preload + live.acked
    consumed = consume_all(cluster, topic, 0, len(expected), timeout=60)
    assert consumed == expected


def test_cancel_reverts_to_the_original_replicas(cluster: ProcessCluster) -> None:
    topic = "cancelled"
    c, a, b = roles(cluster)
    create_assigned(cluster, topic, [[c, a]])
    wait_until(lambda: settled(cluster, topic, [c, a]), what="full ISR")
    produce(cluster, topic, [b"c%d" % i for i in range(200)])
    cluster.pause(b)
    try:
        started = call(cluster, "alter_partition_reassignments", {(topic, 0): [c, b]})
        assert started == {(topic, 0): (0, None)}
        listed = call(cluster, "list_partition_reassignments", [(topic, 0)])
        assert listed == {(topic, 0): ((c, b, a), (b,), (a,))}
        cancelled = call(cluster, "alter_partition_reassignments", {(topic, 0): None})
        assert cancelled == {(topic, 0): (0, None)}
    finally:
        cluster.resume(b)
    wait_until(lambda: settled(cluster, topic, [c, a]), what="back to the original replicas")
    assert call(cluster, "list_partition_reassignments") == {}
    wait_until(lambda: not has_log(cluster, b, topic), what="the added replica dropped its log")
    again = call(cluster, "alter_partition_reassignments", {(topic, 0): None})
    assert again[(topic, 0)][0] == ErrorCode.no_reassignment_in_progress.value
    bad = call(cluster, "alter_partition_reassignments", {(topic, 0): [c, 7], ("absent", 0): [c]})
    assert bad[(topic, 0)][0] == ErrorCode.invalid_replica_assignment.value
    assert bad[("absent", 0)][0] == ErrorCode.unknown_topic_or_partition.value
    assert consume_all(cluster, topic, 0, 200) == [b"c%d" % i for i in range(200)]


def strom(cluster: ProcessCluster, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "strom.cli.main", *args, "--bootstrap-server", cluster.bootstrap_servers],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_cli_reassign_and_elect_leaders(cluster: ProcessCluster, tmp_path: Path) -> None:
    topic = "cli-moved"
    create_assigned(cluster, topic, [[1, 2], [1, 2]])
    wait_until(lambda: all(sorted(i) == [1, 2] for _l, _r, i in layout(cluster, topic).values()), what="ISRs")
    produce(cluster, topic, [b"v%d" % i for i in range(50)])
    plan = tmp_path / "plan.json"
    plan.write_text(
        json.dumps(
            {
                "version": 1,
                "partitions": [
                    {"topic": topic, "partition": 0, "replicas": [3, 2]},
                    {"topic": topic, "partition": 1, "replicas": [2, 1]},
                ],
            }
        )
    )
    done = strom(cluster, "reassign", "--reassignment-json-file", str(plan), "--execute", "--wait")
    assert done.returncode == 0, done.stderr
    assert "Current partition replica assignment" in done.stdout
    current = json.loads(done.stdout.splitlines()[2])
    assert [(e["partition"], e["replicas"]) for e in current["partitions"]] == [(0, [1, 2]), (1, [1, 2])]
    assert f"Successfully started partition reassignments for {topic}-0,{topic}-1" in done.stdout

    verify = strom(cluster, "reassign", "--reassignment-json-file", str(plan), "--verify")
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert f"Reassignment of partition {topic}-0 is completed." in verify.stdout
    assert f"Reassignment of partition {topic}-1 is completed." in verify.stdout
    parts = layout(cluster, topic)
    assert parts[0][1] == [3, 2] and parts[1][1] == [2, 1]
    assert parts[1][0] == 1  # a reorder moves nobody: 1 still leads until a preferred election

    listed = strom(cluster, "reassign", "--list")
    assert listed.returncode == 0 and "No partition reassignments found." in listed.stdout
    cancel = strom(cluster, "reassign", "--reassignment-json-file", str(plan), "--cancel")
    assert cancel.returncode == 1 and "NO_REASSIGNMENT_IN_PROGRESS" in cancel.stderr

    elect = strom(cluster, "elect-leaders", "--election-type", "preferred", "--topic", topic)
    assert elect.returncode == 0, elect.stdout + elect.stderr
    assert f"Successfully completed leader election (PREFERRED) for partitions {topic}-1" in elect.stdout
    assert f"Valid replica already elected for partitions {topic}-0" in elect.stdout
    assert layout(cluster, topic)[1][0] == 2

    unclean = strom(
        cluster, "elect-leaders", "--election-type", "unclean", "--topic", topic, "--partition", "0"
    )
    assert unclean.returncode == 0 and "Valid replica already elected" in unclean.stdout
    missing = strom(
        cluster, "elect-leaders", "--election-type", "preferred", "--topic", "nope", "--partition", "0"
    )
    assert missing.returncode == 1 and "UNKNOWN_TOPIC_OR_PARTITION" in missing.stdout
    usage = strom(cluster, "elect-leaders", "--election-type", "preferred")
    assert usage.returncode == 2
    for p in (0, 1):
        assert consume_all(cluster, topic, p, 50 if p == 0 else 0, timeout=10 if p == 0 else 2) == (
            [b"v%d" % i for i in range(50)] if p == 0 else []
        )


def test_kafka_python_admin_client(cluster: ProcessCluster) -> None:
    from kafka import TopicPartition
    from kafka.admin import KafkaAdminClient
    from kafka.errors import NoReassignmentInProgressError, for_code

    topic = "kp-moved"
    c, a, b = roles(cluster)
    create_assigned(cluster, topic, [[c, a]])
    wait_until(lambda: settled(cluster, topic, [c, a]), what="full ISR")
    client = KafkaAdminClient(bootstrap_servers=cluster.address(c), request_timeout_ms=10000)
    try:
        tp = TopicPartition(topic, 0)
        client.list_partition_reassignments()  # connected to the controller before the pause
        cluster.pause(b)
        try:
            assert client.alter_partition_reassignments({tp: [a, b]}) == {tp: None}
            ongoing = client.list_partition_reassignments()
            assert ongoing == {tp: {"replicas": [a, b, c], "adding_replicas": [b], "removing_replicas": [c]}}
        finally:
            cluster.resume(b)
        wait_until(lambda: settled(cluster, topic, [a, b]), 20, "reassignment done")
        assert client.list_partition_reassignments([tp]) == {}
        assert client.alter_partition_reassignments({tp: None}) == {tp: NoReassignmentInProgressError}
        invalid = for_code(ErrorCode.invalid_replica_assignment.value)  # kafka-python has no named class
        assert client.alter_partition_reassignments({tp: [a, a]}) == {tp: invalid}
    finally:
        client.close()


def _reassign_tool(cluster: ProcessCluster) -> Callable[..., subprocess.CompletedProcess[str]]:
    """Runs Apache Kafka's kafka-reassign-partitions (ReassignPartitionsCommand) against the cluster."""
    from benchmarks.peers import tools

    try:
        tools.ensure_tools()
    except Exception as exc:  # no network or no Java: the other tests cover the protocol
        missing(f"Kafka's Java tools are not available: {exc}")

    def tool(*args: str) -> subprocess.CompletedProcess[str]:
        argv = tools.java_command(
            "org.apache.kafka.tools.reassign.ReassignPartitionsCommand",
            "--bootstrap-server",
            cluster.bootstrap_servers,
            *args,
        )
        return subprocess.run(argv, capture_output=True, text=True, timeout=60)

    return tool


def test_kafka_reassign_partitions_tool(cluster: ProcessCluster, tmp_path: Path) -> None:
    """Apache Kafka 4.x's own kafka-reassign-partitions (ReassignPartitionsCommand) end to end."""
    tool = _reassign_tool(cluster)
    topic = "java-moved"
    c, a, b = roles(cluster)
    create_assigned(cluster, topic, [[c, a]])
    wait_until(lambda: settled(cluster, topic, [c, a]), what="full ISR")
    produce(cluster, topic, [b"j%d" % i for i in range(100)])
    plan = tmp_path / "plan.json"
    plan.write_text(
        json.dumps({"version": 1, "partitions": [{"topic": topic, "partition": 0, "replicas": [a, b]}]})
    )

    executed = tool("--execute", "--reassignment-json-file", str(plan))
    assert executed.returncode == 0, executed.stdout + executed.stderr
    assert f"Successfully started partition reassignment for {topic}-0" in executed.stdout
    assert f'"partition":0,"replicas":[{c},{a}]' in executed.stdout
    wait_until(lambda: settled(cluster, topic, [a, b]), 20, "reassignment done")
    verified = tool("--verify", "--reassignment-json-file", str(plan))
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert f"Reassignment of partition {topic}-0 is completed." in verified.stdout
    listed = tool("--list")
    assert listed.returncode == 0 and "No partition reassignments found." in listed.stdout
    assert consume_all(cluster, topic, 0, 100) == [b"j%d" % i for i in range(100)]


def test_disallowed_replication_factor_change(cluster: ProcessCluster, tmp_path: Path) -> None:
    """KIP-860 (AlterPartitionReassignments v1): with --disallow-replication-factor-change a plan that
    changes a partition's replica count is refused with InvalidReplicationFactorException and moves
    nothing, while a same-size move still runs."""
    tool = _reassign_tool(cluster)
    topic = "rf-guarded"
    c, a, b = roles(cluster)
    create_assigned(cluster, topic, [[c, a], [c, a]])
    wait_until(lambda: settled(cluster, topic, [c, a]), what="full ISR")
    plan = tmp_path / "grow.json"
    plan.write_text(
        json.dumps(
            {
                "version": 1,
                "partitions": [
                    {"topic": topic, "partition": 0, "replicas": [c, a, b]},
                    {"topic": topic, "partition": 1, "replicas": [a, b]},
                ],
            }
        )
    )
    refused = tool("--execute", "--disallow-replication-factor-change", "--reassignment-json-file", str(plan))
    said = refused.stdout + refused.stderr
    assert refused.returncode != 0, said
    failed = said[said.index("Error reassigning partition(s):") :]
    assert f"{topic}-0: " in failed and f"{topic}-1" not in failed, said
    via = controller_id(cluster)
    wait_until(lambda: layout(cluster, topic, via=via)[1][1] == [a, b], 20, "same-size move done")
    assert layout(cluster, topic, via=via)[0][1] == [c, a]
