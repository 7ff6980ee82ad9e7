"""What each API checks with the authorizer, in one place: the checks of Kafka 4.4's request handlers
(KafkaApis, AclApis, ControllerApis for the APIs a KRaft broker forwards) and the code a denial answers.

Two kinds of rules:
- `REQUEST_RULES`: APIs whose whole request stands on one resource: the classic group APIs (READ on the
  group), EndTxn and AddOffsetsToTxn (WRITE on the transactional id, then READ on the group), and the admin
  APIs that act on the cluster (ALTER, DESCRIBE, CLUSTER_ACTION, DESCRIBE_CONFIGS). `guard(spec)` wraps
  such an API's handler: a denied request is answered as Kafka's `getErrorResponse` answers it (every
  error code of the response set; the APIs whose response lists the request's items list them, each
  with the error) and the handler never runs.
- Per-item rules (each topic of a Produce or Fetch, each group of DescribeGroups, each resource of
  DescribeConfigs, ...) are applied by the handlers with the helpers below, because a denied item answers
  beside served ones: TOPIC_AUTHORIZATION_FAILED, GROUP_AUTHORIZATION_FAILED,
  TRANSACTIONAL_ID_AUTHORIZATION_FAILED or CLUSTER_AUTHORIZATION_FAILED for that item only.

The per-API rules of Kafka 4.4, as served here (resource: operation):
  Produce: TransactionalId WRITE (transactional records), Topic WRITE.  Fetch: Topic READ (consumers),
  Cluster CLUSTER_ACTION (followers).  ListOffsets, OffsetForLeaderEpoch (consumers): Topic DESCRIBE.
  Metadata: Topic DESCRIBE (unlisted when all topics are asked for), Cluster or Topic CREATE to
  auto-create.  OffsetCommit: Group READ, Topic READ.  OffsetFetch: Group DESCRIBE, Topic DESCRIBE.
  FindCoordinator: Group DESCRIBE / TransactionalId DESCRIBE.  Join/Sync/Heartbeat/LeaveGroup: Group READ.
  ConsumerGroupHeartbeat: Group READ, then Topic DESCRIBE on every subscribed name (else the heartbeat
  answers TOPIC_AUTHORIZATION_FAILED).  StreamsGroupHeartbeat: Group READ, then Topic DESCRIBE on every
  topic of the topology (source, repartition, changelog).  DescribeGroups, ConsumerGroupDescribe,
  StreamsGroupDescribe: Group DESCRIBE.  ListGroups: Cluster DESCRIBE, else the groups with DESCRIBE.
  DeleteGroups: Group DELETE.  OffsetDelete: Group DELETE, Topic READ.  CreateTopics: Cluster CREATE or
  Topic CREATE (and Topic DESCRIBE_CONFIGS for the
  returned configs).  DeleteTopics: Topic DELETE.  DeleteRecords: Topic DELETE.  CreatePartitions: Topic
  ALTER.  InitProducerId: TransactionalId WRITE, or without one Cluster IDEMPOTENT_WRITE or WRITE on some
  topic (KIP-679).  AddPartitionsToTxn: v0-3 (clients) TransactionalId WRITE, Topic WRITE; v4+ (brokers
  verifying, KIP-890) Cluster CLUSTER_ACTION.  AddOffsetsToTxn: TransactionalId WRITE, Group READ.
  EndTxn: TransactionalId WRITE.  TxnOffsetCommit: TransactionalId WRITE, Group READ,
  Topic READ.  WriteTxnMarkers: Cluster CLUSTER_ACTION.  DescribeAcls: Cluster DESCRIBE.  Create/DeleteAcls:
  Cluster ALTER.  DescribeConfigs: DESCRIBE_CONFIGS, Alter/IncrementalAlterConfigs: ALTER_CONFIGS on the
  Topic, Group or (broker resources) Cluster.  DescribeLogDirs, ListPartitionReassignments: Cluster
  DESCRIBE.  ElectLeaders, AlterPartitionReassignments, AlterReplicaLogDirs: Cluster ALTER.
  DescribeClientQuotas: Cluster DESCRIBE_CONFIGS.  AlterClientQuotas: Cluster ALTER_CONFIGS.
  DescribeUserScramCredentials: Cluster DESCRIBE.  AlterUserScramCredentials: Cluster ALTER.
  DescribeProducers: Topic READ.  DescribeTransactions: TransactionalId DESCRIBE (its partitions listed
  only for topics with DESCRIBE).  ListTransactions: the ids with DESCRIBE.
  DescribeTopicPartitions: Topic DESCRIBE.  ListConfigResources: Cluster DESCRIBE_CONFIGS.
  DescribeCluster: none (its authorized operations, of the cluster's seven, need Cluster DESCRIBE, else 0).
  ApiVersions: none.  ShareGroupHeartbeat: Group READ.  ShareGroupDescribe, DescribeShareGroupOffsets:
  Group DESCRIBE (and Topic DESCRIBE for the offsets).  ShareFetch, ShareAcknowledge: Group READ, Topic READ.
  AlterShareGroupOffsets: Group READ, Topic READ.  DeleteShareGroupOffsets: Group DELETE, Topic READ.
  Initialize/Read/Write/DeleteShareGroupState, ReadShareGroupStateSummary: Cluster CLUSTER_ACTION.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

from strom.apis._build import build, entry_type, no_throttle
from strom.protocol.errors import ErrorCode
from strom.protocol.registry import ApiSpec, response_type
from strom.security.acl import CLUSTER_NAME, SUPPORTED_OPERATIONS
from strom.security.authorizer import AclOperation, AllowAll, ResourceType
from strom.server.error_response import empty_response

__all__ = [
    "CLUSTER_NAME",
    "EVERY_NAME",
    "NOT_REQUESTED",
    "REQUEST_RULES",
    "Check",
    "allowed",
    "authorized_operations",
    "config_refusal",
    "denied_topics",
    "enforcing",
    "error_response",
    "guard",
    "may",
    "refused_group",
]

T = TypeVar("T")

Op = AclOperation
Rt = ResourceType
GROUP_DENIED = ErrorCode.group_authorization_failed
TXN_DENIED = ErrorCode.transactional_id_authorization_failed
CLUSTER_DENIED = ErrorCode.cluster_authorization_failed
TOPIC_DENIED = ErrorCode.topic_authorization_failed


# --- helpers for per-item checks ------------------------------------------------------------------
class _EveryName:
    """Contains every name: what `allowed` stands for while every request is allowed."""

    def __contains__(self, _name: object) -> bool:
        return True


EVERY_NAME = _EveryName()


def enforcing(ctx: Any) -> bool:
    """Whether an authorizer that can refuse is configured; hot paths (Produce, Fetch) skip asking
    otherwise."""
    return not isinstance(ctx.broker.authorizer, AllowAll)


def may(ctx: Any, operation: AclOperation, resource_type: ResourceType, name: str = CLUSTER_NAME) -> bool:
    """May the request's principal do `operation` on the resource? (The cluster when no name is given.)"""
    return bool(ctx.authorize(operation, resource_type, name))


def allowed(ctx: Any, operation: AclOperation, resource_type: ResourceType, names: Iterable[str]) -> set[str]:
    """The names among `names` the principal may do `operation` on (each asked once)."""
    return {name for name in set(names) if ctx.authorize(operation, resource_type, name)}


def denied_topics(ctx: Any, operation: AclOperation, names: Iterable[str]) -> set[str]:
    """The topic names among `names` the principal may not do `operation` on."""
    names = set(names)
    return names - allowed(ctx, operation, ResourceType.TOPIC, names)


def authorized_operations(
    ctx: Any, resource_type: ResourceType, name: str, operations: Iterable[AclOperation] | None = None
) -> int:
    """The authorized-operations bit field (1 << operation code) of one resource: of `operations` (by
    default every operation the resource type supports), those the principal may do."""
    ops = SUPPORTED_OPERATIONS.get(resource_type, ()) if operations is None else operations
    bits = 0
    for op in ops:
        if ctx.authorize(op, resource_type, name):
            bits |= 1 << int(op)
    return bits


NOT_REQUESTED = -(2**31)  # authorized_operations when the request did not ask for them


def refused_group(group_cls: type, group_id: str) -> Any:
    """A ConsumerGroupDescribe or ShareGroupDescribe entry for a group the principal may not DESCRIBE:
    GROUP_AUTHORIZATION_FAILED with the schema's zero values, as Kafka answers it."""
    return build(group_cls, error_code=GROUP_DENIED, error_message=None, group_id=group_id, group_state="",
                 group_epoch=0, assignment_epoch=0, assignor_name="", members=(),
                 authorized_operations=NOT_REQUESTED)  # fmt: skip


# ConfigResource.Type codes -> the ACL resource a config request acts on (broker, broker-logger and
# client-metrics configs are the cluster's)
_CONFIG_RESOURCES = {2: (Rt.TOPIC, TOPIC_DENIED), 32: (Rt.GROUP, GROUP_DENIED)}


def config_refusal(ctx: Any, operation: AclOperation, config_type: int, name: str) -> ErrorCode | None:
    """DescribeConfigs (DESCRIBE_CONFIGS) and (Incremental)AlterConfigs (ALTER_CONFIGS): the error a
    resource answers when the principal may not, else None."""
    resource_type, error = _CONFIG_RESOURCES.get(int(config_type), (Rt.CLUSTER, CLUSTER_DENIED))
    target = name if resource_type != Rt.CLUSTER else CLUSTER_NAME
    return None if may(ctx, operation, resource_type, target) else error


# --- whole-request rules --------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Check:
    """One check of a whole request: `operation` on the resource `name(request)` names, or `error`."""

    operation: AclOperation
    resource_type: ResourceType
    error: ErrorCode
    name: Callable[[Any], str] = lambda _request: CLUSTER_NAME


def _group(request: Any) -> str:
    return str(request.group_id)


def _txn(request: Any) -> str:
    return str(request.transactional_id)


def _read_group() -> tuple[Check, ...]:
    return (Check(Op.READ, Rt.GROUP, GROUP_DENIED, _group),)


REQUEST_RULES: dict[int, tuple[Check, ...]] = {
    11: _read_group(),  # JoinGroup
    12: _read_group(),  # Heartbeat
    13: _read_group(),  # LeaveGroup
    14: _read_group(),  # SyncGroup
    25: (Check(Op.WRITE, Rt.TRANSACTIONAL_ID, TXN_DENIED, _txn), *_read_group()),  # AddOffsetsToTxn
    26: (Check(Op.WRITE, Rt.TRANSACTIONAL_ID, TXN_DENIED, _txn),),  # EndTxn
    27: (Check(Op.CLUSTER_ACTION, Rt.CLUSTER, CLUSTER_DENIED),),  # WriteTxnMarkers
    29: (Check(Op.DESCRIBE, Rt.CLUSTER, CLUSTER_DENIED),),  # DescribeAcls
    30: (Check(Op.ALTER, Rt.CLUSTER, CLUSTER_DENIED),),  # CreateAcls
    31: (Check(Op.ALTER, Rt.CLUSTER, CLUSTER_DENIED),),  # DeleteAcls
    35: (Check(Op.DESCRIBE, Rt.CLUSTER, CLUSTER_DENIED),),  # DescribeLogDirs
    43: (Check(Op.ALTER, Rt.CLUSTER, CLUSTER_DENIED),),  # ElectLeaders
    45: (Check(Op.ALTER, Rt.CLUSTER, CLUSTER_DENIED),),  # AlterPartitionReassignments
    46: (Check(Op.DESCRIBE, Rt.CLUSTER, CLUSTER_DENIED),),  # ListPartitionReassignments
    47: (Check(Op.DELETE, Rt.GROUP, GROUP_DENIED, _group),),  # OffsetDelete (its topics: the handler)
    68: _read_group(),  # ConsumerGroupHeartbeat
    74: (Check(Op.DESCRIBE_CONFIGS, Rt.CLUSTER, CLUSTER_DENIED),),  # ListConfigResources
    76: _read_group(),  # ShareGroupHeartbeat
    78: _read_group(),  # ShareFetch (its topics: the handler)
    79: _read_group(),  # ShareAcknowledge (its topics: the handler)
    # the share coordinator's state APIs are for brokers only
    83: (Check(Op.CLUSTER_ACTION, Rt.CLUSTER, CLUSTER_DENIED),),  # InitializeShareGroupState
    84: (Check(Op.CLUSTER_ACTION, Rt.CLUSTER, CLUSTER_DENIED),),  # ReadShareGroupState
    85: (Check(Op.CLUSTER_ACTION, Rt.CLUSTER, CLUSTER_DENIED),),  # WriteShareGroupState
    86: (Check(Op.CLUSTER_ACTION, Rt.CLUSTER, CLUSTER_DENIED),),  # DeleteShareGroupState
    87: (Check(Op.CLUSTER_ACTION, Rt.CLUSTER, CLUSTER_DENIED),),  # ReadShareGroupStateSummary
    91: _read_group(),  # AlterShareGroupOffsets (its topics: the handler)
    92: (Check(Op.DELETE, Rt.GROUP, GROUP_DENIED, _group),),  # DeleteShareGroupOffsets (topics: the handler)
}


def _items(cls: type, field: str, items: Iterable[T], fill: Callable[[type, T], Any]) -> tuple[Any, ...]:
    item_cls = entry_type(cls, field)
    return tuple(fill(item_cls, item) for item in items)


def _topic_partitions(cls: type, topics_field: str, parts_field: str, topics: Iterable[Any],
                      name_field: str, request_parts: Callable[[Any], Iterable[int]], index_field: str,
                      code: ErrorCode) -> tuple[Any, ...]:  # fmt: skip
    """Response topics -> partitions, every partition answered `code` (Kafka's getErrorResponse)."""
    topic_cls = entry_type(cls, topics_field)
    part_cls = entry_type(topic_cls, parts_field)
    return tuple(
        build(
            topic_cls,
            **{
                name_field: getattr(t, name_field),
                parts_field: tuple(
                    build(part_cls, **{index_field: p}, error_code=code, error_message=None)
                    for p in request_parts(t)
                ),
            },
        )
        for t in topics
    )


SHARE_STATE_APIS = frozenset({83, 84, 85, 86, 87})


def _denied(api_key: int, version: int, request: Any, code: ErrorCode) -> Any:
    """The response to a request refused by a whole-request check."""
    cls = response_type(api_key, version)
    if cls is None:
        raise RuntimeError(f"no response schema for api {api_key} v{version}")
    if api_key == 30:  # CreateAcls: a result per creation
        results = _items(cls, "results", request.creations,
                         lambda c, _i: build(c, error_code=code, error_message=None))  # fmt: skip
        return build(cls, throttle_time=no_throttle(), results=results)
    if api_key == 31:  # DeleteAcls: a result per filter
        return build(cls, throttle_time=no_throttle(), filter_results=_items(
            cls, "filter_results", request.filters,
            lambda c, _i: build(c, error_code=code, error_message=None, matching_acls=())))  # fmt: skip
    if api_key == 27:  # WriteTxnMarkers: every partition of every marker
        def marker(c: type, m: Any) -> Any:
            topics = _topic_partitions(c, "topics", "partitions", m.topics, "name",
                                       lambda t: t.partition_indexes, "partition_index", code)  # fmt: skip
            return build(c, producer_id=m.producer_id, topics=topics)

        return build(cls, markers=_items(cls, "markers", request.markers, marker))
    if api_key == 43:  # ElectLeaders: the top-level error and every requested partition
        results = _topic_partitions(cls, "replica_election_results", "partition_result",
                                    request.topic_partitions or (), "topic", lambda t: t.partitions,
                                    "partition_id", code)  # fmt: skip
        return build(cls, throttle_time=no_throttle(), error_code=code, replica_election_results=results)
    if api_key == 45:  # AlterPartitionReassignments: the top-level error and every partition
        responses = _topic_partitions(cls, "responses", "partitions", request.topics, "name",
                                      lambda t: [p.partition_index for p in t.partitions],
                                      "partition_index", code)  # fmt: skip
        allow_change = getattr(request, "allow_replication_factor_change", True)
        return build(cls, throttle_time=no_throttle(), error_code=code, error_message=None,
                     allow_replication_factor_change=allow_change, responses=responses)  # fmt: skip
    if api_key in SHARE_STATE_APIS:  # every partition of every topic, with no state
        topic_cls = entry_type(cls, "results")
        part_cls = entry_type(topic_cls, "partitions")
        no_state = {"state_epoch": -1, "leader_epoch": -1, "start_offset": -1, "state_batches": ()}
        results = tuple(
            build(topic_cls, topic_id=t.topic_id, partitions=tuple(
                build(part_cls, partition=p.partition, error_code=code, error_message=None, **no_state)
                for p in t.partitions))
            for t in request.topics
        )  # fmt: skip
        return build(cls, results=results)
    return empty_response(cls, code)


def error_response(api_key: int, version: int, request: Any, code: ErrorCode) -> Any:
    """The response refusing `request` as a whole with `code`, listing its items where the response lists
    them (Kafka's getErrorResponse): also what a broker answers when it cannot forward a request."""
    return _denied(api_key, version, request, code)


def _add_partitions_to_txn(ctx: Any, request: Any) -> Any:
    """AddPartitionsToTxn: v4+ (brokers verifying, KIP-890) needs CLUSTER_ACTION on the cluster; v0-3 WRITE
    on the transactional id (every partition refused) and on each topic (the refused ones answer
    TOPIC_AUTHORIZATION_FAILED, the others OPERATION_NOT_ATTEMPTED). None: go on to the handler."""
    cls = response_type(24, ctx.api_version)
    if ctx.api_version >= 4:
        if may(ctx, Op.CLUSTER_ACTION, Rt.CLUSTER):
            return None
        return build(cls, throttle_time=no_throttle(), error_code=CLUSTER_DENIED, results_by_transaction=())
    topics = request.v3_and_below_topics
    if not may(ctx, Op.WRITE, Rt.TRANSACTIONAL_ID, request.v3_and_below_transactional_id):
        refused = {t.name: TXN_DENIED for t in topics}
    else:
        writable = allowed(ctx, Op.WRITE, Rt.TOPIC, (t.name for t in topics))
        if all(t.name in writable for t in topics):
            return None
        refused = {t.name: None if t.name in writable else TOPIC_DENIED for t in topics}
    topic_cls = entry_type(cls, "results_by_topic_v3_and_below")
    part_cls = entry_type(topic_cls, "results_by_partition")
    results = tuple(
        build(topic_cls, name=t.name, results_by_partition=tuple(
            build(part_cls, partition_index=p,
                  partition_error_code=refused[t.name] or ErrorCode.operation_not_attempted)
            for p in t.partitions))
        for t in topics
    )  # fmt: skip
    return build(cls, throttle_time=no_throttle(), results_by_topic_v3_and_below=results)


def _init_producer_id(ctx: Any, request: Any) -> Any:
    """InitProducerId: WRITE on the transactional id; without one, IDEMPOTENT_WRITE on the cluster or WRITE
    on at least one topic (KIP-679)."""
    if request.transactional_id:
        if may(ctx, Op.WRITE, Rt.TRANSACTIONAL_ID, request.transactional_id):
            return None
        code = TXN_DENIED
    elif may(ctx, Op.IDEMPOTENT_WRITE, Rt.CLUSTER) or _may_write_some_topic(ctx):
        return None
    else:
        code = CLUSTER_DENIED
    cls = response_type(22, ctx.api_version)
    return build(cls, throttle_time=no_throttle(), error_code=code, producer_id=-1, producer_epoch=-1)


def _may_write_some_topic(ctx: Any) -> bool:
    acls = getattr(ctx.broker, "acl_authorizer", None)
    if acls is None:
        return True
    return bool(acls.authorize_by_resource_type(ctx.principal, ctx.client_host, Op.WRITE, Rt.TOPIC))


# APIs whose whole-request check needs more than one resource per rule: (ctx, request) -> the refusing
# response, or None to serve the request
REQUEST_GUARDS: dict[int, Callable[[Any, Any], Any]] = {
    22: _init_producer_id,
    24: _add_partitions_to_txn,
}


def guard(spec: ApiSpec) -> ApiSpec:
    """`spec` with its handler behind the API's whole-request checks (unchanged when it has none)."""
    checks = REQUEST_RULES.get(spec.api_key, ())
    special = REQUEST_GUARDS.get(spec.api_key)
    if not checks and special is None:
        return spec
    inner = spec.handler

    async def guarded(ctx: Any, request: Any) -> Any:
        for check in checks:
            if not ctx.authorize(check.operation, check.resource_type, check.name(request)):
                return _denied(spec.api_key, ctx.api_version, request, check.error)
        if special is not None:
            refusal = special(ctx, request)
            if refusal is not None:
                return refusal
        return await inner(ctx, request)

    return dataclasses.replace(spec, handler=guarded)
