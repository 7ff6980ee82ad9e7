"""What Kafka 4.4's quorum controller decides, as pure functions from the metadata state to records.

Each rule reads a `strom.metadata.image.MetadataState` (the active controller's, which already holds its
own uncommitted writes) and returns the records to append as one batch plus the answer; nothing here
appends or waits. The rules follow Kafka's ClusterControlManager, BrokerHeartbeatManager,
ReplicationControlManager, ConfigurationControlManager and ProducerIdControlManager:

- Registration (BrokerRegistration, KIP-631): the broker epoch is the offset of its RegisterBrokerRecord;
  a live session of another incarnation is DUPLICATE_BROKER_REGISTRATION; a broker that cannot run the
  finalized metadata.version is UNSUPPORTED_VERSION; a new registration starts fenced.
- Controller registration (ControllerRegistration, KIP-919): a RegisterControllerRecord v0 with the
  controller's listeners and feature ranges, as Kafka's controllers send it to the active controller; a
  controller that cannot run the finalized metadata.version is UNSUPPORTED_VERSION.
- Heartbeats: a fenced broker is unfenced once its metadata offset reaches its registration's offset
  (it has caught up); `want_shut_down` starts a controlled shutdown (BrokerRegistrationChangeRecord v1),
  which moves leadership away and takes the broker out of ISRs; once it leads nothing it is told to shut
  down and fenced. A broker whose session (`broker.session.timeout.ms`) lapses is fenced.
- Leader election (PartitionChangeBuilder): the current leader stays if it may; otherwise the first
  replica, in replica order, that is in the ISR and active (unfenced, not shutting down); with
  `unclean.leader.election.enable` (topic override or controller default) the first active replica when
  the ISR has none, which becomes the whole ISR with leader recovery state RECOVERING (KIP-704) until
  its AlterPartition says RECOVERED. A leader change bumps the leader epoch, every change the partition
  epoch.
- Eligible leader replicas (KIP-966), on while `eligible.leader.replicas.version` is finalized at 1+
  (the default of metadata.version 4.1-IV0 onward): ISR members that leave while the ISR is below the
  topic's min.insync.replicas (its override, else the cluster-level default, capped by the replication
  factor) join the ELR; the ISR may empty, and the last leader is kept as the last known ELR; a
  leaderless partition elects from the ELR when its ISR is empty, then the last known leader. Without the
  ELR the last ISR member is never removed (the partition goes leaderless with it). A broker that
  registers a new incarnation without naming its previous epoch (an unclean shutdown) leaves every ISR
  and ELR. With the ELR on, min.insync.replicas is cluster-level only: a broker-level value is refused
  and the cluster-level one may not be removed (INVALID_CONFIG); changing it writes a ClearElrRecord;
  enabling the feature first writes the cluster-level value and removes the broker-level ones.
- AlterPartition (KIP-497, KIP-903): only the leader, at the current leader and partition epochs, with an
  ISR of replicas that are active and, from v3, at their current broker epochs. Every partition change
  goes through `strom.cluster.kraft.partition_change` (Kafka's PartitionChangeBuilder), so an ISR that
  holds every target replica of a reassignment completes it; a leader that leaves with it is answered
  NEW_LEADER_ELECTED.
- Reassignments (KIP-455): AlterPartitionReassignments and ListPartitionReassignments as Kafka's
  ReplicationControlManager serves them, rules in `strom.cluster.kraft.partition_change`.
- Records are written at the versions Kafka 4.4 writes for the finalized metadata.version.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from strom.cluster.assignment import assign_replicas, start_index_for_new_partitions
from strom.cluster.errors import (
    InvalidReplicaAssignmentError,
    InvalidReplicationFactorError,
    TopicAlreadyExistsError,
)
from strom.cluster.kraft.partition_change import (
    RECOVERED,
    RECOVERING,
    merge,
    partition_change,
    reassignment_target,
    revert_reassignment,
    validate_reassignment_target,
)
from strom.cluster.metadata import PartitionState, TopicInfo
from strom.cluster.names import is_internal, validate_topic_name
from strom.cluster.reassignment import ReplicaSet
from strom.cluster.validation import (
    check_collision,
    check_partition_growth,
    check_topic_deletable,
    manual_topic_layout,
    new_partitions_layout,
    partition_count_and_replication,
    validate_topic_configs,
)
from strom.config import BrokerConfig
from strom.metadata import records as r
from strom.metadata.features import latest_production, metadata_version_from_level
from strom.metadata.image import (
    BROKER_RESOURCE,
    SECURITY_PROTOCOL_IDS,
    TOPIC_RESOURCE,
    BrokerRegistration,
    MetadataState,
    PartitionRegistration,
)
from strom.metadata.release_versions import MetadataVersionInfo
from strom.metadata.serde import ApiMessageAndVersion
from strom.protocol.errors import ErrorCode, KafkaError, UnknownTopicOrPartitionError

__all__ = ["PRODUCER_ID_BLOCK_SIZE", "Change", "ControllerRules", "HeartbeatReply", "IsrMember"]

PRODUCER_ID_BLOCK_SIZE = 1000  # Kafka's ProducerIdsBlock.PRODUCER_ID_BLOCK_SIZE
NO_LEADER = -1
FENCE, UNFENCE = 1, -1
IN_CONTROLLED_SHUTDOWN = 1
UNASSIGNED_DIR = uuid.UUID(int=0)
# (directory id, [(topic id, [partition index, ...]), ...]) of one AssignReplicasToDirs request
DirectoryAssignment = tuple[uuid.UUID, Sequence[tuple[uuid.UUID, Sequence[int]]]]


@dataclass(slots=True)
class Change:
    """Records to append as one batch, and what to answer once they are committed."""

    records: list[ApiMessageAndVersion] = field(default_factory=list)
    result: object = None


@dataclass(frozen=True, slots=True)
class HeartbeatReply:
    is_caught_up: bool
    is_fenced: bool
    should_shut_down: bool


@dataclass(frozen=True, slots=True)
class IsrMember:
    broker_id: int
    broker_epoch: int = -1


# metadata.version 4.4-IV2: Kafka's MetadataVersion.isControllerUnregistrationSupported
CONTROLLER_UNREGISTRATION_LEVEL = 33
CONTROLLER_ID_NOT_REGISTERED = 136  # Kafka 4.4's Errors.CONTROLLER_ID_NOT_REGISTERED
ELR_FEATURE = "eligible.leader.replicas.version"  # KIP-966
MIN_ISR = "min.insync.replicas"
# metadata.version 3.6-IV0: below it an ISR shrink bumps the leader epoch (KAFKA-15021)
NO_EPOCH_BUMP_ON_SHRINK_LEVEL = 12


def _error(code: ErrorCode, message: str) -> KafkaError:
    return KafkaError(message, code=code)


def _check_metadata_version(level: int, supported: tuple[int, int] | None, node: str) -> None:
    """A registering `node` ("broker" or "controller") must support the finalized metadata.version (Kafka's
    ClusterControlManager message); None: it named no range, nothing to check."""
    if supported is None:
        return
    low, high = supported
    if not low <= level <= high:
        raise _error(
            ErrorCode.unsupported_version,
            f"Unable to register because the {node} does not support finalized version {level} of "
            f"metadata.version. The {node} wants a version between {low} and {high}, inclusive.",
        )


class ControllerRules:
    """The decisions of the active controller over `state`. `config` gives the controller's defaults
    (num.partitions, default.replication.factor, unclean.leader.election.enable, delete.topic.enable)."""

    def __init__(self, state: MetadataState, config: BrokerConfig, rng: random.Random) -> None:
        self.state = state
        self.config = config
        self.rng = rng

    @property
    def metadata_version(self) -> MetadataVersionInfo:
        level = self.state.metadata_version
        return metadata_version_from_level(level) if level else latest_production()

    # -- brokers ------------------------------------------------------------------------------------------
    def check_broker_epoch(self, broker_id: int, broker_epoch: int) -> BrokerRegistration:
        reg = self.state.brokers.get(broker_id)
        if reg is None:
            raise _error(ErrorCode.stale_broker_epoch, f"No broker registration found for broker {broker_id}")
        if reg.epoch != broker_epoch:
            raise _error(
                ErrorCode.stale_broker_epoch,
                f"Expected broker epoch {reg.epoch}, but got broker epoch {broker_epoch}",
            )
        return reg

    def register_broker(
        self,
        request: object,
        *,
        cluster_id: str,
        next_offset: int,
        has_live_session: Callable[[int], bool],
    ) -> Change:
        """BrokerRegistration: a RegisterBrokerRecord at `next_offset`, whose offset is the new epoch."""
        broker_id = int(request.broker_id)  # type: ignore[attr-defined]
        if request.cluster_id != cluster_id:  # type: ignore[attr-defined]
            raise _error(
                ErrorCode.inconsistent_cluster_id,
                f"Expected cluster ID {cluster_id}, but got cluster ID {request.cluster_id}",  # type: ignore[attr-defined]
            )
        existing = self.state.brokers.get(broker_id)
        incarnation = request.incarnation_id  # type: ignore[attr-defined]
        if existing is not None and has_live_session(broker_id) and existing.incarnation_id != incarnation:
            raise _error(
                ErrorCode.duplicate_broker_registration,
                f"Another broker is registered with that broker id. Existing incarnation: "
                f"{existing.incarnation_id}, new incarnation: {incarnation}",
            )
        mv = self.metadata_version
        features = {
            f.name: (int(f.min_supported_version), int(f.max_supported_version)) for f in request.features
        }  # type: ignore[attr-defined]
        _check_metadata_version(mv.feature_level, features.get("metadata.version", (0, 0)), "broker")
        shutdown_records: list[ApiMessageAndVersion] = []
        if existing is not None and existing.incarnation_id != incarnation:
            # a new incarnation: the earlier one shut down; cleanly only when the broker names the epoch
            # it had (KIP-966's previous_broker_epoch, from its clean shutdown file)
            previous = int(getattr(request, "previous_broker_epoch", -1))
            shutdown_records = self.broker_shutdown(broker_id, clean=previous == existing.epoch)
        record = r.RegisterBrokerRecord(
            broker_id=broker_id,
            is_migrating_zk_broker=False,
            incarnation_id=incarnation,
            broker_epoch=next_offset + len(shutdown_records),
            end_points=tuple(
                r.RegisterBrokerRecord.BrokerEndpoint(
                    name=str(listener.name),
                    host=str(listener.host),
                    port=int(listener.port),
                    security_protocol=int(listener.security_protocol),
                )
                for listener in request.listeners  # type: ignore[attr-defined]
            ),
            features=tuple(
                r.RegisterBrokerRecord.BrokerFeature(
                    name=name, min_supported_version=lo, max_supported_version=hi
                )
                for name, (lo, hi) in sorted(features.items())
            ),
            rack=request.rack,  # type: ignore[attr-defined]
            fenced=True,
            in_controlled_shutdown=False,
            log_dirs=tuple(d for d in getattr(request, "log_dirs", ()) if d is not None),
        )
        registration = ApiMessageAndVersion(record, mv.register_broker_record_version)
        return Change([*shutdown_records, registration], next_offset + len(shutdown_records))

    def register_controller(self, request: object) -> Change:
        """ControllerRegistration: a RegisterControllerRecord v0 (the version Kafka 4.4 writes), which
        replaces the controller's earlier registration when replayed."""
        features = tuple(
            r.RegisterControllerRecord.ControllerFeature(
                name=str(f.name),
                min_supported_version=int(f.min_supported_version),
                max_supported_version=int(f.max_supported_version),
            )
            for f in request.features  # type: ignore[attr-defined]
        )
        ranges = {f.name: (f.min_supported_version, f.max_supported_version) for f in features}
        level = self.metadata_version.feature_level
        _check_metadata_version(level, ranges.get("metadata.version"), "controller")
        record = r.RegisterControllerRecord(
            controller_id=int(request.controller_id),  # type: ignore[attr-defined]
            incarnation_id=request.incarnation_id,  # type: ignore[attr-defined]
            zk_migration_ready=bool(request.zk_migration_ready),  # type: ignore[attr-defined]
            end_points=tuple(
                r.RegisterControllerRecord.ControllerEndpoint(
                    name=str(listener.name),
                    host=str(listener.host),
                    port=int(listener.port),
                    security_protocol=int(listener.security_protocol),
                )
                for listener in request.listeners  # type: ignore[attr-defined]
            ),
            features=features,
        )
        return Change([ApiMessageAndVersion(record, 0)])

    def heartbeat(
        self,
        broker_id: int,
        broker_epoch: int,
        metadata_offset: int,
        want_fence: bool,
        want_shut_down: bool,
    ) -> Change:
        """BrokerHeartbeat: Kafka's BrokerHeartbeatManager state machine, answered with a HeartbeatReply."""
        reg = self.check_broker_epoch(broker_id, broker_epoch)
        caught_up = metadata_offset >= reg.offset
        change = Change()
        if reg.fenced:
            if want_shut_down:
                change.result = HeartbeatReply(caught_up, True, True)
            elif not want_fence and caught_up:
                change.records = self.unfence(reg)
                change.result = HeartbeatReply(caught_up, False, False)
            else:
                change.result = HeartbeatReply(caught_up, True, False)
            return change
        if want_fence:
            change.records = self.fence(reg)
            change.result = HeartbeatReply(caught_up, True, False)
            return change
        if not want_shut_down:
            change.result = HeartbeatReply(caught_up, False, False)
            return change
        if not reg.in_controlled_shutdown:
            change.records = self.begin_controlled_shutdown(reg)
        if self.leads_anything(broker_id, change.records):
            change.result = HeartbeatReply(caught_up, False, False)
        else:
            change.records += self._registration_change(reg, fenced=FENCE)
            change.result = HeartbeatReply(caught_up, True, True)
        return change

    def leads_anything(self, broker_id: int, pending: Sequence[ApiMessageAndVersion] = ()) -> bool:
        moved = {
            (rec.message.topic_id, rec.message.partition_id)
            for rec in pending
            if isinstance(rec.message, r.PartitionChangeRecord) and rec.message.leader != -2
        }
        for topic_id, topic in self.state.topics.items():
            for p, part in topic.partitions.items():
                if part.leader == broker_id and (topic_id, p) not in moved:
                    return True
        return False

    def _registration_change(
        self, reg: BrokerRegistration, *, fenced: int = 0, shutdown: int = 0
    ) -> list[ApiMessageAndVersion]:
        record = r.BrokerRegistrationChangeRecord(
            broker_id=reg.broker_id, broker_epoch=reg.epoch, fenced=fenced, in_controlled_shutdown=shutdown
        )
        # Kafka writes fencing changes at v0 and the controlled-shutdown change at v1
        return [ApiMessageAndVersion(record, 1 if shutdown else 0)]

    def fence(self, reg: BrokerRegistration) -> list[ApiMessageAndVersion]:
        """handleBrokerFenced: leadership and ISR membership move away, then the fencing record."""
        records = self.leader_and_isr_updates(remove=reg.broker_id)
        return records + self._registration_change(reg, fenced=FENCE)

    def unfence(self, reg: BrokerRegistration) -> list[ApiMessageAndVersion]:
        """handleBrokerUnfenced: the unfencing record, then leaders for partitions that had none."""
        records = self._registration_change(reg, fenced=UNFENCE)
        return records + self.leader_and_isr_updates(add=reg.broker_id)

    def broker_shutdown(self, broker_id: int, *, clean: bool) -> list[ApiMessageAndVersion]:
        """handleBrokerShutdown, when a broker registers a new incarnation: with the ELR on and an unclean
        shutdown, the broker leaves every ISR and ELR and may not lead (its log may have lost its tail);
        otherwise it leaves the ISRs as a fenced broker does."""
        if self.elr_enabled and not clean:
            return self.leader_and_isr_updates(unclean_shutdown=broker_id)
        return self.leader_and_isr_updates(remove=broker_id)

    def unregister_broker(self, broker_id: int) -> Change:
        """handleBrokerUnregistered (`kafka-cluster unregister`): leadership and ISR membership move away,
        then the UnregisterBrokerRecord of the registration's epoch."""
        reg = self.state.brokers.get(broker_id)
        if reg is None:
            raise _error(
                ErrorCode.broker_id_not_registered, f"Broker ID {broker_id} is not currently registered"
            )
        records = self.leader_and_isr_updates(remove=broker_id, with_elr=True)
        record = r.UnregisterBrokerRecord(broker_id=broker_id, broker_epoch=reg.epoch)
        return Change([*records, ApiMessageAndVersion(record, 0)])

    def unregister_controller(self, controller_id: int) -> Change:
        """UnregisterController (KIP-853's follow-up, `kafka-metadata-quorum remove-controller --unregister`):
        Kafka 4.4's ClusterControlManager.unregisterController, from metadata.version 4.4-IV2, writes an
        UnregisterControllerRecord for a registered controller."""
        if self.state.metadata_version and self.state.metadata_version < CONTROLLER_UNREGISTRATION_LEVEL:
            raise _error(
                ErrorCode.unsupported_version,
                "The current MetadataVersion is too old to support controller unregistration.",
            )
        if controller_id not in self.state.controllers:
            raise _error(
                CONTROLLER_ID_NOT_REGISTERED,  # type: ignore[arg-type]  # Kafka 4.4's code, newer than kio's
                f"Controller ID {controller_id} is not currently registered.",
            )
        record = r.UnregisterControllerRecord(controller_id=controller_id)
        return Change([ApiMessageAndVersion(record, 0)])

    def begin_controlled_shutdown(self, reg: BrokerRegistration) -> list[ApiMessageAndVersion]:
        records = self._registration_change(reg, shutdown=IN_CONTROLLED_SHUTDOWN)
        return records + self.leader_and_isr_updates(remove=reg.broker_id)

    # -- partitions ---------------------------------------------------------------------------------------
    @property
    def elr_enabled(self) -> bool:
        """FeatureControlManager.isElrFeatureEnabled: eligible.leader.replicas.version is finalized at 1+."""
        return self.state.features.get(ELR_FEATURE, 0) >= 1

    def min_isr(self, topic_name: str, replication_factor: int) -> int:
        """getTopicEffectiveMinIsr: the topic's min.insync.replicas (its override, else the cluster-level
        dynamic default, else this controller's static config), at most the replication factor."""
        value = self.state.topic_configs(topic_name).get(MIN_ISR)
        if value is None:
            value = self.state.configs.get((4, ""), {}).get(MIN_ISR)
        try:
            configured = int(value) if value is not None else int(self.config.get(MIN_ISR))
        except ValueError:
            configured = 1
        return min(configured, replication_factor)

    def _elr_options(self, topic_name: str, part: PartitionRegistration) -> dict[str, Any]:
        """The builder's ELR settings for one partition of `topic_name`."""
        topic = self.state.topic(topic_name)
        first = topic.partitions.get(0) if topic is not None else None
        rf = len(first.replicas) if first is not None else len(part.replicas)
        return {
            "elr": self.elr_enabled,
            "min_isr": self.min_isr(topic_name, rf),
            "bump_on_isr_shrink": self.metadata_version.feature_level < NO_EPOCH_BUMP_ON_SHRINK_LEVEL,
        }

    def _active(
        self, remove: int = NO_LEADER, add: int = NO_LEADER, unclean_shutdown: int = NO_LEADER
    ) -> Callable[[int], bool]:
        brokers = self.state.brokers

        def active(broker_id: int) -> bool:
            if broker_id in (remove, unclean_shutdown):
                return False
            if broker_id == add:
                return True
            reg = brokers.get(broker_id)
            return reg is not None and reg.active

        return active

    def _unclean_allowed(self, topic_name: str) -> bool:
        value = self.state.topic_configs(topic_name).get("unclean.leader.election.enable")
        if value is not None:
            return value.strip().lower() == "true"
        default = self.state.configs.get((4, ""), {}).get("unclean.leader.election.enable")
        if default is not None:
            return default.strip().lower() == "true"
        return bool(self.config.get("unclean.leader.election.enable"))

    def _partition_change(
        self,
        topic_name: str,
        topic_id: uuid.UUID,
        partition: int,
        part: PartitionRegistration,
        target_isr: Sequence[int],
        active: Callable[[int], bool],
        unclean: bool,
        unclean_shutdown: Collection[int] = (),
    ) -> ApiMessageAndVersion | None:
        """PartitionChangeBuilder: a PartitionChangeRecord moving `part` to `target_isr` and a leader
        chosen from it (or its ELR), completing a reassignment the new ISR allows, or None when nothing
        changes."""
        return partition_change(
            part,
            topic_id,
            partition,
            acceptable=active,
            version=self.metadata_version.partition_change_record_version,
            isr=target_isr,
            unclean=unclean,
            default_dir=self._dir_provider(),
            unclean_shutdown=unclean_shutdown,
            **self._elr_options(topic_name, part),
        )

    def _default_dir(self, broker_id: int) -> uuid.UUID:
        """ClusterControlManager.defaultDir: a broker's only log dir, else UNASSIGNED."""
        reg = self.state.brokers.get(broker_id)
        return reg.log_dirs[0] if reg is not None and len(reg.log_dirs) == 1 else UNASSIGNED_DIR

    def _dir_provider(self) -> Callable[[int], uuid.UUID] | None:
        """The new replicas' directories where PartitionChangeRecord carries them (v2, KIP-858)."""
        return self._default_dir if self.metadata_version.partition_change_record_version >= 2 else None

    def leader_and_isr_updates(
        self,
        *,
        remove: int = NO_LEADER,
        add: int = NO_LEADER,
        unclean_shutdown: int = NO_LEADER,
        with_elr: bool = False,
        only: Collection[tuple[uuid.UUID, int]] | None = None,
    ) -> list[ApiMessageAndVersion]:
        """generateLeaderAndIsrUpdates: with `remove`, every partition whose ISR (and with `with_elr`, whose
        ELR) holds that broker loses it from the ISR (and a new leader where it led); with
        `unclean_shutdown`, every partition whose ISR or ELR holds it loses it from both; with `add`,
        leaderless partitions elect a leader now that it is back. `only` limits it to those partitions."""
        active = self._active(remove, add, unclean_shutdown)
        gone = {b for b in (remove, unclean_shutdown) if b != NO_LEADER}
        shutdown = (unclean_shutdown,) if unclean_shutdown != NO_LEADER else ()
        records = []
        for topic_id, topic in self.state.topics.items():
            unclean: bool | None = None
            for p, part in topic.partitions.items():
                if only is not None and (topic_id, p) not in only:
                    continue
                if gone & set(part.isr) or (
                    (with_elr or unclean_shutdown != NO_LEADER) and gone & set(part.elr)
                ):
                    target = tuple(b for b in part.isr if b not in gone)
                elif add != NO_LEADER and part.leader == NO_LEADER and add in part.replicas:
                    target = part.isr
                else:
                    continue
                if unclean is None:
                    unclean = self._unclean_allowed(topic.name)
                rec = self._partition_change(topic.name, topic_id, p, part, target, active, unclean, shutdown)
                if rec is not None:
                    records.append(rec)
        return records

    def _new_partition(
        self, topic_id: uuid.UUID, partition: int, replicas: Sequence[int]
    ) -> ApiMessageAndVersion:
        active = self._active()
        isr = tuple(b for b in replicas if active(b))
        mv = self.metadata_version
        dirs = []
        for b in replicas:
            reg = self.state.brokers.get(b)
            dirs.append(reg.log_dirs[0] if reg is not None and len(reg.log_dirs) == 1 else UNASSIGNED_DIR)
        record = r.PartitionRecord(
            partition_id=partition,
            topic_id=topic_id,
            replicas=tuple(replicas),
            isr=isr,
            leader=isr[0] if isr else NO_LEADER,
            leader_epoch=0,
            partition_epoch=0,
            directories=tuple(dirs) if mv.partition_record_version >= 1 else (),
            # a new partition has no ELR: Kafka's PartitionRegistration.toRecord leaves empty ones out
            eligible_leader_replicas=None,
            last_known_elr=None,
        )
        return ApiMessageAndVersion(record, mv.partition_record_version)

    def _usable_brokers(self) -> list[int]:
        return sorted(b for b, reg in self.state.brokers.items() if reg.active)

    def _check_manual(self, replicas: list[int], partition: int) -> None:
        if not replicas:
            raise InvalidReplicaAssignmentError(
                "The manual partition assignment includes an empty replica list."
            )
        if len(set(replicas)) != len(replicas):
            raise InvalidReplicaAssignmentError(
                "The manual partition assignment includes the broker "
                f"{next(b for b in replicas if replicas.count(b) > 1)} more than once."
            )
        for b in replicas:
            if b not in self.state.brokers:
                raise InvalidReplicaAssignmentError(
                    f"The manual partition assignment includes broker {b}, but no such broker is registered."
                )
        if not any(self.state.brokers[b].active for b in replicas):
            raise InvalidReplicaAssignmentError(
                f"All brokers specified in the manual partition assignment for partition {partition} are "
                "fenced or in controlled shutdown."
            )

    def _place(self, count: int, rf: int, **kwargs: int) -> dict[int, list[int]]:
        usable = self._usable_brokers()
        if rf > len(usable):
            raise InvalidReplicationFactorError(
                f"Unable to replicate the partition {rf} time(s): The target replication factor of {rf} "
                f"cannot be reached because only {len(usable)} broker(s) are registered."
            )
        return assign_replicas(usable, count, rf, rng=self.rng, **kwargs)

    def create_topic(
        self,
        name: str,
        num_partitions: int,
        replication_factor: int,
        configs: Mapping[str, str | None],
        assignments: Mapping[int, Sequence[int]] | None = None,
        topic_id: uuid.UUID | None = None,
    ) -> Change:
        """CreateTopics: TopicRecord, a PartitionRecord per partition and the config overrides."""
        validate_topic_name(name)
        if name in self.state.topic_ids:
            raise TopicAlreadyExistsError(f"Topic '{name}' already exists.")
        check_collision(name, self.state.topic_ids)
        if assignments:
            layout = manual_topic_layout(assignments, num_partitions, replication_factor, self._check_manual)
        else:
            num_partitions, replication_factor = partition_count_and_replication(
                num_partitions, replication_factor, self.config
            )
            layout = self._place(num_partitions, replication_factor)
        overrides = validate_topic_configs(configs)
        topic_id = topic_id or uuid.UUID(int=self.rng.getrandbits(128))
        records = [ApiMessageAndVersion(r.TopicRecord(name=name, topic_id=topic_id), 0)]
        records += [self._new_partition(topic_id, p, replicas) for p, replicas in sorted(layout.items())]
        records += [
            ApiMessageAndVersion(
                r.ConfigRecord(resource_type=TOPIC_RESOURCE, resource_name=name, name=k, value=v), 0
            )
            for k, v in sorted(overrides.items())
        ]
        partitions = {}
        for rec in records:
            m = rec.message
            if isinstance(m, r.PartitionRecord):
                partitions[m.partition_id] = PartitionState(
                    m.partition_id, m.leader, 0, tuple(m.replicas), tuple(m.isr), 0
                )
        info = TopicInfo(name, topic_id, partitions, overrides, is_internal(name))
        return Change(records, info)

    def delete_topic(self, name: str) -> Change:
        topic = self.state.topic(name)
        if topic is None:
            raise UnknownTopicOrPartitionError("This server does not host this topic-partition.")
        info = TopicInfo(name, topic.topic_id, {}, {}, is_internal(name))
        check_topic_deletable(info, self.config)
        return Change([ApiMessageAndVersion(r.RemoveTopicRecord(topic_id=topic.topic_id), 0)], info)

    def create_partitions(
        self, name: str, total: int, assignments: Sequence[Sequence[int]] | None = None
    ) -> Change:
        topic = self.state.topic(name)
        if topic is None:
            raise UnknownTopicOrPartitionError("This server does not host this topic-partition.")
        current = len(topic.partitions)
        check_partition_growth(current, total)
        added = total - current
        if assignments is not None:
            layout = new_partitions_layout(assignments, current, added, self._check_manual)
        else:
            first = topic.partitions.get(0)
            rf = len(first.replicas) if first is not None else 1
            usable = self._usable_brokers()
            leader0 = first.replicas[0] if first is not None and first.replicas else min(usable, default=0)
            layout = self._place(
                added,
                rf,
                fixed_start_index=start_index_for_new_partitions(usable, leader0),
                start_partition_id=current,
            )
        records = [self._new_partition(topic.topic_id, p, replicas) for p, replicas in sorted(layout.items())]
        return Change(records, TopicInfo(name, topic.topic_id, {}, {}, is_internal(name)))

    def alter_configs(
        self, resource_type: int, resource_name: str, configs: Mapping[str, str]
    ) -> list[ApiMessageAndVersion]:
        """The ConfigRecords that replace a resource's whole override set with `configs` (a deleted key is
        a record with a null value, as IncrementalAlterConfigs DELETE writes it)."""
        current = self.state.configs.get((resource_type, resource_name), {})
        records = []
        for key in sorted(set(current) | set(configs)):
            new = configs.get(key)
            if current.get(key) != new:
                record = r.ConfigRecord(
                    resource_type=resource_type, resource_name=resource_name, name=key, value=new
                )
                records.append(ApiMessageAndVersion(record, 0))
        return records

    def check_min_isr_change(
        self, resource_type: int, resource_name: str, configs: Mapping[str, str]
    ) -> None:
        """ConfigurationControlManager's ELR guard on the new override set `configs` of a broker resource:
        with the ELR on, a broker's own min.insync.replicas may not be set or removed, and the
        cluster-level one (resource "") may not be removed (INVALID_CONFIG, Kafka's messages)."""
        if resource_type != BROKER_RESOURCE or not self.elr_enabled:
            return
        current = self.state.configs.get((resource_type, resource_name), {})
        touched = MIN_ISR in configs or MIN_ISR in current
        if resource_name and touched:
            raise _error(
                ErrorCode.invalid_config, f"Broker-level {MIN_ISR} cannot be altered while ELR is enabled."
            )
        if not resource_name and MIN_ISR in current and MIN_ISR not in configs:
            raise _error(
                ErrorCode.invalid_config, f"Cluster-level {MIN_ISR} cannot be removed while ELR is enabled."
            )

    def clear_elr_records(self, records: Sequence[ApiMessageAndVersion]) -> list[ApiMessageAndVersion]:
        """createClearElrRecordsAsNeeded: with the ELR on, a ClearElrRecord after each change of
        min.insync.replicas, naming the topic for a topic's, empty (every topic) for a broker resource's."""
        if not self.elr_enabled:
            return []
        out = []
        for rec in records:
            m = rec.message
            if isinstance(m, r.ConfigRecord) and m.name == MIN_ISR:
                name = m.resource_name if m.resource_type == TOPIC_RESOURCE else ""
                out.append(ApiMessageAndVersion(r.ClearElrRecord(topic_name=name), 0))
        return out

    def elr_safety_records(self) -> list[ApiMessageAndVersion]:
        """maybeGenerateElrSafetyRecords, written before a FeatureLevelRecord that turns the ELR on: the
        cluster-level min.insync.replicas (this controller's static value) where there is none, and the
        removal of every broker-level one."""
        records = []
        if MIN_ISR not in self.state.configs.get((BROKER_RESOURCE, ""), {}):
            value = str(self.config.get(MIN_ISR))
            record = r.ConfigRecord(
                resource_type=BROKER_RESOURCE, resource_name="", name=MIN_ISR, value=value
            )
            records.append(ApiMessageAndVersion(record, 0))
        for (kind, name), values in sorted(self.state.configs.items()):
            if kind == BROKER_RESOURCE and name and MIN_ISR in values:
                record = r.ConfigRecord(
                    resource_type=BROKER_RESOURCE, resource_name=name, name=MIN_ISR, value=None
                )
                records.append(ApiMessageAndVersion(record, 0))
        return records

    # -- ElectLeaders -------------------------------------------------------------------------------------
    def elect_leaders(self, partitions: Iterable[tuple[str, int]], election_type: int) -> Change:
        """ReplicationControlManager.electLeaders, through the partition-change builder: per partition,
        preferred (0) moves leadership to the first replica when it is active and in the ISR (or, with a
        leaderless partition, to another valid replica); unclean (1) elects a leader for a partition that
        has none: from the ISR first, then the ELR (KIP-966), else any active replica, which becomes the
        whole ISR with leader recovery state RECOVERING (KIP-704). The
        result is {(topic, partition): ErrorCode}: NONE, ELECTION_NOT_NEEDED, PREFERRED_LEADER_NOT_AVAILABLE,
        ELIGIBLE_LEADERS_NOT_AVAILABLE, UNKNOWN_TOPIC_OR_PARTITION."""
        active = self._active()
        version = self.metadata_version.partition_change_record_version
        records = []
        result: dict[tuple[str, int], ErrorCode] = {}
        for topic_name, p in partitions:
            topic = self.state.topic(topic_name)
            part = topic.partitions.get(p) if topic is not None else None
            if topic is None or part is None:
                result[(topic_name, p)] = ErrorCode.unknown_topic_or_partition
                continue
            if election_type == 0:
                if part.replicas and part.leader == part.replicas[0]:
                    result[(topic_name, p)] = ErrorCode.election_not_needed
                    continue
                error = ErrorCode.preferred_leader_not_available
            else:
                if part.leader != NO_LEADER and active(part.leader):
                    result[(topic_name, p)] = ErrorCode.election_not_needed
                    continue
                error = ErrorCode.eligible_leaders_not_available
            # Election.PREFERRED: the first replica when it is valid; Election.UNCLEAN: the ISR first, then
            # the ELR, the last known leader, any active replica (which becomes the whole ISR, RECOVERING)
            record = partition_change(
                part,
                topic.topic_id,
                p,
                acceptable=active,
                version=version,
                unclean=election_type != 0,
                preferred=election_type == 0,
                default_dir=self._dir_provider(),
                **self._elr_options(topic_name, part),
            )
            if record is None or (election_type != 0 and record.message.leader < 0):  # type: ignore[attr-defined]
                result[(topic_name, p)] = error
                continue
            records.append(record)
            result[(topic_name, p)] = ErrorCode.none
        return Change(records, result)

    # -- AlterPartition -------------------------------------------------------------------------------------
    def alter_partition(
        self,
        broker_id: int,
        topic_id: uuid.UUID,
        partition: int,
        leader_epoch: int,
        partition_epoch: int,
        new_isr: Iterable[IsrMember],
        *,
        check_member_epochs: bool,
        recovery_state: int = RECOVERED,
    ) -> tuple[ErrorCode, PartitionRegistration | None, ApiMessageAndVersion | None]:
        """One partition of an AlterPartition request: (error, the partition after the change, the record).
        The leader recovery state (KIP-704) the leader sends becomes the partition's: RECOVERED completes
        an unclean election; RECOVERING with more than one ISR member, or after RECOVERED, is
        INVALID_REQUEST."""
        topic = self.state.topics.get(topic_id)
        if topic is None:
            return ErrorCode.unknown_topic_id, None, None
        part = topic.partitions.get(partition)
        if part is None:
            return ErrorCode.unknown_topic_or_partition, None, None
        if broker_id != part.leader:
            return ErrorCode.invalid_request, None, None
        if leader_epoch > part.leader_epoch or partition_epoch > part.partition_epoch:
            return ErrorCode.not_controller, None, None
        if leader_epoch < part.leader_epoch:
            return ErrorCode.fenced_leader_epoch, None, None
        if partition_epoch < part.partition_epoch:
            return ErrorCode.invalid_update_version, None, None
        members = list(new_isr)
        isr = tuple(m.broker_id for m in members)
        if not isr or any(b not in part.replicas for b in isr) or len(set(isr)) != len(isr):
            return ErrorCode.invalid_request, None, None
        if part.leader not in isr:  # the ISR always holds the leader
            return ErrorCode.invalid_request, None, None
        if recovery_state == RECOVERING and len(isr) > 1:
            return ErrorCode.invalid_request, None, None
        if part.leader_recovery_state == RECOVERED and recovery_state == RECOVERING:
            return ErrorCode.invalid_request, None, None
        for m in members:
            reg = self.state.brokers.get(m.broker_id)
            if reg is None or reg.fenced or (reg.in_controlled_shutdown and m.broker_id not in part.isr):
                return ErrorCode.ineligible_replica, None, None
            if check_member_epochs and m.broker_epoch != -1 and reg.epoch != m.broker_epoch:
                return ErrorCode.ineligible_replica, None, None
        # the builder also completes a reassignment the new ISR allows (which may move the leadership)
        record = partition_change(
            part,
            topic_id,
            partition,
            acceptable=self._active(),
            version=self.metadata_version.partition_change_record_version,
            isr=isr,
            unclean=self._unclean_allowed(topic.name),
            default_dir=self._dir_provider(),
            recovery_state=recovery_state,
            **self._elr_options(topic.name, part),
        )
        if record is None:
            return ErrorCode.none, part, None
        change: r.PartitionChangeRecord = record.message  # type: ignore[assignment]
        if change.leader not in (broker_id, -2):
            # Kafka answers NEW_LEADER_ELECTED (v2+) and still writes the change
            return ErrorCode.new_leader_elected, None, record
        return ErrorCode.none, merge(part, change), record

    # -- reassignments (KIP-455) ----------------------------------------------------------------------------
    def alter_partition_reassignments(
        self, wanted: Iterable[tuple[tuple[str, int], Sequence[int] | None]]
    ) -> Change:
        """ReplicationControlManager.alterPartitionReassignments: a PartitionChangeRecord per partition
        (strom.cluster.kraft.partition_change), all in one batch; `result`: {(topic, partition): (error,
        message)} with NONE, UNKNOWN_TOPIC_OR_PARTITION, INVALID_REPLICA_ASSIGNMENT or
        NO_REASSIGNMENT_IN_PROGRESS."""
        records: list[ApiMessageAndVersion] = []
        result: dict[tuple[str, int], tuple[ErrorCode, str | None]] = {}
        for (name, p), target in wanted:
            try:
                record = self._reassign(name, p, target)
            except KafkaError as exc:
                result[(name, p)] = (exc.code, exc.message)
                continue
            if record is not None:
                records.append(record)
            result[(name, p)] = (ErrorCode.none, None)
        return Change(records, result)

    def _reassign(self, name: str, p: int, target: Sequence[int] | None) -> ApiMessageAndVersion | None:
        topic = self.state.topic(name)
        if topic is None:
            raise UnknownTopicOrPartitionError(f"Unable to find a topic named {name}.")
        part = topic.partitions.get(p)
        if part is None:
            raise UnknownTopicOrPartitionError(f"Unable to find partition {name}:{p}.")
        version = self.metadata_version.partition_change_record_version
        unclean = self._unclean_allowed(name)
        if target is None:
            if not (part.adding_replicas or part.removing_replicas):
                raise _error(
                    ErrorCode.no_reassignment_in_progress,
                    "No partition reassignment is in progress for the topic partition.",
                )
            replicas, isr, needs_unclean = revert_reassignment(part)
            if needs_unclean and not unclean:
                raise InvalidReplicaAssignmentError(
                    f"Unable to revert partition assignment for {name}:{p} because it would require an "
                    "unclean leader election."
                )
            return partition_change(
                part,
                topic.topic_id,
                p,
                acceptable=self._active(),
                version=version,
                isr=isr,
                replicas=replicas,
                adding=(),
                removing=(),
                unclean=unclean,
                default_dir=self._dir_provider(),
                **self._elr_options(name, part),
            )
        validate_reassignment_target(target, self.state.brokers)
        replicas, adding, removing = reassignment_target(part.replicas, target)
        return partition_change(
            part,
            topic.topic_id,
            p,
            acceptable=self._active(),
            version=version,
            replicas=replicas,
            adding=adding or None,
            removing=removing or None,
            default_dir=self._dir_provider(),
            **self._elr_options(name, part),
        )

    def list_partition_reassignments(
        self, wanted: Iterable[tuple[str, int]] | None
    ) -> dict[tuple[str, int], ReplicaSet]:
        """ListPartitionReassignments: the partitions (all, or those of `wanted` that exist) with adding or
        removing replicas: {(topic, partition): ReplicaSet(replicas, adding, removing)}."""
        ongoing: dict[tuple[str, int], ReplicaSet] = {}
        if wanted is None:
            keys = [(t.name, p) for t in self.state.topics.values() for p in sorted(t.partitions)]
        else:
            keys = list(wanted)
        for name, p in keys:
            topic = self.state.topic(name)
            part = topic.partitions.get(p) if topic is not None else None
            if part is not None and (part.adding_replicas or part.removing_replicas):
                ongoing[(name, p)] = ReplicaSet(part.replicas, part.adding_replicas, part.removing_replicas)
        return ongoing

    # -- directories (KIP-858) ------------------------------------------------------------------------------
    def assign_replicas_to_dirs(
        self, broker_id: int, broker_epoch: int, directories: Sequence[DirectoryAssignment]
    ) -> Change:
        """AssignReplicasToDirs: the broker says in which of its log directories each of its replicas lives
        (JBOD, KIP-858). A PartitionChangeRecord sets that replica's directory where it changes; per
        partition UNKNOWN_TOPIC_ID, UNKNOWN_TOPIC_OR_PARTITION, or NOT_LEADER_OR_FOLLOWER for a partition
        the broker holds no replica of. `result`: {(directory, topic id, partition): error}. A replica
        assigned to a directory the broker does not report online loses leadership and ISR membership, as
        Kafka's handleAssignReplicasToDirs has it."""
        reg = self.check_broker_epoch(broker_id, broker_epoch)
        if self.metadata_version.partition_record_version < 1:
            raise _error(ErrorCode.unsupported_version, "Directory assignment is not supported yet.")
        records: list[ApiMessageAndVersion] = []
        errors: dict[tuple[uuid.UUID, uuid.UUID, int], ErrorCode] = {}
        offline: list[tuple[uuid.UUID, int]] = []
        for directory, topics in directories:
            for topic_id, partitions in topics:
                topic = self.state.topics.get(topic_id)
                for index in partitions:
                    part = topic.partitions.get(index) if topic is not None else None
                    if topic is None:
                        errors[(directory, topic_id, index)] = ErrorCode.unknown_topic_id
                    elif part is None:
                        errors[(directory, topic_id, index)] = ErrorCode.unknown_topic_or_partition
                    elif broker_id not in part.replicas:
                        errors[(directory, topic_id, index)] = ErrorCode.not_leader_or_follower
                    else:
                        errors[(directory, topic_id, index)] = ErrorCode.none
                        dirs = list(part.directories) or [UNASSIGNED_DIR] * len(part.replicas)
                        dirs[part.replicas.index(broker_id)] = directory
                        if tuple(dirs) != part.directories:
                            record = r.PartitionChangeRecord(
                                partition_id=index, topic_id=topic_id, directories=tuple(dirs)
                            )
                            version = self.metadata_version.partition_change_record_version
                            records.append(ApiMessageAndVersion(record, version))
                        if directory not in reg.log_dirs:
                            offline.append((topic_id, index))
        if offline:
            records += self.leader_and_isr_updates(remove=broker_id, only=set(offline))
        return Change(records, errors)

    # -- producer ids ---------------------------------------------------------------------------------------
    def allocate_producer_ids(self, broker_id: int, broker_epoch: int) -> Change:
        """AllocateProducerIds (KIP-730): the next block of 1000 ids, recorded as ProducerIdsRecord."""
        self.check_broker_epoch(broker_id, broker_epoch)
        start = self.state.next_producer_id
        record = r.ProducerIdsRecord(
            broker_id=broker_id, broker_epoch=broker_epoch, next_producer_id=start + PRODUCER_ID_BLOCK_SIZE
        )
        return Change([ApiMessageAndVersion(record, 0)], (start, PRODUCER_ID_BLOCK_SIZE))


def listener_security_protocol(name: str) -> int:
    return SECURITY_PROTOCOL_IDS.get(name.upper(), 0)
