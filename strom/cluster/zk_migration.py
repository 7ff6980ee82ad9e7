"""Reading a stopped ZooKeeper-mode cluster's metadata for an offline move to KRaft.

Kafka moves a ZooKeeper cluster to KRaft online (KIP-866: a KRaft controller quorum copies the tree and
writes to both while brokers restart one by one). Strom offers the offline first step instead: with every
broker stopped, `read_zookeeper` reads the whole tree in Kafka's layout (`strom.cluster.zk_layout`, the
ACL, SCRAM, quota and token layouts of `strom.security`) and `migration_state` turns it into a
`MetadataState` whose records (`strom.metadata.image_records`, Kafka's snapshot order) become the
bootstrap checkpoint of the new controllers (`strom storage migrate-from-zookeeper`):

- /cluster/id is the KRaft cluster id; /brokers/ids must be empty (no broker may still be running);
- /brokers/topics/<t>: the topic id (KIP-516), the replica assignment, and from each partition's state
  znode the leader, leader epoch and ISR; the state znode's version is the partition epoch (as Kafka's
  ZooKeeper controller used it). A topic without an id (written before Kafka 2.8) is refused;
- /config/topics, /config/brokers (`<default>` is the cluster-wide default), /config/groups: ConfigRecords;
- /kafka-acl and /kafka-acl-extended/prefixed: AccessControlEntryRecords (each a new random id, as Kafka's
  AclControlManager gives them);
- /config/users/<u>: SCRAM credentials (UserScramCredentialRecord) and user quotas; /config/users/<u>/
  clients/<c>, /config/clients, /config/ips: ClientQuotaRecords;
- /latest_producer_id_block: the next producer id is the block's end plus one (ProducerIdsRecord), so
  producers of the KRaft cluster never reuse an id;
- /delegation_token/tokens: DelegationTokenRecords.

Not read: reassignments in progress (adding/removing replicas; the partition keeps the full replica list),
pending topic deletions (/admin/delete_topics: the topic is kept), preferred-election requests, the
controller epoch and broker registrations (KRaft brokers register anew).
"""

from __future__ import annotations

import json
import logging
import uuid
from dataclasses import dataclass, field

from kazoo.client import KazooClient
from kazoo.exceptions import NoNodeError

from strom.cluster import zk_layout as L
from strom.metadata.formatter import random_uuid
from strom.metadata.image import (
    BROKER_RESOURCE,
    GROUP_RESOURCE,
    TOPIC_RESOURCE,
    MetadataState,
    PartitionRegistration,
    TopicState,
)
from strom.metadata.release_versions import MetadataVersionInfo
from strom.security.acl import AclBinding, ResourcePattern, from_camel_name
from strom.security.acl_store import decode_entries
from strom.security.authorizer import PatternType, ResourceType
from strom.security.delegation_tokens import TokenInformation
from strom.security.quotas.zk_store import desanitize
from strom.security.scram_credentials import SCRAM_MECHANISMS, ScramCredential, credential_from_string
from strom.security.token_store import TOKENS_PATH, decode_token

__all__ = ["MigrationError", "ZkCluster", "migration_state", "read_zookeeper"]

UNASSIGNED_DIR = uuid.UUID(int=0)
ACL_ROOTS = {PatternType.LITERAL: "/kafka-acl", PatternType.PREFIXED: "/kafka-acl-extended/prefixed"}
QUOTA_KEYS_IGNORED = frozenset(SCRAM_MECHANISMS)


class MigrationError(Exception):
    """The migration cannot go on; the message is one line for the operator."""


@dataclass(slots=True)
class ZkPartition:
    replicas: tuple[int, ...]
    leader: int
    leader_epoch: int
    isr: tuple[int, ...]
    partition_epoch: int


@dataclass(slots=True)
class ZkCluster:
    """What the ZooKeeper tree of a stopped cluster holds."""

    cluster_id: str
    topics: dict[str, tuple[uuid.UUID, dict[int, ZkPartition]]] = field(default_factory=dict)
    configs: dict[tuple[int, str], dict[str, str]] = field(default_factory=dict)
    acls: list[AclBinding] = field(default_factory=list)
    scram: dict[tuple[str, str], ScramCredential] = field(default_factory=dict)
    quotas: dict[tuple[tuple[str, str | None], ...], dict[str, float]] = field(default_factory=dict)
    next_producer_id: int = 0
    tokens: dict[str, TokenInformation] = field(default_factory=dict)


def read_zookeeper(connect: str, *, timeout: float = 10.0, require_stopped: bool = True) -> ZkCluster:
    """Connect (`host:port[,host:port][/chroot]`), check that no broker is registered and read the tree."""
    # kazoo's own connection warnings would add lines to the one-line refusal: keep them out of stderr
    quiet = logging.getLogger("strom.cluster.zk_migration.kazoo")
    if not quiet.handlers:
        quiet.addHandler(logging.NullHandler())
        quiet.propagate = False
    client = KazooClient(hosts=connect, timeout=timeout, logger=quiet,
                         connection_retry={"max_tries": 5, "delay": 0.2, "max_delay": 1.0})
    try:
        client.start(timeout)
    except Exception as exc:  # kazoo's timeout, or a connect string it cannot use
        client.stop()
        client.close()
        reason = str(exc) or type(exc).__name__
        raise MigrationError(f"Cannot reach ZooKeeper at {connect}: {reason}") from None
    try:
        return _read(client, connect, require_stopped)
    finally:
        client.stop()
        client.close()


def _children(client: KazooClient, path: str) -> list[str]:
    try:
        return sorted(client.get_children(path))
    except NoNodeError:
        return []


def _get(client: KazooClient, path: str) -> tuple[bytes | None, int]:
    try:
        data, stat = client.get(path)
    except NoNodeError:
        return None, -1
    return data, stat.version


def _read(client: KazooClient, connect: str, require_stopped: bool) -> ZkCluster:
    data, _ = _get(client, L.CLUSTER_ID)
    if data is None:
        raise MigrationError(f"No Kafka cluster at {connect}: {L.CLUSTER_ID} does not exist")
    cluster = ZkCluster(cluster_id=L.decode_cluster_id(data))
    registered = _children(client, L.BROKER_IDS)
    if require_stopped and registered:
        raise MigrationError(
            f"Brokers {', '.join(sorted(registered, key=int))} are still registered in ZooKeeper "
            f"({L.BROKER_IDS}): stop every broker of the cluster before migrating"
        )
    for name in _children(client, L.TOPICS):
        raw, _ = _get(client, L.topic_path(name))
        assignment = L.decode_topic(raw)
        if assignment.topic_id is None:
            raise MigrationError(f"Topic {name} has no topic id in ZooKeeper ({L.topic_path(name)}); "
                                 "start the cluster once with a broker that assigns topic ids first")
        partitions: dict[int, ZkPartition] = {}
        for p, replicas in assignment.partitions.items():
            raw_state, version = _get(client, L.state_path(name, p))
            if raw_state is None:  # never elected: leaderless, every replica in the ISR
                partitions[p] = ZkPartition(replicas, -1, 0, replicas, 0)
                continue
            state = L.decode_state(raw_state, version)
            partitions[p] = ZkPartition(replicas, state.leader, max(state.leader_epoch, 0), state.isr,
                                        max(version, 0))
        cluster.topics[name] = (assignment.topic_id, partitions)
        _config(client, cluster, TOPIC_RESOURCE, name, L.topic_config_path(name))
    for entity in _children(client, L.CONFIG_BROKERS):
        name = "" if entity == L.DEFAULT_BROKER_ENTITY else entity
        _config(client, cluster, BROKER_RESOURCE, name, L.broker_config_path(entity))
    for node in _children(client, L.CONFIG_GROUPS):
        _config(client, cluster, GROUP_RESOURCE, L.desanitize(node), f"{L.CONFIG_GROUPS}/{node}")
    _read_acls(client, cluster)
    _read_users_and_quotas(client, cluster)
    raw_block, _ = _get(client, L.LATEST_PRODUCER_ID_BLOCK)
    block = L.decode_producer_id_block(raw_block)
    if block is not None:
        cluster.next_producer_id = block.end + 1
    for token_id in _children(client, TOKENS_PATH):
        raw_token, _ = _get(client, f"{TOKENS_PATH}/{token_id}")
        if raw_token:
            cluster.tokens[token_id] = decode_token(token_id, json.loads(raw_token.decode("utf-8")))
    return cluster


def _config(client: KazooClient, cluster: ZkCluster, resource_type: int, name: str, path: str) -> None:
    raw, _ = _get(client, path)
    values = L.decode_config(raw)
    if values:
        cluster.configs[(resource_type, name)] = values


def _read_acls(client: KazooClient, cluster: ZkCluster) -> None:
    for pattern_type, root in ACL_ROOTS.items():
        for type_name in _children(client, root):
            resource_type = ResourceType(from_camel_name(ResourceType, type_name))
            if resource_type == ResourceType.UNKNOWN:
                continue
            for name in _children(client, f"{root}/{type_name}"):
                raw, _ = _get(client, f"{root}/{type_name}/{name}")
                pattern = ResourcePattern(resource_type, name, pattern_type)
                cluster.acls.extend(AclBinding(pattern, entry) for entry in decode_entries(raw or b""))


def _entity_name(node: str) -> str | None:
    return None if node == "<default>" else desanitize(node)


def _quota_values(config: dict[str, str]) -> dict[str, float]:
    out = {}
    for key, value in config.items():
        if key in QUOTA_KEYS_IGNORED:
            continue
        try:
            out[key] = float(value)
        except ValueError:
            continue
    return out


def _read_users_and_quotas(client: KazooClient, cluster: ZkCluster) -> None:
    def quota(entity: tuple[tuple[str, str | None], ...], path: str) -> None:
        raw, _ = _get(client, path)
        values = _quota_values(L.decode_config(raw))
        if values:
            cluster.quotas[tuple(sorted(entity, key=lambda part: part[0]))] = values

    for node in _children(client, "/config/users"):
        user = _entity_name(node)
        raw, _ = _get(client, f"/config/users/{node}")
        config = L.decode_config(raw)
        for mechanism in SCRAM_MECHANISMS:
            text = config.get(mechanism)
            if text is not None and user is not None:
                try:
                    cluster.scram[(user, mechanism)] = credential_from_string(text)
                except ValueError as exc:
                    raise MigrationError(f"Unreadable {mechanism} credential of user {user}: {exc}") from None
        quota((("user", user),), f"/config/users/{node}")
        for client_node in _children(client, f"/config/users/{node}/clients"):
            quota((("user", user), ("client-id", _entity_name(client_node))),
                  f"/config/users/{node}/clients/{client_node}")
    for node in _children(client, "/config/clients"):
        quota((("client-id", _entity_name(node)),), f"/config/clients/{node}")
    for node in _children(client, "/config/ips"):
        quota((("ip", _entity_name(node)),), f"/config/ips/{node}")


def migration_state(cluster: ZkCluster, release: MetadataVersionInfo) -> MetadataState:
    """The KRaft metadata the ZooKeeper tree describes (without features other than metadata.version,
    which only picks the record versions)."""
    state = MetadataState()
    state.features["metadata.version"] = release.feature_level
    for name, (topic_id, partitions) in sorted(cluster.topics.items()):
        topic = TopicState(name, topic_id)
        for p, part in sorted(partitions.items()):
            topic.partitions[p] = PartitionRegistration(
                replicas=part.replicas,
                isr=part.isr,
                leader=part.leader,
                leader_epoch=part.leader_epoch,
                partition_epoch=part.partition_epoch,
                directories=(UNASSIGNED_DIR,) * len(part.replicas),
            )
        state.topics[topic_id] = topic
        state.topic_ids[name] = topic_id
    state.configs = {key: dict(values) for key, values in cluster.configs.items()}
    used: set[uuid.UUID] = set()
    for binding in sorted(set(cluster.acls), key=repr):
        acl_id = random_uuid()
        while acl_id in used:
            acl_id = random_uuid()
        used.add(acl_id)
        state.acls[acl_id] = binding
    state.scram = dict(cluster.scram)
    state.client_quotas = {entity: dict(values) for entity, values in cluster.quotas.items()}
    state.next_producer_id = cluster.next_producer_id
    state.tokens = dict(cluster.tokens)
    return state
