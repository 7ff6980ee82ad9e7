"""Dynamic voters (KIP-853) through a KRaft broker: kafka-metadata-quorum --bootstrap-server add-controller
and remove-controller, and kafka-cluster unregister-controller, are forwarded by the broker to the active
controller (AddRaftVoter, RemoveRaftVoter and UnregisterController in an Envelope, as Kafka 4.4's brokers
do); the quorum moves to a new controller, the old one is stopped, and topics, produce and consume keep
working."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator

import pytest

from strom.testing.dynamic_quorum import DynamicQuorum
from strom.testing.raft_quorum import wait_for

confluent_kafka = pytest.importorskip("confluent_kafka")
pytestmark = pytest.mark.slow

SETTINGS = {
    "controller.quorum.election.timeout.ms": "1000",
    "controller.quorum.fetch.timeout.ms": "1000",
    "metadata.max.idle.interval.ms": "200",
    "broker.session.timeout.ms": "3000",
    "broker.heartbeat.interval.ms": "500",
    "offsets.topic.replication.factor": "1",
    "offsets.topic.num.partitions": "2",
}


def tool(main_class: str, *args: str) -> subprocess.CompletedProcess[str]:
    from tests.metadata.kafka_jars import kafka_run

    return kafka_run(main_class, *args)


def quorum_tool(cluster: DynamicQuorum, *args: str) -> subprocess.CompletedProcess[str]:
    return tool(
        "org.apache.kafka.tools.MetadataQuorumCommand", "--bootstrap-server", cluster.bootstrap_servers, *args
    )


@pytest.fixture
def cluster() -> Iterator[DynamicQuorum]:
    with DynamicQuorum(2, brokers=1, settings=SETTINGS) as q:
        for node_id in (1, 2, 3):
            q.start(node_id)
        wait_for(lambda: q.leader([1]) == (1, 1), 20, "the standalone voter to lead")
        wait_for(lambda: {o.replica_id for o in q.describe(1).observers} == {2, 3}, 20, "observers")
        yield q


def test_controllers_change_through_a_broker(cluster: DynamicQuorum) -> None:
    added = quorum_tool(cluster, "--command-config", str(cluster.config_path(2)), "add-controller")
    assert added.returncode == 0, added.stderr[-2000:]
    assert added.stdout.startswith(f"Added controller 2 with directory id {cluster.directory_id(2)}")
    status = quorum_tool(cluster, "describe", "--status")
    assert status.returncode == 0, status.stderr[-2000:]
    assert f'"id": 2, "directoryId": "{cluster.directory_id(2)}"' in status.stdout

    directory = cluster.directory_id(1)
    removed = quorum_tool(
        cluster, "remove-controller", "--controller-id", "1", "--controller-directory-id", directory
    )
    assert removed.returncode == 0, removed.stderr[-2000:]
    assert removed.stdout.strip() == f"Removed KRaft controller 1 with directory id {directory}"
    wait_for(lambda: (cluster.leader([2]) or (0, 0))[0] == 2, 20, "controller 2 to lead")
    cluster.stop(1)
    # UnregisterController (94), forwarded too: the first call removes its RegisterControllerRecord, the
    # second finds none (CONTROLLER_ID_NOT_REGISTERED)
    for expected in (0, 1):
        unregistered = tool(
            "org.apache.kafka.tools.ClusterTool",
            "unregister-controller",
            "--bootstrap-server",
            cluster.bootstrap_servers,
            "--id",
            "1",
        )
        assert unregistered.returncode == expected, unregistered.stderr[-2000:]
        if expected == 0:
            assert unregistered.stdout.strip() == "Controller 1 is no longer registered."
    assert unregistered.stdout == ""
    assert "ControllerIdNotRegisteredException: Controller ID 1 is not currently registered." in (
        unregistered.stderr
    )
    status = quorum_tool(cluster, "describe", "--status")
    lines = dict(line.split(":", 1) for line in status.stdout.strip().splitlines())
    assert lines["LeaderId"].strip() == "2"
    assert lines["CurrentVoters"].strip() == (
        f'[{{"id": 2, "directoryId": "{cluster.directory_id(2)}", '
        f'"endpoints": ["CONTROLLER://127.0.0.1:{cluster.ports[2]}"]}}]'
    )

    # metadata changes and records through the broker under the new controller
    created = tool(
        "org.apache.kafka.tools.TopicCommand",
        "--bootstrap-server",
        cluster.bootstrap_servers,
        "--create",
        "--topic",
        "after-the-move",
        "--partitions",
        "2",
    )
    assert created.returncode == 0, created.stderr[-2000:]
    producer = confluent_kafka.Producer(
        {"bootstrap.servers": cluster.bootstrap_servers, "acks": "all", "enable.idempotence": True}
    )
    errors: list[object] = []
    for i in range(20):
        producer.produce(
            "after-the-move", value=b"%d" % i, on_delivery=lambda err, _m: err and errors.append(err)
        )
    assert producer.flush(60) == 0 and not errors
    consumer = confluent_kafka.Consumer(
        {"bootstrap.servers": cluster.bootstrap_servers, "group.id": "g", "auto.offset.reset": "earliest"}
    )
    consumer.subscribe(["after-the-move"])
    got: list[bytes] = []
    deadline = time.monotonic() + 60
    while len(got) < 20 and time.monotonic() < deadline:
        msg = consumer.poll(0.5)
        if msg is not None and not msg.error():
            got.append(msg.value())
    consumer.close()
    assert sorted(got, key=int) == [b"%d" % i for i in range(20)]
