"""The requests a KRaft replica sends, built from its state: Vote (pre-vote or real), BeginQuorumEpoch,
EndQuorumEpoch, Fetch and FetchSnapshot on `__cluster_metadata-0`, at the versions Kafka 4.4 sends them
(Vote v2, BeginQuorumEpoch v1, EndQuorumEpoch v1, Fetch v18 with the follower's high watermark (KIP-1166),
FetchSnapshot v1). Pure functions of the core's state; sans-io.
"""

from __future__ import annotations

import datetime
from typing import TYPE_CHECKING, Any

from kio.static.primitive import i32Timedelta

from strom.raft.messages import item, request_class
from strom.raft.metadata_log import METADATA_TOPIC, METADATA_TOPIC_ID
from strom.raft.states import Resigned, SnapshotFetch

if TYPE_CHECKING:
    from strom.raft.core import RaftCore

__all__ = [
    "add_voter_request",
    "begin_epoch_request",
    "end_epoch_request",
    "fetch_request",
    "fetch_snapshot_request",
    "remove_voter_request",
    "update_voter_request",
    "vote_request",
]

VOTE, BEGIN_QUORUM_EPOCH, END_QUORUM_EPOCH, FETCH_SNAPSHOT, FETCH = 52, 53, 54, 59, 1
ADD_RAFT_VOTER, REMOVE_RAFT_VOTER, UPDATE_RAFT_VOTER = 80, 81, 82
VOTE_VERSION, BEGIN_VERSION, END_VERSION, FETCH_VERSION, FETCH_SNAPSHOT_VERSION = 2, 1, 1, 18, 1
FETCH_MAX_BYTES = 8 * 1024 * 1024
SNAPSHOT_CHUNK_BYTES = 1024 * 1024


def _timedelta(ms: int) -> Any:
    return i32Timedelta.parse(datetime.timedelta(milliseconds=ms))


def vote_request(core: RaftCore, voter: int, pre_vote: bool) -> Any:
    cls = request_class(VOTE, VOTE_VERSION)
    topic_cls = item(cls, "topics")
    part_cls = item(topic_cls, "partitions")
    end = core.log.end
    target = core.voters.voters.get(voter)
    return cls(
        cluster_id=core.cluster_id,
        voter_id=voter,
        topics=(
            topic_cls(
                topic_name=METADATA_TOPIC,
                partitions=(
                    part_cls(
                        partition_index=0,
                        replica_epoch=core.epoch,
                        replica_id=core.node_id,
                        replica_directory_id=core.directory_id,
                        voter_directory_id=target.directory_id if target else None,
                        last_offset_epoch=end.epoch,
                        last_offset=end.offset,
                        pre_vote=pre_vote,
                    ),
                ),
            ),
        ),
    )


def leader_endpoints(core: RaftCore, cls: type) -> tuple[Any, ...]:
    me = core.voters.voters.get(core.node_id)
    if me is None:
        return ()
    ep_cls = item(cls, "leader_endpoints")
    return tuple(ep_cls(name=name, host=host, port=port) for name, (host, port) in me.endpoints.items())


def begin_epoch_request(core: RaftCore, voter: int) -> Any:
    cls = request_class(BEGIN_QUORUM_EPOCH, BEGIN_VERSION)
    topic_cls = item(cls, "topics")
    part_cls = item(topic_cls, "partitions")
    target = core.voters.voters.get(voter)
    return cls(
        cluster_id=core.cluster_id,
        topics=(
            topic_cls(
                topic_name=METADATA_TOPIC,
                partitions=(
                    part_cls(
                        partition_index=0,
                        voter_directory_id=target.directory_id if target else None,
                        leader_id=core.node_id,
                        leader_epoch=core.epoch,
                    ),
                ),
            ),
        ),
        leader_endpoints=leader_endpoints(core, cls),
    )


def end_epoch_request(core: RaftCore, s: Resigned) -> Any:
    cls = request_class(END_QUORUM_EPOCH, END_VERSION)
    topic_cls = item(cls, "topics")
    part_cls = item(topic_cls, "partitions")
    info_cls = item(part_cls, "preferred_candidates")
    candidates = tuple(
        info_cls(
            candidate_id=v,
            candidate_directory_id=core.voters.voters[v].directory_id if v in core.voters.voters else None,
        )
        for v in s.successors
    )
    return cls(
        cluster_id=core.cluster_id,
        topics=(
            topic_cls(
                topic_name=METADATA_TOPIC,
                partitions=(
                    part_cls(
                        partition_index=0,
                        leader_id=core.node_id,
                        leader_epoch=s.epoch,
                        preferred_candidates=candidates,
                    ),
                ),
            ),
        ),
        leader_endpoints=leader_endpoints(core, cls),
    )


def fetch_request(core: RaftCore) -> Any:
    cls = request_class(FETCH, FETCH_VERSION)
    topic_cls = item(cls, "topics")
    part_cls = item(topic_cls, "partitions")
    replica_cls = item(cls, "replica_state")
    end = core.log.end
    return cls(
        cluster_id=core.cluster_id,
        replica_state=replica_cls(replica_id=core.node_id, replica_epoch=-1),
        max_wait=_timedelta(core.config.fetch_max_wait_ms),
        min_bytes=0,
        max_bytes=FETCH_MAX_BYTES,
        topics=(
            topic_cls(
                topic_id=METADATA_TOPIC_ID,
                partitions=(
                    part_cls(
                        partition=0,
                        current_leader_epoch=core.epoch,
                        fetch_offset=end.offset,
                        last_fetched_epoch=end.epoch,
                        log_start_offset=-1,
                        partition_max_bytes=FETCH_MAX_BYTES,
                        replica_directory_id=core.directory_id,
                        high_watermark=core.high_watermark,
                    ),
                ),
            ),
        ),
        forgotten_topics_data=(),
        rack_id="",
    )


def fetch_snapshot_request(core: RaftCore, fetch: SnapshotFetch) -> Any:
    cls = request_class(FETCH_SNAPSHOT, FETCH_SNAPSHOT_VERSION)
    topic_cls = item(cls, "topics")
    part_cls = item(topic_cls, "partitions")
    id_cls = item(part_cls, "snapshot_id")
    return cls(
        cluster_id=core.cluster_id,
        replica_id=core.node_id,
        max_bytes=SNAPSHOT_CHUNK_BYTES,
        topics=(
            topic_cls(
                name=METADATA_TOPIC,
                partitions=(
                    part_cls(
                        partition=0,
                        current_leader_epoch=core.epoch,
                        snapshot_id=id_cls(end_offset=fetch.snapshot.offset, epoch=fetch.snapshot.epoch),
                        position=fetch.position,
                        replica_directory_id=core.directory_id,
                    ),
                ),
            ),
        ),
    )


def update_voter_request(core: RaftCore) -> Any:
    """UpdateRaftVoter v0 (KIP-853): this voter's key, listeners and kraft.version range, to its leader."""
    cls = request_class(UPDATE_RAFT_VOTER, 0)
    listener_cls = item(cls, "listeners")
    feature_cls = item(cls, "k_raft_version_feature")
    low, high = core.local_kraft_versions
    return cls(
        cluster_id=core.cluster_id,
        current_leader_epoch=core.epoch,
        voter_id=core.node_id,
        voter_directory_id=core.directory_id,
        listeners=tuple(
            listener_cls(name=name, host=host, port=port)
            for name, (host, port) in (core.local_endpoints or {}).items()
        ),
        k_raft_version_feature=feature_cls(min_supported_version=low, max_supported_version=high),
    )


def add_voter_request(core: RaftCore) -> Any:
    """AddRaftVoter v1 for this replica itself (auto-join), answered once appended (ack_when_committed
    false), as a Kafka 4.4 controller with controller.quorum.auto.join.enable sends it."""
    cls = request_class(ADD_RAFT_VOTER, 1)
    listener_cls = item(cls, "listeners")
    return cls(
        cluster_id=core.cluster_id,
        timeout=_timedelta(core.config.request_timeout_ms),
        voter_id=core.node_id,
        voter_directory_id=core.directory_id,
        listeners=tuple(
            listener_cls(name=name, host=host, port=port)
            for name, (host, port) in (core.local_endpoints or {}).items()
        ),
        ack_when_committed=False,
    )


def remove_voter_request(core: RaftCore, directory_id: Any) -> Any:
    """RemoveRaftVoter v0 for this replica's id with another directory id (auto-join: the voter this node
    was before its log dir was replaced)."""
    cls = request_class(REMOVE_RAFT_VOTER, 0)
    return cls(cluster_id=core.cluster_id, voter_id=core.node_id, voter_directory_id=directory_id)
