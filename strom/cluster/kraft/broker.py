"""`KRaftBackend`: the `ClusterBackend` of a KRaft broker (`process.roles=broker`, or the broker half of
`broker,controller`), as Kafka 4.4's BrokerServer runs it.

- The metadata: a broker-only node replicates `__cluster_metadata` as a Raft observer (strom.raft: it
  fetches from the quorum leader and never votes) into its own metadata log dir; a combined node shares its
  controller's replica. Committed batches replay into a `MetadataState` (strom.cluster.kraft.loader) and
  every change publishes a new immutable `MetadataImage` to the listeners (replica manager, coordinators),
  exactly as the `local` and `zookeeper` backends do. Dynamic broker configs of the image are applied to
  this broker's `BrokerConfig`.
- The lifecycle (Kafka's BrokerLifecycleManager): BrokerRegistration with the advertised listeners, the
  supported feature ranges, a new incarnation id, the log dirs' directory ids and the previous broker
  epoch the clean-shutdown markers hold (-1 after a crash: KIP-966's controller then drops this broker
  from every ELR); then BrokerHeartbeat
  every `broker.heartbeat.interval.ms` (more often until unfenced) with the last replayed metadata offset.
  `start()` returns once the controller has unfenced this broker (it has caught up with the log), as
  Kafka's broker waits before it opens its listeners. A stale epoch registers again.
- Controlled shutdown: heartbeats with `want_shut_down` until the controller answers `should_shut_down`
  (it moved leadership away and took this broker out of the ISRs).
- Writes go to the active controller over the controller listener: the admin requests clients send are
  forwarded whole in an Envelope with the client's principal (strom.cluster.kraft.forwarding, KIP-590);
  the writes the broker makes itself (topics it auto-creates, the internal topics) as plain CreateTopics,
  DeleteTopics, CreatePartitions and IncrementalAlterConfigs requests; AlterPartition v3 for the
  leader's ISR changes (with each member's broker epoch, KIP-903, and leader recovery state RECOVERED:
  a leader elected uncleanly, RECOVERING in the image, completes its recovery with its first ISR change,
  as Kafka's leader does, KIP-704) and
  AllocateProducerIds for producer id blocks. NOT_CONTROLLER or a lost connection retries against the
  current leader until the request's deadline. Admin calls return once this broker's image shows the
  change (or after a few seconds).
- Versions: the controller channel asks ApiVersions first, as Kafka's NodeToControllerChannelManager does.
  The requests are built at the versions Kafka 4.4's broker sends (a newer controller, Strom or Kafka,
  still serves them); a controller that serves none of them is refused here with one error line naming the
  API, the version and the controller's range, rather than sent a request it would close the connection on.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import inspect
import logging
import random
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from kio.static.primitive import i32Timedelta

from strom.cluster.backend import MetadataListener
from strom.cluster.election import FencedLeaderEpochError, InvalidUpdateVersionError
from strom.cluster.kraft.loader import LogReplayer
from strom.cluster.kraft.snapshots import SnapshotWriter
from strom.cluster.metadata import BrokerInfo, MetadataImage, PartitionState, TopicInfo
from strom.config import BrokerConfig, ConfigError
from strom.metadata.errors import MetadataRecordError
from strom.metadata.features import (
    finalized_features,
    latest_production,
    metadata_version,
    supported_features,
)
from strom.metadata.image import GROUP_RESOURCE, SECURITY_PROTOCOL_IDS, MetadataState
from strom.metadata.release_versions import FEATURES, MINIMUM_VERSION
from strom.protocol.errors import (
    ErrorCode,
    KafkaError,
    NotLeaderOrFollowerError,
    UnknownTopicOrPartitionError,
)
from strom.raft.messages import build, item, request_class
from strom.raft.node import RaftNode

__all__ = ["KRaftBackend"]

log = logging.getLogger("strom.kraft.broker")

ADMIN_WAIT_S = 5.0
REQUEST_DEADLINE_S = 30.0
SET, DELETE = 0, 1


def _timeout(ms: int) -> Any:
    return i32Timedelta.parse(datetime.timedelta(milliseconds=ms))


def version_refusal(
    api_versions: Mapping[int, tuple[int, int]], request_type: type, address: object
) -> str | None:
    """Why a request of `request_type` (a kio request class) cannot go to the controller at `address` whose
    ApiVersions answer was `api_versions` ({api key: (min, max)}), or None when it serves that version."""
    api_key, version = int(request_type.__api_key__), int(request_type.__version__)  # type: ignore[attr-defined]
    served = api_versions.get(api_key)
    if served is not None and served[0] <= version <= served[1]:
        return None
    name = request_type.__name__.removesuffix("Request")
    has = f"it serves v{served[0]}-{served[1]}" if served is not None else "it does not serve the API"
    return (
        f"the controller at {address} does not serve {name} (api {api_key}) v{version}, which this broker "
        f"sends ({has})"
    )


def _raise_for(code: int, message: str | None) -> None:
    if code == ErrorCode.none:
        return
    raise KafkaError(message or ErrorCode(code).name, code=ErrorCode(code))


class KRaftBackend:
    """`start()`, `stop()`, `image`, the `ClusterBackend` writes, `alter_isr`, `controlled_shutdown`,
    `claim_producer_id_block`, `wait_for`."""

    def __init__(
        self,
        broker: BrokerInfo,
        config: BrokerConfig,
        *,
        clock: Callable[[], float] = time.time,
        raft: RaftNode | None = None,
        rng: random.Random | None = None,
        on_fatal: Callable[[BaseException], None] | None = None,
        log_manager: Any = None,
    ) -> None:
        self.broker = broker
        # this broker's LogManager: its clean-shutdown markers carry the broker epoch (KIP-966)
        self._log_manager = log_manager
        self.node_id = broker.node_id
        self.config = config
        self.clock = clock
        self.rng = rng or random.Random()
        self.on_fatal = on_fatal or (lambda exc: log.critical("metadata replay failed: %s", exc))
        self._own_raft = raft is None
        self.raft = raft
        self.cluster_id = ""
        self.state = MetadataState()
        self._image = MetadataImage.empty()
        self._listeners: list[MetadataListener] = []
        self._changed = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._conn: Any = None
        self._conn_address: tuple[str, int] | None = None
        self._version_refusals: set[str] = set()
        self.broker_epoch = -1
        self.incarnation_id = uuid.uuid4()
        self.fenced = True
        self._want_shut_down = False
        self._should_shut_down = asyncio.Event()
        self._unfenced = asyncio.Event()
        self._heartbeat_now = asyncio.Event()
        self._applied_dynamic: dict[bool, dict[str, str]] = {}
        # called with the state after every replay (the ACL and SCRAM stores reload from it)
        self.watchers: list[Callable[[MetadataState], None]] = []

    # -- ClusterBackend basics ------------------------------------------------------------------------------
    @property
    def image(self) -> MetadataImage:
        return self._image

    def add_listener(self, callback: MetadataListener) -> None:
        self._listeners.append(callback)

    async def start(self) -> None:
        if self.raft is None:
            from strom.raft.controller_server import build_raft_node

            names = [
                n.strip().upper() for n in str(self.config.get("controller.listener.names") or "").split(",")
            ]
            if not names or not names[0]:
                raise ConfigError(
                    "controller.listener.names must contain at least one value when running KRaft"
                )
            self.raft, self.cluster_id = build_raft_node(
                self.config, names[0], clock=self.clock, rng=self.rng
            )
            await self.raft.start()
        else:
            self.cluster_id = self.raft.core.cluster_id
        self._replayer = LogReplayer(self.raft.core.log, self.state)
        # a broker-only node snapshots its own copy of the log; a combined node's controller does it
        self._snapshots = (
            SnapshotWriter(self.raft.core, self.config, clock=self.clock) if self._own_raft else None
        )
        self._image = MetadataImage.empty(self.cluster_id)
        self._tasks.append(asyncio.create_task(self._follow(), name=f"kraft-metadata-{self.node_id}"))
        self._tasks.append(asyncio.create_task(self._lifecycle(), name=f"kraft-lifecycle-{self.node_id}"))
        waited = 0
        while True:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._unfenced.wait()), 10)
                break
            waited += 10
            log.info("broker %d: waiting for the controller to unfence it (%d s)", self.node_id, waited)
        # the image that shows this broker unfenced, so Metadata lists it from the first request
        await self.wait_for(lambda image: self.node_id in image.brokers, ADMIN_WAIT_S)

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._conn is not None:
            with contextlib.suppress(Exception):
                await self._conn.close()
        if self._own_raft and self.raft is not None:
            await self.raft.stop()

    # -- following the log ---------------------------------------------------------------------------------
    async def _follow(self) -> None:
        assert self.raft is not None
        first = True
        while True:
            try:
                self._replayer.catch_up(self.raft.core.high_watermark)
            except MetadataRecordError as exc:
                self.on_fatal(exc)
                return
            if self._snapshots is not None:
                try:
                    self._snapshots.maybe_snapshot(self._replayer)
                except OSError:  # a snapshot that cannot be written leaves the log as it is
                    log.exception("cannot write a metadata snapshot")
            for watcher in self.watchers:
                try:
                    watcher(self.state)
                except Exception:
                    log.exception("metadata watcher failed")
            if self.state.take_changed() or first:
                first = False
                await self._publish(self.state.image(self.cluster_id, self._controller_id()))
            await self.raft.wait_changed(0.5)

    def feature_levels(self) -> tuple[dict[str, tuple[int, int]], int, dict[str, int]]:
        """ApiVersions' features: (supported ranges, finalized epoch = the replayed offset, finalized)."""
        assert self.raft is not None
        finalized = finalized_features(self.state.features, self.raft.core.kraft_version)
        return supported_features(), max(0, self.state.last_offset), finalized

    def acl_store(self) -> Any:
        """The ACLs of the metadata log (AccessControlEntryRecord), which the broker's authorizer loads."""
        from strom.cluster.kraft.acls import ReplayedAclStore

        return ReplayedAclStore(self)

    def scram_store(self) -> Any:
        """The SCRAM credentials of the metadata log (UserScramCredentialRecord), for SASL/SCRAM."""
        from strom.cluster.kraft.scram import MetadataScramStore

        return MetadataScramStore(self)

    def quota_store(self) -> Any:
        """The client quotas of the metadata log (ClientQuotaRecord), which the quota manager enforces."""
        from strom.cluster.kraft.quotas import MetadataQuotaStore

        return MetadataQuotaStore(self)

    def token_store(self) -> Any:
        """The delegation tokens of the metadata log (DelegationTokenRecord), for Describe and SCRAM."""
        from strom.cluster.kraft.tokens import MetadataTokenStore

        return MetadataTokenStore(self)

    def _controller_id(self) -> int:
        # Kafka's KRaft brokers name a live broker as the controller in Metadata (KIP-590: clients send
        # controller-bound admin requests to it, and it forwards them)
        live = sorted(b for b, reg in self.state.brokers.items() if not reg.fenced)
        return live[0] if live else -1

    async def _publish(self, image: MetadataImage) -> None:
        self._apply_dynamic_configs(image)
        old, self._image = self._image, image
        for listener in list(self._listeners):
            try:
                result = listener(old, image)
                if inspect.isawaitable(result):
                    await result
            except Exception:  # a listener's failure must not stop the metadata
                log.exception("metadata listener failed")
        self._changed.set()
        self._changed = asyncio.Event()

    def _apply_dynamic_configs(self, image: MetadataImage) -> None:
        for cluster_default, values in (
            (True, image.default_broker_configs),
            (False, image.broker_configs.get(self.node_id, {})),
        ):
            applied = self._applied_dynamic.get(cluster_default, {})
            if applied == values:
                continue
            for key in applied:
                if key not in values:
                    self.config.set_dynamic(key, None, cluster_default=cluster_default)
            for key, raw in values.items():
                try:
                    self.config.set_dynamic(key, raw, cluster_default=cluster_default)
                except ConfigError as exc:
                    log.warning("ignoring dynamic broker config %s=%r: %s", key, raw, exc)
            self._applied_dynamic[cluster_default] = dict(values)

    async def wait_for(self, predicate: Callable[[MetadataImage], bool], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while not predicate(self._image):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._changed.wait(), remaining)
        return True

    # -- talking to the active controller ------------------------------------------------------------------
    async def controller_request(self, request: Any, deadline_s: float = REQUEST_DEADLINE_S) -> Any:
        """One request to the active controller (an Envelope of a forwarded admin request,
        strom.cluster.kraft.forwarding); retried as `_controller_request` retries."""
        return await self._controller_request(request, deadline_s)

    async def _controller_request(self, request: Any, deadline_s: float = REQUEST_DEADLINE_S) -> Any:
        """Send to the active controller; retries NOT_CONTROLLER and connection failures until the
        deadline, then raises the last error."""
        from strom.client.connection import BrokerConnection

        assert self.raft is not None
        deadline = time.monotonic() + deadline_s
        last: BaseException = KafkaError("no active controller", code=ErrorCode.not_controller)
        while time.monotonic() < deadline:
            core = self.raft.core
            address = core.address_of(core.leader_id) if core.leader_id >= 0 else None
            if address is None:
                await asyncio.sleep(0.05)
                continue
            try:
                if self._conn is None or self._conn.closed or self._conn_address != address:
                    if self._conn is not None:
                        with contextlib.suppress(Exception):
                            await self._conn.close()
                    self._conn = await BrokerConnection.open(
                        address[0],
                        address[1],
                        client_id=f"broker-{self.node_id}",
                        timeout=5.0,
                    )
                    self._conn_address = address
                refusal = version_refusal(self._conn.api_versions, type(request), address)
                if refusal is not None:
                    if refusal not in self._version_refusals:  # once per controller and version
                        self._version_refusals.add(refusal)
                        log.error("broker %d: %s", self.node_id, refusal)
                    raise KafkaError(refusal, code=ErrorCode.unsupported_version)
                response = await self._conn.request(request, timeout=max(0.1, deadline - time.monotonic()))
            except (OSError, ConnectionError) as exc:
                last = exc
                self._conn = None
                await asyncio.sleep(0.1)
                continue
            if int(getattr(response, "error_code", 0)) == ErrorCode.not_controller:
                last = KafkaError("not the active controller", code=ErrorCode.not_controller)
                await asyncio.sleep(0.1)
                continue
            return response
        raise last

    # -- registration and heartbeats ------------------------------------------------------------------------
    def _registration(self) -> Any:
        from strom.storage.checkpoint import read_meta_properties, uuid_from_kafka

        cls = request_class(62, 4)
        listener_cls, feature_cls = item(cls, "listeners"), item(cls, "features")
        features = [
            feature_cls(
                name="metadata.version",
                min_supported_version=metadata_version(MINIMUM_VERSION).feature_level,
                max_supported_version=latest_production().feature_level,
            )
        ]
        features += [
            feature_cls(name=f.name, min_supported_version=0, max_supported_version=f.latest_production)
            for f in FEATURES
        ]
        log_dirs = []
        for directory in self.config.log_dirs:
            props = read_meta_properties(directory / "meta.properties")
            if props.get("directory.id"):
                log_dirs.append(uuid_from_kafka(props["directory.id"]))
        return build(
            cls,
            broker_id=self.node_id,
            cluster_id=self.cluster_id,
            incarnation_id=self.incarnation_id,
            listeners=tuple(
                listener_cls(
                    name=e.listener,
                    host=e.host,
                    port=e.port,
                    security_protocol=SECURITY_PROTOCOL_IDS.get(e.security_protocol, 0),
                )
                for e in self.broker.endpoints
            ),
            features=tuple(features),
            rack=self.broker.rack,
            is_migrating_zk_broker=False,
            log_dirs=tuple(log_dirs),
            previous_broker_epoch=self._previous_broker_epoch(),
        )

    def _previous_broker_epoch(self) -> int:
        """The epoch the clean-shutdown markers hold (KIP-966: the controller keeps this broker in its
        ELRs only when it names the epoch it had), for the first registration of this incarnation."""
        if self.broker_epoch >= 0:
            return -1
        return int(getattr(self._log_manager, "previous_broker_epoch", -1))

    async def _register(self) -> None:
        while True:
            try:
                response = await self._controller_request(self._registration())
            except Exception as exc:
                log.info("broker %d: registration failed (%r); retrying", self.node_id, exc)
                await asyncio.sleep(0.5)
                continue
            if response.error_code == ErrorCode.none:
                self.broker_epoch = int(response.broker_epoch)
                if self._log_manager is not None:
                    self._log_manager.broker_epoch = self.broker_epoch  # for the clean-shutdown markers
                log.info("broker %d registered with epoch %d", self.node_id, self.broker_epoch)
                return
            log.info(
                "broker %d: registration refused: %s", self.node_id, ErrorCode(int(response.error_code)).name
            )
            await asyncio.sleep(1.0)

    async def _lifecycle(self) -> None:
        interval = int(self.config.get("broker.heartbeat.interval.ms")) / 1000
        await self._register()
        cls = request_class(63, 1)
        while True:
            request = build(
                cls,
                broker_id=self.node_id,
                broker_epoch=self.broker_epoch,
                current_metadata_offset=self._replayer.next_offset - 1,
                want_fence=False,
                want_shut_down=self._want_shut_down,
                offline_log_dirs=(),
            )
            try:
                response = await self._controller_request(request, deadline_s=max(interval, 1.0))
            except Exception as exc:
                log.debug("broker %d: heartbeat failed: %r", self.node_id, exc)
                response = None
            if response is not None:
                code = int(response.error_code)
                if code in (ErrorCode.stale_broker_epoch, ErrorCode.broker_id_not_registered):
                    self.fenced = True
                    await self._register()
                    continue
                if code == ErrorCode.none:
                    self.fenced = bool(response.is_fenced)
                    if not self.fenced:
                        self._unfenced.set()
                    if response.should_shut_down:
                        self._should_shut_down.set()
            wait = interval if not self.fenced or self._unfenced.is_set() else 0.1
            if self._want_shut_down:
                wait = 0.1
            self._heartbeat_now.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._heartbeat_now.wait(), wait)

    async def controlled_shutdown(
        self, node_id: int | None = None, timeout: float = 10.0
    ) -> list[tuple[str, int]]:
        """Ask to shut down (BrokerHeartbeat want_shut_down) and wait until the controller agrees."""
        self._want_shut_down = True
        self._heartbeat_now.set()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._should_shut_down.wait(), timeout)
        return [
            (name, p)
            for name, info in self._image.topics.items()
            for p, state in info.partitions.items()
            if state.leader == self.node_id
        ]

    # -- producer ids and ISR -------------------------------------------------------------------------------
    async def claim_producer_id_block(self, size: int) -> tuple[int, int]:
        request = build(request_class(67, 0), broker_id=self.node_id, broker_epoch=self.broker_epoch)
        response = await self._controller_request(request)
        _raise_for(int(response.error_code), None)
        start = int(response.producer_id_start)
        return start, start + int(response.producer_id_len) - 1

    async def alter_isr(
        self, topic: str, partition: int, leader_epoch: int, new_isr: Sequence[int], partition_epoch: int
    ) -> PartitionState:
        info = self._image.topics.get(topic)
        if info is None:
            raise UnknownTopicOrPartitionError(f"unknown topic {topic}")
        cls = request_class(56, 3)
        topic_cls = item(cls, "topics")
        part_cls = item(topic_cls, "partitions")
        state_cls = item(part_cls, "new_isr_with_epochs")
        members = tuple(
            state_cls(broker_id=b, broker_epoch=reg.epoch if (reg := self.state.brokers.get(b)) else -1)
            for b in new_isr
        )
        request = build(
            cls,
            broker_id=self.node_id,
            broker_epoch=self.broker_epoch,
            topics=(
                build(
                    topic_cls,
                    topic_id=info.topic_id,
                    partitions=(
                        build(
                            part_cls,
                            partition_index=partition,
                            leader_epoch=leader_epoch,
                            new_isr_with_epochs=members,
                            leader_recovery_state=0,
                            partition_epoch=partition_epoch,
                        ),
                    ),
                ),
            ),
        )
        response = await self._controller_request(request)
        _raise_for(int(response.error_code), None)
        result = response.topics[0].partitions[0]
        code = int(result.error_code)
        if code == ErrorCode.fenced_leader_epoch:
            raise FencedLeaderEpochError("The leader epoch is not current.")
        if code in (ErrorCode.invalid_update_version, ErrorCode.not_controller):
            raise InvalidUpdateVersionError("The partition epoch is not current.")
        if code == ErrorCode.not_leader_or_follower:
            raise NotLeaderOrFollowerError("This broker is not the partition leader.")
        _raise_for(code, None)
        state = PartitionState(
            partition=partition,
            leader=int(result.leader_id),
            leader_epoch=int(result.leader_epoch),
            replicas=info.partitions[partition].replicas if partition in info.partitions else tuple(new_isr),
            isr=tuple(int(b) for b in result.isr),
            partition_epoch=int(result.partition_epoch),
        )
        await self.wait_for(
            lambda image: (
                (p := image.partition(topic, partition)) is not None
                and p.partition_epoch >= state.partition_epoch
            ),
            ADMIN_WAIT_S,
        )
        return state

    # -- admin writes (forwarded to the active controller) ----------------------------------------------
    async def create_topic(
        self,
        name: str,
        num_partitions: int,
        replication_factor: int,
        configs: Mapping[str, str | None],
        assignments: Mapping[int, Sequence[int]] | None = None,
        validate_only: bool = False,
    ) -> TopicInfo:
        cls = request_class(19, 7)
        topic_cls = item(cls, "topics")
        assignment_cls, config_cls = item(topic_cls, "assignments"), item(topic_cls, "configs")
        request = build(
            cls,
            topics=(
                build(
                    topic_cls,
                    name=name,
                    num_partitions=num_partitions,
                    replication_factor=replication_factor,
                    assignments=tuple(
                        assignment_cls(partition_index=p, broker_ids=tuple(b))
                        for p, b in (assignments or {}).items()
                    ),
                    configs=tuple(config_cls(name=k, value=v) for k, v in configs.items()),
                ),
            ),
            timeout=_timeout(int(REQUEST_DEADLINE_S * 1000)),
            validate_only=validate_only,
        )
        response = await self._controller_request(request)
        result = response.topics[0]
        _raise_for(int(result.error_code), result.error_message)
        count = int(result.num_partitions)
        if not validate_only:
            await self.wait_for(
                lambda image: (t := image.topics.get(name)) is not None and len(t.partitions) >= count,
                ADMIN_WAIT_S,
            )
            info = self._image.topics.get(name)
            if info is not None:
                return info
        return TopicInfo(
            name, result.topic_id or uuid.UUID(int=0), {}, {k: v for k, v in configs.items() if v is not None}
        )

    async def delete_topic(self, name: str) -> TopicInfo:
        info = self._image.topics.get(name)
        cls = request_class(20, 6)
        state_cls = item(cls, "topics")
        request = build(cls, topics=(state_cls(name=name, topic_id=None),), timeout=_timeout(30000))
        response = await self._controller_request(request)
        result = response.responses[0]
        _raise_for(int(result.error_code), result.error_message)
        await self.wait_for(lambda image: name not in image.topics, ADMIN_WAIT_S)
        return info or TopicInfo(name, result.topic_id or uuid.UUID(int=0), {}, {})

    async def create_partitions(
        self,
        name: str,
        total: int,
        assignments: Sequence[Sequence[int]] | None = None,
        validate_only: bool = False,
    ) -> TopicInfo:
        cls = request_class(37, 3)
        topic_cls = item(cls, "topics")
        assignment_cls = item(topic_cls, "assignments")
        request = build(
            cls,
            topics=(
                build(
                    topic_cls,
                    name=name,
                    count=total,
                    assignments=None
                    if assignments is None
                    else tuple(assignment_cls(broker_ids=tuple(a)) for a in assignments),
                ),
            ),
            timeout=_timeout(30000),
            validate_only=validate_only,
        )
        response = await self._controller_request(request)
        result = response.results[0]
        _raise_for(int(result.error_code), result.error_message)
        if not validate_only:
            await self.wait_for(
                lambda image: (t := image.topics.get(name)) is not None and len(t.partitions) >= total,
                ADMIN_WAIT_S,
            )
        info = self._image.topics.get(name)
        if info is None:
            raise UnknownTopicOrPartitionError("This server does not host this topic-partition.")
        return info

    async def _alter_configs(
        self,
        resource_type: int,
        resource_name: str,
        current: Mapping[str, str],
        configs: Mapping[str, str | None],
        validate_only: bool,
    ) -> None:
        cls = request_class(44, 1)
        resource_cls = item(cls, "resources")
        config_cls = item(resource_cls, "configs")
        ops = [config_cls(name=k, config_operation=SET, value=v) for k, v in configs.items() if v is not None]
        ops += [
            config_cls(name=k, config_operation=DELETE, value=None) for k in current if configs.get(k) is None
        ]
        request = build(
            cls,
            resources=(
                resource_cls(resource_type=resource_type, resource_name=resource_name, configs=tuple(ops)),
            ),
            validate_only=validate_only,
        )
        response = await self._controller_request(request)
        result = response.responses[0]
        _raise_for(int(result.error_code), result.error_message)

    async def alter_topic_configs(
        self, name: str, configs: Mapping[str, str | None], validate_only: bool = False
    ) -> TopicInfo:
        info = self._image.topics.get(name)
        if info is None:
            raise UnknownTopicOrPartitionError("This server does not host this topic-partition.")
        await self._alter_configs(2, name, info.configs, configs, validate_only)
        wanted = {k: v for k, v in configs.items() if v is not None}
        if not validate_only:
            await self.wait_for(
                lambda image: (t := image.topics.get(name)) is not None and t.configs == wanted, ADMIN_WAIT_S
            )
        return TopicInfo(info.name, info.topic_id, info.partitions, wanted, info.internal)

    async def alter_broker_configs(
        self, node_id: int | None, configs: Mapping[str, str | None], validate_only: bool = False
    ) -> None:
        image = self._image
        current = image.default_broker_configs if node_id is None else image.broker_configs.get(node_id, {})
        await self._alter_configs(4, "" if node_id is None else str(node_id), current, configs, validate_only)
        if not validate_only:
            wanted = {k: v for k, v in configs.items() if v is not None}
            await self.wait_for(
                lambda img: (
                    (img.default_broker_configs if node_id is None else img.broker_configs.get(node_id, {}))
                    == wanted
                ),
                ADMIN_WAIT_S,
            )

    async def alter_group_configs(
        self, group_id: str, configs: Mapping[str, str | None], validate_only: bool = False
    ) -> None:
        """IncrementalAlterConfigs on the GROUP resource to the controller, which checks the set against
        its own bounds and writes ConfigRecords of resource type 32; returns once the image shows them."""
        current = self._image.group_configs.get(group_id, {})
        await self._alter_configs(GROUP_RESOURCE, group_id, current, configs, validate_only)
        if not validate_only:
            wanted = {k: v for k, v in configs.items() if v is not None}
            await self.wait_for(lambda img: img.group_configs.get(group_id, {}) == wanted, ADMIN_WAIT_S)
