"""AlterPartitionReassignments (api key 45), versions 0-1: move partition replicas between brokers (KIP-455).

Each partition names its target replicas, or null to cancel a reassignment in progress. In ZooKeeper
mode only the controller serves it (Kafka's admin client sends it to the controller); other brokers answer
NOT_CONTROLLER and the client finds the controller again. The controller writes the new replica set
(RS = target + origin, with the adding and removing replicas) into the topic znode and answers at once;
the new replicas then follow the leader and the controller finishes the move once they are all in the
ISR (strom.cluster.reassignment). ListPartitionReassignments shows what is still running.

In KRaft mode a broker forwards it to the active controller in an Envelope (strom.cluster.kraft.forwarding)
and the controller serves this handler over `ControllerAdmin`: one PartitionChangeRecord per partition
with the full target set, completed by the controller when an AlterPartition brings every target replica
into the ISR, as Kafka's ReplicationControlManager does (strom.cluster.kraft.partition_change).

With the single-node backend the only valid target is the broker itself, which is already the replica
set: it is accepted and changes nothing.

v1 (KIP-860) adds `allow_replication_factor_change` (echoed in the response): when false, a valid target
whose size differs from the partition's replication factor (the replicas before any reassignment in
progress) answers INVALID_REPLICATION_FACTOR and moves nothing.

Errors: top level NONE, NOT_CONTROLLER, CLUSTER_AUTHORIZATION_FAILED (ALTER on the cluster,
strom.apis._authz), REQUEST_TIMED_OUT (a KRaft broker found no active controller); per partition NONE,
UNKNOWN_TOPIC_OR_PARTITION, INVALID_REPLICA_ASSIGNMENT (empty, duplicate or unknown brokers),
INVALID_REPLICATION_FACTOR (v1, a size change that was not allowed), NO_REASSIGNMENT_IN_PROGRESS
(cancelling nothing), REQUEST_TIMED_OUT (the topic kept changing).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from kio.static.primitive import i32

from strom.apis._build import build, entry_type, no_throttle
from strom.cluster.metadata import MetadataImage
from strom.cluster.reassignment import NoReassignmentInProgressError, validate_target
from strom.protocol.errors import ErrorCode, KafkaError
from strom.protocol.registry import ApiSpec, response_type
from strom.server.context import RequestContext

API_KEY = 45

Request = tuple[tuple[str, int], Sequence[int] | None]
Result = tuple[ErrorCode, str | None]


def _requested(request: Any) -> list[Request]:
    return [
        (
            (str(topic.name), int(p.partition_index)),
            None if p.replicas is None else [int(r) for r in p.replicas],
        )
        for topic in request.topics
        for p in topic.partitions
    ]


def _single_node(image: MetadataImage, wanted: list[Request]) -> dict[tuple[str, int], Result]:
    """A backend without reassignment: only the current replica set itself is a valid target."""
    results: dict[tuple[str, int], Result] = {}
    for (topic, partition), target in wanted:
        state = image.partition(topic, partition)
        if state is None:
            results[(topic, partition)] = (ErrorCode.unknown_topic_or_partition, None)
            continue
        try:
            if target is None:
                raise NoReassignmentInProgressError("No partition reassignment is in progress.")
            validate_target(target, image.brokers)
        except KafkaError as exc:
            results[(topic, partition)] = (exc.code, str(exc))
            continue
        results[(topic, partition)] = (ErrorCode.none, None)
    return results


async def _replication_factor_changes(backend: Any, wanted: list[Request]) -> dict[tuple[str, int], Result]:
    """KIP-860: the partitions whose valid target would change their replication factor."""
    image = backend.image
    listing = getattr(backend, "list_partition_reassignments", None)
    ongoing = {} if listing is None else await listing([key for key, _ in wanted])
    refused: dict[tuple[str, int], Result] = {}
    for key, target in wanted:
        state = image.partition(*key)
        if target is None or state is None:
            continue
        try:
            validate_target(target, image.brokers)
        except KafkaError:
            continue  # the backend answers the invalid assignment itself
        in_progress = ongoing.get(key)
        current = (
            [r for r in in_progress.replicas if r not in in_progress.adding]
            if in_progress is not None
            else list(state.replicas)
        )
        if len(target) != len(current):
            refused[key] = (
                ErrorCode.invalid_replication_factor,
                f"The replication factor is changed from {len(current)} to {len(target)} "
                "but allowReplicationFactorChange is false.",
            )
    return refused


async def handle(ctx: RequestContext, request: Any) -> Any:
    cls = response_type(API_KEY, ctx.api_version)
    assert cls is not None
    topic_cls = entry_type(cls, "responses")
    part_cls = entry_type(topic_cls, "partitions")
    wanted = _requested(request)
    allow_change = bool(getattr(request, "allow_replication_factor_change", True))
    backend = ctx.broker.metadata
    alter = getattr(backend, "alter_partition_reassignments", None)
    try:
        refused = {} if allow_change else await _replication_factor_changes(backend, wanted)
        allowed = [item for item in wanted if item[0] not in refused]
        if alter is None:
            results = _single_node(backend.image, allowed)
        else:
            results = await alter(allowed) if allowed else {}
        results.update(refused)
    except KafkaError as exc:
        return build(
            cls,
            throttle_time=no_throttle(),
            allow_replication_factor_change=allow_change,
            error_code=exc.code,
            error_message=str(exc),
            responses=(),
        )
    by_topic: dict[str, list[Any]] = {}
    for (topic, partition), _target in wanted:
        code, message = results.get((topic, partition), (ErrorCode.unknown_topic_or_partition, None))
        by_topic.setdefault(topic, []).append(
            build(part_cls, partition_index=i32(partition), error_code=code, error_message=message)
        )
    responses = tuple(build(topic_cls, name=t, partitions=tuple(parts)) for t, parts in by_topic.items())
    return build(
        cls,
        throttle_time=no_throttle(),
        allow_replication_factor_change=allow_change,
        error_code=ErrorCode.none,
        error_message=None,
        responses=responses,
    )


SPEC = ApiSpec(
    api_key=API_KEY, min_version=0, max_version=1, handler=handle, name="AlterPartitionReassignments"
)
