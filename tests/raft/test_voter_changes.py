"""AddRaftVoter, RemoveRaftVoter and UpdateRaftVoter on the sans-io core (KIP-853, Kafka 4.4's
AddVoterHandler / RemoveVoterHandler / UpdateVoterHandler): the voter set in force is the newest
VotersRecord, committed or not; one change at a time; truncation reverts it; removed voters do not vote."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kio.index import load_request_schema, load_response_schema

from strom.protocol.errors import ErrorCode
from strom.raft import voter_changes
from strom.raft.messages import item, request_class
from strom.raft.metadata_log import METADATA_TOPIC
from strom.raft.voter_changes import AddVoterPlan
from tests.raft.harness import Network, roundtrip

ZERO = uuid.UUID(int=0)


@pytest.fixture
def net(tmp_path: Path) -> Iterator[Network]:
    network = Network(tmp_path, [1], observers=[2, 3], dynamic=True)
    network.run_until(lambda: network.leader() == 1)
    network.run_until(lambda: network.nodes[1].high_watermark > 0)
    network.append(3)
    leader = network.nodes[1]
    network.run_until(lambda: all(c.log.end_offset == leader.log.end_offset for c in network.nodes.values()))
    network.run(50)  # the observers' next fetches show the leader they caught up
    yield network
    network.close()


def add_request(
    node_id: int, directory_id: uuid.UUID | None, port: int | None = None, name: str = "CONTROLLER"
) -> Any:
    cls = request_class(80, 1)
    listener = item(cls, "listeners")
    return roundtrip(
        cls(
            cluster_id=None,
            timeout=voter_changes_timeout(),
            voter_id=node_id,
            voter_directory_id=directory_id or ZERO,
            listeners=(listener(name=name, host="127.0.0.1", port=port or 9000 + node_id),),
            ack_when_committed=True,
        ),
        load_request_schema,
    )


def voter_changes_timeout() -> Any:
    import datetime

    from kio.static.primitive import i32Timedelta

    return i32Timedelta.parse(datetime.timedelta(seconds=30))


def remove_request(node_id: int, directory_id: uuid.UUID) -> Any:
    cls = request_class(81, 0)
    return roundtrip(
        cls(cluster_id=None, voter_id=node_id, voter_directory_id=directory_id), load_request_schema
    )


def update_request(net: Network, node_id: int, port: int, versions: tuple[int, int] = (0, 1)) -> Any:
    cls = request_class(82, 0)
    return roundtrip(
        cls(
            cluster_id=None,
            current_leader_epoch=net.nodes[node_id].epoch,
            voter_id=node_id,
            voter_directory_id=net.directory_id(node_id),
            listeners=(item(cls, "listeners")(name="CONTROLLER", host="127.0.0.1", port=port),),
            k_raft_version_feature=item(cls, "k_raft_version_feature")(
                min_supported_version=versions[0], max_supported_version=versions[1]
            ),
        ),
        load_request_schema,
    )


def answer(response: Any) -> tuple[ErrorCode, str | None]:
    response = roundtrip(response, load_response_schema)
    return ErrorCode(int(response.error_code)), response.error_message


def add(net: Network, node_id: int, versions: tuple[int, int] | None = (0, 1)) -> Any:
    """Both halves of an AddRaftVoter on the leader, the new voter answering ApiVersions with `versions`."""
    leader = net.nodes[net.leader() or 1]
    plan = voter_changes.handle_add_voter(leader, add_request(node_id, net.directory_id(node_id)), net.now)
    if not isinstance(plan, AddVoterPlan):
        return plan
    return voter_changes.finish_add_voter(leader, plan, 1, ErrorCode.none, versions, net.now)


def test_add_voter_promotes_a_caught_up_observer(net: Network) -> None:
    leader = net.nodes[1]
    offset = add(net, 2)
    assert isinstance(offset, int)
    # in force at once, uncommitted: the high watermark now needs node 2
    assert leader.voters.ids == [1, 2] and leader.high_watermark <= offset
    net.run_until(lambda: leader.high_watermark > offset)
    assert net.nodes[2].is_voter and net.nodes[2].voters.ids == [1, 2]
    assert not net.nodes[3].is_voter and net.nodes[3].voters.ids == [1, 2]
    assert add(net, 3) is not None
    net.run_until(lambda: leader.high_watermark > leader.voter_history.latest_offset)
    assert leader.voters.ids == [1, 2, 3]
    # the new voters vote: with the leader gone, 2 and 3 elect one of them
    net.stop(1)
    net.run_until(lambda: net.leader() in (2, 3))


def test_one_voter_change_at_a_time(net: Network) -> None:
    leader = net.nodes[1]
    net.isolate(2)
    offset = add(net, 2)
    assert isinstance(offset, int)
    net.run(200)
    assert leader.high_watermark <= offset  # node 2 cannot fetch: the change stays uncommitted
    error, message = answer(add(net, 3))
    assert error is ErrorCode.request_timed_out
    assert message == (
        f"Request timed out waiting for voters to commit the latest voter change at Optional[{offset}] "
        f"with HWM {leader.high_watermark}"
    )
    remove = remove_request(2, net.directory_id(2))
    error, _ = answer(voter_changes.handle_remove_voter(leader, remove, net.now))
    assert error is ErrorCode.request_timed_out
    # while an add waits for its new voter's ApiVersions, others wait too
    net.heal()
    net.run_until(lambda: leader.high_watermark > offset)
    plan = voter_changes.handle_add_voter(leader, add_request(3, net.directory_id(3)), net.now)
    assert isinstance(plan, AddVoterPlan)
    again = voter_changes.handle_add_voter(leader, add_request(3, net.directory_id(3)), net.now)
    assert answer(again) == (
        ErrorCode.request_timed_out,
        "Request timed out waiting for leader to handle previous voter change request",
    )


def test_add_voter_refusals(net: Network) -> None:
    leader = net.nodes[1]
    on_observer = voter_changes.handle_add_voter(net.nodes[2], add_request(2, net.directory_id(2)), net.now)
    assert answer(on_observer) == (ErrorCode.not_leader_or_follower, None)
    assert answer(voter_changes.handle_add_voter(leader, add_request(2, None), net.now)) == (
        ErrorCode.invalid_request,
        "Add voter request didn't include a valid voter",
    )
    error, message = answer(
        voter_changes.handle_add_voter(leader, add_request(2, net.directory_id(2), name="OTHER"), net.now)
    )
    assert error is ErrorCode.invalid_request and "for the default listener ListenerName(CONTROLLER)" in (
        message or ""
    )
    request = add_request(1, net.directory_id(1))
    error, message = answer(voter_changes.handle_add_voter(leader, request, net.now))
    assert error is ErrorCode.duplicate_voter
    assert (message or "").startswith("The voter id for ReplicaKey(id=1, directoryId=Optional[")
    # a new voter whose kraft.version range lacks the finalized level 1
    error, message = answer(add(net, 2, versions=(0, 0)))
    assert error is ErrorCode.invalid_request and "doesn't support the finalized version 1" in (message or "")
    # no answer to ApiVersions
    plan = voter_changes.handle_add_voter(leader, add_request(2, net.directory_id(2)), net.now)
    assert isinstance(plan, AddVoterPlan)
    error, message = answer(voter_changes.finish_add_voter(leader, plan, 1, None, None, net.now))
    assert error is ErrorCode.request_timed_out and "is not ready to receive requests" in (message or "")
    # a node that never fetched is not caught up
    plan = voter_changes.handle_add_voter(leader, add_request(7, uuid.uuid4()), net.now)
    assert isinstance(plan, AddVoterPlan)
    error, message = answer(voter_changes.finish_add_voter(leader, plan, 1, ErrorCode.none, (0, 1), net.now))
    assert error is ErrorCode.request_timed_out and message is not None and message.endswith("lagging behind")
    assert leader.voters.ids == [1]


def test_a_static_quorum_refuses_voter_changes(tmp_path: Path) -> None:
    net = Network(tmp_path, [1, 2, 3])
    try:
        net.run_until(net.stable_leader)
        net.run_until(lambda: net.nodes[net.leader() or 1].high_watermark > 0)
        leader = net.nodes[net.leader() or 1]
        request = add_request(4, uuid.uuid4())
        error, message = answer(voter_changes.handle_add_voter(leader, request, net.now))
        assert error is ErrorCode.unsupported_version
        assert message == "Cluster doesn't support adding voter because the kraft.version feature is 0"
    finally:
        net.close()


def test_remove_voter_and_the_leader_resigns_when_it_removed_itself(net: Network) -> None:
    leader = net.nodes[1]
    for node_id in (2, 3):
        add(net, node_id)
        net.run_until(lambda: leader.high_watermark > leader.voter_history.latest_offset)
    wrong_directory = voter_changes.handle_remove_voter(leader, remove_request(3, uuid.uuid4()), net.now)
    assert answer(wrong_directory)[0] is ErrorCode.voter_not_found
    epoch = leader.epoch
    offset = voter_changes.handle_remove_voter(leader, remove_request(1, net.directory_id(1)), net.now)
    assert isinstance(offset, int) and leader.voters.ids == [2, 3] and not leader.is_voter
    net.run_until(lambda: net.leader() in (2, 3))
    new = net.nodes[net.leader() or 2]
    assert new.epoch > epoch
    net.run_until(lambda: new.high_watermark > offset)  # the new epoch commits without node 1
    # the removed node now observes: it follows the new leader and grants no vote
    net.run_until(lambda: leader.leader_id == net.leader())
    assert not leader.is_voter
    cls = request_class(52, 2)
    topic = item(cls, "topics")
    part = item(topic, "partitions")
    end = new.log.end
    vote = roundtrip(
        cls(
            cluster_id=net.cluster_id,
            voter_id=1,
            topics=(
                topic(
                    topic_name=METADATA_TOPIC,
                    partitions=(
                        part(
                            partition_index=0,
                            replica_epoch=new.epoch + 1,
                            replica_id=3,
                            replica_directory_id=net.directory_id(3),
                            voter_directory_id=net.directory_id(1),
                            last_offset_epoch=end.epoch,
                            last_offset=end.offset,
                            pre_vote=False,
                        ),
                    ),
                ),
            ),
        ),
        load_request_schema,
    )
    response = leader.handle_request(52, vote, net.now)
    assert response.topics[0].partitions[0].vote_granted is False


def test_truncation_reverts_an_uncommitted_voter_set(tmp_path: Path) -> None:
    net = Network(tmp_path, [1, 2, 3], dynamic=True)
    try:
        net.run_until(net.stable_leader)
        first = net.leader()
        assert first is not None
        core = net.nodes[first]
        net.run_until(lambda: core.high_watermark > 0)
        net.append(2)
        net.run_until(lambda: all(c.high_watermark == core.log.end_offset for c in net.nodes.values()))
        net.isolate(first)
        other = next(i for i in (1, 2, 3) if i != first)
        remove = remove_request(other, net.directory_id(other))
        offset = voter_changes.handle_remove_voter(core, remove, net.now)
        assert isinstance(offset, int) and other not in core.voters
        net.run_until(lambda: any(net.nodes[i].role.value == "Leader" for i in (1, 2, 3) if i != first))
        new = net.nodes[next(i for i in (1, 2, 3) if i != first and net.nodes[i].role.value == "Leader")]
        net.heal()
        net.run_until(lambda: core.leader_id == new.node_id and core.log.end == new.log.end)
        # the old leader's uncommitted VotersRecord was truncated away: all three vote again
        assert core.voters.ids == [1, 2, 3] and core.voter_history.latest_offset < offset
    finally:
        net.close()


def test_update_voter_writes_the_new_endpoints(net: Network) -> None:
    leader = net.nodes[1]
    add(net, 2)
    net.run_until(lambda: leader.high_watermark > leader.voter_history.latest_offset)
    response = voter_changes.handle_update_voter(leader, update_request(net, 2, 7777), net.now)
    assert int(response.error_code) == ErrorCode.none and response.current_leader.leader_id == 1
    assert leader.voters.voters[2].endpoints == {"CONTROLLER": ("127.0.0.1", 7777)}
    net.run_until(lambda: net.nodes[2].voters.voters[2].endpoints == {"CONTROLLER": ("127.0.0.1", 7777)})
    net.run_until(lambda: leader.high_watermark > leader.voter_history.latest_offset)
    bad = voter_changes.handle_update_voter(leader, update_request(net, 2, 7778, versions=(0, 0)), net.now)
    assert int(bad.error_code) == ErrorCode.invalid_request
    unknown = voter_changes.handle_update_voter(leader, update_request(net, 3, 7779), net.now)
    assert int(unknown.error_code) == ErrorCode.voter_not_found


def test_update_voter_at_kraft_version_0_is_kept_in_memory(tmp_path: Path) -> None:
    """KAFKA-16538: a static voter's UpdateRaftVoter is answered NONE and nothing is written."""
    net = Network(tmp_path, [1, 2, 3])
    try:
        net.run_until(net.stable_leader)
        leader_id = net.leader()
        assert leader_id is not None
        leader = net.nodes[leader_id]
        net.run_until(lambda: leader.high_watermark > 0)
        follower = next(i for i in (1, 2, 3) if i != leader_id)
        end = leader.log.end_offset
        response = voter_changes.handle_update_voter(leader, update_request(net, follower, 7777), net.now)
        assert int(response.error_code) == ErrorCode.none
        assert leader.volatile_voters[follower].endpoints == {"CONTROLLER": ("127.0.0.1", 7777)}
        assert leader.volatile_voters[follower].directory_id == net.directory_id(follower)
        assert leader.log.end_offset == end and leader.voters.voters[follower].directory_id is None
        stranger = dataclasses.replace(update_request(net, follower, 7777), voter_id=9)
        unknown = voter_changes.handle_update_voter(leader, stranger, net.now)
        assert int(unknown.error_code) == ErrorCode.voter_not_found
    finally:
        net.close()


def test_a_leader_with_new_endpoints_writes_its_own_entry(tmp_path: Path) -> None:
    """KIP-853: a voter elected leader whose VotersRecord entry names other endpoints rewrites it in the
    batch that starts its epoch (followers would not find it at the old address)."""
    net = Network(tmp_path, [1], dynamic=True)
    try:
        net.run_until(lambda: net.leader() == 1 and net.nodes[1].high_watermark > 0)
        first = net.nodes[1].voter_history.latest_offset
        net.stop(1)
        core = net.restart(1)
        core.local_endpoints = {"CONTROLLER": ("127.0.0.1", 7001)}
        net.run_until(lambda: net.leader() == 1 and core.high_watermark > core.voter_history.latest_offset)
        assert core.voter_history.latest_offset > first
        assert core.voters.voters[1].endpoints == {"CONTROLLER": ("127.0.0.1", 7001)}
        assert core.voters_record is not None and core.voters_record.voters[0].endpoints[0].port == 7001
    finally:
        net.close()
