"""The APIs a KRaft controller serves beyond Raft's, on its CONTROLLER listener.

- BrokerRegistration (62) v0-4, BrokerHeartbeat (63) v0-2 (KIP-631), AlterPartition (56) v2-3 (KIP-497,
  by topic id; v3 carries each ISR member's broker epoch, KIP-903), AllocateProducerIds (67) v0 (KIP-730):
  answered by the active controller from `strom.cluster.kraft.decisions`, after the records are committed;
  any other controller answers NOT_CONTROLLER, and brokers try the leader again. An AlterPartition whose
  ISR completes a reassignment writes the completing change too; when that moves the leadership away
  from the sender, it is answered NEW_LEADER_ELECTED, as Kafka's controller does. The leader recovery
  state it carries (KIP-704) is checked and applied by the rules.
- ControllerRegistration (70) v0 (KIP-919): the active controller writes the RegisterControllerRecord of a
  controller that registers (Kafka 4.4's controllers send it to the active one, whatever its kind, and
  retry with an ERROR log line each time while it is refused).
- AssignReplicasToDirs (73) v0 (KIP-858): a JBOD broker's replicas' directories, as PartitionChangeRecords.
- UpdateFeatures (57) v0-2 (`kafka-features`, checks in strom.cluster.kraft.feature_updates; enabling
  eligible.leader.replicas.version first writes the ELR safety records of KIP-966: the cluster-level
  min.insync.replicas, no broker-level ones) and UnregisterBroker (64) v0 (`kafka-cluster unregister`),
  CLUSTER ALTER, on the active controller.
- Config changes of min.insync.replicas with the ELR on: a broker-level one is refused and the
  cluster-level one may not be removed (INVALID_CONFIG); a change writes a ClearElrRecord after it.
- CreateTopics, DeleteTopics, CreatePartitions, AlterConfigs, IncrementalAlterConfigs, CreateAcls,
  DeleteAcls, DescribeAcls (strom.cluster.kraft.acls), Alter/DescribeUserScramCredentials
  (strom.cluster.kraft.scram), Create/Renew/ExpireDelegationToken (strom.cluster.kraft.tokens), ElectLeaders
  (preferred and unclean, `ControllerRules.elect_leaders`), AlterPartitionReassignments and
  ListPartitionReassignments (KIP-455, `ControllerRules.alter_partition_reassignments`, rules in
  strom.cluster.kraft.partition_change): the broker handlers of `strom.apis` behind their authorization
  rules, run against `ControllerAdmin`, a `ClusterBackend` over the active controller.
  These serve `--bootstrap-controller` admin clients, the brokers' own writes, and the clients' requests
  brokers forward in an Envelope (KIP-590, strom.cluster.kraft.envelope), served as the client they name.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from strom.cluster.backend import MetadataListener
from strom.cluster.election import NotControllerError
from strom.cluster.kraft.controller import QuorumController
from strom.cluster.kraft.decisions import HeartbeatReply, IsrMember
from strom.cluster.metadata import MetadataImage, TopicInfo
from strom.cluster.reassignment import ReplicaSet
from strom.cluster.validation import validate_broker_configs, validate_topic_configs
from strom.group_config import validate as validate_group_configs
from strom.metadata.image import BROKER_RESOURCE, GROUP_RESOURCE, TOPIC_RESOURCE
from strom.protocol.errors import ErrorCode, KafkaError, UnknownTopicOrPartitionError
from strom.protocol.registry import ApiSpec
from strom.raft.messages import build, item, response_class, zero_throttle

__all__ = ["ControllerAdmin", "controller_specs"]

CLUSTER_NAME = "kafka-cluster"


def _fail(exc: KafkaError) -> tuple[ErrorCode, str]:
    return exc.code, exc.message


class ControllerAdmin:
    """The `ClusterBackend` the admin handlers use on a controller: changes go through the quorum
    controller (NOT_CONTROLLER off the active one); `image` is the controller's current state."""

    is_controller = True  # a BROKER config resource may name any broker (strom.apis._config_alter)

    def __init__(self, controller: QuorumController) -> None:
        self.controller = controller

    @property
    def image(self) -> MetadataImage:
        c = self.controller
        return c.state.image(c.cluster_id, c.raft.core.leader_id)

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    def add_listener(self, callback: MetadataListener) -> None:
        return None

    def feature_levels(self) -> tuple[dict[str, tuple[int, int]], int, dict[str, int]]:
        """ApiVersions' features on a controller, from its replayed state."""
        from strom.metadata.features import finalized_features, supported_features

        c = self.controller
        finalized = finalized_features(c.state.features, c.raft.core.kraft_version)
        return supported_features(), max(0, c.state.last_offset), finalized

    def _check_active(self) -> None:
        if not self.controller.is_active:
            raise NotControllerError("This is not the active controller.")

    async def create_topic(
        self,
        name: str,
        num_partitions: int,
        replication_factor: int,
        configs: Mapping[str, str | None],
        assignments: Mapping[int, Sequence[int]] | None = None,
        validate_only: bool = False,
    ) -> TopicInfo:
        self._check_active()
        change = self.controller.rules.create_topic(
            name, num_partitions, replication_factor, configs, assignments
        )
        if validate_only:
            return change.result  # type: ignore[return-value]
        return await self.controller.write(change)  # type: ignore[return-value]

    async def delete_topic(self, name: str) -> TopicInfo:
        self._check_active()
        return await self.controller.write(self.controller.rules.delete_topic(name))  # type: ignore[return-value]

    async def create_partitions(
        self,
        name: str,
        total: int,
        assignments: Sequence[Sequence[int]] | None = None,
        validate_only: bool = False,
    ) -> TopicInfo:
        self._check_active()
        change = self.controller.rules.create_partitions(name, total, assignments)
        if not validate_only:
            await self.controller.write(change)
        return self.image.topics.get(name) or change.result  # type: ignore[return-value]

    async def alter_topic_configs(
        self, name: str, configs: Mapping[str, str | None], validate_only: bool = False
    ) -> TopicInfo:
        self._check_active()
        info = self.image.topics.get(name)
        if info is None:
            raise UnknownTopicOrPartitionError("This server does not host this topic-partition.")
        overrides = validate_topic_configs(configs)
        if not validate_only:
            records = self.controller.rules.alter_configs(TOPIC_RESOURCE, name, overrides)
            records += self.controller.rules.clear_elr_records(records)
            if records:
                await self.controller.wait_committed(self.controller.append(records))
        return TopicInfo(info.name, info.topic_id, info.partitions, overrides, info.internal)

    async def alter_broker_configs(
        self, node_id: int | None, configs: Mapping[str, str | None], validate_only: bool = False
    ) -> None:
        self._check_active()
        valid = validate_broker_configs(configs)
        name = "" if node_id is None else str(node_id)
        # with the ELR on (KIP-966) min.insync.replicas is a cluster-level setting only
        self.controller.rules.check_min_isr_change(BROKER_RESOURCE, name, valid)  # type: ignore[arg-type]
        if validate_only:
            return
        records = self.controller.rules.alter_configs(BROKER_RESOURCE, name, valid)  # type: ignore[arg-type]
        records += self.controller.rules.clear_elr_records(records)
        if records:
            await self.controller.wait_committed(self.controller.append(records))

    async def alter_group_configs(
        self, group_id: str, configs: Mapping[str, str | None], validate_only: bool = False
    ) -> None:
        """Checked against this controller's bounds, as Kafka's ControllerConfigurationValidator does,
        then written as ConfigRecords of resource type 32."""
        self._check_active()
        valid = validate_group_configs(configs, self.controller.config)
        if validate_only:
            return
        records = self.controller.rules.alter_configs(GROUP_RESOURCE, group_id, valid)
        if records:
            await self.controller.wait_committed(self.controller.append(records))

    async def elect_leaders(
        self, partitions: Sequence[tuple[str, int]], election_type: int
    ) -> dict[tuple[str, int], ErrorCode]:
        self._check_active()
        return await self.controller.write(self.controller.rules.elect_leaders(partitions, election_type))  # type: ignore[return-value]

    async def alter_partition_reassignments(
        self, wanted: Sequence[tuple[tuple[str, int], Sequence[int] | None]]
    ) -> dict[tuple[str, int], tuple[ErrorCode, str | None]]:
        """AlterPartitionReassignments (KIP-455): one batch of PartitionChangeRecords, answered once it
        is committed (strom.cluster.kraft.partition_change has the rules)."""
        self._check_active()
        return await self.controller.write(self.controller.rules.alter_partition_reassignments(wanted))  # type: ignore[return-value]

    async def list_partition_reassignments(
        self, wanted: Sequence[tuple[str, int]] | None = None
    ) -> dict[tuple[str, int], ReplicaSet]:
        """ListPartitionReassignments: the partitions with adding or removing replicas, from the active
        controller's state, which holds its own writes from their append on (Kafka reads its committed
        state: a reassignment appended and not yet committed may show here a moment early)."""
        self._check_active()
        return self.controller.rules.list_partition_reassignments(wanted)


# -- the broker-to-controller APIs ------------------------------------------------------------------------


def _not_active(controller: QuorumController) -> KafkaError | None:
    if controller.is_active:
        return None
    return NotControllerError("This is not the active controller.")


async def _broker_registration(controller: QuorumController, ctx: Any, request: Any) -> Any:
    cls = response_class(62, ctx.api_version)
    error = _not_active(controller)
    epoch = -1
    if error is None:
        try:
            # decide and append with no await between: the record's offset is the broker epoch
            change = controller.rules.register_broker(
                request,
                cluster_id=controller.cluster_id,
                next_offset=controller.raft.core.log.end_offset,
                has_live_session=controller.has_live_session,
            )
            offset = controller.append(change.records)
            controller.heartbeat_seen(int(request.broker_id))
            await controller.wait_committed(offset)
            epoch = int(change.result)  # type: ignore[call-overload]
        except KafkaError as exc:
            error = exc
    return build(
        cls,
        throttle_time=zero_throttle(),
        error_code=error.code if error else ErrorCode.none,
        broker_epoch=epoch,
    )


async def _controller_registration(controller: QuorumController, ctx: Any, request: Any) -> Any:
    cls = response_class(70, ctx.api_version)
    error = _not_active(controller)
    if error is None:
        try:
            await controller.write(controller.rules.register_controller(request))
        except KafkaError as exc:
            error = exc
    return build(
        cls,
        throttle_time=zero_throttle(),
        error_code=error.code if error else ErrorCode.none,
        error_message=error.message if error else None,
    )


async def _broker_heartbeat(controller: QuorumController, ctx: Any, request: Any) -> Any:
    cls = response_class(63, ctx.api_version)
    error = _not_active(controller)
    reply = HeartbeatReply(False, True, False)
    if error is None:
        try:
            broker_id = int(request.broker_id)
            change = controller.rules.heartbeat(
                broker_id,
                int(request.broker_epoch),
                int(request.current_metadata_offset),
                bool(request.want_fence),
                bool(request.want_shut_down),
            )
            controller.heartbeat_seen(broker_id)
            reply = await controller.write(change)  # type: ignore[assignment]
        except KafkaError as exc:
            error = exc
    return build(
        cls,
        throttle_time=zero_throttle(),
        error_code=error.code if error else ErrorCode.none,
        is_caught_up=reply.is_caught_up,
        is_fenced=reply.is_fenced,
        should_shut_down=reply.should_shut_down,
    )


async def _alter_partition(controller: QuorumController, ctx: Any, request: Any) -> Any:
    version = ctx.api_version
    cls = response_class(56, version)
    topic_cls = item(cls, "topics")
    part_cls = item(topic_cls, "partitions")
    error = _not_active(controller)
    if error is None:
        try:
            controller.rules.check_broker_epoch(int(request.broker_id), int(request.broker_epoch))
        except KafkaError as exc:
            error = exc
    if error is not None:
        return build(cls, throttle_time=zero_throttle(), error_code=error.code, topics=())
    records = []
    topics = []
    for topic in request.topics:
        topic_id = topic.topic_id or uuid.UUID(int=0)
        parts = []
        for p in topic.partitions:
            if version >= 3:
                members = [IsrMember(int(m.broker_id), int(m.broker_epoch)) for m in p.new_isr_with_epochs]
            else:
                members = [IsrMember(int(b)) for b in p.new_isr]
            code, after, record = controller.rules.alter_partition(
                int(request.broker_id),
                topic_id,
                int(p.partition_index),
                int(p.leader_epoch),
                int(p.partition_epoch),
                members,
                check_member_epochs=version >= 3,
                recovery_state=int(getattr(p, "leader_recovery_state", 0)),
            )
            if record is not None:
                records.append(record)
            parts.append(
                build(
                    part_cls,
                    partition_index=p.partition_index,
                    error_code=code,
                    leader_id=after.leader if after else -1,
                    leader_epoch=after.leader_epoch if after else -1,
                    isr=after.isr if after else (),
                    leader_recovery_state=after.leader_recovery_state if after else 0,
                    partition_epoch=after.partition_epoch if after else -1,
                )
            )
        topics.append(build(topic_cls, topic_id=topic.topic_id, topic_name="", partitions=tuple(parts)))
    top_error = ErrorCode.none
    if records:
        try:
            await controller.wait_committed(controller.append(records))
        except KafkaError as exc:
            top_error = exc.code
            topics = []
    return build(cls, throttle_time=zero_throttle(), error_code=top_error, topics=tuple(topics))


async def _allocate_producer_ids(controller: QuorumController, ctx: Any, request: Any) -> Any:
    cls = response_class(67, ctx.api_version)
    error = _not_active(controller)
    start, length = -1, 0
    if error is None:
        try:
            change = controller.rules.allocate_producer_ids(int(request.broker_id), int(request.broker_epoch))
            start, length = await controller.write(change)  # type: ignore[misc]
        except KafkaError as exc:
            error = exc
    return build(
        cls,
        throttle_time=zero_throttle(),
        error_code=error.code if error else ErrorCode.none,
        producer_id_start=start,
        producer_id_len=length,
    )


def _cluster_alter_denied(ctx: Any) -> KafkaError | None:
    from strom.security.authorizer import AclOperation, ResourceType

    if ctx.authorize(AclOperation.ALTER, ResourceType.CLUSTER, CLUSTER_NAME):
        return None
    return KafkaError("Cluster authorization failed.", code=ErrorCode.cluster_authorization_failed)


async def _update_features(controller: QuorumController, ctx: Any, request: Any) -> Any:
    """UpdateFeatures (57) v0-2: strom.cluster.kraft.feature_updates decides; below v2 every feature's
    result repeats the top-level error, as Kafka's UpdateFeaturesResponse.createWithErrors does."""
    from strom.cluster.kraft.feature_updates import SAFE_DOWNGRADE, UPGRADE, FeatureUpdate, update_features

    cls = response_class(57, ctx.api_version)
    updates = [
        FeatureUpdate(
            str(u.feature),
            int(u.max_version_level),
            int(u.upgrade_type) if ctx.api_version >= 1 else SAFE_DOWNGRADE if u.allow_downgrade else UPGRADE,
        )
        for u in request.feature_updates
    ]
    error = _cluster_alter_denied(ctx) or _not_active(controller)
    if error is None:
        try:
            validate_only = ctx.api_version >= 1 and bool(request.validate_only)
            records = update_features(
                controller.state,
                controller.raft.core.node_id,
                updates,
                controller.raft.core.kraft_version,
                lambda level: controller.upgrade_kraft_version(level, validate_only),
            )
            if any(u.name == "eligible.leader.replicas.version" and u.level > 0 for u in updates):
                # KIP-966: the cluster-level min.insync.replicas exists, and no broker-level one, before
                # the ELR is on (Kafka's maybeGenerateElrSafetyRecords)
                records = [*controller.rules.elr_safety_records(), *records]
            if records and not validate_only:
                await controller.wait_committed(controller.append(records))
        except KafkaError as exc:
            error = exc
    code, message = (error.code, error.message) if error else (ErrorCode.none, None)
    fields: dict[str, Any] = {}
    if ctx.api_version < 2:
        fields["results"] = tuple(
            item(cls, "results")(feature=u.name, error_code=code, error_message=message) for u in updates
        )
    return build(cls, throttle_time=zero_throttle(), error_code=code, error_message=message, **fields)


async def _unregister_broker(controller: QuorumController, ctx: Any, request: Any) -> Any:
    """UnregisterBroker (64) v0 (KIP-631, `kafka-cluster unregister`)."""
    cls = response_class(64, ctx.api_version)
    error = _cluster_alter_denied(ctx) or _not_active(controller)
    if error is None:
        try:
            await controller.write(controller.rules.unregister_broker(int(request.broker_id)))
        except KafkaError as exc:
            error = exc
    code, message = (error.code, error.message) if error else (ErrorCode.none, None)
    return build(cls, throttle_time=zero_throttle(), error_code=code, error_message=message)


async def _assign_replicas_to_dirs(controller: QuorumController, ctx: Any, request: Any) -> Any:
    """AssignReplicasToDirs (73) v0 (KIP-858): a broker's replicas' log directories, per partition."""
    cls = response_class(73, ctx.api_version)
    dir_cls = item(cls, "directories")
    topic_cls = item(dir_cls, "topics")
    part_cls = item(topic_cls, "partitions")
    asked = [
        (d.id_, [(t.topic_id, [int(p.partition_index) for p in t.partitions]) for t in d.topics])
        for d in request.directories
    ]
    error = _not_active(controller)
    errors: dict[tuple[uuid.UUID, uuid.UUID, int], ErrorCode] = {}
    if error is None:
        try:
            change = controller.rules.assign_replicas_to_dirs(
                int(request.broker_id), int(request.broker_epoch), asked
            )
            errors = change.result  # type: ignore[assignment]
            await controller.write(change)
        except KafkaError as exc:
            error = exc
    if error is not None:
        return build(cls, throttle_time=zero_throttle(), error_code=error.code, directories=())
    directories = tuple(
        dir_cls(id_=d, topics=tuple(
            topic_cls(topic_id=t, partitions=tuple(
                part_cls(partition_index=p, error_code=errors[(d, t, p)]) for p in parts))
            for t, parts in topics))
        for d, topics in asked
    )  # fmt: skip
    return build(cls, throttle_time=zero_throttle(), error_code=ErrorCode.none, directories=directories)


def controller_specs(controller: QuorumController) -> list[ApiSpec]:
    """The controller's APIs beyond Raft's. The admin APIs are the broker handlers behind the same
    authorization rules (strom.apis._authz), so a forwarded request is checked as its client."""
    from strom.apis._authz import guard
    from strom.apis.alter_client_quotas import SPEC as ALTER_CLIENT_QUOTAS
    from strom.apis.alter_configs import SPEC as ALTER_CONFIGS
    from strom.apis.alter_partition_reassignments import SPEC as ALTER_REASSIGNMENTS
    from strom.apis.alter_user_scram_credentials import SPEC as ALTER_SCRAM
    from strom.apis.create_acls import SPEC as CREATE_ACLS
    from strom.apis.create_delegation_token import SPEC as CREATE_TOKEN
    from strom.apis.create_partitions import SPEC as CREATE_PARTITIONS
    from strom.apis.create_topics import SPEC as CREATE_TOPICS
    from strom.apis.delete_acls import SPEC as DELETE_ACLS
    from strom.apis.delete_topics import SPEC as DELETE_TOPICS
    from strom.apis.describe_acls import SPEC as DESCRIBE_ACLS
    from strom.apis.describe_user_scram_credentials import SPEC as DESCRIBE_SCRAM
    from strom.apis.elect_leaders import SPEC as ELECT_LEADERS
    from strom.apis.expire_delegation_token import SPEC as EXPIRE_TOKEN
    from strom.apis.incremental_alter_configs import SPEC as INCREMENTAL_ALTER_CONFIGS
    from strom.apis.list_partition_reassignments import SPEC as LIST_REASSIGNMENTS
    from strom.apis.renew_delegation_token import SPEC as RENEW_TOKEN
    from strom.cluster.kraft.envelope import envelope_spec
    from strom.cluster.kraft.unregister_controller import controller_spec as unregister_controller_spec

    def bind(fn: Any) -> Any:
        async def handle(ctx: Any, request: Any) -> Any:
            return await fn(controller, ctx, request)

        return handle

    return [
        guard(CREATE_TOPICS),
        guard(DELETE_TOPICS),
        guard(DESCRIBE_ACLS),
        guard(CREATE_ACLS),
        guard(DELETE_ACLS),
        guard(ALTER_CONFIGS),
        guard(CREATE_PARTITIONS),
        guard(ELECT_LEADERS),
        guard(ALTER_REASSIGNMENTS),
        guard(LIST_REASSIGNMENTS),
        guard(INCREMENTAL_ALTER_CONFIGS),
        guard(DESCRIBE_SCRAM),
        guard(ALTER_SCRAM),
        guard(ALTER_CLIENT_QUOTAS),
        CREATE_TOKEN,  # the token APIs check their own ACLs (KIP-373)
        RENEW_TOKEN,
        EXPIRE_TOKEN,
        ApiSpec(56, 2, 3, bind(_alter_partition), name="AlterPartition"),
        envelope_spec(),
        ApiSpec(62, 0, 4, bind(_broker_registration), name="BrokerRegistration"),
        ApiSpec(63, 0, 2, bind(_broker_heartbeat), name="BrokerHeartbeat"),
        ApiSpec(67, 0, 0, bind(_allocate_producer_ids), name="AllocateProducerIds"),
        ApiSpec(70, 0, 0, bind(_controller_registration), name="ControllerRegistration"),
        ApiSpec(57, 0, 2, bind(_update_features), name="UpdateFeatures"),
        ApiSpec(73, 0, 0, bind(_assign_replicas_to_dirs), name="AssignReplicasToDirs"),
        ApiSpec(64, 0, 0, bind(_unregister_broker), name="UnregisterBroker"),
        unregister_controller_spec(controller),
    ]
