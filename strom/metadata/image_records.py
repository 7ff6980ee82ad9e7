"""A `MetadataState` written back as metadata records: the content of a KRaft snapshot (KIP-630).

Kafka's MetadataImage.write emits each image in a fixed order, and so does `image_records`: features
(metadata.version first, since every later record's version depends on it), the cluster (a
RegisterBrokerRecord per broker carrying its current fencing and shutdown state, a RegisterControllerRecord
per controller), topics (TopicRecord, then a PartitionRecord per partition at its current epochs),
configurations (ConfigRecord), client quotas (ClientQuotaRecord), producer ids (ProducerIdsRecord with
broker id -1, as ProducerIdsImage writes it), ACLs (AccessControlEntryRecord), SCRAM credentials
(UserScramCredentialRecord) and delegation tokens (DelegationTokenRecord). Record versions follow the
state's metadata.version as the controller's own writes do. Replaying the result into an empty state
(`MetadataState.load_snapshot`) gives the same state.
"""

from __future__ import annotations

from strom.metadata import records as r
from strom.metadata.features import latest_production, metadata_version_from_level
from strom.metadata.image import SECURITY_PROTOCOL_IDS, MetadataState
from strom.metadata.release_versions import MetadataVersionInfo
from strom.metadata.serde import ApiMessageAndVersion
from strom.security.scram_credentials import SCRAM_MECHANISMS

__all__ = ["image_records"]

METADATA_VERSION = "metadata.version"


def _metadata_version(state: MetadataState) -> MetadataVersionInfo:
    level = state.metadata_version
    return metadata_version_from_level(level) if level else latest_production()


def image_records(state: MetadataState) -> list[ApiMessageAndVersion]:
    """Every record needed to rebuild `state` from nothing, in Kafka's snapshot order."""
    mv = _metadata_version(state)
    out: list[ApiMessageAndVersion] = []

    def add(message: object, version: int = 0) -> None:
        out.append(ApiMessageAndVersion(message, version))  # type: ignore[arg-type]

    for name in sorted(state.features, key=lambda n: (n != METADATA_VERSION, n)):
        add(r.FeatureLevelRecord(name=name, feature_level=state.features[name]))

    for broker_id, reg in sorted(state.brokers.items()):
        add(
            r.RegisterBrokerRecord(
                broker_id=broker_id,
                is_migrating_zk_broker=False,
                incarnation_id=reg.incarnation_id,
                broker_epoch=reg.epoch,
                end_points=tuple(
                    r.RegisterBrokerRecord.BrokerEndpoint(
                        name=e.listener,
                        host=e.host,
                        port=e.port,
                        security_protocol=SECURITY_PROTOCOL_IDS.get(e.security_protocol, 0),
                    )
                    for e in reg.endpoints
                ),
                features=tuple(
                    r.RegisterBrokerRecord.BrokerFeature(
                        name=name, min_supported_version=lo, max_supported_version=hi
                    )
                    for name, (lo, hi) in sorted(reg.features.items())
                ),
                rack=reg.rack,
                fenced=reg.fenced,
                in_controlled_shutdown=reg.in_controlled_shutdown,
                log_dirs=reg.log_dirs,
            ),
            mv.register_broker_record_version,
        )
    for controller_id, creg in sorted(state.controllers.items()):
        add(
            r.RegisterControllerRecord(
                controller_id=controller_id,
                incarnation_id=creg.incarnation_id,
                end_points=tuple(
                    r.RegisterControllerRecord.ControllerEndpoint(
                        name=e.listener,
                        host=e.host,
                        port=e.port,
                        security_protocol=SECURITY_PROTOCOL_IDS.get(e.security_protocol, 0),
                    )
                    for e in creg.endpoints
                ),
            )
        )

    version = mv.partition_record_version
    elr_on = version >= 2 and state.features.get("eligible.leader.replicas.version", 0) >= 1
    for topic in sorted(state.topics.values(), key=lambda t: t.name):
        add(r.TopicRecord(name=topic.name, topic_id=topic.topic_id))
        for partition_id, part in sorted(topic.partitions.items()):
            add(
                r.PartitionRecord(
                    partition_id=partition_id,
                    topic_id=topic.topic_id,
                    replicas=part.replicas,
                    isr=part.isr,
                    removing_replicas=part.removing_replicas,
                    adding_replicas=part.adding_replicas,
                    leader=part.leader,
                    leader_recovery_state=part.leader_recovery_state,
                    leader_epoch=part.leader_epoch,
                    partition_epoch=part.partition_epoch,
                    directories=part.directories if version >= 1 else (),
                    # Kafka's toRecord: only with the ELR on, and only when not empty
                    eligible_leader_replicas=part.elr if elr_on and part.elr else None,
                    last_known_elr=part.last_known_elr if elr_on and part.last_known_elr else None,
                ),
                version,
            )

    for (resource_type, resource_name), values in sorted(state.configs.items()):
        for name, value in sorted(values.items()):
            add(
                r.ConfigRecord(
                    resource_type=resource_type, resource_name=resource_name, name=name, value=value
                )
            )

    for entity, quotas in sorted(state.client_quotas.items(), key=lambda item: repr(item[0])):
        for key, value in sorted(quotas.items()):
            add(
                r.ClientQuotaRecord(
                    entity=tuple(
                        r.ClientQuotaRecord.EntityData(entity_type=t, entity_name=n) for t, n in entity
                    ),
                    key=key,
                    value=value,
                )
            )

    if state.next_producer_id > 0:
        add(r.ProducerIdsRecord(broker_id=-1, broker_epoch=-1, next_producer_id=state.next_producer_id))

    for acl_id, binding in sorted(state.acls.items()):
        p, e = binding.pattern, binding.entry
        add(
            r.AccessControlEntryRecord(
                id=acl_id,
                resource_type=int(p.resource_type),
                resource_name=p.name,
                pattern_type=int(p.pattern_type),
                principal=e.principal,
                host=e.host,
                operation=int(e.operation),
                permission_type=int(e.permission),
            )
        )

    for (user, mechanism), credential in sorted(state.scram.items()):
        add(
            r.UserScramCredentialRecord(
                name=user,
                mechanism=SCRAM_MECHANISMS[mechanism].type,
                salt=credential.salt,
                stored_key=credential.stored_key,
                server_key=credential.server_key,
                iterations=credential.iterations,
            )
        )

    for token_id, token in sorted(state.tokens.items()):
        add(
            r.DelegationTokenRecord(
                owner=str(token.owner),
                requester=str(token.requester),
                renewers=tuple(str(p) for p in token.renewers),
                issue_timestamp=token.issue_ms,
                max_timestamp=token.max_ms,
                expiration_timestamp=token.expiry_ms,
                token_id=token_id,
            )
        )
    return out
