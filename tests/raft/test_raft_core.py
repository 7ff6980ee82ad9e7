"""The Raft state machine (strom.raft.core) on an in-memory network with a fake clock: elections with
pre-vote, split votes, fail-over, truncation on divergence, the high watermark, snapshots, observers."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from kio.index import load_request_schema

from strom.metadata.batches import read_metadata_batches
from strom.metadata.records import LeaderChangeMessage, NoOpRecord
from strom.metadata.snapshot import CLUSTER_METADATA_DIR, snapshot_file_name, write_snapshot
from strom.protocol.errors import ErrorCode
from strom.raft import requests
from strom.raft.core import BEGIN_QUORUM_EPOCH, FETCH, VOTE, NotLeaderError
from strom.raft.messages import item
from strom.raft.metadata_log import OffsetAndEpoch
from strom.raft.states import Role

from .harness import NOOP, Network


@pytest.fixture
def net(tmp_path: Path) -> Network:
    network = Network(tmp_path, [1, 2, 3])
    yield network
    network.close()


def entries(net: Network, node: int) -> list[tuple[int, int, str]]:
    """(offset, epoch, record type) of every record in a node's log."""
    out = []
    for batch in net.nodes[node].log.iter_batches(0):
        for offset, record in batch.records:
            out.append((offset, batch.header.partition_leader_epoch, type(record.message).__name__))
    return out


def test_three_voters_elect_one_leader_which_writes_leader_change_first(net: Network) -> None:
    elapsed = net.run_until(net.stable_leader)
    # one election timeout (1000 ms plus up to 1000 ms random) and a few round trips
    assert elapsed < 2500
    leader = net.leader()
    core = net.nodes[leader]
    assert core.epoch == 1
    batches = list(core.log.iter_batches(0))
    assert batches[0].is_control and batches[0].header.partition_leader_epoch == 1
    message = batches[0].records[0][1].message
    assert isinstance(message, LeaderChangeMessage)
    assert message.leader_id == leader
    assert [v.voter_id for v in message.voters] == [1, 2, 3]
    assert leader in [v.voter_id for v in message.granting_voters]
    state = json.loads((net.directory(leader) / CLUSTER_METADATA_DIR / "quorum-state").read_text())
    assert state == {
        "clusterId": "",
        "leaderId": leader,
        "leaderEpoch": 1,
        "votedId": -1,
        "appliedOffset": 0,
        "currentVoters": [{"voterId": 1}, {"voterId": 2}, {"voterId": 3}],
        "data_version": 0,
    }
    for node in (1, 2, 3):
        if node != leader:
            follower = json.loads((net.directory(node) / CLUSTER_METADATA_DIR / "quorum-state").read_text())
            assert follower["leaderId"] == leader and follower["leaderEpoch"] == 1


def test_records_replicate_and_commit(net: Network) -> None:
    net.run_until(net.stable_leader)
    last = net.append(5)
    net.run_until(lambda: all(c.high_watermark == last + 1 for c in net.nodes.values()))
    logs = {node: entries(net, node) for node in net.nodes}
    assert logs[1] == logs[2] == logs[3]
    assert [kind for _, _, kind in logs[1]] == ["LeaderChangeMessage"] + ["NoOpRecord"] * 5


def test_high_watermark_waits_for_a_majority_and_the_leaders_epoch(net: Network) -> None:
    net.run_until(lambda: net.leader() is not None)
    leader = net.leader()
    core = net.nodes[leader]
    # before any follower fetched, the LeaderChangeMessage is not committed: no high watermark
    assert core.high_watermark == -1
    others = [n for n in (1, 2, 3) if n != leader]
    net.stop(others[0])
    net.isolate(others[1])
    core.append([NOOP], net.now)
    net.run(500)
    assert core.high_watermark == -1  # the leader alone is no majority
    net.heal()
    net.run_until(lambda: core.high_watermark == core.log.end_offset)
    # a majority (leader and one follower) is enough: the stopped voter does not hold it back
    assert net.nodes[others[1]].log.end_offset == core.log.end_offset


def test_follower_that_is_cut_off_does_not_disturb_the_leader_pre_vote(net: Network) -> None:
    net.run_until(net.stable_leader)
    leader = net.leader()
    epoch = net.nodes[leader].epoch
    lonely = next(n for n in (1, 2, 3) if n != leader)
    net.isolate(lonely)
    net.run(10_000)
    # it timed out and asked for pre-votes over and over, but never bumped its epoch
    assert net.nodes[lonely].epoch == epoch
    assert net.nodes[lonely].role in (Role.PROSPECTIVE, Role.UNATTACHED, Role.FOLLOWER)
    # the others kept their leader: they refuse pre-votes while the leader answers their fetches
    assert net.nodes[leader].role is Role.LEADER
    net.heal()
    net.run_until(net.stable_leader)
    assert net.leader() == leader and net.nodes[leader].epoch == epoch


def test_prevote_is_refused_while_the_leader_is_alive(net: Network) -> None:
    net.run_until(net.stable_leader)
    leader = net.leader()
    follower = next(n for n in (1, 2, 3) if n != leader)
    other = next(n for n in (1, 2, 3) if n not in (leader, follower))
    core = net.nodes[follower]
    request = requests.vote_request(core, other, True)
    response = net.deliver(other, request)
    part = response.topics[0].partitions[0]
    assert part.error_code == ErrorCode.none and not part.vote_granted
    assert part.leader_id == leader


def test_leader_failover_keeps_committed_records(net: Network) -> None:
    net.run_until(net.stable_leader)
    old = net.leader()
    last = net.append(3)
    net.run_until(lambda: all(c.high_watermark > last for c in net.live().values()))
    net.stop(old)
    elapsed = net.run_until(lambda: net.leader() is not None and net.leader() != old)
    # the fetch timeout (2000 ms), then pre-vote and vote rounds well within another election timeout
    assert elapsed < 2000 + 2000 + 500
    new = net.leader()
    assert net.nodes[new].epoch == 2
    net.append(1)
    net.run_until(lambda: all(c.high_watermark == net.nodes[new].log.end_offset for c in net.live().values()))
    kinds = [kind for _, _, kind in entries(net, new)]
    assert kinds == ["LeaderChangeMessage"] + ["NoOpRecord"] * 3 + ["LeaderChangeMessage", "NoOpRecord"]
    # the old leader comes back: Resigned at its epoch, then a follower of the new leader
    restarted = net.restart(old)
    assert restarted.role is Role.RESIGNED
    net.run_until(net.stable_leader)
    assert net.leader() == new
    assert entries(net, old) == entries(net, new)


def test_split_vote_resolves_with_backoff(tmp_path: Path) -> None:
    net = Network(tmp_path, [1, 2, 3, 4], seed=7)
    try:
        # start every voter's election at the same instant: votes split, then randomized backoff
        for core in net.nodes.values():
            core.state.election_deadline_ms = net.now
        net.run_until(net.stable_leader, limit_ms=30_000)
        leader = net.leader()
        assert sum(c.role is Role.LEADER for c in net.nodes.values()) == 1
        assert net.nodes[leader].epoch >= 1
    finally:
        net.close()


def test_divergent_uncommitted_entries_are_truncated(net: Network) -> None:
    net.run_until(net.stable_leader)
    old = net.leader()
    net.append(2)
    net.run_until(lambda: all(c.high_watermark == net.nodes[old].log.end_offset for c in net.nodes.values()))
    committed = net.nodes[old].log.end_offset
    net.isolate(old)
    # appended on the cut-off leader: never committed
    net.nodes[old].append([NOOP] * 4, net.now)
    assert net.nodes[old].log.end_offset == committed + 4
    net.run_until(lambda: any(c.role is Role.LEADER and i != old for i, c in net.nodes.items()))
    new = next(i for i, c in net.nodes.items() if c.role is Role.LEADER and i != old)
    net.nodes[new].append([NOOP], net.now)
    net.heal()
    net.run_until(
        lambda: (
            net.stable_leader()
            and net.leader() == new
            and net.nodes[old].log.end_offset == net.nodes[new].log.end_offset
        )
    )
    assert entries(net, old) == entries(net, new)
    epochs = [epoch for _, epoch, _ in entries(net, old)]
    assert epochs.count(1) == 1 + 2  # the four uncommitted epoch-1 records are gone
    assert net.nodes[old].high_watermark <= net.nodes[new].log.end_offset


def test_leader_resigns_without_a_majority_check_quorum(net: Network) -> None:
    net.run_until(net.stable_leader)
    leader = net.leader()
    net.isolate(leader)
    net.run(int(2000 * 1.5) + 200)
    assert net.nodes[leader].role is not Role.LEADER
    net.heal()
    net.run_until(net.stable_leader)


def test_graceful_resignation_elects_the_best_successor_quickly(net: Network) -> None:
    net.run_until(net.stable_leader)
    leader = net.leader()
    net.nodes[leader].resign(net.now)
    net.run(100)
    net.stop(leader)
    elapsed = net.run_until(lambda: net.leader() is not None)
    assert elapsed < 1000  # far less than the 2000 ms fetch timeout


def test_vote_of_another_cluster_is_inconsistent_cluster_id(net: Network) -> None:
    net.run_until(net.stable_leader)
    leader = net.leader()
    follower = next(n for n in (1, 2, 3) if n != leader)
    request = requests.vote_request(net.nodes[follower], leader, False)
    forged = type(request)(
        cluster_id="AAAAAAAAAAAAAAAAAAAAAA", voter_id=request.voter_id, topics=request.topics
    )
    response = net.deliver(leader, forged)
    assert response.error_code == ErrorCode.inconsistent_cluster_id
    fetch = requests.fetch_request(net.nodes[follower])
    forged_fetch = dataclasses.replace(fetch, cluster_id="AAAAAAAAAAAAAAAAAAAAAA")
    assert net.deliver(leader, forged_fetch).error_code == ErrorCode.inconsistent_cluster_id


def test_fenced_and_unknown_epochs(net: Network) -> None:
    net.run_until(net.stable_leader)
    leader = net.leader()
    follower = next(n for n in (1, 2, 3) if n != leader)
    core = net.nodes[follower]
    fetch = requests.fetch_request(core)
    topic = fetch.topics[0]
    for epoch, error in ((0, ErrorCode.fenced_leader_epoch), (5, ErrorCode.unknown_leader_epoch)):
        part = dataclasses.replace(topic.partitions[0], current_leader_epoch=epoch)
        request = dataclasses.replace(fetch, topics=(dataclasses.replace(topic, partitions=(part,)),))
        response = net.deliver(leader, request)
        p = response.responses[0].partitions[0]
        assert p.error_code == error
        assert (p.current_leader.leader_id, p.current_leader.leader_epoch) == (leader, 1)
    # a follower answers a fetch with NOT_LEADER_OR_FOLLOWER and names the leader
    response = net.deliver(follower, requests.fetch_request(core))
    p = response.responses[0].partitions[0]
    assert p.error_code == ErrorCode.not_leader_or_follower and p.current_leader.leader_id == leader
    # BeginQuorumEpoch of an older epoch is fenced
    begin = requests.begin_epoch_request(net.nodes[leader], follower)
    old = type(begin)(
        cluster_id=begin.cluster_id,
        leader_endpoints=begin.leader_endpoints,
        topics=(
            type(begin.topics[0])(
                topic_name="__cluster_metadata",
                partitions=(
                    type(begin.topics[0].partitions[0])(
                        partition_index=0, voter_directory_id=None, leader_id=leader, leader_epoch=0
                    ),
                ),
            ),
        ),
    )
    assert net.deliver(follower, old).topics[0].partitions[0].error_code == ErrorCode.fenced_leader_epoch
    assert BEGIN_QUORUM_EPOCH == 53 and VOTE == 52 and FETCH == 1


def test_describe_quorum(net: Network) -> None:
    net.run_until(net.stable_leader)
    net.append(2)
    net.run_until(lambda: all(c.high_watermark == c.log.end_offset for c in net.nodes.values()))
    leader = net.leader()
    cls = load_request_schema(55, 2)
    topic_cls = item(cls, "topics")
    request = cls(
        topics=(
            topic_cls(
                topic_name="__cluster_metadata",
                partitions=(item(topic_cls, "partitions")(partition_index=0),),
            ),
        )
    )
    response = net.deliver(leader, request)
    part = response.topics[0].partitions[0]
    assert part.error_code == ErrorCode.none
    assert (part.leader_id, part.leader_epoch, part.high_watermark) == (leader, 1, 3)
    assert sorted(v.replica_id for v in part.current_voters) == [1, 2, 3]
    assert all(v.log_end_offset == 3 for v in part.current_voters)
    assert all(v.last_caught_up_timestamp > 0 for v in part.current_voters)
    assert sorted((n.node_id, n.listeners[0].name, n.listeners[0].port) for n in response.nodes) == [
        (1, "CONTROLLER", 9001),
        (2, "CONTROLLER", 9002),
        (3, "CONTROLLER", 9003),
    ]
    follower = next(n for n in (1, 2, 3) if n != leader)
    part = net.deliver(follower, request).topics[0].partitions[0]
    assert part.error_code == ErrorCode.not_leader_or_follower


def test_observer_replicates_without_voting(tmp_path: Path) -> None:
    net = Network(tmp_path, [1, 2, 3], observers=[7])
    try:
        net.run_until(net.stable_leader)
        leader = net.leader()
        last = net.append(2)
        observer = net.nodes[7]
        net.run_until(lambda: observer.role is Role.FOLLOWER and observer.high_watermark == last + 1)
        assert not observer.is_voter
        assert entries(net, 7) == entries(net, leader)
        # observers never start elections, even when the leader goes away
        net.stop(leader)
        net.run_until(lambda: net.leader() is not None)
        net.run_until(lambda: observer.leader_id == net.leader())
        assert all(not (src == 7 and out.api_key == VOTE) for src, out in net.sent)
        # nor do their fetch offsets move the high watermark
        state = net.nodes[net.leader()].state
        assert 7 in state.observers and 7 not in state.voters
    finally:
        net.close()


def test_follower_far_behind_fetches_the_snapshot(net: Network) -> None:
    net.run_until(net.stable_leader)
    leader = net.leader()
    lagging = next(n for n in (1, 2, 3) if n != leader)
    net.stop(lagging)
    for _ in range(5):
        net.append(10)
    core = net.nodes[leader]
    net.run_until(lambda: core.high_watermark == core.log.end_offset)
    # the controller would write a snapshot of its image at a committed offset; any records do here
    end = core.log.end_offset
    snapshot = OffsetAndEpoch(core.epoch, end)
    write_snapshot(
        core.log.snapshot_path(snapshot),
        [NOOP] * 7,
        kraft_version=0,
        voters=None,
        timestamp_ms=net.now,
        epoch=core.epoch,
    )
    core.log.snapshot_written(snapshot)
    assert core.log.maybe_clean(net.now, 0, -1)  # past metadata.max.retention.bytes: cleaned
    core.log.log.roll()
    core.append([NOOP], net.now)
    assert core.log.start_offset == end
    net.restart(lagging)
    net.run_until(lambda: net.nodes[lagging].high_watermark == core.log.end_offset)
    follower = net.nodes[lagging]
    assert follower.log.start_offset == end
    assert follower.log.snapshots == [snapshot]
    assert (follower.log.dir / snapshot_file_name(end, core.epoch)).read_bytes() == core.log.snapshot_path(
        snapshot
    ).read_bytes()
    assert entries(net, lagging) == entries(net, leader)
    assert any(out.api_key == 59 for src, out in net.sent if src == lagging)


def test_restart_keeps_the_vote_and_epoch(net: Network) -> None:
    net.run_until(net.stable_leader)
    leader = net.leader()
    net.append(1)
    net.run(200)
    for node in (1, 2, 3):
        net.stop(node)
    for node in (1, 2, 3):
        net.restart(node)
    assert net.nodes[leader].role is Role.RESIGNED
    net.run_until(net.stable_leader)
    assert net.nodes[net.leader()].epoch == 2
    for batch in read_metadata_batches(net.nodes[1].log.log.read(0, 1 << 20).read_bytes()):
        assert batch.records


def test_append_on_a_follower_is_refused(net: Network) -> None:
    net.run_until(net.stable_leader)
    follower = next(n for n in (1, 2, 3) if n != net.leader())
    with pytest.raises(NotLeaderError):
        net.nodes[follower].append([NOOP], net.now)
    assert NoOpRecord.API_KEY == 20


def test_single_voter_elects_itself_at_once(tmp_path: Path) -> None:
    net = Network(tmp_path, [1])
    try:
        net.step()
        assert net.nodes[1].role is Role.LEADER
        net.append(1)
        assert net.nodes[1].high_watermark == 2
    finally:
        net.close()
