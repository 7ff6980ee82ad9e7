"""DescribeQuorum (api 55, v0-2; KIP-595, KIP-836 timestamps, KIP-853 directory ids and nodes) as the KRaft
leader answers it: the leader, its epoch and high watermark (-1 until this epoch commits), every voter with
its log end offset and last fetch / last caught-up times (the leader's own are "now"), the observers that
fetched in the last 5 minutes, and (v2) the voters' listeners. A replica that is not the leader answers
NOT_LEADER_OR_FOLLOWER for the partition with Kafka's message; another partition is
UNKNOWN_TOPIC_OR_PARTITION. `kafka-metadata-quorum describe --status/--replication` prints this.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from strom.protocol.errors import ErrorCode
from strom.raft.messages import build, item, response_class
from strom.raft.metadata_log import METADATA_TOPIC
from strom.raft.states import Leader, ReplicaProgress

if TYPE_CHECKING:
    from strom.raft.core import RaftCore

__all__ = ["describe_quorum"]

DESCRIBE_QUORUM = 55
OBSERVER_EXPIRY_MS = 5 * 60 * 1000  # Kafka forgets observers that stopped fetching after 5 minutes
_NOT_LEADER_MESSAGE = (
    "For requests intended only for the leader, this error indicates that the broker is not the current "
    "leader. For requests intended for any replica, this error indicates that the broker is not a replica "
    "of the topic partition."
)


def describe_quorum(core: RaftCore, req: Any, now_ms: int) -> Any:
    """KIP-595/KIP-836/KIP-853: the leader's view of voters and observers; others answer
    NOT_LEADER_OR_FOLLOWER for the partition."""
    cls = response_class(DESCRIBE_QUORUM, req.__version__)
    topic_cls = item(cls, "topics")
    part_cls = item(topic_cls, "partitions")
    state_cls = item(part_cls, "current_voters")
    part = core._single_partition(req)
    s = core.state
    if part is None:
        error, message = (
            ErrorCode.unknown_topic_or_partition,
            "This server does not host this topic-partition.",
        )
    elif not isinstance(s, Leader):
        error, message = ErrorCode.not_leader_or_follower, _NOT_LEADER_MESSAGE
    else:
        error, message = ErrorCode.none, None
    if error is not ErrorCode.none:
        p = build(
            part_cls,
            partition_index=0,
            error_code=error,
            error_message=message,
            leader_id=-1,
            leader_epoch=-1,
            high_watermark=-1,
            current_voters=(),
            observers=(),
        )
        return build(
            cls,
            error_code=ErrorCode.none,
            error_message=None,
            topics=(topic_cls(topic_name=METADATA_TOPIC, partitions=(p,)),),
            nodes=(),
        )
    assert isinstance(s, Leader)

    def replica(p: ReplicaProgress) -> Any:
        if p.node_id == core.node_id:
            return build(
                state_cls,
                replica_id=p.node_id,
                replica_directory_id=p.directory_id or uuid.UUID(int=0),
                log_end_offset=core.log.end_offset,
                last_fetch_timestamp=now_ms,
                last_caught_up_timestamp=now_ms,
            )
        return build(
            state_cls,
            replica_id=p.node_id,
            replica_directory_id=p.directory_id or uuid.UUID(int=0),
            log_end_offset=p.end_offset,
            last_fetch_timestamp=p.last_fetch_ms,
            last_caught_up_timestamp=p.last_caught_up_ms,
        )

    for node_id, progress in list(s.observers.items()):
        if now_ms - progress.last_fetch_ms > OBSERVER_EXPIRY_MS:
            del s.observers[node_id]
    voters = [replica(s.voters[v]) for v in core.voters.ids if v in s.voters]
    observers = [replica(p) for _, p in sorted(s.observers.items())]
    p = build(
        part_cls,
        partition_index=0,
        error_code=ErrorCode.none,
        error_message=None,
        leader_id=core.node_id,
        leader_epoch=s.epoch,
        high_watermark=s.high_watermark,
        current_voters=tuple(voters),
        observers=tuple(observers),
    )
    nodes: tuple[Any, ...] = ()
    if "nodes" in cls.__dataclass_fields__:
        node_cls = item(cls, "nodes")
        listener_cls = item(node_cls, "listeners")
        nodes = tuple(
            node_cls(
                node_id=v.node_id,
                listeners=tuple(
                    listener_cls(name=name, host=host, port=port)
                    for name, (host, port) in v.endpoints.items()
                ),
            )
            for v in (core.voters.voters[i] for i in core.voters.ids)
        )
    return build(
        cls,
        error_code=ErrorCode.none,
        error_message=None,
        topics=(topic_cls(topic_name=METADATA_TOPIC, partitions=(p,)),),
        nodes=nodes,
    )
