"""Blocking ZooKeeper reads and compare-and-set writes in Kafka's layout (see zk_layout).

Every method blocks on kazoo and is meant to run in a worker thread (`asyncio.to_thread`). Writes of
shared state are versioned: a partition state is set only if its znode version is still the one the
decision was based on, and every controller write also checks the version of /controller_epoch that the
controller created when it was elected (as Kafka's KafkaZkClient does with a multi-op), so a deposed
controller can never overwrite its successor. A lost race surfaces as `False` or a named error, never as a
silent overwrite.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kazoo.client import KazooClient
from kazoo.exceptions import BadVersionError, NodeExistsError, NoNodeError, NotEmptyError
from kazoo.protocol.states import WatchedEvent

from strom.cluster import zk_layout as L
from strom.cluster.metadata import BrokerInfo

Watcher = Callable[[WatchedEvent], None]


class BrokerIdInUseError(RuntimeError):
    """Another live session holds /brokers/ids/<id> (Kafka: 'Error while creating ephemeral ...')."""


@dataclass(frozen=True, slots=True)
class ControllerClaim:
    """What this broker holds while it is the controller: the epoch and /controller_epoch's version."""

    epoch: int
    epoch_zk_version: int


class ZkStore:
    def __init__(self, client: KazooClient, clock: Callable[[], float] = time.time) -> None:
        self.client = client
        self._clock = clock

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)

    # --- set-up ------------------------------------------------------------------------------------
    def ensure_layout(self) -> None:
        for path in L.PERSISTENT_PATHS:
            self.client.ensure_path(path)

    def get_or_create_cluster_id(self, proposed: str) -> str:
        try:
            self.client.create(L.CLUSTER_ID, L.encode_cluster_id(proposed), makepath=True)
            return proposed
        except NodeExistsError:
            data, _ = self.client.get(L.CLUSTER_ID)
            return L.decode_cluster_id(data)

    def claim_producer_id_block(self, broker_id: int, size: int) -> L.ProducerIdBlock:
        """The next `size` producer ids, never handed to any broker before: a compare-and-set on
        /latest_producer_id_block (created by the first claim), retried when another broker won the race."""
        while True:
            try:
                data, stat = self.client.get(L.LATEST_PRODUCER_ID_BLOCK)
            except NoNodeError:
                block = L.ProducerIdBlock(broker_id, 0, size - 1)
                try:
                    self.client.create(L.LATEST_PRODUCER_ID_BLOCK, L.encode_producer_id_block(block))
                except NodeExistsError:
                    continue
                return block
            last = L.decode_producer_id_block(data)
            start = 0 if last is None else last.end + 1
            block = L.ProducerIdBlock(broker_id, start, start + size - 1)
            try:
                self.client.set(
                    L.LATEST_PRODUCER_ID_BLOCK, L.encode_producer_id_block(block), version=stat.version
                )
            except BadVersionError:
                continue
            return block

    def register_broker(self, broker: BrokerInfo, wait_s: float) -> None:
        """Create the ephemeral registration; if an old session of the same id still holds it (a fast
        restart), wait up to `wait_s` for that session to expire, as Kafka does."""
        path = L.broker_path(broker.node_id)
        data = L.encode_broker(broker, self._now_ms())
        deadline = time.monotonic() + wait_s
        while True:
            try:
                self.client.create(path, data, ephemeral=True, makepath=True)
                return
            except NodeExistsError:
                stat = self.client.exists(path)
                session_id = self.client.client_id[0] if self.client.client_id else None
                if stat is not None and stat.ephemeralOwner == session_id:
                    self.client.set(path, data)
                    return
                if time.monotonic() >= deadline:
                    raise BrokerIdInUseError(
                        f"broker id {broker.node_id} is registered by another live session"
                    ) from None
                time.sleep(0.2)

    # --- controller election ---------------------------------------------------------------------------
    def try_become_controller(self, node_id: int, watch: Watcher) -> ControllerClaim | int:
        """Create /controller and bump /controller_epoch in one transaction (KafkaZkClient's
        registerControllerAndIncrementControllerEpoch). Returns the claim, or the id of the broker that is
        controller (-1 if none could be determined); leaves a watch on /controller either way."""
        for _ in range(10):
            try:
                data, _ = self.client.get(L.CONTROLLER, watch=watch)
                return L.decode_controller(data)
            except NoNodeError:
                pass
            with contextlib.suppress(NodeExistsError):
                self.client.create(L.CONTROLLER_EPOCH, L.encode_controller_epoch(0))
            raw, stat = self.client.get(L.CONTROLLER_EPOCH)
            epoch = L.decode_controller_epoch(raw) + 1
            txn = self.client.transaction()
            txn.create(L.CONTROLLER, L.encode_controller(node_id, self._now_ms()), ephemeral=True)
            txn.set_data(L.CONTROLLER_EPOCH, L.encode_controller_epoch(epoch), version=stat.version)
            results = txn.commit()
            if not any(isinstance(r, Exception) for r in results):
                self.client.exists(L.CONTROLLER, watch=watch)
                return ControllerClaim(epoch=epoch, epoch_zk_version=stat.version + 1)
            # lost the race: either /controller exists now (loop reads it) or the epoch moved (retry)
        return -1

    def resign_controller(self, node_id: int) -> None:
        try:
            data, stat = self.client.get(L.CONTROLLER)
        except NoNodeError:
            return
        if L.decode_controller(data) == node_id:
            with contextlib.suppress(NoNodeError, BadVersionError):
                self.client.delete(L.CONTROLLER, version=stat.version)

    # --- partition state (controller writes are fenced by the controller epoch) ------------------------
    def _fenced_commit(self, claim: ControllerClaim, ops: Callable[[Any], None]) -> bool:
        txn = self.client.transaction()
        txn.check(L.CONTROLLER_EPOCH, claim.epoch_zk_version)
        ops(txn)
        results = txn.commit()
        return not any(isinstance(r, Exception) for r in results)

    def create_state(self, claim: ControllerClaim, topic: str, partition: int, state: L.LeaderAndIsr) -> bool:
        self.client.ensure_path(L.partition_path(topic, partition))
        return self._fenced_commit(
            claim, lambda txn: txn.create(L.state_path(topic, partition), L.encode_state(state))
        )

    def update_state(self, claim: ControllerClaim, topic: str, partition: int, state: L.LeaderAndIsr) -> bool:
        """CAS on the znode version carried by `state.zk_version`."""
        return self._fenced_commit(
            claim,
            lambda txn: txn.set_data(
                L.state_path(topic, partition), L.encode_state(state), version=state.zk_version
            ),
        )

    def read_state(self, topic: str, partition: int) -> L.LeaderAndIsr | None:
        try:
            data, stat = self.client.get(L.state_path(topic, partition))
        except NoNodeError:
            return None
        return L.decode_state(data, stat.version)

    def set_state_if_version(self, topic: str, partition: int, state: L.LeaderAndIsr) -> int | None:
        """An ISR change by the partition leader (not fenced by controller epoch, like Kafka's pre-2.7
        leader-side ISR updates): returns the new znode version, or None when the version moved."""
        try:
            stat = self.client.set(
                L.state_path(topic, partition), L.encode_state(state), version=state.zk_version
            )
        except (BadVersionError, NoNodeError):
            return None
        return int(stat.version)

    def set_topic_id(
        self, claim: ControllerClaim, topic: str, assignment: L.TopicAssignment, version: int
    ) -> bool:
        return self._fenced_commit(
            claim, lambda txn: txn.set_data(L.topic_path(topic), L.encode_topic(assignment), version=version)
        )

    def set_topic_assignment(
        self,
        claim: ControllerClaim,
        topic: str,
        assignment: L.TopicAssignment,
        version: int,
        states: dict[int, L.LeaderAndIsr] | None = None,
    ) -> bool:
        """Rewrite the topic znode (CAS on `version`) and, in the same transaction, the given partition
        states (each a CAS on its own znode version): a reassignment step is all or nothing."""

        def ops(txn: Any) -> None:
            txn.set_data(L.topic_path(topic), L.encode_topic(assignment), version=version)
            for partition, state in (states or {}).items():
                txn.set_data(L.state_path(topic, partition), L.encode_state(state), version=state.zk_version)

        return self._fenced_commit(claim, ops)

    def delete_reassign_request(self, version: int) -> None:
        """Remove /admin/reassign_partitions once acted on (left alone if rewritten meanwhile)."""
        with contextlib.suppress(NoNodeError, BadVersionError):
            self.client.delete(L.REASSIGN_PARTITIONS, version=version)

    def delete_topic_tree(self, claim: ControllerClaim, topic: str) -> None:
        """Remove a topic's znodes, then its deletion request (Kafka's TopicDeletionManager end state).
        Nothing happens once the request is gone: a controller whose cache still lists a finished deletion
        must not delete a topic of the same name created since (CreateTopics refuses a name while its
        request exists, so checking it first is enough)."""
        if not self.marked_for_deletion(topic):
            return
        for path in (L.topic_config_path(topic), L.topic_path(topic)):
            try:
                self.client.delete(path, recursive=True)
            except NoNodeError:
                pass
            except NotEmptyError:  # a partition appeared concurrently: the next pass deletes it
                return
        with contextlib.suppress(NoNodeError):
            self.client.delete(L.delete_topic_path(topic))

    def delete_quietly(self, path: str) -> None:
        with contextlib.suppress(NoNodeError):
            self.client.delete(path)

    # --- admin writes (any broker, like Kafka's AdminZkClient) --------------------------------------------
    def live_broker_ids(self) -> list[int]:
        return sorted(int(c) for c in self.client.get_children(L.BROKER_IDS))

    def topic_names(self) -> list[str]:
        return list(self.client.get_children(L.TOPICS))

    def read_topic(self, topic: str) -> tuple[L.TopicAssignment, int] | None:
        try:
            data, stat = self.client.get(L.topic_path(topic))
        except NoNodeError:
            return None
        return L.decode_topic(data), stat.version

    def marked_for_deletion(self, topic: str) -> bool:
        return self.client.exists(L.delete_topic_path(topic)) is not None

    def create_topic(self, topic: str, assignment: L.TopicAssignment, configs: dict[str, str]) -> bool:
        """Config first, then the topic znode, in one transaction; False if the topic exists."""
        config_stat = self.client.exists(L.topic_config_path(topic))
        txn = self.client.transaction()
        if config_stat is None:
            txn.create(L.topic_config_path(topic), L.encode_config(configs))
        else:  # left behind by an interrupted deletion
            txn.set_data(L.topic_config_path(topic), L.encode_config(configs), version=config_stat.version)
        txn.create(L.topic_path(topic), L.encode_topic(assignment))
        results = txn.commit()
        if not any(isinstance(r, Exception) for r in results):
            return True
        if any(isinstance(r, NodeExistsError) for r in results):
            return False
        raise BadVersionError()

    def update_topic(self, topic: str, assignment: L.TopicAssignment, version: int) -> bool:
        try:
            self.client.set(L.topic_path(topic), L.encode_topic(assignment), version=version)
        except BadVersionError:
            return False
        return True

    def request_topic_deletion(self, topic: str) -> None:
        with contextlib.suppress(NodeExistsError):
            self.client.create(L.delete_topic_path(topic), b"", makepath=True)

    def write_config(self, entity_type: str, entity: str, configs: dict[str, str]) -> None:
        """Replace an entity's config with CAS and add a change notification in the same transaction."""
        path = f"/config/{entity_type}/{entity}"
        while True:
            stat = self.client.exists(path)
            txn = self.client.transaction()
            if stat is None:
                txn.create(path, L.encode_config(configs))
            else:
                txn.set_data(path, L.encode_config(configs), version=stat.version)
            txn.create(
                f"{L.CONFIG_CHANGES}/{L.CONFIG_CHANGE_PREFIX}",
                L.encode_config_change(f"{entity_type}/{entity}"),
                sequence=True,
            )
            results = txn.commit()
            if not any(isinstance(r, Exception) for r in results):
                return
            # someone else wrote in between: re-read the version and apply our full replacement again

    def purge_config_changes(self, older_than_ms: int) -> None:
        """Remove change notifications older than `older_than_ms` (Kafka keeps them 15 minutes)."""
        for child in self.client.get_children(L.CONFIG_CHANGES):
            path = f"{L.CONFIG_CHANGES}/{child}"
            stat = self.client.exists(path)
            if stat is not None and stat.ctime < older_than_ms:
                self.delete_quietly(path)

    def request_controlled_shutdown(self, node_id: int) -> None:
        with contextlib.suppress(NodeExistsError):
            self.client.create(L.controlled_shutdown_path(node_id), b"", ephemeral=True, makepath=True)

    # --- reads for the metadata cache (each re-arms its watch) ---------------------------------------
    def watch_children(self, path: str, watch: Watcher) -> list[str]:
        try:
            return list(self.client.get_children(path, watch=watch))
        except NoNodeError:
            self.client.exists(path, watch=watch)
            return []

    def watch_data(self, path: str, watch: Watcher) -> tuple[bytes, int] | None:
        """(data, version), or None when the znode does not exist (an exists-watch then fires on create)."""
        while True:
            try:
                data, stat = self.client.get(path, watch=watch)
                return data, stat.version
            except NoNodeError:
                if self.client.exists(path, watch=watch) is None:
                    return None
                # created between the two calls: read it

    def read_brokers(self, watch: Watcher) -> dict[int, BrokerInfo]:
        brokers: dict[int, BrokerInfo] = {}
        for child in self.watch_children(L.BROKER_IDS, watch):
            try:
                data, _ = self.client.get(L.broker_path(int(child)))
            except (NoNodeError, ValueError):
                continue
            brokers[int(child)] = L.decode_broker(int(child), data)
        return brokers
