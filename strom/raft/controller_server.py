"""A KRaft controller node (`process.roles=controller`, or the controller half of `broker,controller`): its
CONTROLLER listener and the Raft quorum over `__cluster_metadata-0`.

What Kafka 4.4 configures, read the same way:
- the listener is the first of `controller.listener.names`, bound at its address in `listeners` (plaintext;
  the other listeners of a combined node belong to the broker half);
- the voters are the static `controller.quorum.voters` (`id@host:port`, kraft.version 0), else the
  VotersRecord of the bootstrap snapshot `strom storage format` wrote (KIP-853, kraft.version 1); a node
  that is not among them is an observer and finds the leader through `controller.quorum.bootstrap.servers`;
- the cluster id and this node's directory id come from the metadata log dir's `meta.properties`;
- `controller.quorum.*` timeouts, `metadata.log.segment.bytes` / `metadata.log.segment.ms`.

APIs served on the listener (ApiVersions lists exactly these): ApiVersions, Fetch (the metadata partition
only), Vote, BeginQuorumEpoch, EndQuorumEpoch, AddRaftVoter, RemoveRaftVoter, UpdateRaftVoter (KIP-853,
strom.raft.voter_changes), DescribeQuorum (answered by the leader; Kafka's
`kafka-metadata-quorum --bootstrap-controller` asks it), FetchSnapshot and DescribeCluster with endpoint
type 2 (controllers: the voters, and the leader as controller id, as a Kafka controller answers KIP-919
clients). The quorum controller (strom.cluster.kraft) adds BrokerRegistration, BrokerHeartbeat,
AlterPartition, AllocateProducerIds, CreateTopics, DeleteTopics, CreatePartitions, AlterConfigs,
IncrementalAlterConfigs, Alter/DescribeUserScramCredentials, CreateAcls, DeleteAcls, DescribeAcls (with
`authorizer.class.name`: the ACLs of the metadata log, which also authorize every request) and Envelope
(the requests brokers forward, KIP-590). The active controller appends a NoOpRecord every
`metadata.max.idle.interval.ms`, as Kafka's QuorumController does when the log is idle (KIP-835), so the
high watermark keeps moving and brokers' heartbeats show them caught up; never before its bootstrap records.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from strom.cluster.election import NotControllerError
from strom.config import BrokerConfig, ConfigError
from strom.metadata.formatter import META_PROPERTIES, NodeStorage, check_formatted
from strom.metadata.records import NoOpRecord
from strom.metadata.serde import ApiMessageAndVersion
from strom.metadata.snapshot import BOOTSTRAP_SNAPSHOT, CLUSTER_METADATA_DIR, read_snapshot
from strom.protocol.errors import ErrorCode
from strom.protocol.registry import ApiRegistry, ApiSpec
from strom.raft.core import RaftConfig, RaftCore
from strom.raft.messages import build, item, response_class, zero_throttle
from strom.raft.metadata_log import MetadataLog, metadata_log_config
from strom.raft.node import RaftNode
from strom.raft.quorum_state import QUORUM_STATE_FILE, QuorumStateStore
from strom.raft.voters import VotersError, VoterSet, parse_static_voters
from strom.security.acl_authorizer import AclAuthorizer, authorizer_enabled
from strom.security.authorizer import AllowAll, Authorizer
from strom.storage.checkpoint import read_meta_properties, uuid_from_kafka

__all__ = ["ControllerServer", "controller_listener"]

log = logging.getLogger("strom.raft")

_URI = re.compile(r"^(.*)://\[?([0-9a-zA-Z\-%._:]*)\]?:(-?[0-9]+)$")
ENDPOINT_CONTROLLERS = 2
CLUSTER_OPERATIONS_OMITTED = -(2**31)


def controller_listener(config: BrokerConfig) -> tuple[str, str, int]:
    """(name, host, port) of the first controller listener in `listeners`; ConfigError if absent."""
    names = [
        n.strip().upper() for n in str(config.get("controller.listener.names") or "").split(",") if n.strip()
    ]
    if not names:
        raise ConfigError(
            "controller.listener.names must contain at least one value when running KRaft "
            "with just the controller role"
        )
    for entry in str(config.get("listeners") or "").split(","):
        m = _URI.match(entry.strip())
        if m and m.group(1).strip().upper() == names[0]:
            return names[0], m.group(2), int(m.group(3))
    raise ConfigError(
        f"The listeners config must only contain KRaft controller listeners from "
        f"controller.listener.names when process.roles=controller; {names[0]} is not in listeners"
    )


def _voters(config: BrokerConfig, metadata_dir: Path) -> tuple[VoterSet, int]:
    snapshot = (
        read_snapshot(metadata_dir / CLUSTER_METADATA_DIR / BOOTSTRAP_SNAPSHOT)
        if (metadata_dir / CLUSTER_METADATA_DIR / BOOTSTRAP_SNAPSHOT).exists()
        else None
    )
    kraft_version = snapshot.kraft_version.kraft_version if snapshot and snapshot.kraft_version else 0
    static = list(config.get("controller.quorum.voters") or ())
    if static:
        try:
            names = str(config.get("controller.listener.names") or "CONTROLLER").split(",")
            return parse_static_voters(static, names[0].strip().upper()), 0
        except VotersError as exc:
            raise ConfigError(str(exc)) from None
    if snapshot is not None and snapshot.voters is not None:
        return VoterSet.from_record(snapshot.voters), kraft_version
    return VoterSet({}), kraft_version


def build_raft_node(
    config: BrokerConfig,
    listener_name: str,
    *,
    clock: Callable[[], float] = time.time,
    rng: random.Random | None = None,
) -> tuple[RaftNode, str]:
    """The Raft replica of a KRaft node over its metadata log dir: a voter when the voters name it, else
    an observer (a broker-only node) that fetches from the leader. Returns (node, cluster id);
    FormatterError for unformatted directories."""
    storage = NodeStorage.from_config(config)
    cluster_id = check_formatted(storage)
    metadata_dir = Path(storage.metadata_log_dir)
    props = read_meta_properties(metadata_dir / META_PROPERTIES)
    directory_id = uuid_from_kafka(props["directory.id"]) if props.get("directory.id") else None
    voters, kraft_version = _voters(config, metadata_dir)
    bootstrap = []
    for entry in config.get("controller.quorum.bootstrap.servers") or ():
        host, _, port = str(entry).strip().rpartition(":")
        if host and port.isdigit():
            bootstrap.append((host.strip("[]"), int(port)))
    log_config = metadata_log_config(
        int(config.get("metadata.log.segment.bytes")), int(config.get("metadata.log.segment.ms"))
    )
    metadata_log = MetadataLog.open(metadata_dir, log_config, clock=clock)
    core = RaftCore(
        node_id=config.node_id,
        directory_id=directory_id,
        cluster_id=cluster_id,
        log=metadata_log,
        store=QuorumStateStore(metadata_dir / CLUSTER_METADATA_DIR / QUORUM_STATE_FILE),
        bootstrap_voters=voters,
        kraft_version=kraft_version,
        listener_name=listener_name,
        config=RaftConfig.from_broker_config(config),
        rng=rng or random.Random(),
        bootstrap_servers=bootstrap,
    )
    return RaftNode(core, clock=clock, client_id=f"raft-client-{config.node_id}"), cluster_id


def bootstrap_snapshot_path(config: BrokerConfig) -> Path:
    """The formatter's bootstrap checkpoint in the metadata log dir."""
    storage = NodeStorage.from_config(config)
    return Path(storage.metadata_log_dir) / CLUSTER_METADATA_DIR / BOOTSTRAP_SNAPSHOT


class ControllerServer:
    """The controller listener and the quorum. `start()`, `bound_address`, `raft`, `stop()`."""

    def __init__(
        self,
        config: BrokerConfig,
        *,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
        on_fatal: Callable[[BaseException], None] | None = None,
    ) -> None:
        from strom.cluster.kraft.controller import QuorumController
        from strom.cluster.kraft.controller_apis import ControllerAdmin, controller_specs
        from strom.cluster.kraft.controller_registration import ControllerRegistrar
        from strom.cluster.kraft.quotas import MetadataQuotaStore
        from strom.cluster.kraft.scram import MetadataScramStore
        from strom.cluster.kraft.tokens import MetadataTokenStore
        from strom.security.delegation_tokens import TokenManager, TokenSettings
        from strom.security.quotas import QuotaManager, QuotaSettings

        self.config = config
        self.clock = clock
        self.node_id = config.node_id
        self.listener_name, self._host, self._port = controller_listener(config)
        self.raft, self.cluster_id = build_raft_node(config, self.listener_name, clock=clock, rng=rng)
        self.authorizer: Authorizer = AllowAll()
        self.acl_authorizer: AclAuthorizer | None = None
        self.acl_store: Any = None
        # the quorum controller (strom.cluster.kraft): active on the Raft leader
        self.controller = QuorumController(
            self.raft,
            config,
            self.cluster_id,
            bootstrap_snapshot_path(config),
            clock=clock,
            rng=rng,
            on_fatal=on_fatal,
        )
        self.metadata: Any = ControllerAdmin(self.controller)
        # this controller's RegisterControllerRecord, written through whichever controller is active
        self.registrar = ControllerRegistrar(
            self.controller, (self.listener_name, self._host or "localhost", self._port)
        )
        self.scram_store = MetadataScramStore(self.controller)
        # client quotas: forwarded AlterClientQuotas writes ClientQuotaRecords, decided against this table
        self.quotas = QuotaManager(QuotaSettings.from_config(config), clock=clock)
        self.quota_store = MetadataQuotaStore(self.controller)
        # delegation tokens: forwarded Create/Renew/ExpireDelegationToken write them, and the active
        # controller removes expired ones, as Kafka's DelegationTokenControlManager does
        self.delegation_tokens = TokenManager(
            TokenSettings.from_config(config), MetadataTokenStore(self.controller),
            lambda: int(clock() * 1000),
        )
        self._token_expiry: asyncio.Task[None] | None = None
        if authorizer_enabled(config):
            from strom.cluster.kraft.acls import ControllerAclStore

            # requests (forwarded ones as their client) are authorized against the log's ACLs, as
            # Kafka's controllers run StandardAuthorizer over the metadata
            self.acl_authorizer = AclAuthorizer.from_config(config)
            self.authorizer = self.acl_authorizer
            self.acl_store = ControllerAclStore(self.controller)
        self.registry = ApiRegistry(self._specs() + controller_specs(self.controller))
        self.bound_address: tuple[str, int] = (self._host, self._port)
        self._server: asyncio.Server | None = None
        self._connections: set[Any] = set()
        self._next_connection = 0
        self._idle_task: asyncio.Task[None] | None = None
        self._stopped = False

    # -- lifecycle -------------------------------------------------------------------------------------
    async def start(self) -> None:
        from strom.server.frame_protocol import FrameProtocol

        max_request = int(self.config.get("socket.request.max.bytes"))
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: FrameProtocol(max_request, self._on_connection),
            host=self._host or None,
            port=self._port,
            reuse_address=True,
        )
        bound = self._server.sockets[0].getsockname()
        self.bound_address = (bound[0], bound[1])
        self.registrar.listener = (self.listener_name, self._host or "localhost", bound[1])
        # KIP-853: a voter whose VotersRecord entry names other endpoints sends UpdateRaftVoter
        self.raft.core.local_endpoints = {self.listener_name: (self._host or "localhost", bound[1])}
        if self.acl_store is not None and self.acl_authorizer is not None:
            await self.acl_store.start(self.acl_authorizer.load)
        await self.quota_store.start(self.quotas.load)
        await self.raft.start()
        await self.controller.start()
        await self.registrar.start()
        if self.delegation_tokens.enabled:
            self._token_expiry = asyncio.create_task(self.delegation_tokens.run_expiry())
        interval = int(self.config.get("metadata.max.idle.interval.ms"))
        if interval > 0:
            self._idle_task = asyncio.create_task(self._write_noops(interval / 1000))

    async def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        if self._token_expiry is not None:
            self._token_expiry.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._token_expiry
        if self._idle_task is not None:
            self._idle_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._idle_task
        await self.registrar.stop()
        await self.quota_store.stop()
        await self.controller.stop()
        # resign while the listener still answers, so the voters hear EndQuorumEpoch and Fetch errors
        await self.raft.stop()
        if self._server is not None:
            self._server.close()
        for conn in list(self._connections):
            with contextlib.suppress(Exception):
                await conn.shutdown()
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)

    async def _on_connection(self, stream: Any) -> None:
        from strom.server.connection import Connection

        if self._stopped:
            stream.close()
            return
        self._next_connection += 1
        conn = Connection(self, stream, f"controller-conn-{self._next_connection}")  # type: ignore[arg-type]
        self._connections.add(conn)
        try:
            await conn.run()
        finally:
            self._connections.discard(conn)

    async def _write_noops(self, interval: float) -> None:
        """The active controller's NoOpRecord every interval, as Kafka's QuorumController writes them only
        once activated: a Raft leader that has not yet appended the bootstrap records must not write one
        before them."""
        noop = ApiMessageAndVersion(NoOpRecord(), 0)
        while True:
            await asyncio.sleep(interval)
            if self.controller.is_active:
                with contextlib.suppress(NotControllerError):
                    self.controller.append([noop])

    # -- APIs --------------------------------------------------------------------------------------------
    def _specs(self) -> list[ApiSpec]:
        from strom.apis.api_versions import SPEC as API_VERSIONS

        def raft(api_key: int) -> Callable[[Any, Any], Any]:
            async def handle(ctx: Any, request: Any) -> Any:
                return await self.raft.handle(api_key, request)

            return handle

        return [
            ApiSpec(1, 4, 18, raft(1), name="Fetch"),
            API_VERSIONS,
            ApiSpec(52, 0, 2, raft(52), name="Vote"),
            ApiSpec(53, 0, 1, raft(53), name="BeginQuorumEpoch"),
            ApiSpec(54, 0, 1, raft(54), name="EndQuorumEpoch"),
            ApiSpec(55, 0, 2, raft(55), name="DescribeQuorum"),
            ApiSpec(59, 0, 1, raft(59), name="FetchSnapshot"),
            ApiSpec(60, 0, 2, self._describe_cluster, name="DescribeCluster"),
            ApiSpec(80, 0, 1, self._voter_change(80), name="AddRaftVoter"),
            ApiSpec(81, 0, 0, self._voter_change(81), name="RemoveRaftVoter"),
            ApiSpec(82, 0, 0, self._voter_change(82), name="UpdateRaftVoter"),
        ]

    def _voter_change(self, api_key: int) -> Callable[[Any, Any], Any]:
        """KIP-853 voter changes: Add/Remove need ALTER on the cluster, Update CLUSTER_ACTION (the voters'
        own request), as Kafka's ControllerApis checks; then the Raft leader decides."""
        from strom.raft.voter_changes import add_voter_response, remove_voter_response
        from strom.security.authorizer import AclOperation, ResourceType

        async def handle(ctx: Any, request: Any) -> Any:
            operation = AclOperation.CLUSTER_ACTION if api_key == 82 else AclOperation.ALTER
            if not ctx.authorize(operation, ResourceType.CLUSTER, "kafka-cluster"):
                denied = ErrorCode.cluster_authorization_failed
                if api_key == 80:
                    return add_voter_response(ctx.api_version, denied)
                if api_key == 81:
                    return remove_voter_response(ctx.api_version, denied)
                cls = response_class(82, ctx.api_version)
                leader = item(cls, "current_leader")(leader_id=-1, leader_epoch=-1, host="", port=-1)
                return build(cls, throttle_time=zero_throttle(), error_code=denied, current_leader=leader)
            return await self.raft.handle(api_key, request)

        return handle

    async def _describe_cluster(self, ctx: Any, request: Any) -> Any:
        """KIP-919: a controller describes the controllers (the voters) and names the active one."""
        version = ctx.api_version
        cls = response_class(60, version)
        endpoint_type = int(getattr(request, "endpoint_type", 1))
        if version < 1 or endpoint_type != ENDPOINT_CONTROLLERS:
            return build(
                cls,
                throttle_time=zero_throttle(),
                error_code=ErrorCode.unsupported_endpoint_type,
                error_message="The controller only supports endpoint type controller",
                endpoint_type=endpoint_type,
                cluster_id=self.cluster_id,
                controller_id=-1,
                brokers=(),
                cluster_authorized_operations=CLUSTER_OPERATIONS_OMITTED,
            )
        broker_cls = item(cls, "brokers")
        core = self.raft.core
        brokers = []
        for node_id in core.voters.ids:
            endpoint = core.voters.voters[node_id].endpoint(self.listener_name)
            if endpoint is not None:
                brokers.append(
                    build(
                        broker_cls,
                        broker_id=node_id,
                        host=endpoint[0],
                        port=endpoint[1],
                        rack=None,
                        is_fenced=False,
                    )
                )
        return build(
            cls,
            throttle_time=zero_throttle(),
            error_code=ErrorCode.none,
            error_message=None,
            endpoint_type=ENDPOINT_CONTROLLERS,
            cluster_id=self.cluster_id,
            controller_id=core.leader_id,
            brokers=tuple(brokers),
            cluster_authorized_operations=CLUSTER_OPERATIONS_OMITTED,
        )
