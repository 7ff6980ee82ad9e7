"""Dynamic voters (KIP-853) on Strom controller processes, driven by Kafka 4.4's kafka-metadata-quorum:
add-controller promotes observers formatted with --no-initial-controllers, remove-controller takes a
voter (the leader itself) out, and a voter restarted on another port updates its endpoints with
UpdateRaftVoter; with controller.quorum.auto.join.enable observers add themselves."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from strom.testing.dynamic_quorum import DynamicQuorum
from strom.testing.ports import free_port
from strom.testing.raft_quorum import wait_for

pytestmark = pytest.mark.slow

SETTINGS = {
    "controller.quorum.election.timeout.ms": "1000",
    "controller.quorum.fetch.timeout.ms": "1000",
    "metadata.max.idle.interval.ms": "100",
}


def metadata_quorum(*args: str) -> subprocess.CompletedProcess[str]:
    from tests.metadata.kafka_jars import kafka_run

    return kafka_run("org.apache.kafka.tools.MetadataQuorumCommand", *args)


def status(quorum: DynamicQuorum, node_id: int) -> dict[str, str]:
    proc = metadata_quorum("--bootstrap-controller", quorum.address(node_id), "describe", "--status")
    assert proc.returncode == 0, proc.stderr[-2000:]
    return {k: v.strip() for k, v in (line.split(":", 1) for line in proc.stdout.strip().splitlines())}


def replication(quorum: DynamicQuorum, node_id: int) -> dict[int, tuple[str, str]]:
    """node id -> (directory id, status) from describe --replication."""
    proc = metadata_quorum("--bootstrap-controller", quorum.address(node_id), "describe", "--replication")
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = [re.split(r"\s+", line.strip()) for line in proc.stdout.strip().splitlines()]
    return {int(r[0]): (r[1], r[6]) for r in rows[1:]}


def voters_text(quorum: DynamicQuorum, ids: list[int]) -> str:
    return "[" + ", ".join(
        f'{{"id": {i}, "directoryId": "{quorum.directory_id(i)}", '
        f'"endpoints": ["CONTROLLER://127.0.0.1:{quorum.ports[i]}"]}}'
        for i in ids
    ) + "]"


def add_controller(quorum: DynamicQuorum, via: int, node_id: int) -> subprocess.CompletedProcess[str]:
    return metadata_quorum(
        "--bootstrap-controller",
        quorum.address(via),
        "--command-config",
        str(quorum.config_path(node_id)),
        "add-controller",
    )


@pytest.fixture
def quorum() -> Iterator[DynamicQuorum]:
    with DynamicQuorum(3, settings=SETTINGS) as q:
        for node_id in q.ids:
            q.start(node_id)
        wait_for(lambda: q.leader() == (1, 1), 20, "the standalone voter to lead")
        # the observers fetch from the leader: it lists them, caught up
        wait_for(lambda: len(q.describe(1).observers) == 2, 20, "both observers to fetch")
        yield q


def test_add_then_remove_controllers_with_kafkas_tool(quorum: DynamicQuorum) -> None:
    assert replication(quorum, 1) == {
        1: (quorum.directory_id(1), "Leader"),
        2: (quorum.directory_id(2), "Observer"),
        3: (quorum.directory_id(3), "Observer"),
    }
    for node_id in (2, 3):
        added = add_controller(quorum, 1, node_id)
        assert added.returncode == 0, added.stderr[-2000:]
        assert added.stdout.strip() == (
            f"Added controller {node_id} with directory id {quorum.directory_id(node_id)} and endpoints: "
            f"CONTROLLER://127.0.0.1:{quorum.ports[node_id]}"
        )
    lines = status(quorum, 2)
    assert lines["LeaderId"] == "1"
    assert lines["CurrentVoters"] == voters_text(quorum, [1, 2, 3])
    assert lines["CurrentObservers"] == "[]"
    roles = {n: role for n, (_, role) in replication(quorum, 1).items()}
    assert roles == {1: "Leader", 2: "Follower", 3: "Follower"}

    # the same voter again: DUPLICATE_VOTER, as Kafka answers
    again = add_controller(quorum, 1, 3)
    assert again.returncode == 1
    assert "DuplicateVoterException" in again.stderr
    assert "is already part of the set of voters" in again.stderr

    # the leader removes itself: once committed it resigns, 2 or 3 leads and 1 is an observer
    removed = metadata_quorum(
        "--bootstrap-controller",
        quorum.address(2),
        "remove-controller",
        "--controller-id",
        "1",
        "--controller-directory-id",
        quorum.directory_id(1),
    )
    assert removed.returncode == 0, removed.stderr[-2000:]
    assert removed.stdout.strip() == f"Removed KRaft controller 1 with directory id {quorum.directory_id(1)}"
    leader, epoch = wait_for(lambda: quorum.leader([2, 3]), 20, "a new leader among 2 and 3")
    assert leader in (2, 3) and epoch > 1
    lines = status(quorum, 3)
    assert lines["CurrentVoters"] == voters_text(quorum, [2, 3])
    wait_for(lambda: 1 in {o.replica_id for o in quorum.describe(leader).observers}, 10, "1 as an observer")
    assert replication(quorum, leader)[1] == (quorum.directory_id(1), "Observer")

    # the metadata log keeps committing without the removed voter
    quorum.stop(1)
    hw = quorum.describe(leader).high_watermark
    wait_for(lambda: quorum.describe(leader).high_watermark > hw + 5, 10, "the high watermark to move on")
    assert quorum.leader([2, 3]) == (leader, epoch)


def test_a_voter_on_a_new_port_updates_its_endpoints(quorum: DynamicQuorum) -> None:
    for node_id in (2, 3):
        assert add_controller(quorum, 1, node_id).returncode == 0
    quorum.stop(3)
    quorum.ports[3] = free_port()
    quorum.write_config(3)
    quorum.start(3)

    assert quorum.voter_endpoints(1)[3] != ("127.0.0.1", quorum.ports[3])
    # UpdateRaftVoter after three fetch timeouts as a follower (Kafka's period)
    wait_for(
        lambda: quorum.voter_endpoints(1)[3] == ("127.0.0.1", quorum.ports[3]), 20, "voter 3's new endpoint"
    )
    assert status(quorum, 3)["CurrentVoters"] == voters_text(quorum, [1, 2, 3])
    hw = quorum.describe(1).high_watermark
    wait_for(
        lambda: next(v for v in quorum.describe(1).current_voters if v.replica_id == 3).log_end_offset > hw,
        10,
        "voter 3 to fetch at its new address",
    )


def test_controllers_with_auto_join_add_themselves(tmp_path: Path) -> None:
    """controller.quorum.auto.join.enable: observers formatted --no-initial-controllers send AddRaftVoter
    for themselves once they follow the leader, and become voters without any tool."""
    settings = {**SETTINGS, "controller.quorum.auto.join.enable": "true"}
    with DynamicQuorum(3, settings=settings, root=tmp_path) as q:
        for node_id in q.ids:
            q.start(node_id)
        wait_for(lambda: q.leader() == (1, 1), 20, "the standalone voter to lead")
        wait_for(
            lambda: sorted(v.replica_id for v in q.describe(1).current_voters) == [1, 2, 3],
            30,
            "both observers to join the voters",
        )
        assert status(q, 3)["CurrentVoters"] == voters_text(q, [1, 2, 3])
        assert q.describe(1).observers == ()
