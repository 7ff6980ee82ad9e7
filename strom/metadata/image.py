"""The cluster metadata replayed from `__cluster_metadata`: Kafka's MetadataDelta/MetadataImage as one
mutable state, and the immutable `strom.cluster.metadata.MetadataImage` the brokers publish from it.

Replay follows Kafka 4.4's control managers and image builders record by record:
- TopicRecord names a topic id; PartitionRecord sets a partition whole; PartitionChangeRecord changes the
  fields it carries and bumps the partition epoch; the leader epoch moves only when the record carries a
  leader (-2 means "unchanged"), as Kafka's PartitionRegistration.merge does, so an ISR-only change keeps
  the leader epoch; RemoveTopicRecord drops the topic and its configs.
- RegisterBrokerRecord replaces a broker's registration (its epoch is the record's broker_epoch);
  BrokerRegistrationChangeRecord (fenced 1 = fence, -1 = unfence; in_controlled_shutdown 1), the older
  Fence/UnfenceBrokerRecord and UnregisterBrokerRecord apply only to the epoch they name.
- ConfigRecord sets (or with a null value deletes) one key of a resource (topic 2, broker 4, "" being the
  cluster-wide default, group 32); FeatureLevelRecord finalizes a feature (level 0 removes it);
  ProducerIdsRecord moves the next producer id block; RegisterControllerRecord keeps a controller's
  endpoints and UnregisterControllerRecord forgets them; NoOpRecord and the ZooKeeper migration record
  change nothing.
- Records between BeginTransactionRecord and EndTransactionRecord (KIP-868) apply together at the end;
  AbortTransactionRecord drops them, so no reader ever sees half of a transaction.
- AccessControlEntryRecord adds an ACL binding under its id, RemoveAccessControlEntryRecord drops it (Kafka's
  AclControlManager); UserScramCredentialRecord sets a user's credential of one mechanism,
  RemoveUserScramCredentialRecord drops it; ClientQuotaRecord sets (or with `remove` drops) one quota key
  of an entity (user, client-id, ip; a null name is the entity's default); DelegationTokenRecord sets a
  delegation token (KIP-48) by id, RemoveDelegationTokenRecord drops it. Each of these bumps a version
  number (`acls_version`, `scram_version`, `quotas_version`, `tokens_version`) so a reader knows to reload it.
- A snapshot replaces the whole state (`load_snapshot`).

PartitionRecord and PartitionChangeRecord carry the eligible leader replicas and the last known ELR
(KIP-966) and the leader recovery state (KIP-704); ClearElrRecord empties the ELR fields of one topic's
partitions, or every topic's. Records this replay does not model are kept by count only. An
unknown record type or version never gets here: the decoder raises
`strom.metadata.errors.UnknownRecordVersionError`, and the node stops (strom.cluster.kraft.loader).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace

from strom.cluster.metadata import BrokerInfo, Endpoint, MetadataImage, PartitionState, TopicInfo
from strom.cluster.names import is_internal
from strom.metadata import records as r
from strom.metadata.serde import ApiMessageAndVersion
from strom.security.acl import AccessControlEntry, AclBinding, PermissionType, ResourcePattern
from strom.security.authorizer import AclOperation, PatternType, ResourceType
from strom.security.delegation_tokens import TokenInformation
from strom.security.principal import KafkaPrincipal
from strom.security.scram_credentials import ScramCredential, mechanism_by_type

__all__ = [
    "BROKER_RESOURCE",
    "SECURITY_PROTOCOLS",
    "TOPIC_RESOURCE",
    "BrokerRegistration",
    "ControllerRegistration",
    "MetadataState",
    "PartitionRegistration",
    "TopicState",
]

TOPIC_RESOURCE = 2
BROKER_RESOURCE = 4
GROUP_RESOURCE = 32
FENCE, UNFENCE = 1, -1
NO_LEADER_CHANGE = -2
SECURITY_PROTOCOLS: dict[int, str] = {0: "PLAINTEXT", 1: "SSL", 2: "SASL_PLAINTEXT", 3: "SASL_SSL"}
SECURITY_PROTOCOL_IDS: dict[str, int] = {v: k for k, v in SECURITY_PROTOCOLS.items()}


@dataclass(frozen=True, slots=True)
class BrokerRegistration:
    """A registered broker (Kafka's BrokerRegistration); `offset` is where its RegisterBrokerRecord is."""

    broker_id: int
    epoch: int
    incarnation_id: uuid.UUID
    endpoints: tuple[Endpoint, ...]
    rack: str | None
    fenced: bool
    in_controlled_shutdown: bool
    features: dict[str, tuple[int, int]]
    log_dirs: tuple[uuid.UUID, ...]
    offset: int = -1

    @property
    def active(self) -> bool:
        """Can lead and be in an ISR: unfenced and not shutting down."""
        return not self.fenced and not self.in_controlled_shutdown

    def info(self) -> BrokerInfo:
        first = self.endpoints[0] if self.endpoints else Endpoint("PLAINTEXT", "", 0)
        return BrokerInfo(self.broker_id, first.host, first.port, self.rack, self.endpoints)


@dataclass(frozen=True, slots=True)
class ControllerRegistration:
    controller_id: int
    incarnation_id: uuid.UUID
    endpoints: tuple[Endpoint, ...]


@dataclass(frozen=True, slots=True)
class PartitionRegistration:
    """One partition as Kafka's PartitionRegistration holds it."""

    replicas: tuple[int, ...]
    isr: tuple[int, ...]
    leader: int
    leader_epoch: int
    partition_epoch: int
    removing_replicas: tuple[int, ...] = ()
    adding_replicas: tuple[int, ...] = ()
    leader_recovery_state: int = 0
    directories: tuple[uuid.UUID, ...] = ()
    elr: tuple[int, ...] = ()  # eligible leader replicas (KIP-966)
    last_known_elr: tuple[int, ...] = ()

    def state(self, partition: int) -> PartitionState:
        return PartitionState(
            partition=partition,
            leader=self.leader,
            leader_epoch=self.leader_epoch,
            replicas=self.replicas,
            isr=self.isr,
            partition_epoch=self.partition_epoch,
            elr=self.elr,
            last_known_elr=self.last_known_elr,
            leader_recovery_state=self.leader_recovery_state,
        )


@dataclass(slots=True)
class TopicState:
    name: str
    topic_id: uuid.UUID
    partitions: dict[int, PartitionRegistration] = field(default_factory=dict)


def _scram_mechanism(code: int) -> str | None:
    mechanism = mechanism_by_type(code)
    return mechanism.name if mechanism is not None else None


def _endpoints(points: Iterable[r.RegisterBrokerRecord.BrokerEndpoint]) -> tuple[Endpoint, ...]:
    return tuple(
        Endpoint(p.name, p.host, p.port, SECURITY_PROTOCOLS.get(p.security_protocol, "PLAINTEXT"))
        for p in points
    )


class MetadataState:
    """Everything `__cluster_metadata` says, as of `last_offset`. Mutated only by `replay*` and
    `load_snapshot`; `image()` publishes an immutable MetadataImage (topics unchanged since the last one
    are shared, not rebuilt)."""

    def __init__(self) -> None:
        self.topics: dict[uuid.UUID, TopicState] = {}
        self.topic_ids: dict[str, uuid.UUID] = {}
        self.brokers: dict[int, BrokerRegistration] = {}
        self.controllers: dict[int, ControllerRegistration] = {}
        self.configs: dict[tuple[int, str], dict[str, str]] = {}
        self.features: dict[str, int] = {}
        self.next_producer_id = 0
        self.acls: dict[uuid.UUID, AclBinding] = {}
        self.scram: dict[tuple[str, str], ScramCredential] = {}  # (user, mechanism name)
        # ((entity type, name | None), ...) sorted -> {quota key: value}
        self.client_quotas: dict[tuple[tuple[str, str | None], ...], dict[str, float]] = {}
        self.tokens: dict[str, TokenInformation] = {}  # delegation tokens by id
        self.acls_version = self.scram_version = self.quotas_version = self.tokens_version = 0
        self.last_offset = -1
        self.unmodelled = 0
        self._txn: list[tuple[int, ApiMessageAndVersion]] | None = None
        self._topic_infos: dict[uuid.UUID, TopicInfo] = {}
        self._changed = True

    # -- replay -----------------------------------------------------------------------------------------
    def replay_batch(self, records: Sequence[tuple[int, ApiMessageAndVersion]]) -> None:
        for offset, record in records:
            self.replay(record, offset)

    def replay(self, record: ApiMessageAndVersion, offset: int) -> None:
        msg = record.message
        self.last_offset = max(self.last_offset, offset)
        if isinstance(msg, r.BeginTransactionRecord):
            self._txn = []
            return
        if isinstance(msg, r.EndTransactionRecord):
            pending, self._txn = self._txn or [], None
            for off, rec in pending:
                self._apply(rec.message, off)
            return
        if isinstance(msg, r.AbortTransactionRecord):
            self._txn = None
            return
        if self._txn is not None:
            self._txn.append((offset, record))
            return
        self._apply(msg, offset)

    @property
    def in_transaction(self) -> bool:
        return self._txn is not None

    def load_snapshot(self, records: Iterable[ApiMessageAndVersion], end_offset: int) -> None:
        """Replace everything with a snapshot's content (records at offsets below `end_offset`)."""
        self.__init__()  # type: ignore[misc]
        for record in records:
            self._apply(record.message, end_offset - 1)
        self.last_offset = end_offset - 1

    def _apply(self, msg: object, offset: int) -> None:
        handler = _HANDLERS.get(type(msg))
        if handler is None:
            self.unmodelled += 1
            return
        handler(self, msg, offset)

    def _topic_changed(self, topic_id: uuid.UUID) -> None:
        self._topic_infos.pop(topic_id, None)
        self._changed = True

    def _on_topic(self, m: r.TopicRecord, _offset: int) -> None:
        self.topics[m.topic_id] = TopicState(m.name, m.topic_id)
        self.topic_ids[m.name] = m.topic_id
        self._topic_changed(m.topic_id)

    def _on_partition(self, m: r.PartitionRecord, _offset: int) -> None:
        topic = self.topics.get(m.topic_id)
        if topic is None:
            return
        topic.partitions[m.partition_id] = PartitionRegistration(
            replicas=tuple(m.replicas),
            isr=tuple(m.isr),
            leader=m.leader,
            leader_epoch=m.leader_epoch,
            partition_epoch=m.partition_epoch,
            removing_replicas=tuple(m.removing_replicas),
            adding_replicas=tuple(m.adding_replicas),
            leader_recovery_state=m.leader_recovery_state,
            directories=tuple(m.directories),
            elr=tuple(m.eligible_leader_replicas or ()),
            last_known_elr=tuple(m.last_known_elr or ()),
        )
        self._topic_changed(m.topic_id)

    def _on_partition_change(self, m: r.PartitionChangeRecord, _offset: int) -> None:
        topic = self.topics.get(m.topic_id)
        part = topic.partitions.get(m.partition_id) if topic is not None else None
        if topic is None or part is None:
            return
        changes: dict[str, object] = {"partition_epoch": part.partition_epoch + 1}
        if m.isr is not None:
            changes["isr"] = tuple(m.isr)
        if m.replicas is not None:
            changes["replicas"] = tuple(m.replicas)
        if m.removing_replicas is not None:
            changes["removing_replicas"] = tuple(m.removing_replicas)
        if m.adding_replicas is not None:
            changes["adding_replicas"] = tuple(m.adding_replicas)
        if m.leader_recovery_state != -1:
            changes["leader_recovery_state"] = m.leader_recovery_state
        if m.directories is not None:
            changes["directories"] = tuple(m.directories)
        if m.eligible_leader_replicas is not None:
            changes["elr"] = tuple(m.eligible_leader_replicas)
        if m.last_known_elr is not None:
            changes["last_known_elr"] = tuple(m.last_known_elr)
        # Kafka's PartitionRegistration.merge: the leader epoch moves with the leader field being present
        if m.leader != NO_LEADER_CHANGE:
            changes["leader"] = m.leader
            changes["leader_epoch"] = part.leader_epoch + 1
        topic.partitions[m.partition_id] = replace(part, **changes)  # type: ignore[arg-type]
        self._topic_changed(m.topic_id)

    def _on_clear_elr(self, m: r.ClearElrRecord, _offset: int) -> None:
        """ClearElrRecord (KIP-966, written when min.insync.replicas changes): the named topic's partitions
        (every topic's with an empty name) that hold an ELR or a last known ELR lose both, bumping the
        partition epoch, as Kafka's removeTopicElrs merges them."""
        if m.topic_name:
            topic_id = self.topic_ids.get(m.topic_name)
            topics = [self.topics[topic_id]] if topic_id is not None and topic_id in self.topics else []
        else:
            topics = list(self.topics.values())
        for topic in topics:
            changed = False
            for p, part in list(topic.partitions.items()):
                if part.elr or part.last_known_elr:
                    topic.partitions[p] = replace(
                        part, elr=(), last_known_elr=(), partition_epoch=part.partition_epoch + 1
                    )
                    changed = True
            if changed:
                self._topic_changed(topic.topic_id)

    def _on_remove_topic(self, m: r.RemoveTopicRecord, _offset: int) -> None:
        topic = self.topics.pop(m.topic_id, None)
        if topic is None:
            return
        self.topic_ids.pop(topic.name, None)
        self.configs.pop((TOPIC_RESOURCE, topic.name), None)
        self._topic_changed(m.topic_id)

    def _on_register_broker(self, m: r.RegisterBrokerRecord, offset: int) -> None:
        self.brokers[m.broker_id] = BrokerRegistration(
            broker_id=m.broker_id,
            epoch=m.broker_epoch,
            incarnation_id=m.incarnation_id,
            endpoints=_endpoints(m.end_points),
            rack=m.rack,
            fenced=m.fenced,
            in_controlled_shutdown=m.in_controlled_shutdown,
            features={f.name: (f.min_supported_version, f.max_supported_version) for f in m.features},
            log_dirs=tuple(m.log_dirs),
            offset=offset,
        )
        self._changed = True

    def _broker_at(self, broker_id: int, epoch: int) -> BrokerRegistration | None:
        reg = self.brokers.get(broker_id)
        return reg if reg is not None and reg.epoch == epoch else None

    def _on_registration_change(self, m: r.BrokerRegistrationChangeRecord, _offset: int) -> None:
        reg = self._broker_at(m.broker_id, m.broker_epoch)
        if reg is None:
            return
        fenced = {FENCE: True, UNFENCE: False}.get(m.fenced, reg.fenced)
        shutting = reg.in_controlled_shutdown or m.in_controlled_shutdown == 1
        log_dirs = tuple(m.log_dirs) if m.log_dirs else reg.log_dirs
        self.brokers[m.broker_id] = replace(
            reg, fenced=fenced, in_controlled_shutdown=shutting, log_dirs=log_dirs
        )
        self._changed = True

    def _on_fence(self, m: r.FenceBrokerRecord, _offset: int) -> None:
        reg = self._broker_at(m.id, m.epoch)
        if reg is not None:
            self.brokers[m.id] = replace(reg, fenced=True)
            self._changed = True

    def _on_unfence(self, m: r.UnfenceBrokerRecord, _offset: int) -> None:
        reg = self._broker_at(m.id, m.epoch)
        if reg is not None:
            self.brokers[m.id] = replace(reg, fenced=False)
            self._changed = True

    def _on_unregister(self, m: r.UnregisterBrokerRecord, _offset: int) -> None:
        if self._broker_at(m.broker_id, m.broker_epoch) is not None:
            del self.brokers[m.broker_id]
            self._changed = True

    def _on_config(self, m: r.ConfigRecord, _offset: int) -> None:
        key = (m.resource_type, m.resource_name)
        values = dict(self.configs.get(key, {}))
        if m.value is None:
            values.pop(m.name, None)
        else:
            values[m.name] = m.value
        if values:
            self.configs[key] = values
        else:
            self.configs.pop(key, None)
        if m.resource_type == TOPIC_RESOURCE and m.resource_name in self.topic_ids:
            self._topic_changed(self.topic_ids[m.resource_name])
        self._changed = True

    def _on_feature(self, m: r.FeatureLevelRecord, _offset: int) -> None:
        if m.feature_level == 0:
            self.features.pop(m.name, None)
        else:
            self.features[m.name] = m.feature_level

    def _on_producer_ids(self, m: r.ProducerIdsRecord, _offset: int) -> None:
        self.next_producer_id = m.next_producer_id

    def _on_register_controller(self, m: r.RegisterControllerRecord, _offset: int) -> None:
        self.controllers[m.controller_id] = ControllerRegistration(
            m.controller_id,
            m.incarnation_id,
            _endpoints(m.end_points),  # type: ignore[arg-type]
        )

    def _on_unregister_controller(self, m: r.UnregisterControllerRecord, _offset: int) -> None:
        self.controllers.pop(m.controller_id, None)

    def _on_noop(self, _m: object, _offset: int) -> None:
        return

    def _on_acl(self, m: r.AccessControlEntryRecord, _offset: int) -> None:
        self.acls[m.id] = AclBinding(
            ResourcePattern(ResourceType(m.resource_type), m.resource_name, PatternType(m.pattern_type)),
            AccessControlEntry(
                m.principal, m.host, AclOperation(m.operation), PermissionType(m.permission_type)
            ),
        )
        self.acls_version += 1

    def _on_remove_acl(self, m: r.RemoveAccessControlEntryRecord, _offset: int) -> None:
        if self.acls.pop(m.id, None) is not None:
            self.acls_version += 1

    def _on_scram(self, m: r.UserScramCredentialRecord, _offset: int) -> None:
        mechanism = _scram_mechanism(m.mechanism)
        if mechanism is not None:
            self.scram[(m.name, mechanism)] = ScramCredential(
                bytes(m.salt), bytes(m.stored_key), bytes(m.server_key), m.iterations
            )
            self.scram_version += 1

    def _on_token(self, m: r.DelegationTokenRecord, _offset: int) -> None:
        owner = KafkaPrincipal.parse(m.owner)
        self.tokens[m.token_id] = TokenInformation(
            token_id=m.token_id, owner=owner,
            requester=KafkaPrincipal.parse(m.requester) if m.requester else owner,
            renewers=tuple(KafkaPrincipal.parse(p) for p in m.renewers),
            issue_ms=int(m.issue_timestamp), max_ms=int(m.max_timestamp),
            expiry_ms=int(m.expiration_timestamp),
        )
        self.tokens_version += 1

    def _on_remove_token(self, m: r.RemoveDelegationTokenRecord, _offset: int) -> None:
        if self.tokens.pop(m.token_id, None) is not None:
            self.tokens_version += 1

    def _on_remove_scram(self, m: r.RemoveUserScramCredentialRecord, _offset: int) -> None:
        mechanism = _scram_mechanism(m.mechanism)
        if mechanism is not None and self.scram.pop((m.name, mechanism), None) is not None:
            self.scram_version += 1

    def _on_client_quota(self, m: r.ClientQuotaRecord, _offset: int) -> None:
        entity = tuple(sorted((e.entity_type, e.entity_name) for e in m.entity))
        values = dict(self.client_quotas.get(entity, {}))
        if m.remove:
            values.pop(m.key, None)
        else:
            values[m.key] = m.value
        if values:
            self.client_quotas[entity] = values
        else:
            self.client_quotas.pop(entity, None)
        self.quotas_version += 1

    # -- reading ----------------------------------------------------------------------------------------
    def topic(self, name: str) -> TopicState | None:
        topic_id = self.topic_ids.get(name)
        return self.topics.get(topic_id) if topic_id is not None else None

    def partition(self, topic_id: uuid.UUID, partition: int) -> PartitionRegistration | None:
        topic = self.topics.get(topic_id)
        return topic.partitions.get(partition) if topic is not None else None

    def topic_configs(self, name: str) -> dict[str, str]:
        return dict(self.configs.get((TOPIC_RESOURCE, name), {}))

    @property
    def metadata_version(self) -> int:
        return self.features.get("metadata.version", 0)

    def take_changed(self) -> bool:
        """Whether anything an image shows changed since the last call (NoOps and features do not)."""
        changed, self._changed = self._changed, False
        return changed

    def image(self, cluster_id: str, controller_id: int = -1) -> MetadataImage:
        """The immutable image brokers publish: unfenced brokers only (Kafka's alive brokers), every
        topic with its partitions and config overrides, dynamic broker configs by id and the defaults, and
        the group configs by group id (ConfigRecords of resource type 32)."""
        topics: dict[str, TopicInfo] = {}
        for topic_id, topic in self.topics.items():
            info = self._topic_infos.get(topic_id)
            if info is None:
                info = TopicInfo(
                    name=topic.name,
                    topic_id=topic_id,
                    partitions={p: part.state(p) for p, part in sorted(topic.partitions.items())},
                    configs=self.topic_configs(topic.name),
                    internal=is_internal(topic.name),
                )
                self._topic_infos[topic_id] = info
            topics[topic.name] = info
        brokers = {broker_id: reg.info() for broker_id, reg in sorted(self.brokers.items()) if not reg.fenced}
        broker_configs: dict[int, dict[str, str]] = {}
        defaults: dict[str, str] = {}
        group_configs: dict[str, dict[str, str]] = {}
        for (kind, name), values in self.configs.items():
            if kind == GROUP_RESOURCE:
                group_configs[name] = dict(values)
            if kind != BROKER_RESOURCE:
                continue
            if name == "":
                defaults = dict(values)
            elif name.lstrip("-").isdigit():
                broker_configs[int(name)] = dict(values)
        return MetadataImage(
            cluster_id=cluster_id,
            controller_id=controller_id,
            brokers=brokers,
            topics=topics,
            broker_configs=broker_configs,
            default_broker_configs=defaults,
            group_configs=dict(sorted(group_configs.items())),
        )


_HANDLERS = {
    r.TopicRecord: MetadataState._on_topic,
    r.PartitionRecord: MetadataState._on_partition,
    r.PartitionChangeRecord: MetadataState._on_partition_change,
    r.RemoveTopicRecord: MetadataState._on_remove_topic,
    r.ClearElrRecord: MetadataState._on_clear_elr,
    r.RegisterBrokerRecord: MetadataState._on_register_broker,
    r.BrokerRegistrationChangeRecord: MetadataState._on_registration_change,
    r.FenceBrokerRecord: MetadataState._on_fence,
    r.UnfenceBrokerRecord: MetadataState._on_unfence,
    r.UnregisterBrokerRecord: MetadataState._on_unregister,
    r.ConfigRecord: MetadataState._on_config,
    r.FeatureLevelRecord: MetadataState._on_feature,
    r.ProducerIdsRecord: MetadataState._on_producer_ids,
    r.RegisterControllerRecord: MetadataState._on_register_controller,
    r.UnregisterControllerRecord: MetadataState._on_unregister_controller,
    r.NoOpRecord: MetadataState._on_noop,
    r.AccessControlEntryRecord: MetadataState._on_acl,
    r.RemoveAccessControlEntryRecord: MetadataState._on_remove_acl,
    r.UserScramCredentialRecord: MetadataState._on_scram,
    r.RemoveUserScramCredentialRecord: MetadataState._on_remove_scram,
    r.ClientQuotaRecord: MetadataState._on_client_quota,
    r.DelegationTokenRecord: MetadataState._on_token,
    r.RemoveDelegationTokenRecord: MetadataState._on_remove_token,
    r.ZkMigrationStateRecord: MetadataState._on_noop,
}
