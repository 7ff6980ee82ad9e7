"""Three Strom controllers in processes, from server.properties files like Kafka's: they elect a leader,
replicate the log, survive kill -9 and SIGSTOP of the leader; Kafka 4.4's own tools read the quorum."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from strom.metadata.batches import read_metadata_batches
from strom.metadata.snapshot import CLUSTER_METADATA_DIR
from strom.testing.raft_quorum import ControllerQuorum, wait_for

pytestmark = pytest.mark.slow

ELECTION_TIMEOUT_MS = 1000
FETCH_TIMEOUT_MS = 2000


@pytest.fixture
def quorum() -> Iterator[ControllerQuorum]:
    with ControllerQuorum(
        3,
        settings={
            "controller.quorum.election.timeout.ms": str(ELECTION_TIMEOUT_MS),
            "controller.quorum.fetch.timeout.ms": str(FETCH_TIMEOUT_MS),
            "metadata.max.idle.interval.ms": "100",
        },
    ) as q:
        q.start_all()
        yield q


def records(quorum: ControllerQuorum, node_id: int) -> list[tuple[int, int, str]]:
    data = (quorum.data_dir(node_id) / CLUSTER_METADATA_DIR / "00000000000000000000.log").read_bytes()
    return [
        (offset, batch.header.partition_leader_epoch, type(record.message).__name__)
        for batch in read_metadata_batches(data)
        for offset, record in batch.records
    ]


def test_elect_and_replicate(quorum: ControllerQuorum) -> None:
    leader, epoch = wait_for(quorum.leader, 15, "a leader")
    assert leader in quorum.ids and epoch >= 1
    # the leader appends a NoOpRecord every 100 ms; the high watermark follows on every voter
    start = quorum.describe(leader).high_watermark
    part = wait_for(
        lambda: (p := quorum.describe(leader)).high_watermark > start + 10 and p,
        15,
        "the high watermark to move",
    )
    assert sorted(v.replica_id for v in part.current_voters) == [1, 2, 3]
    wait_for(
        lambda: all(v.log_end_offset >= part.high_watermark for v in quorum.describe(leader).current_voters),
        10,
        "every voter to catch up",
    )
    hw = part.high_watermark
    logs = {i: [r for r in records(quorum, i) if r[0] < hw] for i in quorum.ids}
    assert logs[1] == logs[2] == logs[3]
    kinds = [kind for _offset, _epoch, kind in logs[1]]
    # the leader's LeaderChangeMessage first, then the active controller's bootstrap records (metadata
    # version and features, in a metadata transaction) and its periodic NoOpRecords
    assert kinds[0] == "LeaderChangeMessage"
    assert "FeatureLevelRecord" in kinds and "NoOpRecord" in kinds


def test_kill_9_of_the_leader_elects_another(quorum: ControllerQuorum) -> None:
    old, epoch = wait_for(quorum.leader, 15, "a leader")
    wait_for(lambda: all(v.log_end_offset > 0 for v in quorum.describe(old).current_voters), 10, "followers")
    killed = time.monotonic()
    quorum.kill(old)
    survivors = [i for i in quorum.ids if i != old]
    new, new_epoch = wait_for(lambda: quorum.leader(survivors), 15, "a new leader")
    elapsed = time.monotonic() - killed
    assert new != old and new_epoch > epoch
    # the followers notice after the fetch timeout, then pre-vote and vote within an election timeout
    assert elapsed < (FETCH_TIMEOUT_MS + ELECTION_TIMEOUT_MS) / 1000 + 1.5, elapsed
    hw = quorum.describe(new).high_watermark
    wait_for(lambda: quorum.describe(new).high_watermark > hw + 5, 10, "commits in the new epoch")
    # the old leader restarts and follows
    quorum.start(old)
    wait_for(
        lambda: any(
            v.replica_id == old and v.log_end_offset >= hw for v in quorum.describe(new).current_voters
        ),
        15,
        "the old leader to catch up",
    )
    assert quorum.leader(survivors) == (new, new_epoch)


def test_sigstopped_leader_resumes_as_a_follower(quorum: ControllerQuorum) -> None:
    old, epoch = wait_for(quorum.leader, 15, "a leader")
    quorum.pause(old)
    try:
        survivors = [i for i in quorum.ids if i != old]
        new, new_epoch = wait_for(lambda: quorum.leader(survivors), 15, "a new leader")
        assert new != old and new_epoch > epoch
    finally:
        quorum.resume(old)
    # it finds out it was replaced (check quorum, BeginQuorumEpoch, or a fenced answer) and follows
    wait_for(lambda: quorum.describe(old, timeout=2).error_code != 0, 10, "the old leader to step down")
    hw = quorum.describe(new).high_watermark
    wait_for(
        lambda: any(
            v.replica_id == old and v.log_end_offset >= hw and v.last_caught_up_timestamp > 0
            for v in quorum.describe(new).current_voters
        ),
        15,
        "the old leader to follow",
    )
    assert quorum.leader() == (new, new_epoch)
    logs = {i: records(quorum, i) for i in quorum.ids}
    upto = min(len(v) for v in logs.values())
    assert logs[old][:upto] == logs[new][:upto]


def test_kafka_metadata_quorum_tool(quorum: ControllerQuorum) -> None:
    from tests.metadata.kafka_jars import kafka_run

    leader, epoch = wait_for(quorum.leader, 15, "a leader")
    wait_for(
        lambda: all(v.log_end_offset > 0 for v in quorum.describe(leader).current_voters), 10, "followers"
    )
    follower = next(i for i in quorum.ids if i != leader)
    status = kafka_run(
        "org.apache.kafka.tools.MetadataQuorumCommand",
        "--bootstrap-controller",
        quorum.address(follower),
        "describe",
        "--status",
    )
    assert status.returncode == 0, status.stderr
    lines = dict(line.split(":", 1) for line in status.stdout.strip().splitlines())
    assert [k for k in lines] == [
        "ClusterId",
        "LeaderId",
        "LeaderEpoch",
        "HighWatermark",
        "MaxFollowerLag",
        "MaxFollowerLagTimeMs",
        "CurrentVoters",
        "CurrentObservers",
    ]
    assert lines["ClusterId"].strip() == quorum.cluster_id
    assert int(lines["LeaderId"]) == leader and int(lines["LeaderEpoch"]) == epoch
    assert int(lines["HighWatermark"]) > 0
    expected = ", ".join(
        f'{{"id": {i}, "endpoints": ["CONTROLLER://127.0.0.1:{quorum.ports[i]}"]}}' for i in quorum.ids
    )
    assert lines["CurrentVoters"].strip() == f"[{expected}]"
    assert lines["CurrentObservers"].strip() == "[]"
    replication = kafka_run(
        "org.apache.kafka.tools.MetadataQuorumCommand",
        "--bootstrap-controller",
        quorum.address(leader),
        "describe",
        "--replication",
    )
    assert replication.returncode == 0, replication.stderr
    rows = [re.split(r"\s+", line.strip()) for line in replication.stdout.strip().splitlines()]
    assert rows[0] == [
        "NodeId",
        "DirectoryId",
        "LogEndOffset",
        "Lag",
        "LastFetchTimestamp",
        "LastCaughtUpTimestamp",
        "Status",
    ]
    assert {int(r[0]): r[6] for r in rows[1:]} == {
        i: "Leader" if i == leader else "Follower" for i in quorum.ids
    }
    assert all(r[1] == "AAAAAAAAAAAAAAAAAAAAAA" for r in rows[1:])  # static voters have no directory id


def test_kafka_dump_log_decodes_the_segments(quorum: ControllerQuorum) -> None:
    from tests.metadata.kafka_jars import dump_cluster_metadata

    leader, _ = wait_for(quorum.leader, 15, "a leader")
    wait_for(lambda: quorum.describe(leader).high_watermark > 5, 10, "a few records")
    follower = next(i for i in quorum.ids if i != leader)
    path = quorum.data_dir(follower) / CLUSTER_METADATA_DIR / "00000000000000000000.log"
    dumped = dump_cluster_metadata(Path(path))
    ours = records(quorum, follower)
    assert dumped[0][0] == "LeaderChange"
    assert dumped[0][1]["leaderId"] == leader
    assert sorted(dumped) == [offset for offset, _, _ in ours][: len(dumped)]
    kinds = {kind for kind, _ in dumped.values()}
    assert {"LeaderChange", "FEATURE_LEVEL_RECORD", "NO_OP_RECORD"} <= kinds, kinds


def test_standalone_dynamic_quorum_writes_kafkas_first_batch(tmp_path: Path) -> None:
    """`storage format --standalone` (KIP-853): voters come from the bootstrap snapshot's VotersRecord, the
    first leader writes LeaderChange, KRaftVersion and KRaftVoters in one control batch (174 bytes, as a
    Kafka 4.4 controller writes it), and quorum-state is written in its version 1 layout."""
    import json

    from strom.config import BrokerConfig, load_properties_file
    from strom.metadata.formatter import FormatOptions, NodeStorage, format_storage
    from strom.storage.checkpoint import uuid_to_kafka
    from strom.testing.ports import free_port

    port = free_port()
    quorum = ControllerQuorum(1, root=tmp_path / "static")  # for its process handling only
    config_path = quorum.config_path(1)
    config_path.write_text(
        "process.roles=controller\nnode.id=1\n"
        f"controller.quorum.bootstrap.servers=127.0.0.1:{port}\nlisteners=CONTROLLER://127.0.0.1:{port}\n"
        f"controller.listener.names=CONTROLLER\nlog.dirs={tmp_path / 'dynamic'}\n"
    )
    config = BrokerConfig(load_properties_file(str(config_path)))
    format_storage(
        NodeStorage.from_config(config),
        FormatOptions(cluster_id=quorum.cluster_id, standalone=True),
        out=lambda _: None,
    )
    quorum.ports[1] = port
    try:
        quorum.start(1)
        wait_for(lambda: quorum.leader() == (1, 1), 10, "the single voter to lead")
        directory = tmp_path / "dynamic" / CLUSTER_METADATA_DIR
        state = json.loads((directory / "quorum-state").read_text())
        assert state == {
            "leaderId": 1,
            "leaderEpoch": 1,
            "votedId": -1,
            "votedDirectoryId": "AAAAAAAAAAAAAAAAAAAAAA",
            "data_version": 1,
        }
        first = next(read_metadata_batches((directory / "00000000000000000000.log").read_bytes()))
        assert first.header.is_control and first.header.size == 174
        assert [type(r.message).__name__ for _, r in first.records] == [
            "LeaderChangeMessage",
            "KRaftVersionRecord",
            "VotersRecord",
        ]
        props = dict(
            line.split("=", 1)
            for line in (tmp_path / "dynamic" / "meta.properties").read_text().splitlines()
            if "=" in line and not line.startswith("#")
        )
        part = quorum.describe(1)
        assert uuid_to_kafka(part.current_voters[0].replica_directory_id) == props["directory.id"]
    finally:
        quorum.close()
