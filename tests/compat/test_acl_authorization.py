"""ACL authorization, the same against Strom and Apache Kafka 4.4 (`--kafka-reference`), both configured
from the same properties: an SSL listener whose client certificates name the principals (`User:admin`, a
super user; `User:alice`, given the ACLs each API needs; `User:bob`, given none; `User:dave`, who may only
read the authz-g groups), the ACL authorizer by Kafka's class name, and `super.users`.

The authorization table sends each API as a raw request over TLS, first as bob, who must get Kafka's error
code (TOPIC_, GROUP_, CLUSTER_ or TRANSACTIONAL_ID_AUTHORIZATION_FAILED), then as alice (admin for the APIs
only brokers call), who must get no authorization error. The APIs that list only what the principal may
describe (ListGroups, ListTransactions) and DescribeCluster's authorized operations have tests of their
own. ACLs are managed with confluent-kafka's AdminClient (create_acls, describe_acls, delete_acls) and
Kafka's own kafka-acls tool.

Not in the table: DescribeDelegationToken (and the other token APIs), which Kafka refuses on a listener
without SASL (DELEGATION_TOKEN_REQUEST_NOT_ALLOWED) before any ACL is asked; test_delegation_tokens.py
runs them over SASL.
"""

from __future__ import annotations

import asyncio
import ssl
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from compat_support import JavaTools, poll_until
from confluent_kafka import TopicCollection
from confluent_kafka.admin import (
    AclBinding,
    AclBindingFilter,
    AclOperation,
    AclPermissionType,
    AdminClient,
    NewTopic,
    ResourcePatternType,
    ResourceType,
)
from kio.schema.add_offsets_to_txn.v4 import request as add_offsets_to_txn
from kio.schema.add_partitions_to_txn.v3 import request as add_partitions_v3
from kio.schema.add_partitions_to_txn.v5 import request as add_partitions_v5
from kio.schema.alter_client_quotas.v1 import request as alter_quotas
from kio.schema.alter_configs.v2 import request as alter_configs
from kio.schema.alter_partition_reassignments.v0 import request as apr
from kio.schema.alter_replica_log_dirs.v2 import request as alter_log_dirs
from kio.schema.alter_share_group_offsets.v0 import request as alter_share_offsets
from kio.schema.alter_user_scram_credentials.v0 import request as alter_scram
from kio.schema.consumer_group_describe.v0 import request as cgd
from kio.schema.consumer_group_heartbeat.v1 import request as cgh
from kio.schema.create_acls.v3 import request as create_acls
from kio.schema.create_partitions.v3 import request as create_partitions
from kio.schema.create_topics.v7 import request as create_topics
from kio.schema.delete_acls.v3 import request as delete_acls
from kio.schema.delete_groups.v2 import request as delete_groups
from kio.schema.delete_records.v2 import request as delete_records
from kio.schema.delete_share_group_offsets.v0 import request as delete_share_offsets
from kio.schema.delete_topics.v6 import request as delete_topics
from kio.schema.describe_acls.v3 import request as describe_acls
from kio.schema.describe_client_quotas.v1 import request as describe_quotas
from kio.schema.describe_cluster.v2 import request as describe_cluster
from kio.schema.describe_configs.v4 import request as describe_configs
from kio.schema.describe_groups.v5 import request as describe_groups
from kio.schema.describe_log_dirs.v4 import request as describe_log_dirs
from kio.schema.describe_producers.v0 import request as describe_producers
from kio.schema.describe_share_group_offsets.v0 import request as describe_share_offsets
from kio.schema.describe_topic_partitions.v0 import request as dtp
from kio.schema.describe_transactions.v0 import request as describe_txns
from kio.schema.describe_user_scram_credentials.v0 import request as describe_scram
from kio.schema.elect_leaders.v2 import request as elect_leaders
from kio.schema.end_txn.v5 import request as end_txn
from kio.schema.find_coordinator.v4 import request as find_coordinator
from kio.schema.heartbeat.v4 import request as heartbeat
from kio.schema.incremental_alter_configs.v1 import request as iac
from kio.schema.init_producer_id.v4 import request as init_producer_id
from kio.schema.join_group.v9 import request as join_group
from kio.schema.leave_group.v5 import request as leave_group
from kio.schema.list_config_resources.v1 import request as list_config_resources
from kio.schema.list_groups.v5 import request as list_groups
from kio.schema.list_offsets.v7 import request as list_offsets
from kio.schema.list_partition_reassignments.v0 import request as lpr
from kio.schema.list_transactions.v2 import request as list_txns
from kio.schema.metadata.v12 import request as metadata
from kio.schema.offset_commit.v8 import request as offset_commit
from kio.schema.offset_delete.v0 import request as offset_delete
from kio.schema.offset_fetch.v7 import request as offset_fetch
from kio.schema.offset_for_leader_epoch.v4 import request as ofle
from kio.schema.read_share_group_state.v0 import request as read_share_state
from kio.schema.share_acknowledge.v1 import request as share_acknowledge
from kio.schema.share_fetch.v1 import request as share_fetch
from kio.schema.share_group_describe.v1 import request as share_describe
from kio.schema.share_group_heartbeat.v1 import request as share_heartbeat
from kio.schema.streams_group_describe.v0 import request as streams_describe
from kio.schema.streams_group_heartbeat.v0 import request as streams_heartbeat
from kio.schema.sync_group.v5 import request as sync_group
from kio.schema.txn_offset_commit.v4 import request as txn_offset_commit
from kio.schema.write_txn_markers.v1 import request as write_txn_markers
from kio.static.primitive import f64, i8, i16, i32, i64
from wire_helpers import fetch_request, ms, produce_request, records

from benchmarks.peers import brokers, tools
from strom.client.connection import BrokerConnection
from strom.protocol.errors import ErrorCode
from strom.protocol.records import build_batch
from strom.testing.certs import Party, Pki, add_client, make_pki
from strom.testing.ports import free_port

pytestmark = pytest.mark.compat

TOPIC = "authz-t"
GROUP = "authz-g1"
SHARE_GROUP = "authz-g-share"
TXN = "authz-txn"
# a topic alice may describe (DELETE on the authz-del prefix implies it) but not read; the DeleteTopics case
# deletes authz-del-1, so the ShareFetch test keeps this one
NOT_READ = "authz-del-kept"
AUTH_ERRORS = {
    ErrorCode.topic_authorization_failed,
    ErrorCode.group_authorization_failed,
    ErrorCode.cluster_authorization_failed,
    ErrorCode.transactional_id_authorization_failed,
}


@dataclass(frozen=True)
class SecuredBroker:
    tls_port: int
    pki: Pki
    admin: Party
    bob: Party
    dave: Party
    kind: str

    @property
    def alice(self) -> Party:
        return self.pki.client

    def rdkafka(self, party: Party) -> dict[str, Any]:
        return {
            "bootstrap.servers": f"127.0.0.1:{self.tls_port}",
            "security.protocol": "SSL",
            "ssl.ca.location": str(self.pki.ca),
            "ssl.certificate.location": str(party.cert),
            "ssl.key.location": str(party.key),
            "log_level": 0,
        }

    def ssl_context(self, party: Party) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=str(self.pki.ca))
        ctx.load_cert_chain(str(party.cert), str(party.key))
        return ctx


@pytest.fixture(scope="module")
def secured(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SecuredBroker]:
    if request.config.getoption("--bootstrap", default=None):
        pytest.skip("needs a broker it configures itself (SSL listener, certificates and an authorizer)")
    pki = make_pki(Path(tmp_path_factory.mktemp("pki")))
    admin, bob = add_client(pki, "admin", "admin"), add_client(pki, "bob", "bob")
    dave = add_client(pki, "dave", "dave")
    port, ssl_port = free_port(), free_port()
    settings = {
        "ssl.keystore.type": "PEM",
        "ssl.keystore.location": str(pki.broker.keystore),
        "ssl.truststore.type": "PEM",
        "ssl.truststore.location": str(pki.ca),
        "ssl.client.auth": "required",
        "ssl.principal.mapping.rules": "RULE:^CN=(.*?),.*$/$1/,DEFAULT",
        "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        # ANONYMOUS: the PLAINTEXT listener, which a Kafka node's broker and controller use between them
        "super.users": "User:admin;User:ANONYMOUS",
    }
    listeners = {"SSL": ("SSL", ssl_port)}
    kafka = bool(request.config.getoption("--kafka-reference", default=False))
    if kafka:
        tools.ensure_tools()
        proc = brokers.start_kafka(port=port, settings=settings, listeners=listeners)
    else:
        proc = brokers.start_strom(port=port, settings=settings, listeners=listeners)
    try:
        broker = SecuredBroker(ssl_port, pki, admin, bob, dave, "kafka" if kafka else "strom")
        _grant_alice(broker)
        yield broker
    finally:
        proc.stop()


def _acl(
    rt: ResourceType,
    name: str,
    op: AclOperation,
    pattern: ResourcePatternType = ResourcePatternType.LITERAL,
    principal: str = "User:alice",
) -> AclBinding:
    return AclBinding(rt, name, pattern, principal, "*", op, AclPermissionType.ALLOW)


ALICE_ACLS = [
    *(
        _acl(ResourceType.TOPIC, TOPIC, op)
        for op in (
            AclOperation.READ,
            AclOperation.WRITE,
            AclOperation.ALTER,
            AclOperation.ALTER_CONFIGS,
            AclOperation.DELETE,
        )
    ),
    _acl(ResourceType.TOPIC, "authz-new-", AclOperation.CREATE, ResourcePatternType.PREFIXED),
    _acl(ResourceType.TOPIC, "authz-del", AclOperation.DELETE, ResourcePatternType.PREFIXED),
    _acl(ResourceType.GROUP, "authz-g", AclOperation.READ, ResourcePatternType.PREFIXED),
    _acl(ResourceType.GROUP, "authz-g", AclOperation.DELETE, ResourcePatternType.PREFIXED),
    _acl(ResourceType.TRANSACTIONAL_ID, TXN, AclOperation.WRITE),
    _acl(ResourceType.TRANSACTIONAL_ID, f"{TXN}-d", AclOperation.DESCRIBE, ResourcePatternType.PREFIXED),
    *(
        _acl(ResourceType.BROKER, "kafka-cluster", op)
        for op in (
            AclOperation.IDEMPOTENT_WRITE,
            AclOperation.DESCRIBE,
            AclOperation.ALTER,
            AclOperation.DESCRIBE_CONFIGS,
            AclOperation.ALTER_CONFIGS,
        )
    ),
]


# User:dave may read the authz-g groups (so describe them) and nothing on the cluster: what the APIs that
# list only the resources the principal may describe show without Cluster DESCRIBE
DAVE_ACLS = [
    _acl(ResourceType.GROUP, "authz-g", AclOperation.READ, ResourcePatternType.PREFIXED, "User:dave"),
]


def _grant_alice(broker: SecuredBroker) -> None:
    admin = AdminClient(broker.rdkafka(broker.admin))
    for name in (TOPIC, "authz-del-1", NOT_READ):
        admin.create_topics([NewTopic(name, 1, 1)])[name].result(30)
    for future in admin.create_acls(ALICE_ACLS + DAVE_ACLS).values():
        future.result(30)


async def _ask(broker: SecuredBroker, party: Party, request: Any) -> Any:
    conn = await BrokerConnection.open(
        "127.0.0.1", broker.tls_port, ssl=broker.ssl_context(party), client_id=f"authz-{party.subject[-5:]}"
    )
    try:
        return await conn.request(request, timeout=30)
    finally:
        await conn.close()


def _first_partition(resp: Any, topics: str = "topics", partitions: str = "partitions") -> ErrorCode:
    return getattr(getattr(resp, topics)[0], partitions)[0].error_code


@dataclass(frozen=True)
class Case:
    """One API: bob gets `denied`; the party named by `served_by` (alice, or the super user admin for the
    APIs only brokers may call) gets no authorization error."""

    name: str
    request: Callable[[], Any]
    code: Callable[[Any], ErrorCode]
    denied: ErrorCode
    served_by: str = "alice"


T_DENIED = ErrorCode.topic_authorization_failed
G_DENIED = ErrorCode.group_authorization_failed
C_DENIED = ErrorCode.cluster_authorization_failed
X_DENIED = ErrorCode.transactional_id_authorization_failed


def _unique(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:6]}"


def _member_id() -> str:
    return str(uuid.uuid4())


CASES = [
    Case(
        "Metadata",
        lambda: metadata.MetadataRequest(
            topics=(metadata.MetadataRequestTopic(topic_id=uuid.UUID(int=0), name=TOPIC),),
            allow_auto_topic_creation=False,
            include_topic_authorized_operations=False,
        ),
        lambda r: r.topics[0].error_code,
        T_DENIED,
    ),
    Case(
        "Produce",
        lambda: produce_request(TOPIC, {0: build_batch(records(1))}),
        lambda r: r.responses[0].partition_responses[0].error_code,
        T_DENIED,
    ),
    Case(
        "Fetch",
        lambda: fetch_request(TOPIC, {0: 0}),
        lambda r: r.responses[0].partitions[0].error_code,
        T_DENIED,
    ),
    Case(
        "ListOffsets",
        lambda: list_offsets.ListOffsetsRequest(
            replica_id=i32(-1),
            isolation_level=i8(0),
            topics=(
                list_offsets.ListOffsetsTopic(
                    name=TOPIC,
                    partitions=(
                        list_offsets.ListOffsetsPartition(
                            partition_index=i32(0), current_leader_epoch=i32(-1), timestamp=i64(-1)
                        ),
                    ),
                ),
            ),
        ),
        _first_partition,
        T_DENIED,
    ),
    Case(
        "OffsetForLeaderEpoch",
        lambda: ofle.OffsetForLeaderEpochRequest(
            replica_id=i32(-1),
            topics=(
                ofle.OffsetForLeaderTopic(
                    topic=TOPIC,
                    partitions=(
                        ofle.OffsetForLeaderPartition(
                            partition=i32(0), current_leader_epoch=i32(-1), leader_epoch=i32(0)
                        ),
                    ),
                ),
            ),
        ),
        _first_partition,
        T_DENIED,
    ),
    Case(
        "CreateTopics",
        lambda: create_topics.CreateTopicsRequest(
            topics=(
                create_topics.CreatableTopic(
                    name=_unique("authz-new-"),
                    num_partitions=i32(1),
                    replication_factor=i16(1),
                    assignments=(),
                    configs=(),
                ),
            ),
            timeout=ms(30000),
            validate_only=False,
        ),
        lambda r: r.topics[0].error_code,
        T_DENIED,
    ),
    Case(
        "DeleteTopics",
        lambda: delete_topics.DeleteTopicsRequest(
            topics=(delete_topics.DeleteTopicState(name="authz-del-1", topic_id=uuid.UUID(int=0)),),
            timeout=ms(30000),
        ),
        lambda r: r.responses[0].error_code,
        T_DENIED,
    ),
    Case(
        "CreatePartitions",
        lambda: create_partitions.CreatePartitionsRequest(
            topics=(create_partitions.CreatePartitionsTopic(name=TOPIC, count=i32(2), assignments=None),),
            timeout=ms(30000),
            validate_only=True,
        ),
        lambda r: r.results[0].error_code,
        T_DENIED,
    ),
    Case(
        "DeleteRecords",
        lambda: delete_records.DeleteRecordsRequest(
            topics=(
                delete_records.DeleteRecordsTopic(
                    name=TOPIC,
                    partitions=(
                        delete_records.DeleteRecordsPartition(partition_index=i32(0), offset=i64(0)),
                    ),
                ),
            ),
            timeout=ms(30000),
        ),
        _first_partition,
        T_DENIED,
    ),
    Case(
        "DescribeConfigs-topic",
        lambda: describe_configs.DescribeConfigsRequest(
            resources=(
                describe_configs.DescribeConfigsResource(
                    resource_type=i8(2), resource_name=TOPIC, configuration_keys=None
                ),
            ),
            include_synonyms=False,
            include_documentation=False,
        ),
        lambda r: r.results[0].error_code,
        T_DENIED,
    ),
    Case(
        "DescribeConfigs-broker",
        lambda: describe_configs.DescribeConfigsRequest(
            resources=(
                describe_configs.DescribeConfigsResource(
                    resource_type=i8(4), resource_name="1", configuration_keys=("num.partitions",)
                ),
            ),
            include_synonyms=False,
            include_documentation=False,
        ),
        lambda r: r.results[0].error_code,
        C_DENIED,
    ),
    Case(
        "IncrementalAlterConfigs",
        lambda: iac.IncrementalAlterConfigsRequest(
            resources=(
                iac.AlterConfigsResource(
                    resource_type=i8(2),
                    resource_name=TOPIC,
                    configs=(
                        iac.AlterableConfig(name="retention.ms", config_operation=i8(0), value="3600000"),
                    ),
                ),
            ),
            validate_only=True,
        ),
        lambda r: r.responses[0].error_code,
        T_DENIED,
    ),
    Case(
        "FindCoordinator-group",
        lambda: find_coordinator.FindCoordinatorRequest(key_type=i8(0), coordinator_keys=(GROUP,)),
        lambda r: r.coordinators[0].error_code,
        G_DENIED,
    ),
    Case(
        "FindCoordinator-txn",
        lambda: find_coordinator.FindCoordinatorRequest(key_type=i8(1), coordinator_keys=(TXN,)),
        lambda r: r.coordinators[0].error_code,
        X_DENIED,
    ),
    Case(
        "Heartbeat",
        lambda: heartbeat.HeartbeatRequest(
            group_id=GROUP, generation_id=i32(1), member_id="m", group_instance_id=None
        ),
        lambda r: r.error_code,
        G_DENIED,
    ),
    Case(
        "OffsetCommit",
        lambda: offset_commit.OffsetCommitRequest(
            group_id=GROUP,
            generation_id_or_member_epoch=i32(-1),
            member_id="",
            group_instance_id=None,
            topics=(
                offset_commit.OffsetCommitRequestTopic(
                    name=TOPIC,
                    partitions=(
                        offset_commit.OffsetCommitRequestPartition(
                            partition_index=i32(0),
                            committed_offset=i64(0),
                            committed_leader_epoch=i32(-1),
                            committed_metadata="",
                        ),
                    ),
                ),
            ),
        ),
        _first_partition,
        G_DENIED,
    ),
    Case(
        "OffsetFetch",
        lambda: offset_fetch.OffsetFetchRequest(
            group_id=GROUP,
            topics=(offset_fetch.OffsetFetchRequestTopic(name=TOPIC, partition_indexes=(i32(0),)),),
            require_stable=False,
        ),
        lambda r: r.error_code,
        G_DENIED,
    ),
    Case(
        "DescribeGroups",
        lambda: describe_groups.DescribeGroupsRequest(groups=(GROUP,), include_authorized_operations=True),
        lambda r: r.groups[0].error_code,
        G_DENIED,
    ),
    Case(
        "ConsumerGroupDescribe",
        lambda: cgd.ConsumerGroupDescribeRequest(group_ids=(GROUP,), include_authorized_operations=True),
        lambda r: r.groups[0].error_code,
        G_DENIED,
    ),
    Case(
        "DeleteGroups",
        lambda: delete_groups.DeleteGroupsRequest(groups_names=("authz-g-gone",)),
        lambda r: r.results[0].error_code,
        G_DENIED,
    ),
    Case(
        "InitProducerId-idempotent",
        lambda: init_producer_id.InitProducerIdRequest(
            transactional_id=None, transaction_timeout=ms(60000), producer_id=i64(-1), producer_epoch=i16(-1)
        ),
        lambda r: r.error_code,
        C_DENIED,
    ),
    Case(
        "InitProducerId-transactional",
        lambda: init_producer_id.InitProducerIdRequest(
            transactional_id=TXN, transaction_timeout=ms(60000), producer_id=i64(-1), producer_epoch=i16(-1)
        ),
        lambda r: r.error_code,
        X_DENIED,
    ),
    Case(
        "DescribeProducers",
        lambda: describe_producers.DescribeProducersRequest(
            topics=(describe_producers.TopicRequest(name=TOPIC, partition_indexes=(i32(0),)),)
        ),
        _first_partition,
        T_DENIED,
    ),
    Case(
        "DescribeTopicPartitions",
        lambda: dtp.DescribeTopicPartitionsRequest(
            topics=(dtp.TopicRequest(name=TOPIC),), response_partition_limit=i32(100), cursor=None
        ),
        lambda r: r.topics[0].error_code,
        T_DENIED,
    ),
    Case(
        "ShareGroupHeartbeat",
        lambda: share_heartbeat.ShareGroupHeartbeatRequest(
            group_id=SHARE_GROUP, member_id=_member_id(), member_epoch=i32(0), rack_id=None,
            subscribed_topic_names=(TOPIC,),
        ),
        lambda r: r.error_code,
        G_DENIED,
    ),
    Case(
        "ShareFetch",
        lambda: share_fetch.ShareFetchRequest(
            group_id=SHARE_GROUP, member_id=_member_id(), share_session_epoch=i32(0), max_wait=ms(0),
            min_bytes=i32(1), max_bytes=i32(1 << 20), max_records=i32(10), batch_size=i32(10),
            topics=(), forgotten_topics_data=(),
        ),
        lambda r: r.error_code,
        G_DENIED,
    ),
    Case(
        "ShareAcknowledge",
        lambda: share_acknowledge.ShareAcknowledgeRequest(
            group_id=SHARE_GROUP, member_id=_member_id(), share_session_epoch=i32(1), topics=(),
        ),
        lambda r: r.error_code,
        G_DENIED,
    ),
    Case(
        "DescribeShareGroupOffsets",
        lambda: describe_share_offsets.DescribeShareGroupOffsetsRequest(groups=(
            describe_share_offsets.DescribeShareGroupOffsetsRequestGroup(group_id=SHARE_GROUP, topics=None),
        )),
        lambda r: r.groups[0].error_code,
        G_DENIED,
    ),
    Case(
        "AlterShareGroupOffsets",
        lambda: alter_share_offsets.AlterShareGroupOffsetsRequest(group_id=_unique("authz-g-s"), topics=(
            alter_share_offsets.AlterShareGroupOffsetsRequestTopic(topic_name=TOPIC, partitions=(
                alter_share_offsets.AlterShareGroupOffsetsRequestPartition(
                    partition_index=i32(0), start_offset=i64(0)),
            )),
        )),
        lambda r: r.error_code,
        G_DENIED,
    ),
    Case(
        "DeleteShareGroupOffsets",
        lambda: delete_share_offsets.DeleteShareGroupOffsetsRequest(group_id=_unique("authz-g-s"), topics=(
            delete_share_offsets.DeleteShareGroupOffsetsRequestTopic(topic_name=TOPIC),
        )),
        lambda r: r.error_code,
        G_DENIED,
    ),
    Case(
        "DescribeAcls",
        lambda: describe_acls.DescribeAclsRequest(
            resource_type_filter=i8(1),
            resource_name_filter=None,
            pattern_type_filter=i8(1),
            principal_filter=None,
            host_filter=None,
            operation=i8(1),
            permission_type=i8(1),
        ),
        lambda r: r.error_code,
        C_DENIED,
    ),
    Case(
        "CreateAcls",
        lambda: create_acls.CreateAclsRequest(
            creations=(
                create_acls.AclCreation(
                    resource_type=i8(2),
                    resource_name="authz-acl",
                    resource_pattern_type=i8(3),
                    principal="User:carol",
                    host="*",
                    operation=i8(3),
                    permission_type=i8(3),
                ),
            )
        ),
        lambda r: r.results[0].error_code,
        C_DENIED,
    ),
    Case(
        "DescribeLogDirs",
        lambda: describe_log_dirs.DescribeLogDirsRequest(topics=None),
        lambda r: r.error_code,
        C_DENIED,
    ),
    Case(
        "ListPartitionReassignments",
        lambda: lpr.ListPartitionReassignmentsRequest(timeout=ms(30000), topics=None),
        lambda r: r.error_code,
        C_DENIED,
    ),
    Case(
        "ElectLeaders",
        lambda: elect_leaders.ElectLeadersRequest(
            election_type=i8(0),
            topic_partitions=(elect_leaders.TopicPartitions(topic=TOPIC, partitions=(i32(0),)),),
            timeout=ms(30000),
        ),
        lambda r: r.error_code,
        C_DENIED,
    ),
    Case(
        "JoinGroup",
        lambda: join_group.JoinGroupRequest(
            group_id=_unique("authz-g-j"), session_timeout=ms(30000), rebalance_timeout=ms(30000),
            member_id="", group_instance_id=None, protocol_type="consumer",
            protocols=(join_group.JoinGroupRequestProtocol(name="range", metadata=b""),), reason=None,
        ),
        lambda r: r.error_code,
        G_DENIED,
    ),
    Case(
        "SyncGroup",
        lambda: sync_group.SyncGroupRequest(
            group_id=GROUP, generation_id=i32(1), member_id="m", group_instance_id=None,
            protocol_type="consumer", protocol_name="range", assignments=(),
        ),
        lambda r: r.error_code,
        G_DENIED,
    ),
    Case(
        "LeaveGroup",
        lambda: leave_group.LeaveGroupRequest(
            group_id=GROUP,
            members=(leave_group.MemberIdentity(member_id="m", group_instance_id=None, reason=None),),
        ),
        lambda r: r.error_code,
        G_DENIED,
    ),
    Case(
        "ConsumerGroupHeartbeat",
        lambda: cgh.ConsumerGroupHeartbeatRequest(
            group_id=_unique("authz-g-c"), member_id=_member_id(), member_epoch=i32(0), instance_id=None,
            rack_id=None, rebalance_timeout=ms(30000), subscribed_topic_names=(TOPIC,),
            subscribed_topic_regex=None, server_assignor=None, topic_partitions=(),
        ),
        lambda r: r.error_code,
        G_DENIED,
    ),
    Case(
        "OffsetDelete",
        lambda: offset_delete.OffsetDeleteRequest(
            group_id=_unique("authz-g-d"),
            topics=(offset_delete.OffsetDeleteRequestTopic(name=TOPIC, partitions=(
                offset_delete.OffsetDeleteRequestPartition(partition_index=i32(0)),)),),
        ),
        lambda r: r.error_code,
        G_DENIED,
    ),
    Case(
        "ShareGroupDescribe",
        lambda: share_describe.ShareGroupDescribeRequest(
            group_ids=(SHARE_GROUP,), include_authorized_operations=True
        ),
        lambda r: r.groups[0].error_code,
        G_DENIED,
    ),
    Case(
        "StreamsGroupHeartbeat",
        lambda: streams_heartbeat.StreamsGroupHeartbeatRequest(
            group_id=_unique("authz-g-st"), member_id=_member_id(), member_epoch=i32(0),
            endpoint_information_epoch=i32(-1), instance_id=None, rack_id=None,
            rebalance_timeout=ms(30000),
            topology=streams_heartbeat.Topology(epoch=i32(0), subtopologies=(
                streams_heartbeat.Subtopology(
                    subtopology_id="0", source_topics=(TOPIC,), source_topic_regex=(),
                    state_changelog_topics=(), repartition_sink_topics=(), repartition_source_topics=(),
                    copartition_groups=(),
                ),
            )),
            active_tasks=(), standby_tasks=(), warmup_tasks=(), process_id=_member_id(),
            user_endpoint=None, client_tags=(), task_offsets=(), task_end_offsets=(),
            shutdown_application=False,
        ),
        lambda r: r.error_code,
        G_DENIED,
    ),
    Case(
        "StreamsGroupDescribe",
        lambda: streams_describe.StreamsGroupDescribeRequest(
            group_ids=(GROUP,), include_authorized_operations=True
        ),
        lambda r: r.groups[0].error_code,
        G_DENIED,
    ),
    Case(
        "AddPartitionsToTxn-v3",
        lambda: add_partitions_v3.AddPartitionsToTxnRequest(
            v3_and_below_transactional_id=TXN, v3_and_below_producer_id=i64(4711),
            v3_and_below_producer_epoch=i16(0),
            v3_and_below_topics=(
                add_partitions_v3.AddPartitionsToTxnTopic(name=TOPIC, partitions=(i32(0),)),
            ),
        ),
        lambda r: r.results_by_topic_v3_and_below[0].results_by_partition[0].partition_error_code,
        X_DENIED,
    ),
    # v4 and later are the brokers' verification requests (KIP-890): CLUSTER_ACTION, which alice lacks
    Case(
        "AddPartitionsToTxn-v5",
        lambda: add_partitions_v5.AddPartitionsToTxnRequest(transactions=(
            add_partitions_v5.AddPartitionsToTxnTransaction(
                transactional_id=TXN, producer_id=i64(4711), producer_epoch=i16(0), verify_only=True,
                topics=(add_partitions_v5.AddPartitionsToTxnTopic(name=TOPIC, partitions=(i32(0),)),),
            ),
        )),
        lambda r: r.error_code,
        C_DENIED,
        served_by="admin",
    ),
    Case(
        "AddOffsetsToTxn",
        lambda: add_offsets_to_txn.AddOffsetsToTxnRequest(
            transactional_id=TXN, producer_id=i64(4711), producer_epoch=i16(0), group_id=GROUP
        ),
        lambda r: r.error_code,
        X_DENIED,
    ),
    Case(
        "TxnOffsetCommit",
        lambda: txn_offset_commit.TxnOffsetCommitRequest(
            transactional_id=TXN, group_id=GROUP, producer_id=i64(4711), producer_epoch=i16(0),
            generation_id=i32(-1), member_id="", group_instance_id=None,
            topics=(txn_offset_commit.TxnOffsetCommitRequestTopic(name=TOPIC, partitions=(
                txn_offset_commit.TxnOffsetCommitRequestPartition(
                    partition_index=i32(0), committed_offset=i64(0), committed_leader_epoch=i32(-1),
                    committed_metadata=""),
            )),),
        ),
        _first_partition,
        X_DENIED,
    ),
    Case(
        "EndTxn",
        lambda: end_txn.EndTxnRequest(
            transactional_id=TXN, producer_id=i64(4711), producer_epoch=i16(0), committed=False
        ),
        lambda r: r.error_code,
        X_DENIED,
    ),
    # for brokers only: CLUSTER_ACTION, which alice lacks; a topic that does not exist keeps the log clean
    Case(
        "WriteTxnMarkers",
        lambda: write_txn_markers.WriteTxnMarkersRequest(markers=(
            write_txn_markers.WritableTxnMarker(
                producer_id=i64(4711), producer_epoch=i16(0), transaction_result=False,
                coordinator_epoch=i32(0),
                topics=(
                    write_txn_markers.WritableTxnMarkerTopic(name="authz-none", partition_indexes=(i32(0),)),
                ),
            ),
        )),
        lambda r: r.markers[0].topics[0].partitions[0].error_code,
        C_DENIED,
        served_by="admin",
    ),
    # an id never initialised: TXN's state, once InitProducerId made it, has start time -1, which the
    # response decoder refuses as a timestamp
    Case(
        "DescribeTransactions",
        lambda: describe_txns.DescribeTransactionsRequest(transactional_ids=(_unique(f"{TXN}-d"),)),
        lambda r: r.transaction_states[0].error_code,
        X_DENIED,
    ),
    Case(
        "AlterConfigs",
        lambda: alter_configs.AlterConfigsRequest(
            resources=(alter_configs.AlterConfigsResource(
                resource_type=i8(2), resource_name=TOPIC,
                configs=(alter_configs.AlterableConfig(name="retention.ms", value="3600000"),)),),
            validate_only=True,
        ),
        lambda r: r.responses[0].error_code,
        T_DENIED,
    ),
    Case(
        "ListConfigResources",
        lambda: list_config_resources.ListConfigResourcesRequest(resource_types=()),
        lambda r: r.error_code,
        C_DENIED,
    ),
    Case(
        "DescribeClientQuotas",
        lambda: describe_quotas.DescribeClientQuotasRequest(
            components=(describe_quotas.ComponentData(entity_type="user", match_type=i8(1), match=None),),
            strict=False,
        ),
        lambda r: r.error_code,
        C_DENIED,
    ),
    Case(
        "AlterClientQuotas",
        lambda: alter_quotas.AlterClientQuotasRequest(
            entries=(alter_quotas.EntryData(
                entity=(alter_quotas.EntityData(entity_type="user", entity_name="authz-quota"),),
                ops=(alter_quotas.OpData(key="producer_byte_rate", value=f64(1024.0), remove=False),)),),
            validate_only=True,
        ),
        lambda r: r.entries[0].error_code,
        C_DENIED,
    ),
    Case(
        "DescribeUserScramCredentials",
        lambda: describe_scram.DescribeUserScramCredentialsRequest(
            users=(describe_scram.UserName(name="authz-nobody"),)
        ),
        lambda r: r.error_code,
        C_DENIED,
    ),
    Case(
        "AlterUserScramCredentials",
        lambda: alter_scram.AlterUserScramCredentialsRequest(
            deletions=(alter_scram.ScramCredentialDeletion(name="authz-nobody", mechanism=i8(1)),),
            upsertions=(),
        ),
        lambda r: r.results[0].error_code,
        C_DENIED,
    ),
    Case(
        "DeleteAcls",
        lambda: delete_acls.DeleteAclsRequest(filters=(
            delete_acls.DeleteAclsFilter(
                resource_type_filter=i8(2), resource_name_filter="authz-acl-none", pattern_type_filter=i8(3),
                principal_filter=None, host_filter=None, operation=i8(1), permission_type=i8(1),
            ),
        )),
        lambda r: r.filter_results[0].error_code,
        C_DENIED,
    ),
    Case(
        "AlterReplicaLogDirs",
        lambda: alter_log_dirs.AlterReplicaLogDirsRequest(dirs=(
            alter_log_dirs.AlterReplicaLogDir(path="/authz/no-such-dir", topics=(
                alter_log_dirs.AlterReplicaLogDirTopic(name=TOPIC, partitions=(i32(0),)),)),
        )),
        lambda r: r.results[0].partitions[0].error_code,
        C_DENIED,
    ),
    Case(
        "AlterPartitionReassignments",
        lambda: apr.AlterPartitionReassignmentsRequest(
            timeout=ms(30000),
            topics=(apr.ReassignableTopic(name=TOPIC, partitions=(
                apr.ReassignablePartition(partition_index=i32(0), replicas=None),)),),
        ),
        lambda r: r.error_code,
        C_DENIED,
    ),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_authorization_table(secured: SecuredBroker, case: Case) -> None:
    """bob (no ACLs) gets Kafka's error code; alice (the ACLs the API needs) gets no authorization error."""
    refused = asyncio.run(_ask(secured, secured.bob, case.request()))
    assert ErrorCode(case.code(refused)) == case.denied, f"{case.name} as User:bob on {secured.kind}"
    served = asyncio.run(_ask(secured, getattr(secured, case.served_by), case.request()))
    assert ErrorCode(case.code(served)) not in AUTH_ERRORS, (
        f"{case.name} as User:{case.served_by} on {secured.kind}"
    )


def test_metadata_hides_topics_the_principal_may_not_describe(secured: SecuredBroker) -> None:
    bob = AdminClient(secured.rdkafka(secured.bob)).list_topics(timeout=30)
    assert TOPIC not in bob.topics
    alice = AdminClient(secured.rdkafka(secured.alice)).list_topics(timeout=30)
    assert TOPIC in alice.topics


def test_confluent_admin_describes_and_deletes_acls(secured: SecuredBroker) -> None:
    admin = AdminClient(secured.rdkafka(secured.admin))
    name = _unique("authz-x-")
    deny = AclBinding(
        ResourceType.TOPIC,
        name,
        ResourcePatternType.PREFIXED,
        "User:bob",
        "*",
        AclOperation.ALL,
        AclPermissionType.DENY,
    )
    for future in admin.create_acls([deny]).values():
        future.result(30)
    match = AclBindingFilter(
        ResourceType.TOPIC,
        name + "-orders",
        ResourcePatternType.MATCH,
        None,
        None,
        AclOperation.ANY,
        AclPermissionType.ANY,
    )
    assert poll_until(lambda: admin.describe_acls(match).result(30), lambda found: found == [deny]) == [deny]
    alice_topic = AclBindingFilter(
        ResourceType.TOPIC,
        TOPIC,
        ResourcePatternType.LITERAL,
        "User:alice",
        None,
        AclOperation.ANY,
        AclPermissionType.ALLOW,
    )
    assert len(admin.describe_acls(alice_topic).result(30)) == 5
    deleted = admin.delete_acls([match])
    assert [d for f in deleted.values() for d in f.result(30)] == [deny]
    assert poll_until(lambda: admin.describe_acls(match).result(30), lambda found: found == []) == []


def test_kafka_acls_tool(secured: SecuredBroker, tmp_path: Path, fetched_tools: None) -> None:
    config = tmp_path / "admin.properties"
    config.write_text(
        "security.protocol=SSL\n"
        f"ssl.truststore.type=PEM\nssl.truststore.location={secured.pki.ca}\n"
        f"ssl.keystore.type=PEM\nssl.keystore.location={secured.admin.keystore}\n"
    )
    JavaTools(f"127.0.0.1:{secured.tls_port}").acl_round_trip(config, "User:carol", _unique("authz-tool-"))


def _topic_id(secured: SecuredBroker, name: str) -> uuid.UUID:
    """A topic's id, from confluent-kafka's describe_topics (its Uuid holds two signed 64-bit halves)."""
    admin = AdminClient(secured.rdkafka(secured.admin))
    uid = admin.describe_topics(TopicCollection([name]))[name].result(30).topic_id
    mask = (1 << 64) - 1
    high, low = uid.get_most_significant_bits() & mask, uid.get_least_significant_bits() & mask
    return uuid.UUID(int=high << 64 | low)


def test_share_group_state_apis_need_cluster_action(secured: SecuredBroker) -> None:
    """The share coordinator's state APIs are for brokers: CLUSTER_AUTHORIZATION_FAILED on every partition
    for a client without CLUSTER_ACTION (alice too), served for a super user."""
    topic_id = _topic_id(secured, TOPIC)

    def read_state() -> Any:
        return read_share_state.ReadShareGroupStateRequest(group_id=SHARE_GROUP, topics=(
            read_share_state.ReadStateData(topic_id=topic_id, partitions=(
                read_share_state.PartitionData(partition=i32(0), leader_epoch=i32(0)),)),))  # fmt: skip

    for party in (secured.bob, secured.alice):
        refused = asyncio.run(_ask(secured, party, read_state()))
        assert _first_partition(refused, "results") == C_DENIED, (party.subject, secured.kind)
    served = asyncio.run(_ask(secured, secured.admin, read_state()))
    assert _first_partition(served, "results") not in AUTH_ERRORS, secured.kind


def test_share_fetch_refuses_topics_the_principal_may_not_read(secured: SecuredBroker) -> None:
    """alice may read the share group and TOPIC but not NOT_READ: that partition alone answers
    TOPIC_AUTHORIZATION_FAILED."""
    ids = {name: _topic_id(secured, name) for name in (TOPIC, NOT_READ)}
    request = share_fetch.ShareFetchRequest(
        group_id=SHARE_GROUP, member_id=_member_id(), share_session_epoch=i32(0), max_wait=ms(0),
        min_bytes=i32(1), max_bytes=i32(1 << 20), max_records=i32(10), batch_size=i32(10),
        topics=tuple(share_fetch.FetchTopic(topic_id=ids[name], partitions=(
            share_fetch.FetchPartition(partition_index=i32(0), acknowledgement_batches=()),))
            for name in (TOPIC, NOT_READ)),
        forgotten_topics_data=(),
    )  # fmt: skip
    response = asyncio.run(_ask(secured, secured.alice, request))
    codes = {t.topic_id: t.partitions[0].error_code for t in response.responses}
    assert codes.get(ids[NOT_READ]) == T_DENIED, (response, secured.kind)
    assert codes.get(ids[TOPIC], ErrorCode.none) not in AUTH_ERRORS, (response, secured.kind)


COORDINATOR_PENDING = {
    ErrorCode.not_coordinator,
    ErrorCode.coordinator_not_available,
    ErrorCode.coordinator_load_in_progress,
}


def _once_coordinated(broker: SecuredBroker, party: Party, request: Callable[[], Any],
                      code: Callable[[Any], ErrorCode], key_type: int, key: str) -> Any:
    """`request` answered once its coordinator is ready: Kafka makes the coordinator's internal topic on
    the first FindCoordinator and answers NOT_COORDINATOR until its partition is loaded."""
    find = find_coordinator.FindCoordinatorRequest(key_type=i8(key_type), coordinator_keys=(key,))
    deadline = time.monotonic() + 60
    while True:
        asyncio.run(_ask(broker, party, find))
        response = asyncio.run(_ask(broker, party, request()))
        if ErrorCode(code(response)) not in COORDINATOR_PENDING or time.monotonic() > deadline:
            return response
        time.sleep(0.5)


def _commit_offset(group: str) -> Any:
    return offset_commit.OffsetCommitRequest(
        group_id=group, generation_id_or_member_epoch=i32(-1), member_id="", group_instance_id=None,
        topics=(offset_commit.OffsetCommitRequestTopic(name=TOPIC, partitions=(
            offset_commit.OffsetCommitRequestPartition(partition_index=i32(0), committed_offset=i64(0),
                                                       committed_leader_epoch=i32(-1), committed_metadata=""),
        )),),
    )  # fmt: skip


def test_list_groups_lists_the_groups_the_principal_may_describe(secured: SecuredBroker) -> None:
    """ListGroups: every group for Cluster DESCRIBE (alice), else only the groups the principal may DESCRIBE
    (dave: READ on the authz-g groups, which implies it), none for bob; never an error."""
    ours, other = _unique("authz-g-list-"), _unique("authz-other-")
    for group in (ours, other):
        committed = _once_coordinated(secured, secured.admin, lambda g=group: _commit_offset(g),
                                      _first_partition, 0, group)  # fmt: skip
        assert _first_partition(committed) == ErrorCode.none, (group, secured.kind)

    def listed(party: Party) -> set[str]:
        response = asyncio.run(_ask(secured, party, list_groups.ListGroupsRequest(states_filter=(),
                                                                                  types_filter=())))
        assert response.error_code == ErrorCode.none, (party.subject, secured.kind)
        return {g.group_id for g in response.groups} & {ours, other}

    assert listed(secured.bob) == set(), secured.kind
    assert listed(secured.dave) == {ours}, secured.kind
    assert listed(secured.alice) == {ours, other}, secured.kind


def test_list_transactions_lists_the_ids_the_principal_may_describe(secured: SecuredBroker) -> None:
    """ListTransactions lists only the transactional ids the principal may DESCRIBE: alice's own (WRITE
    implies it), not another's; bob none; the super user both."""
    other = _unique("authz-other-txn-")

    def init(party: Party, txn: str) -> None:
        def request() -> Any:
            return init_producer_id.InitProducerIdRequest(transactional_id=txn, transaction_timeout=ms(60000),
                                                          producer_id=i64(-1), producer_epoch=i16(-1))

        response = _once_coordinated(secured, party, request, lambda r: r.error_code, 1, txn)
        assert response.error_code == ErrorCode.none, (txn, secured.kind)

    init(secured.alice, TXN)
    init(secured.admin, other)

    def listed(party: Party) -> set[str]:
        request = list_txns.ListTransactionsRequest(state_filters=(), producer_id_filters=(),
                                                    duration_filter=i64(-1), transactional_id_pattern=None)
        response = asyncio.run(_ask(secured, party, request))
        assert response.error_code == ErrorCode.none, (party.subject, secured.kind)
        return {t.transactional_id for t in response.transaction_states} & {TXN, other}

    assert listed(secured.bob) == set(), secured.kind
    assert listed(secured.alice) == {TXN}, secured.kind
    assert listed(secured.admin) == {TXN, other}, secured.kind


def test_describe_cluster_authorized_operations(secured: SecuredBroker) -> None:
    """DescribeCluster needs no ACL; the cluster's authorized operations, when asked for, are those the
    principal may do if it may DESCRIBE the cluster (alice: hers; the super user: every cluster operation),
    else none (bob: 0)."""

    def operations(party: Party, include: bool = True) -> int:
        request = describe_cluster.DescribeClusterRequest(
            include_cluster_authorized_operations=include, endpoint_type=i8(1), include_fenced_brokers=False
        )
        response = asyncio.run(_ask(secured, party, request))
        assert response.error_code == ErrorCode.none, (party.subject, secured.kind)
        return int(response.cluster_authorized_operations)

    def bits(*ops: int) -> int:
        return sum(1 << op for op in ops)

    # AclOperation codes: CREATE 5, ALTER 7, DESCRIBE 8, CLUSTER_ACTION 9, DESCRIBE_CONFIGS 10,
    # ALTER_CONFIGS 11, IDEMPOTENT_WRITE 12
    assert operations(secured.bob) == 0, secured.kind
    assert operations(secured.dave) == 0, secured.kind
    assert operations(secured.alice) == bits(7, 8, 10, 11, 12), secured.kind
    assert operations(secured.admin) == bits(5, 7, 8, 9, 10, 11, 12), secured.kind
    assert operations(secured.alice, include=False) == -(2**31), secured.kind


def test_group_heartbeats_need_describe_on_the_subscribed_topics(secured: SecuredBroker) -> None:
    """ConsumerGroupHeartbeat and StreamsGroupHeartbeat: alice may read the group, but a subscribed (or
    topology) topic she may not DESCRIBE answers TOPIC_AUTHORIZATION_FAILED."""
    hidden = "authz-hidden"
    consumer = cgh.ConsumerGroupHeartbeatRequest(
        group_id=_unique("authz-g-c"), member_id=_member_id(), member_epoch=i32(0), instance_id=None,
        rack_id=None, rebalance_timeout=ms(30000), subscribed_topic_names=(TOPIC, hidden),
        subscribed_topic_regex=None, server_assignor=None, topic_partitions=(),
    )
    assert asyncio.run(_ask(secured, secured.alice, consumer)).error_code == T_DENIED, secured.kind
    streams = streams_heartbeat.StreamsGroupHeartbeatRequest(
        group_id=_unique("authz-g-st"), member_id=_member_id(), member_epoch=i32(0),
        endpoint_information_epoch=i32(-1), instance_id=None, rack_id=None, rebalance_timeout=ms(30000),
        topology=streams_heartbeat.Topology(epoch=i32(0), subtopologies=(
            streams_heartbeat.Subtopology(
                subtopology_id="0", source_topics=(hidden,), source_topic_regex=(), state_changelog_topics=(),
                repartition_sink_topics=(), repartition_source_topics=(), copartition_groups=(),
            ),
        )),
        active_tasks=(), standby_tasks=(), warmup_tasks=(), process_id=_member_id(), user_endpoint=None,
        client_tags=(), task_offsets=(), task_end_offsets=(), shutdown_application=False,
    )  # fmt: skip
    assert asyncio.run(_ask(secured, secured.alice, streams)).error_code == T_DENIED, secured.kind


def test_refused_entries_carry_the_schema_defaults(secured: SecuredBroker) -> None:
    """An item refused by the authorizer is answered as Kafka builds it: the id, the error code and the
    schema's defaults (zeros, not -1) in every other field."""
    groups = asyncio.run(_ask(secured, secured.bob, cgd.ConsumerGroupDescribeRequest(
        group_ids=(GROUP,), include_authorized_operations=True)))  # fmt: skip
    share = asyncio.run(_ask(secured, secured.bob, share_describe.ShareGroupDescribeRequest(
        group_ids=(SHARE_GROUP,), include_authorized_operations=True)))  # fmt: skip
    streams = asyncio.run(_ask(secured, secured.bob, streams_describe.StreamsGroupDescribeRequest(
        group_ids=(GROUP,), include_authorized_operations=True)))  # fmt: skip
    assert streams.groups[0].topology is None, (streams, secured.kind)
    for described in (groups.groups[0], share.groups[0], streams.groups[0]):
        assert described.error_code == G_DENIED, secured.kind
        assert (described.group_state, described.group_epoch, described.assignment_epoch) == ("", 0, 0), (
            described, secured.kind)  # fmt: skip
        assert getattr(described, "assignor_name", "") == "" and described.members == (), secured.kind
        assert described.authorized_operations == -(2**31), secured.kind
    txns = asyncio.run(_ask(secured, secured.bob, describe_txns.DescribeTransactionsRequest(
        transactional_ids=(TXN,))))  # fmt: skip
    state = txns.transaction_states[0]
    assert state.error_code == X_DENIED, secured.kind
    described_txn = (state.transaction_state, state.producer_id, state.producer_epoch, state.topics)
    assert described_txn == ("", 0, 0, ()), (state, secured.kind)
    assert state.transaction_timeout.total_seconds() == 0, secured.kind
    assert state.transaction_start_time.timestamp() == 0, secured.kind
