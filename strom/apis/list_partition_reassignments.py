"""ListPartitionReassignments (api key 46), version 0: the partition reassignments in progress (KIP-455).

The request names topics and partitions, or null for every reassignment. The answer lists, for each
partition being reassigned, its current replica set (origin and target together), the replicas being
added and those being removed; partitions that are not being reassigned (or do not exist) are left out,
as Kafka does. In ZooKeeper mode only the controller serves it; other brokers answer NOT_CONTROLLER. A
KRaft broker forwards it to the active controller, which answers from its metadata state. The single-node
backend never reassigns and answers an empty list.

Errors: top level NONE, NOT_CONTROLLER, CLUSTER_AUTHORIZATION_FAILED (DESCRIBE on the cluster,
strom.apis._authz), REQUEST_TIMED_OUT (a KRaft broker found no active controller).
"""

from __future__ import annotations

from typing import Any

from kio.static.primitive import i32

from strom.apis._build import build, entry_type, no_throttle
from strom.protocol.errors import ErrorCode, KafkaError
from strom.protocol.registry import ApiSpec, response_type
from strom.server.context import RequestContext

API_KEY = 46


async def handle(ctx: RequestContext, request: Any) -> Any:
    cls = response_type(API_KEY, ctx.api_version)
    assert cls is not None
    topic_cls = entry_type(cls, "topics")
    part_cls = entry_type(topic_cls, "partitions")
    wanted = (
        None
        if request.topics is None
        else [(str(t.name), int(p)) for t in request.topics for p in t.partition_indexes]
    )
    listing = getattr(ctx.broker.metadata, "list_partition_reassignments", None)
    try:
        ongoing = {} if listing is None else await listing(wanted)
    except KafkaError as exc:
        return build(cls, throttle_time=no_throttle(), error_code=exc.code, error_message=str(exc), topics=())
    by_topic: dict[str, list[Any]] = {}
    for (topic, partition), replica_set in sorted(ongoing.items()):
        by_topic.setdefault(topic, []).append(
            build(
                part_cls,
                partition_index=i32(partition),
                replicas=tuple(i32(r) for r in replica_set.replicas),
                adding_replicas=tuple(i32(r) for r in replica_set.adding),
                removing_replicas=tuple(i32(r) for r in replica_set.removing),
            )
        )
    topics = tuple(build(topic_cls, name=t, partitions=tuple(parts)) for t, parts in by_topic.items())
    return build(
        cls, throttle_time=no_throttle(), error_code=ErrorCode.none, error_message=None, topics=topics
    )


SPEC = ApiSpec(
    api_key=API_KEY, min_version=0, max_version=0, handler=handle, name="ListPartitionReassignments"
)
