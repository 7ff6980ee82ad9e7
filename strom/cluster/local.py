"""The single-node cluster backend: all metadata in one JSON file in the data directory.

Every partition's only replica and leader is this broker (leader epoch 0, ISR [node]); this broker is
the controller. The file `cluster-metadata.json` holds the cluster id (Kafka's 22-character base64url
UUID form), topics with their topic ids (KIP-516), partition assignments, topic config overrides, the
dynamic broker configs (KIP-226) and the group configs (GROUP resources). It is rewritten atomically
(temp file, fsync, rename, fsync of the directory) in a worker thread, then the new image is published and
listeners are called.
"""

from __future__ import annotations

import asyncio
import base64
import inspect
import json
import logging
import os
import random
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from strom.cluster.assignment import assign_replicas, start_index_for_new_partitions
from strom.cluster.backend import MetadataListener
from strom.cluster.errors import (
    InvalidReplicaAssignmentError,
    TopicAlreadyExistsError,
)
from strom.cluster.metadata import BrokerInfo, MetadataImage, PartitionState, TopicInfo
from strom.cluster.names import is_internal, validate_topic_name
from strom.cluster.validation import (
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
from strom.config import BrokerConfig, ConfigError
from strom.group_config import validate as validate_group_configs
from strom.protocol.errors import InvalidRequestError

log = logging.getLogger(__name__)

METADATA_FILE = "cluster-metadata.json"
FORMAT_VERSION = 1


def random_kafka_uuid(rng: random.Random) -> uuid.UUID:
    """A random v4 UUID as Kafka's `Uuid.randomUuid` makes them: never the reserved all-zero or
    metadata-topic ids, and never one whose base64 form starts with '-' (it would look like a CLI flag)."""
    while True:
        value = uuid.UUID(int=rng.getrandbits(128), version=4)
        if value.int in (0, 1):
            continue
        if uuid_to_base64(value).startswith("-"):
            continue
        return value


def uuid_to_base64(value: uuid.UUID) -> str:
    """Kafka's string form of a Uuid: URL-safe base64 of the 16 bytes without padding (22 chars)."""
    return base64.urlsafe_b64encode(value.bytes).decode("ascii").rstrip("=")


def base64_to_uuid(text: str) -> uuid.UUID:
    return uuid.UUID(bytes=base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))


def _write_atomically(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


class LocalBackend:
    """Cluster metadata of a single broker, persisted in `<data_dir>/cluster-metadata.json`."""

    def __init__(
        self,
        data_dir: Path,
        broker: BrokerInfo,
        broker_config: BrokerConfig,
        *,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
    ) -> None:
        self._dir = Path(data_dir)
        self._path = self._dir / METADATA_FILE
        self._broker = broker
        self._config = broker_config
        self._clock = clock
        self._rng = rng if rng is not None else random.SystemRandom()
        self._listeners: list[MetadataListener] = []
        self._lock = asyncio.Lock()
        self._image = MetadataImage.empty(controller_id=broker.node_id)
        self._started = False

    # --- reading ---------------------------------------------------------------------------------
    @property
    def image(self) -> MetadataImage:
        return self._image

    @property
    def path(self) -> Path:
        return self._path

    @property
    def node_id(self) -> int:
        return self._broker.node_id

    def add_listener(self, callback: MetadataListener) -> None:
        self._listeners.append(callback)

    # --- lifecycle -------------------------------------------------------------------------------
    async def start(self) -> None:
        """Load the metadata file (or create a new cluster id), apply the stored dynamic broker configs,
        and publish the image; listeners see it as a change from an empty image."""
        if self._started:
            return
        loaded = await asyncio.to_thread(self._load)
        if loaded is None:
            image = MetadataImage(
                cluster_id=uuid_to_base64(random_kafka_uuid(self._rng)),
                controller_id=self.node_id,
                brokers={self.node_id: self._broker},
                topics={},
            )
            await asyncio.to_thread(self._persist, image)
        else:
            image = loaded
        self._apply_dynamic_broker_configs(image.broker_configs.get(self.node_id, {}))
        self._apply_dynamic_broker_configs(image.default_broker_configs, cluster_default=True)
        self._started = True
        await self._publish(image)

    async def stop(self) -> None:
        self._started = False

    def _load(self) -> MetadataImage | None:
        self._dir.mkdir(parents=True, exist_ok=True)
        stale = self._path.with_name(self._path.name + ".tmp")
        if stale.exists():
            stale.unlink()  # a write interrupted before its rename; the old file is still whole
        if not self._path.exists():
            return None
        doc = json.loads(self._path.read_text(encoding="utf-8"))
        return self._decode(doc)

    def _decode(self, doc: Mapping[str, Any]) -> MetadataImage:
        topics: dict[str, TopicInfo] = {}
        for name, t in doc.get("topics", {}).items():
            partitions = {
                int(p): PartitionState(
                    partition=int(p),
                    leader=int(s["leader"]),
                    leader_epoch=int(s["leader_epoch"]),
                    replicas=tuple(s["replicas"]),
                    isr=tuple(s["isr"]),
                    partition_epoch=int(s.get("partition_epoch", 0)),
                )
                for p, s in t["partitions"].items()
            }
            topics[name] = TopicInfo(
                name=name,
                topic_id=base64_to_uuid(t["topic_id"]),
                partitions=dict(sorted(partitions.items())),
                configs=dict(t.get("configs", {})),
                internal=is_internal(name),
            )
        broker_configs = {int(k): dict(v) for k, v in doc.get("broker_configs", {}).items()}
        return MetadataImage(
            cluster_id=str(doc["cluster_id"]),
            controller_id=self.node_id,
            brokers={self.node_id: self._broker},
            topics=topics,
            broker_configs=broker_configs,
            default_broker_configs=dict(doc.get("default_broker_configs", {})),
            group_configs={str(g): dict(v) for g, v in doc.get("group_configs", {}).items()},
        )

    @staticmethod
    def _encode(image: MetadataImage) -> dict[str, Any]:
        return {
            "version": FORMAT_VERSION,
            "cluster_id": image.cluster_id,
            "topics": {
                name: {
                    "topic_id": uuid_to_base64(t.topic_id),
                    "partitions": {
                        str(p): {
                            "leader": s.leader,
                            "leader_epoch": s.leader_epoch,
                            "replicas": list(s.replicas),
                            "isr": list(s.isr),
                            "partition_epoch": s.partition_epoch,
                        }
                        for p, s in t.partitions.items()
                    },
                    "configs": t.configs,
                }
                for name, t in image.topics.items()
            },
            "broker_configs": {str(k): v for k, v in image.broker_configs.items()},
            "default_broker_configs": image.default_broker_configs,
            "group_configs": image.group_configs,
        }

    def _persist(self, image: MetadataImage) -> None:
        self._dir.mkdir(parents=True, exist_ok=True)
        data = json.dumps(self._encode(image), indent=1, sort_keys=True).encode("utf-8")
        _write_atomically(self._path, data)

    async def _commit(self, image: MetadataImage) -> None:
        await asyncio.to_thread(self._persist, image)
        await self._publish(image)

    async def _publish(self, image: MetadataImage) -> None:
        old, self._image = self._image, image
        for listener in list(self._listeners):
            try:
                result = listener(old, image)
                if inspect.isawaitable(result):
                    await result
            except Exception:  # a listener's failure must not undo a committed change
                log.exception("metadata listener failed")

    # --- topics ----------------------------------------------------------------------------------
    def _partition_state(self, partition: int, replicas: Sequence[int]) -> PartitionState:
        live = set(self._image.brokers)
        isr = tuple(r for r in replicas if r in live)
        leader = isr[0] if isr else -1
        return PartitionState(
            partition=partition, leader=leader, leader_epoch=0, replicas=tuple(replicas), isr=isr
        )

    def _check_assignment(self, replicas: Sequence[int], partition: int) -> None:
        if not replicas:
            raise InvalidReplicaAssignmentError(
                "The manual partition assignment includes an empty replica list."
            )
        if len(set(replicas)) != len(replicas):
            raise InvalidReplicaAssignmentError(
                "The manual partition assignment includes the broker "
                f"{self._first_dup(replicas)} more than once."
            )
        for broker_id in replicas:
            if broker_id not in self._image.brokers:
                raise InvalidReplicaAssignmentError(
                    f"The manual partition assignment includes broker {broker_id}, but no such broker is "
                    "registered."
                )

    @staticmethod
    def _first_dup(values: Sequence[int]) -> int:
        seen: set[int] = set()
        for value in values:
            if value in seen:
                return value
            seen.add(value)
        return -1

    async def create_topic(
        self,
        name: str,
        num_partitions: int,
        replication_factor: int,
        configs: Mapping[str, str | None],
        assignments: Mapping[int, Sequence[int]] | None = None,
        validate_only: bool = False,
    ) -> TopicInfo:
        async with self._lock:
            validate_topic_name(name)
            if name in self._image.topics:
                raise TopicAlreadyExistsError(f"Topic '{name}' already exists.")
            check_collision(name, self._image.topics)
            if assignments:
                layout = manual_topic_layout(
                    assignments, num_partitions, replication_factor, self._check_assignment
                )
            else:
                num_partitions, replication_factor = partition_count_and_replication(
                    num_partitions, replication_factor, self._config
                )
                layout = assign_replicas(
                    list(self._image.brokers), num_partitions, replication_factor, rng=self._rng
                )
            overrides = validate_topic_configs(configs)
            info = TopicInfo(
                name=name,
                topic_id=random_kafka_uuid(self._rng),
                partitions={p: self._partition_state(p, r) for p, r in layout.items()},
                configs=overrides,
                internal=is_internal(name),
            )
            if validate_only:
                return info
            await self._commit(self._replace_topic(info))
            return info

    def _replace_topic(self, info: TopicInfo) -> MetadataImage:
        topics = dict(self._image.topics)
        topics[info.name] = info
        return self._with(topics=topics)

    def _with(self, **changes: Any) -> MetadataImage:
        image = self._image
        return MetadataImage(
            cluster_id=changes.get("cluster_id", image.cluster_id),
            controller_id=changes.get("controller_id", image.controller_id),
            brokers=changes.get("brokers", image.brokers),
            topics=changes.get("topics", image.topics),
            broker_configs=changes.get("broker_configs", image.broker_configs),
            default_broker_configs=changes.get("default_broker_configs", image.default_broker_configs),
            group_configs=changes.get("group_configs", image.group_configs),
        )

    async def delete_topic(self, name: str) -> TopicInfo:
        async with self._lock:
            info = existing_topic(self._image, name)
            check_topic_deletable(info, self._config)
            topics = dict(self._image.topics)
            del topics[name]
            await self._commit(self._with(topics=topics))
            return info

    async def create_partitions(
        self,
        name: str,
        total: int,
        assignments: Sequence[Sequence[int]] | None = None,
        validate_only: bool = False,
    ) -> TopicInfo:
        async with self._lock:
            info = existing_topic(self._image, name)
            current = len(info.partitions)
            check_partition_growth(current, total)
            added = total - current
            if assignments is not None:
                layout = new_partitions_layout(assignments, current, added, self._check_assignment)
            else:
                brokers = list(self._image.brokers)
                first = info.partitions.get(0)
                leader0 = first.replicas[0] if first is not None and first.replicas else min(brokers)
                layout = assign_replicas(
                    brokers,
                    added,
                    max(1, info.replication_factor),
                    rng=self._rng,
                    fixed_start_index=start_index_for_new_partitions(brokers, leader0),
                    start_partition_id=current,
                )
            partitions = dict(info.partitions)
            for p, replicas in layout.items():
                partitions[p] = self._partition_state(p, replicas)
            grown = TopicInfo(
                name=info.name,
                topic_id=info.topic_id,
                partitions=partitions,
                configs=info.configs,
                internal=info.internal,
            )
            if validate_only:
                return grown
            await self._commit(self._replace_topic(grown))
            return grown

    # --- configs ---------------------------------------------------------------------------------
    async def alter_topic_configs(
        self, name: str, configs: Mapping[str, str | None], validate_only: bool = False
    ) -> TopicInfo:
        async with self._lock:
            info = existing_topic(self._image, name)
            overrides = validate_topic_configs(configs)
            altered = TopicInfo(
                name=info.name,
                topic_id=info.topic_id,
                partitions=info.partitions,
                configs=overrides,
                internal=info.internal,
            )
            if validate_only or overrides == info.configs:
                return altered
            await self._commit(self._replace_topic(altered))
            return altered

    def _apply_dynamic_broker_configs(
        self, configs: Mapping[str, str], *, cluster_default: bool = False
    ) -> None:
        config = self._config
        current = config.dynamic_default_overrides if cluster_default else config.dynamic_overrides
        for key in current:
            if key not in configs:
                config.set_dynamic(key, None, cluster_default=cluster_default)
        for key, raw in configs.items():
            try:
                config.set_dynamic(key, raw, cluster_default=cluster_default)
            except ConfigError as exc:  # a key that became invalid or static since it was stored
                log.warning("ignoring stored dynamic broker config %s=%r: %s", key, raw, exc)

    async def alter_broker_configs(
        self, node_id: int | None, configs: Mapping[str, str | None], validate_only: bool = False
    ) -> None:
        """`node_id` None: the cluster-wide defaults (the BROKER resource named "")."""
        async with self._lock:
            if node_id is not None and node_id not in self._image.brokers:
                raise InvalidRequestError(
                    f"Unexpected broker id, expected {self.node_id} but received {node_id}"
                )
            valid = validate_broker_configs(configs)
            if validate_only:
                return
            if node_id is None:
                image = self._with(default_broker_configs=valid)
            else:
                broker_configs = dict(self._image.broker_configs)
                if valid:
                    broker_configs[node_id] = valid
                else:
                    broker_configs.pop(node_id, None)
                image = self._with(broker_configs=broker_configs)
            await asyncio.to_thread(self._persist, image)
            if node_id is None or node_id == self.node_id:
                self._apply_dynamic_broker_configs(valid, cluster_default=node_id is None)
            await self._publish(image)

    async def alter_group_configs(
        self, group_id: str, configs: Mapping[str, str | None], validate_only: bool = False
    ) -> None:
        async with self._lock:
            valid = validate_group_configs(configs, self._config)
            if validate_only or valid == self._image.group_configs.get(group_id, {}):
                return
            group_configs = dict(self._image.group_configs)
            if valid:
                group_configs[group_id] = valid
            else:
                group_configs.pop(group_id, None)
            await self._commit(self._with(group_configs=group_configs))
