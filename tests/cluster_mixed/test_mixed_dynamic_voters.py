"""A Kafka 4.4 controller joins a quorum of Strom controllers (KIP-853): formatted by Kafka's own
`kafka-storage format --no-initial-controllers`, it fetches from the Strom leader as an observer, Kafka's
`kafka-metadata-quorum add-controller` makes it a voter (the Strom leader asks its ApiVersions for its
kraft.version range and checks it caught up), it replicates the VotersRecord and, once the Strom leader is
killed, takes part in electing the next leader."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
from collections.abc import Iterator

import pytest

from benchmarks.peers.tools import ToolUnavailable, ensure_tools, java_command
from strom.testing.dynamic_quorum import DynamicQuorum
from strom.testing.raft_quorum import wait_for

pytestmark = pytest.mark.slow

KAFKA_NODE = 3
SETTINGS = {
    "controller.quorum.election.timeout.ms": "1000",
    "controller.quorum.fetch.timeout.ms": "2000",
    "metadata.max.idle.interval.ms": "200",
}


def metadata_quorum(*args: str) -> subprocess.CompletedProcess[str]:
    from tests.metadata.kafka_jars import kafka_run

    return kafka_run("org.apache.kafka.tools.MetadataQuorumCommand", *args)


@pytest.fixture
def quorum() -> Iterator[tuple[DynamicQuorum, subprocess.Popen[bytes]]]:
    from benchmarks.peers.brokers import kafka_node_command

    try:
        ensure_tools()
    except ToolUnavailable as exc:
        pytest.skip(str(exc))
    with DynamicQuorum(3, settings=SETTINGS) as q:
        shutil.rmtree(q.data_dir(KAFKA_NODE))
        fmt = subprocess.run(
            java_command(
                "kafka.tools.StorageTool",
                "format",
                "-t",
                q.cluster_id,
                "-c",
                str(q.config_path(KAFKA_NODE)),
                "--no-initial-controllers",
            ),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert fmt.returncode == 0, fmt.stderr
        q.start(1)
        q.start(2)
        wait_for(lambda: q.leader() == (1, 1), 20, "the standalone Strom voter to lead")
        with open(q.log_path(KAFKA_NODE), "ab") as log:
            kafka = subprocess.Popen(
                kafka_node_command(q.config_path(KAFKA_NODE)),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=q.root,
                start_new_session=True,
            )
        try:
            yield q, kafka
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(kafka.pid, signal.SIGKILL)
            kafka.wait(timeout=30)


def test_a_kafka_controller_joins_a_strom_quorum(
    quorum: tuple[DynamicQuorum, subprocess.Popen[bytes]],
) -> None:
    q, kafka = quorum
    end = q.describe(1).high_watermark

    def kafka_caught_up() -> bool:
        observers = {o.replica_id: o for o in q.describe(1).observers}
        return KAFKA_NODE in observers and observers[KAFKA_NODE].log_end_offset >= end

    wait_for(kafka_caught_up, 120, "the Kafka controller to fetch as an observer")
    for node_id in (2, KAFKA_NODE):
        config = str(q.config_path(node_id))
        added = metadata_quorum(
            "--bootstrap-controller", q.address(1), "--command-config", config, "add-controller"
        )
        assert added.returncode == 0, added.stderr[-2000:]
        expected = f"Added controller {node_id} with directory id {q.directory_id(node_id)}"
        assert added.stdout.startswith(expected)
    # the Kafka controller answers DescribeQuorum itself from its replica of the log: three voters
    status = metadata_quorum("--bootstrap-controller", q.address(KAFKA_NODE), "describe", "--status")
    assert status.returncode == 0, status.stderr[-2000:]
    assert f'{{"id": {KAFKA_NODE}, "directoryId": "{q.directory_id(KAFKA_NODE)}"' in status.stdout
    assert "CurrentObservers:       []" in status.stdout
    replication = {
        int(row.split()[0]): row.split()[6]
        for row in metadata_quorum("--bootstrap-controller", q.address(1), "describe", "--replication")
        .stdout.strip()
        .splitlines()[1:]
    }
    assert replication == {1: "Leader", 2: "Follower", KAFKA_NODE: "Follower"}

    # without the Strom leader, Strom node 2 and the Kafka voter elect one of them
    q.kill(1)
    # (each answers DescribeQuorum only as the leader)
    new, epoch = wait_for(lambda: q.leader([2, KAFKA_NODE]), 60, "a leader after the Strom leader died")
    assert new in (2, KAFKA_NODE) and epoch > 1
    assert kafka.poll() is None
