"""The ZooKeeper cluster backend: a broker of a multi-broker cluster whose metadata lives in ZooKeeper,
in Apache Kafka's layout (see zk_layout), so `zookeeper.connect=host:port[,host:port]/chroot` joins the
cluster of that chroot (created if missing).

What each broker does
- Registers itself ephemerally at /brokers/ids/<id> (JSON version 5) and reads or creates /cluster/id.
- Keeps a cache of brokers, topics, partition states and configs, filled by reads that re-arm ZooKeeper
  watches; watch events mark keys dirty and one refresher task re-reads them and publishes a new
  immutable `MetadataImage` (bursts coalesce; a change is visible on every broker well within a second).
- Competes for /controller: the first to create it (together with a CAS bump of /controller_epoch) is
  the controller (strom.cluster.controller); when its session ends the others see /controller vanish
  and one of them takes over.
- Admin writes go straight to ZooKeeper from whichever broker receives them, as Kafka's AdminZkClient
  did: CreateTopics writes /config/topics/<t> and /brokers/topics/<t> in one transaction (an existing
  topic fails it), CreatePartitions rewrites the topic znode with a version check, configs are replaced
  with a version check plus a /config/changes notification (group configs under /config/groups/<group>),
  DeleteTopics creates /admin/delete_topics/<t>.
  The controller reacts (partition states, leaders, removal). The call returns once this broker's own
  image shows the result, or after a few seconds if the controller is slow. A topic with a pending
  deletion request is left out of the image (clients never see it half deleted, as in Kafka).

Interfaces beyond `ClusterBackend`, for replication and the ElectLeaders/ControlledShutdown paths
- `async alter_isr(topic, partition, leader_epoch, new_isr, partition_epoch) -> PartitionState`:
  the partition leader changes the ISR (Kafka's AlterPartition / updateLeaderAndIsr). It is a CAS on the
  state znode's version (the partition epoch): FENCED_LEADER_EPOCH if `leader_epoch` is not current,
  INVALID_UPDATE_VERSION if the znode moved since `partition_epoch` (re-read the image and retry),
  NOT_LEADER_OR_FOLLOWER if this broker is not the leader, INVALID_REQUEST for an ISR without the
  leader or with non-replicas. The leader epoch stays; the partition epoch becomes the new znode version.
- `async controlled_shutdown(node_id=None, timeout=...) -> list[(topic, partition)]`: asks the controller
  (through the ephemeral /strom/controlled_shutdown/<id>) to move leadership to other ISR members and to
  drop this broker from ISRs; returns the partitions it still leads (no other ISR member could take over).
- `async elect_leaders(partitions, election_type) -> {(topic, partition): ErrorCode}`: preferred (0) or
  unclean (1) election (KIP-460); only on the controller, otherwise NOT_CONTROLLER (Kafka's admin client
  sends ElectLeaders to the controller).
- `async alter_partition_reassignments([((topic, partition), target replicas | None)]) ->
  {(topic, partition): (ErrorCode, message)}` and `async list_partition_reassignments(partitions | None)
  -> {(topic, partition): ReplicaSet}`: KIP-455 reassignments (strom.cluster.reassignment); only on the
  controller, otherwise NOT_CONTROLLER. The controller also acts on /admin/reassign_partitions.
- `async claim_producer_id_block(size) -> (first, last)`: producer ids for InitProducerId that no other
  broker of the cluster hands out (a CAS on /latest_producer_id_block, as Kafka's ZkProducerIdManager).
- `is_controller`, `controller_epoch`.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import random
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from kazoo.client import KazooClient
from kazoo.exceptions import KazooException
from kazoo.protocol.states import KazooState, WatchedEvent

from strom.cluster import zk_layout as L
from strom.cluster.assignment import assign_replicas, start_index_for_new_partitions
from strom.cluster.backend import MetadataListener
from strom.cluster.controller import Controller
from strom.cluster.election import (
    FencedLeaderEpochError,
    InvalidUpdateVersionError,
    NotControllerError,
)
from strom.cluster.errors import (
    InvalidReplicaAssignmentError,
    TopicAlreadyExistsError,
)
from strom.cluster.local import random_kafka_uuid, uuid_to_base64
from strom.cluster.metadata import BrokerInfo, MetadataImage, PartitionState, TopicInfo
from strom.cluster.names import is_internal, validate_topic_name
from strom.cluster.reassignment import ReplicaSet
from strom.cluster.validation import (
    AssignmentCheck,
    check_collision,
    check_partition_growth,
    check_topic_deletable,
    existing_topic,
    manual_topic_layout,
    new_partitions_layout,
    partition_count_and_replication,
    validate_broker_configs,
    validate_topic_configs,
)
from strom.cluster.zk_store import ControllerClaim, ZkStore
from strom.config import BrokerConfig, ConfigError
from strom.group_config import validate as validate_group_configs
from strom.protocol.errors import (
    ErrorCode,
    InvalidRequestError,
    KafkaError,
    NotLeaderOrFollowerError,
    UnknownTopicOrPartitionError,
)

log = logging.getLogger(__name__)

Key = tuple[Any, ...]
ADMIN_WAIT_S = 5.0
_ZERO_UUID = uuid.UUID(int=0)  # Kafka's Uuid.ZERO_UUID: a topic created before topic ids
BASE_KEYS: tuple[Key, ...] = (
    ("controller",),
    ("brokers",),
    ("topics",),
    ("deleting",),
    ("shutdown",),
    ("reassign",),
    ("broker_config", L.DEFAULT_BROKER_ENTITY),
    ("groups",),
)


def split_connect(connect: str) -> tuple[str, str]:
    """'h1:1,h2:2/chroot' -> ('h1:1,h2:2', '/chroot'); no chroot -> ('h1:1,h2:2', '')."""
    hosts, slash, chroot = connect.partition("/")
    chroot = ("/" + chroot).rstrip("/") if slash else ""
    return hosts, chroot


@dataclass
class ZkCache:
    """What this broker knows of ZooKeeper; touched only on the event loop."""

    cluster_id: str = ""
    controller_id: int = -1
    brokers: dict[int, BrokerInfo] = field(default_factory=dict)
    assignments: dict[str, tuple[L.TopicAssignment, int]] = field(default_factory=dict)
    states: dict[tuple[str, int], L.LeaderAndIsr] = field(default_factory=dict)
    topic_configs: dict[str, dict[str, str]] = field(default_factory=dict)
    broker_configs: dict[str, dict[str, str]] = field(default_factory=dict)
    group_configs: dict[str, dict[str, str]] = field(default_factory=dict)
    deleting: set[str] = field(default_factory=set)
    shutdown_requests: set[int] = field(default_factory=set)
    # /admin/reassign_partitions: (requested targets, znode version), None when absent
    reassign_request: tuple[dict[tuple[str, int], tuple[int, ...]], int] | None = None


def key_for_path(path: str) -> Key | None:
    """The cache key a watch event on `path` (relative to the chroot) invalidates."""
    parts = path.strip("/").split("/")
    match parts:
        case ["controller"]:
            return ("controller",)
        case ["brokers", "ids"]:
            return ("brokers",)
        case ["brokers", "topics"]:
            return ("topics",)
        case ["brokers", "topics", topic]:
            return ("topic", topic)
        case ["brokers", "topics", topic, "partitions", p, "state"]:
            return ("state", topic, int(p))
        case ["config", "topics", topic]:
            return ("topic_config", topic)
        case ["config", "brokers", entity]:
            return ("broker_config", entity)
        case ["config", "groups"]:
            return ("groups",)
        case ["config", "groups", group]:
            return ("group_config", L.desanitize(group))
        case ["admin", "delete_topics"]:
            return ("deleting",)
        case ["admin", "reassign_partitions"]:
            return ("reassign",)
        case ["strom", "controlled_shutdown"]:
            return ("shutdown",)
    return None


def live_replica_check(live: Iterable[int]) -> AssignmentCheck:
    """The check of manually assigned replicas: distinct brokers, all of them live."""
    live_ids = set(live)

    def check(replicas: list[int], _partition: int) -> None:
        if not replicas:
            raise InvalidReplicaAssignmentError(
                "The manual partition assignment includes an empty replica list."
            )
        if len(set(replicas)) != len(replicas):
            raise InvalidReplicaAssignmentError(
                "The manual partition assignment includes a broker more than once."
            )
        unknown = sorted(set(replicas) - live_ids)
        if unknown:
            raise InvalidReplicaAssignmentError(f"Unknown broker(s) in replica assignment: {unknown}.")

    return check


class ZooKeeperBackend:
    """Cluster metadata of one broker of a ZooKeeper-based cluster (see the module docstring)."""

    def __init__(
        self,
        connect: str,
        broker: BrokerInfo,
        broker_config: BrokerConfig,
        *,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
    ) -> None:
        self._connect = connect
        self._broker = broker
        self._config = broker_config
        self._clock = clock
        self._rng = rng if rng is not None else random.SystemRandom()
        self._listeners: list[MetadataListener] = []
        self._image = MetadataImage.empty()
        self._cache = ZkCache()
        self._dirty: set[Key] = set()
        self._wakeup = asyncio.Event()
        self._published = asyncio.Condition()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._client: KazooClient | None = None
        self._store: ZkStore | None = None
        self._refresher: asyncio.Task[None] | None = None
        self._controller: Controller | None = None
        self._session_lost = False
        self._started = False
        self._background: set[asyncio.Task[None]] = set()

    # --- reading ----------------------------------------------------------------------------------
    @property
    def image(self) -> MetadataImage:
        return self._image

    @property
    def node_id(self) -> int:
        return self._broker.node_id

    @property
    def broker_config(self) -> BrokerConfig:
        return self._config

    @property
    def clock(self) -> Callable[[], float]:
        return self._clock

    @property
    def rng(self) -> random.Random:
        return self._rng

    @property
    def cache(self) -> ZkCache:
        return self._cache

    @property
    def store(self) -> ZkStore:
        if self._store is None:
            raise KafkaError("ZooKeeper backend is not started", code=ErrorCode.broker_not_available)
        return self._store

    @property
    def is_controller(self) -> bool:
        return self._controller is not None

    @property
    def controller_epoch(self) -> int:
        return self._controller.claim.epoch if self._controller is not None else -1

    def add_listener(self, callback: MetadataListener) -> None:
        self._listeners.append(callback)

    # --- lifecycle ---------------------------------------------------------------------------------
    async def start(self) -> None:
        if self._started:
            return
        self._loop = asyncio.get_running_loop()
        hosts, chroot = split_connect(self._connect)
        session_s = int(self._config.get("zookeeper.session.timeout.ms")) / 1000
        connect_ms = self._config.get("zookeeper.connection.timeout.ms")
        connect_s = (int(connect_ms) / 1000) if connect_ms is not None else max(session_s, 10.0)
        if chroot:
            await asyncio.to_thread(self._ensure_chroot, hosts, chroot, connect_s)
        client = KazooClient(
            hosts=hosts + chroot,
            timeout=session_s,
            connection_retry={"max_tries": -1, "delay": 0.1, "max_delay": 1.0},
        )
        client.add_listener(self._on_session_state)
        await asyncio.to_thread(client.start, connect_s)
        self._client = client
        self._store = ZkStore(client, self._clock)
        try:
            cluster_id = await asyncio.to_thread(self._bootstrap, session_s)
        except BaseException:
            await asyncio.to_thread(self._close_client)
            raise
        self._cache.cluster_id = cluster_id
        self._dirty.update(BASE_KEYS)
        await self._refresh_once()
        self._refresher = asyncio.create_task(self._refresh_loop(), name=f"zk-refresh-{self.node_id}")
        self._started = True

    @staticmethod
    def _ensure_chroot(hosts: str, chroot: str, timeout: float) -> None:
        client = KazooClient(hosts=hosts, timeout=timeout)
        client.start(timeout)
        try:
            client.ensure_path(chroot)
        finally:
            client.stop()
            client.close()

    def _bootstrap(self, session_s: float) -> str:
        store = self.store
        store.ensure_layout()
        cluster_id = store.get_or_create_cluster_id(uuid_to_base64(random_kafka_uuid(self._rng)))
        store.register_broker(self._broker, wait_s=session_s + 2)
        return cluster_id

    async def stop(self) -> None:
        if not self._started:
            return
        self._started = False
        if self._controller is not None:
            await self._controller.stop()
            self._controller = None
        if self._refresher is not None:
            self._refresher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._refresher
            self._refresher = None
        await asyncio.to_thread(self._close_client)

    def _close_client(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            # closing the session removes our ephemeral znodes at once: the others react immediately
            client.stop()
            client.close()

    # --- watches and session events (called on kazoo threads) ----------------------------------
    def _on_watch(self, event: WatchedEvent) -> None:
        key = key_for_path(event.path)
        if key is not None and self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._mark_dirty, [key])

    def _on_session_state(self, state: KazooState) -> None:
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._session_changed, state)

    def _spawn(self, coro: Any) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def _mark_dirty(self, keys: Iterable[Key]) -> None:
        self._dirty.update(keys)
        self._wakeup.set()

    def _session_changed(self, state: KazooState) -> None:
        if not self._started:
            return
        if state == KazooState.LOST:
            # ephemeral znodes and watches are gone with the session; stop acting as controller now
            log.warning("broker %d lost its ZooKeeper session", self.node_id)
            self._session_lost = True
            if self._controller is not None:
                controller, self._controller = self._controller, None
                self._spawn(controller.stop())
        elif state == KazooState.CONNECTED and self._session_lost and self._started:
            self._session_lost = False
            self._spawn(self._resync())

    async def _resync(self) -> None:
        """After a new session: register again and re-read everything (re-arming every watch)."""
        session_s = int(self._config.get("zookeeper.session.timeout.ms")) / 1000
        try:
            await asyncio.to_thread(self.store.register_broker, self._broker, session_s + 2)
        except Exception:
            log.exception("broker %d could not re-register", self.node_id)
        keys: set[Key] = set(BASE_KEYS)
        keys.update(("topic", t) for t in self._cache.assignments)
        keys.update(("topic_config", t) for t in self._cache.assignments)
        keys.update(("state", t, p) for t, p in self._cache.states)
        keys.update(("broker_config", e) for e in self._cache.broker_configs)
        keys.update(("group_config", g) for g in self._cache.group_configs)
        self._mark_dirty(keys)

    # --- the refresher -------------------------------------------------------------------------------
    async def _refresh_loop(self) -> None:
        while True:
            await self._wakeup.wait()
            try:
                await self._refresh_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("metadata refresh failed on broker %d; retrying", self.node_id)
                await asyncio.sleep(0.5)
                self._wakeup.set()

    async def _refresh_once(self) -> None:
        self._wakeup.clear()
        keys, self._dirty = self._dirty, set()
        if not keys:
            return
        cache = self._cache
        try:
            updates = await asyncio.to_thread(
                self._read,
                keys,
                frozenset(cache.assignments),
                frozenset(cache.states),
                frozenset(cache.broker_configs),
                frozenset(cache.group_configs),
            )
        except Exception:
            self._dirty.update(keys)  # nothing was applied: read them all again
            raise
        self._apply(updates)
        await self._publish(self._build_image())
        async with self._published:  # waiters may watch the cache too (controlled shutdown)
            self._published.notify_all()
        if self._controller is not None:
            self._controller.kick()

    def _read(
        self,
        keys: set[Key],
        known_topics: frozenset[str],
        known_states: frozenset[tuple[str, int]],
        known_entities: frozenset[str],
        known_groups: frozenset[str] = frozenset(),
    ) -> list[Key]:
        """Blocking: read each dirty key (re-arming its watch), following new topics into their
        partitions and configs. Returns updates for `_apply`."""
        store, watch = self.store, self._on_watch
        work = sorted(keys, key=lambda k: k[0] != "controller")
        seen: set[Key] = set()
        updates: list[Key] = []
        while work:
            key = work.pop()
            if key in seen:
                continue
            seen.add(key)
            kind = key[0]
            if kind == "controller":
                result = store.try_become_controller(self.node_id, watch)
                updates.append(("controller", result))
            elif kind == "brokers":
                brokers = store.read_brokers(watch)
                updates.append(("brokers", brokers))
                work.extend(("broker_config", str(b)) for b in brokers if str(b) not in known_entities)
            elif kind == "topics":
                names = set(store.watch_children(L.TOPICS, watch))
                updates.append(("topics", names))
                for name in names - known_topics:
                    work.extend([("topic", name), ("topic_config", name)])
            elif kind == "topic":
                topic = key[1]
                found = store.watch_data(L.topic_path(topic), watch)
                if found is None:
                    updates.append(("topic", topic, None, -1))
                    continue
                assignment = L.decode_topic(found[0])
                updates.append(("topic", topic, assignment, found[1]))
                work.extend(
                    ("state", topic, p) for p in assignment.partitions if (topic, p) not in known_states
                )
            elif kind == "state":
                found = store.watch_data(L.state_path(key[1], key[2]), watch)
                state = L.decode_state(found[0], found[1]) if found is not None else None
                updates.append(("state", key[1], key[2], state))
            elif kind == "topic_config":
                found = store.watch_data(L.topic_config_path(key[1]), watch)
                updates.append(("topic_config", key[1], L.decode_config(found[0]) if found else {}))
            elif kind == "broker_config":
                found = store.watch_data(L.broker_config_path(key[1]), watch)
                updates.append(("broker_config", key[1], L.decode_config(found[0]) if found else {}))
            elif kind == "groups":
                groups = {L.desanitize(c) for c in store.watch_children(L.CONFIG_GROUPS, watch)}
                updates.append(("groups", groups))
                work.extend(("group_config", g) for g in groups - known_groups)
            elif kind == "group_config":
                found = store.watch_data(L.group_config_path(key[1]), watch)
                updates.append(("group_config", key[1], L.decode_config(found[0]) if found else {}))
            elif kind == "deleting":
                updates.append(("deleting", set(store.watch_children(L.DELETE_TOPICS, watch))))
            elif kind == "shutdown":
                children = store.watch_children(L.CONTROLLED_SHUTDOWN, watch)
                updates.append(("shutdown", {int(c) for c in children if c.isdigit()}))
            elif kind == "reassign":
                found = store.watch_data(L.REASSIGN_PARTITIONS, watch)
                request = (L.decode_reassignment(found[0]), found[1]) if found is not None else None
                updates.append(("reassign", request))
        return updates

    def _apply(self, updates: list[Key]) -> None:
        cache = self._cache
        for update in updates:
            kind = update[0]
            if kind == "controller":
                self._controller_result(update[1])
            elif kind == "brokers":
                cache.brokers = update[1]
            elif kind == "topics":
                for gone in set(cache.assignments) - update[1]:
                    self._forget_topic(gone)
            elif kind == "topic":
                _, topic, assignment, version = update
                if assignment is None:
                    self._forget_topic(topic)
                else:
                    cache.assignments[topic] = (assignment, version)
                    for t, p in [k for k in cache.states if k[0] == topic]:
                        if p not in assignment.partitions:
                            del cache.states[(t, p)]
            elif kind == "state":
                _, topic, partition, state = update
                if state is None or topic not in cache.assignments:
                    cache.states.pop((topic, partition), None)
                else:
                    cache.states[(topic, partition)] = state
            elif kind == "topic_config":
                # may arrive before its topic in the same pass; the image shows only existing topics
                cache.topic_configs[update[1]] = update[2]
            elif kind == "broker_config":
                cache.broker_configs[update[1]] = update[2]
                if update[1] in (str(self.node_id), L.DEFAULT_BROKER_ENTITY):
                    self._apply_dynamic_broker_configs()
            elif kind == "groups":
                for gone in set(cache.group_configs) - update[1]:
                    del cache.group_configs[gone]
            elif kind == "group_config":
                cache.group_configs[update[1]] = update[2]
            elif kind == "deleting":
                cache.deleting = update[1]
            elif kind == "shutdown":
                cache.shutdown_requests = update[1]
            elif kind == "reassign":
                cache.reassign_request = update[1]

    def _forget_topic(self, topic: str) -> None:
        cache = self._cache
        cache.assignments.pop(topic, None)
        cache.topic_configs.pop(topic, None)
        for key in [k for k in cache.states if k[0] == topic]:
            del cache.states[key]

    def _controller_result(self, result: ControllerClaim | int) -> None:
        if isinstance(result, ControllerClaim):
            log.info("broker %d is the controller (epoch %d)", self.node_id, result.epoch)
            self._cache.controller_id = self.node_id
            if self._controller is not None:
                self._spawn(self._controller.stop())
            self._controller = Controller(self, result)
            self._controller.start()
            return
        self._cache.controller_id = result
        if result != self.node_id and self._controller is not None:
            controller, self._controller = self._controller, None
            self._spawn(controller.stop())

    def _apply_dynamic_broker_configs(self) -> None:
        # this broker's own overrides and the cluster-wide defaults are separate layers (KIP-226)
        config = self._config
        for entity, cluster_default in ((str(self.node_id), False), (L.DEFAULT_BROKER_ENTITY, True)):
            configs = self._cache.broker_configs.get(entity, {})
            current = config.dynamic_default_overrides if cluster_default else config.dynamic_overrides
            for key in current:
                if key not in configs:
                    config.set_dynamic(key, None, cluster_default=cluster_default)
            for key, raw in configs.items():
                try:
                    config.set_dynamic(key, raw, cluster_default=cluster_default)
                except ConfigError as exc:
                    log.warning("ignoring dynamic broker config %s=%r: %s", key, raw, exc)

    def _build_image(self) -> MetadataImage:
        cache = self._cache
        topics: dict[str, TopicInfo] = {}
        for name, (assignment, _) in sorted(cache.assignments.items()):
            if name in cache.deleting:
                # A topic queued for deletion is gone for clients at once, as in Kafka (its ZooKeeper
                # controller sent LeaderDuringDelete, which took the partitions out of every broker's
                # metadata cache; KRaft removes a topic in one record). Shown while the controller removes
                # its state znodes one by one, its partitions would answer LEADER_NOT_AVAILABLE, and
                # librdkafka re-queries such a topic with allow_auto_topic_creation a second later,
                # which re-created it once the deletion had finished (librdkafka's 0033).
                continue
            partitions: dict[int, PartitionState] = {}
            for p, replicas in assignment.partitions.items():
                state = cache.states.get((name, p))
                if state is None:
                    partitions[p] = PartitionState(p, -1, -1, replicas, (), -1)
                else:
                    partitions[p] = PartitionState(
                        p, state.leader, state.leader_epoch, replicas, state.isr, state.zk_version
                    )
            topics[name] = TopicInfo(
                name=name,
                topic_id=assignment.topic_id or _ZERO_UUID,
                partitions=partitions,
                configs=dict(cache.topic_configs.get(name, {})),
                internal=is_internal(name),
            )
        broker_configs = {int(e): dict(c) for e, c in cache.broker_configs.items() if e.isdigit() and c}
        return MetadataImage(
            cluster_id=cache.cluster_id,
            controller_id=cache.controller_id,
            brokers=dict(sorted(cache.brokers.items())),
            topics=topics,
            broker_configs=broker_configs,
            default_broker_configs=dict(cache.broker_configs.get(L.DEFAULT_BROKER_ENTITY) or {}),
            group_configs={g: dict(c) for g, c in sorted(cache.group_configs.items()) if c},
        )

    async def _publish(self, image: MetadataImage) -> None:
        if image == self._image:
            return
        old, self._image = self._image, image
        for listener in list(self._listeners):
            try:
                result = listener(old, image)
                if inspect.isawaitable(result):
                    await result
            except Exception:  # a listener's failure must not stop metadata from flowing
                log.exception("metadata listener failed")

    async def wait_for(self, predicate: Callable[[MetadataImage], bool], timeout: float) -> bool:
        """Wait until this broker's image satisfies `predicate`; False on timeout."""
        if predicate(self._image):
            return True
        async with self._published:
            try:
                await asyncio.wait_for(self._published.wait_for(lambda: predicate(self._image)), timeout)
            except TimeoutError:
                return False
        return True

    async def _zk(self, fn: Callable[..., Any], *args: Any) -> Any:
        try:
            return await asyncio.to_thread(fn, *args)
        except KazooException as exc:
            raise KafkaError(f"ZooKeeper error: {exc!r}", code=ErrorCode.request_timed_out) from exc

    # --- topics --------------------------------------------------------------------------------------
    async def create_topic(
        self,
        name: str,
        num_partitions: int,
        replication_factor: int,
        configs: Mapping[str, str | None],
        assignments: Mapping[int, Sequence[int]] | None = None,
        validate_only: bool = False,
    ) -> TopicInfo:
        validate_topic_name(name)
        live = await self._zk(self.store.live_broker_ids)
        if assignments:
            layout = manual_topic_layout(
                assignments, num_partitions, replication_factor, live_replica_check(live)
            )
        else:
            num_partitions, replication_factor = partition_count_and_replication(
                num_partitions, replication_factor, self._config
            )
            layout = assign_replicas(live, num_partitions, replication_factor, rng=self._rng)
        overrides = validate_topic_configs(configs)
        existing = await self._zk(self.store.topic_names)
        if name in existing:
            raise TopicAlreadyExistsError(f"Topic '{name}' already exists.")
        check_collision(name, existing)
        topic_id = random_kafka_uuid(self._rng)
        info = TopicInfo(
            name=name,
            topic_id=topic_id,
            partitions={
                p: PartitionState(p, r[0], 0, tuple(r), tuple(r), 0) for p, r in sorted(layout.items())
            },
            configs=overrides,
            internal=is_internal(name),
        )
        if validate_only:
            return info
        if await self._zk(self.store.marked_for_deletion, name):
            raise TopicAlreadyExistsError(f"Topic '{name}' is marked for deletion.")
        assignment = L.TopicAssignment(topic_id, {p: tuple(r) for p, r in layout.items()})
        if not await self._zk(self.store.create_topic, name, assignment, overrides):
            raise TopicAlreadyExistsError(f"Topic '{name}' already exists.")
        await self.wait_for(lambda image: self._topic_ready(image, name, len(layout)), ADMIN_WAIT_S)
        return self._image.topics.get(name, info)

    @staticmethod
    def _topic_ready(image: MetadataImage, name: str, partitions: int) -> bool:
        info = image.topics.get(name)
        if info is None or len(info.partitions) < partitions:
            return False
        live = image.brokers
        # a partition with a live replica gets a state from the controller; wait for those
        return all(
            s.leader_epoch >= 0 or not any(r in live for r in s.replicas) for s in info.partitions.values()
        )

    async def delete_topic(self, name: str) -> TopicInfo:
        info = existing_topic(self._image, name)
        check_topic_deletable(info, self._config)
        await self._zk(self.store.request_topic_deletion, name)
        # the image drops the topic as soon as the request is seen; answer once its znodes are gone too,
        # so that a CreateTopics of the same name right after the answer is not refused as "marked for
        # deletion" (Kafka 4.4's KRaft deletion is complete when DeleteTopics answers)
        await self.wait_for(
            lambda image: name not in image.topics and name not in self._cache.assignments, ADMIN_WAIT_S
        )
        return info

    async def create_partitions(
        self,
        name: str,
        total: int,
        assignments: Sequence[Sequence[int]] | None = None,
        validate_only: bool = False,
    ) -> TopicInfo:
        for _ in range(5):
            found = await self._zk(self.store.read_topic, name)
            if found is None:
                raise UnknownTopicOrPartitionError("This server does not host this topic-partition.")
            current_assignment, version = found
            current = len(current_assignment.partitions)
            check_partition_growth(current, total)
            if current_assignment.adding or current_assignment.removing:
                raise KafkaError(
                    f"A partition reassignment is in progress for the topic '{name}'.",
                    code=ErrorCode.reassignment_in_progress,
                )
            added = total - current
            live = await self._zk(self.store.live_broker_ids)
            if assignments is not None:
                layout = new_partitions_layout(assignments, current, added, live_replica_check(live))
            else:
                first = current_assignment.partitions.get(0, ())
                leader0 = first[0] if first else min(live)
                rf = len(first) if first else 1
                layout = assign_replicas(
                    live,
                    added,
                    rf,
                    rng=self._rng,
                    fixed_start_index=start_index_for_new_partitions(live, leader0),
                    start_partition_id=current,
                )
            partitions = dict(current_assignment.partitions)
            partitions.update({p: tuple(r) for p, r in layout.items()})
            grown = L.TopicAssignment(
                current_assignment.topic_id,
                partitions,
                current_assignment.adding,
                current_assignment.removing,
            )
            if validate_only:
                return self._preview(name, grown)
            if await self._zk(self.store.update_topic, name, grown, version):
                await self.wait_for(lambda image: self._topic_ready(image, name, total), ADMIN_WAIT_S)
                return self._image.topics.get(name) or self._preview(name, grown)
            # the topic znode changed under us (another writer): re-validate against the new version
        raise KafkaError("Concurrent updates of the topic kept conflicting", code=ErrorCode.request_timed_out)

    def _preview(self, name: str, assignment: L.TopicAssignment) -> TopicInfo:
        existing = self._image.topics.get(name)
        partitions = dict(existing.partitions) if existing else {}
        for p, r in assignment.partitions.items():
            partitions.setdefault(p, PartitionState(p, r[0], 0, r, r, 0))
        return TopicInfo(
            name=name,
            topic_id=assignment.topic_id or _ZERO_UUID,
            partitions=partitions,
            configs=dict(existing.configs) if existing else {},
            internal=is_internal(name),
        )

    # --- configs ---------------------------------------------------------------------------------------
    async def alter_topic_configs(
        self, name: str, configs: Mapping[str, str | None], validate_only: bool = False
    ) -> TopicInfo:
        info = existing_topic(self._image, name)
        overrides = validate_topic_configs(configs)
        altered = TopicInfo(info.name, info.topic_id, info.partitions, overrides, info.internal)
        if validate_only or overrides == info.configs:
            return altered
        await self._zk(self.store.write_config, "topics", name, overrides)
        await self.wait_for(
            lambda image: name not in image.topics or image.topics[name].configs == overrides, ADMIN_WAIT_S
        )
        return self._image.topics.get(name, altered)

    async def alter_broker_configs(
        self, node_id: int | None, configs: Mapping[str, str | None], validate_only: bool = False
    ) -> None:
        """`node_id` None: the cluster-wide defaults (the BROKER resource "", /config/brokers/<default>)."""
        if node_id is not None and node_id not in self._image.brokers:
            raise InvalidRequestError(f"Unexpected broker id {node_id}: no such broker is registered")
        valid = validate_broker_configs(configs)
        if validate_only:
            return
        if node_id is None:
            await self._zk(self.store.write_config, "brokers", L.DEFAULT_BROKER_ENTITY, valid)
            await self.wait_for(lambda image: image.default_broker_configs == valid, ADMIN_WAIT_S)
            return
        await self._zk(self.store.write_config, "brokers", str(node_id), valid)
        await self.wait_for(lambda image: image.broker_configs.get(node_id, {}) == valid, ADMIN_WAIT_S)

    # --- replication and controller interfaces -------------------------------------------------------
    async def alter_group_configs(
        self, group_id: str, configs: Mapping[str, str | None], validate_only: bool = False
    ) -> None:
        """/config/groups/<group> (Kafka's sanitized name), replaced with a version check and a change
        notification; returns once this broker's image shows it."""
        valid = validate_group_configs(configs, self._config)
        if validate_only or valid == self._image.group_configs.get(group_id, {}):
            return
        await self._zk(self.store.write_config, "groups", L.sanitize(group_id), valid)
        await self.wait_for(lambda image: image.group_configs.get(group_id, {}) == valid, ADMIN_WAIT_S)

    async def claim_producer_id_block(self, size: int) -> tuple[int, int]:
        """`size` producer ids no broker of the cluster was ever given, as (first, last): Kafka's ZooKeeper
        mode block claim on /latest_producer_id_block."""
        block = await self._zk(self.store.claim_producer_id_block, self._broker.node_id, size)
        return block.start, block.end

    async def alter_isr(
        self, topic: str, partition: int, leader_epoch: int, new_isr: Sequence[int], partition_epoch: int
    ) -> PartitionState:
        found = await self._zk(self.store.read_topic, topic)
        replicas = found[0].partitions.get(partition) if found is not None else None
        if replicas is None:
            raise UnknownTopicOrPartitionError(f"{topic}-{partition} does not exist")
        state = await self._zk(self.store.read_state, topic, partition)
        if state is None or state.leader != self.node_id:
            raise NotLeaderOrFollowerError(f"broker {self.node_id} is not the leader of {topic}-{partition}")
        if state.leader_epoch != leader_epoch:
            raise FencedLeaderEpochError(
                f"leader epoch {leader_epoch} is not the current {state.leader_epoch} of {topic}-{partition}"
            )
        if state.zk_version != partition_epoch:
            raise InvalidUpdateVersionError(
                f"partition epoch {partition_epoch} is stale (now {state.zk_version}) for {topic}-{partition}"
            )
        isr = tuple(new_isr)
        if self.node_id not in isr or len(set(isr)) != len(isr) or not set(isr) <= set(replicas):
            raise InvalidRequestError(
                f"invalid ISR {list(isr)} for {topic}-{partition} (replicas {replicas})"
            )
        updated = L.LeaderAndIsr(
            state.leader, state.leader_epoch, isr, state.controller_epoch, state.zk_version
        )
        version = await self._zk(self.store.set_state_if_version, topic, partition, updated)
        if version is None:
            raise InvalidUpdateVersionError(f"{topic}-{partition} changed concurrently")
        return PartitionState(partition, state.leader, state.leader_epoch, tuple(replicas), isr, version)

    async def controlled_shutdown(
        self, node_id: int | None = None, timeout: float = 10.0
    ) -> list[tuple[str, int]]:
        node = self.node_id if node_id is None else node_id
        await self._zk(self.store.request_controlled_shutdown, node)
        # the controller deletes the request once nothing more can move; our cache sees that
        await asyncio.sleep(0)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if await self.wait_for(lambda _: node not in self._cache.shutdown_requests, 0.2):
                exists = await self._zk(self.store.client.exists, L.controlled_shutdown_path(node))
                if exists is None:
                    break
        return sorted(
            (t, p)
            for t, info in self._image.topics.items()
            for p, s in info.partitions.items()
            if s.leader == node
        )

    async def elect_leaders(
        self, partitions: Iterable[tuple[str, int]], election_type: int
    ) -> dict[tuple[str, int], ErrorCode]:
        controller = self._controller
        if controller is None:
            raise NotControllerError(f"broker {self.node_id} is not the controller")
        return await controller.elect_leaders(list(partitions), election_type)

    async def alter_partition_reassignments(
        self, requests: Iterable[tuple[tuple[str, int], Sequence[int] | None]]
    ) -> dict[tuple[str, int], tuple[ErrorCode, str | None]]:
        """Start, replace or cancel (None) partition reassignments (KIP-455); controller only."""
        controller = self._controller
        if controller is None:
            raise NotControllerError(f"broker {self.node_id} is not the controller")
        return await controller.alter_reassignments(list(requests))

    async def list_partition_reassignments(
        self, partitions: Iterable[tuple[str, int]] | None = None
    ) -> dict[tuple[str, int], ReplicaSet]:
        """The reassignments in progress (KIP-455); controller only."""
        controller = self._controller
        if controller is None:
            raise NotControllerError(f"broker {self.node_id} is not the controller")
        return controller.reassignments(None if partitions is None else list(partitions))
