"""kraft.version 0 -> 1 on the sans-io core (KIP-853's static-to-dynamic upgrade, Kafka 4.4's
LeaderState.maybeAppendUpgradedKRaftVersion): the leader writes what the static voters told it with
UpdateRaftVoter into the first VotersRecord; every voter must support level 1 and have a directory id;
the new level is in force once appended and a truncation takes it back."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from strom.protocol.errors import ErrorCode, KafkaError
from strom.raft import voter_changes
from strom.raft.core import RaftCore
from tests.raft.harness import Network
from tests.raft.test_voter_changes import add


def _as_controller(net: Network, node_id: int) -> RaftCore:
    """A static voter as a controller process runs it: its directory id and controller endpoint known."""
    core = net.nodes[node_id]
    core.directory_id = net.directory_id(node_id)
    core.local_endpoints = {"CONTROLLER": ("127.0.0.1", 9000 + node_id)}
    return core


def _static(tmp_path: Path, controllers: tuple[int, ...] = (1, 2, 3)) -> Network:
    net = Network(tmp_path, [1, 2, 3])
    for node_id in controllers:
        _as_controller(net, node_id)
    return net


def _leader(net: Network) -> RaftCore:
    net.run_until(net.stable_leader)
    leader = net.nodes[net.leader() or 1]
    net.run_until(lambda: leader.high_watermark > 0)
    return leader


@pytest.fixture
def static(tmp_path: Path) -> Iterator[Network]:
    net = _static(tmp_path)
    yield net
    net.close()


def _told_leader(net: Network, leader: RaftCore) -> None:
    """Every follower sent the leader its UpdateRaftVoter (KAFKA-16538)."""
    followers = {i for i in net.voter_ids if i != leader.node_id}
    net.run_until(lambda: set(leader.volatile_voters) == followers)


def test_the_upgrade_writes_the_voters_the_leader_was_told(static: Network) -> None:
    leader = _leader(static)
    _told_leader(static, leader)
    end = leader.log.end_offset
    assert voter_changes.upgrade_kraft_version(leader, leader.epoch, 1, True, static.now) is True
    assert leader.log.end_offset == end and leader.kraft_version == 0  # validate only

    assert voter_changes.upgrade_kraft_version(leader, leader.epoch, 1, False, static.now) is True
    assert leader.kraft_version == 1
    assert {v.node_id: v.directory_id for v in leader.voters.voters.values()} == {
        i: static.directory_id(i) for i in (1, 2, 3)
    }
    assert all(v.kraft_versions == (0, 1) for v in leader.voters.voters.values())
    assert leader.voters_record is not None
    static.run_until(
        lambda: all(c.high_watermark > leader.voter_history.latest_offset for c in static.nodes.values())
    )
    for core in static.nodes.values():
        assert core.kraft_version == 1
        assert core.voters == leader.voters
    # a second upgrade to the same level has nothing to do
    assert voter_changes.upgrade_kraft_version(leader, leader.epoch, 1, False, static.now) is False


def test_the_quorum_is_dynamic_after_the_upgrade(tmp_path: Path) -> None:
    net = Network(tmp_path, [1, 2, 3], observers=[4])
    try:
        for node_id in (1, 2, 3, 4):
            _as_controller(net, node_id)
        leader = _leader(net)
        _told_leader(net, leader)
        voter_changes.upgrade_kraft_version(leader, leader.epoch, 1, False, net.now)
        net.run_until(lambda: leader.high_watermark > leader.voter_history.latest_offset)
        net.run_until(lambda: net.nodes[4].log.end_offset == leader.log.end_offset)
        net.run(50)  # the observer's next fetch shows the leader it caught up
        add(net, 4)
        net.run_until(lambda: all(4 in c.voters for c in net.nodes.values()))
        assert net.nodes[4].is_voter
    finally:
        net.close()


def test_the_level_survives_a_restart(static: Network) -> None:
    leader = _leader(static)
    _told_leader(static, leader)
    voter_changes.upgrade_kraft_version(leader, leader.epoch, 1, False, static.now)
    static.run_until(
        lambda: all(c.high_watermark > leader.voter_history.latest_offset for c in static.nodes.values())
    )
    follower = next(i for i in static.voter_ids if i != leader.node_id)
    static.stop(follower)
    restarted = static.restart(follower)
    assert restarted.kraft_version == 1
    assert restarted.voters.voters[follower].directory_id == static.directory_id(follower)


def test_a_voter_that_did_not_report_blocks_the_upgrade(tmp_path: Path) -> None:
    net = _static(tmp_path, controllers=(1, 2))  # voter 3 has no directory id: it never sends UpdateRaftVoter
    try:
        net.run_until(lambda: net.stable_leader() and net.leader() in (1, 2))
        leader = _leader(net)
        other = 2 if leader.node_id == 1 else 1
        net.run_until(lambda: other in leader.volatile_voters)
        with pytest.raises(KafkaError) as refused:
            voter_changes.upgrade_kraft_version(leader, leader.epoch, 1, False, net.now)
        assert refused.value.code is ErrorCode.invalid_update_version
        assert refused.value.message == (
            "Invalid upgrade of kraft.version to KRAFT_VERSION_1 because not all of the voters support it"
        )
        assert leader.kraft_version == 0
    finally:
        net.close()


def test_a_stale_epoch_is_refused(static: Network) -> None:
    from strom.raft.core import NotLeaderError

    leader = _leader(static)
    with pytest.raises(NotLeaderError, match="is stale"):
        voter_changes.upgrade_kraft_version(leader, leader.epoch - 1, 1, False, static.now)


def test_truncation_takes_an_uncommitted_upgrade_back(static: Network) -> None:
    leader = _leader(static)
    _told_leader(static, leader)
    static.isolate(leader.node_id)
    voter_changes.upgrade_kraft_version(leader, leader.epoch, 1, False, static.now)
    assert leader.kraft_version == 1
    others = [i for i in static.voter_ids if i != leader.node_id]
    static.run_until(lambda: any(static.nodes[i].role.value == "Leader" for i in others))
    new = next(static.nodes[i] for i in others if static.nodes[i].role.value == "Leader")
    static.heal()
    static.run_until(lambda: leader.leader_id == new.node_id and leader.log.end == new.log.end)
    assert leader.kraft_version == 0 and new.kraft_version == 0
    assert all(v.directory_id is None for v in leader.voters.voters.values())
