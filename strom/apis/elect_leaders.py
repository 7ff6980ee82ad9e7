"""ElectLeaders (api key 43), versions 0-2: preferred or unclean leader election (KIP-183, KIP-460).

The request names partitions (or null: every partition) and, from v1, the election type: 0 preferred
(move leadership back to the first replica when it is alive and in the ISR), 1 unclean (elect any live
replica of a partition that has no leader). Only the controller elects (clients send this API to the
controller, as Kafka's admin clients do); other brokers answer NOT_CONTROLLER and the client looks the
controller up again. Served through `ClusterBackend.elect_leaders` (ZooKeeper backend); the single-node
backend has nothing to elect and answers ELECTION_NOT_NEEDED.

Errors: top level (v1+) NONE, NOT_CONTROLLER, CLUSTER_AUTHORIZATION_FAILED (never, no ACLs);
per partition NONE, UNKNOWN_TOPIC_OR_PARTITION, ELECTION_NOT_NEEDED, PREFERRED_LEADER_NOT_AVAILABLE,
ELIGIBLE_LEADERS_NOT_AVAILABLE, INVALID_REQUEST (v0 carries the top-level error per partition).
"""

from __future__ import annotations

from typing import Any

from kio.static.primitive import i32

from strom.apis._build import build, entry_type, no_throttle
from strom.protocol.errors import ErrorCode, KafkaError
from strom.protocol.registry import ApiSpec, response_type
from strom.server.context import RequestContext

API_KEY = 43
PREFERRED = 0
UNCLEAN = 1


def _requested(ctx: RequestContext, request: Any) -> list[tuple[str, int]]:
    image = ctx.broker.metadata.image
    if request.topic_partitions is None:
        return sorted((name, p) for name, info in image.topics.items() for p in info.partitions)
    return [(str(tp.topic), int(p)) for tp in request.topic_partitions for p in tp.partitions]


async def handle(ctx: RequestContext, request: Any) -> Any:
    cls = response_type(API_KEY, ctx.api_version)
    assert cls is not None
    result_cls = entry_type(cls, "replica_election_results")
    part_cls = entry_type(result_cls, "partition_result")
    election_type = int(getattr(request, "election_type", PREFERRED))
    wanted = _requested(ctx, request)
    top_error = ErrorCode.none
    codes: dict[tuple[str, int], ErrorCode] = {}
    elect = getattr(ctx.broker.metadata, "elect_leaders", None)
    if election_type not in (PREFERRED, UNCLEAN):
        codes = dict.fromkeys(wanted, ErrorCode.invalid_request)
    elif elect is None:
        codes = dict.fromkeys(wanted, ErrorCode.election_not_needed)
    else:
        try:
            codes = await elect(wanted, election_type)
        except KafkaError as exc:
            top_error = exc.code
    if top_error != ErrorCode.none and ctx.api_version == 0:
        codes = dict.fromkeys(wanted, top_error)
    by_topic: dict[str, list[Any]] = {}
    for topic, partition in wanted:
        if top_error != ErrorCode.none and ctx.api_version > 0:
            continue
        code = codes.get((topic, partition), ErrorCode.unknown_topic_or_partition)
        by_topic.setdefault(topic, []).append(
            build(part_cls, partition_id=i32(partition), error_code=ErrorCode(code), error_message=None)
        )
    results = tuple(
        build(result_cls, topic=topic, partition_result=tuple(parts)) for topic, parts in by_topic.items()
    )
    return build(cls, throttle_time=no_throttle(), error_code=top_error, replica_election_results=results)


SPEC = ApiSpec(api_key=API_KEY, min_version=0, max_version=2, handler=handle, name="ElectLeaders")
