"""The single-node metadata backend: validation, persistence across restarts, atomic writes, listeners."""

from __future__ import annotations

import itertools
import json
import random
from pathlib import Path

import pytest

from strom.cluster.backend import ClusterBackend
from strom.cluster.local import METADATA_FILE, LocalBackend, base64_to_uuid, uuid_to_base64
from strom.cluster.metadata import BrokerInfo, MetadataImage
from strom.config import BrokerConfig, ConfigSource
from strom.protocol.errors import ErrorCode, KafkaError

NODE = BrokerInfo(node_id=7, host="127.0.0.1", port=9092)


def make(tmp_path: Path, seed: int = 0, **props: str) -> tuple[LocalBackend, BrokerConfig]:
    config = BrokerConfig(props)
    return LocalBackend(tmp_path, NODE, config, clock=lambda: 1000.0, rng=random.Random(seed)), config


async def started(tmp_path: Path, **props: str) -> LocalBackend:
    backend, _ = make(tmp_path, **props)
    await backend.start()
    return backend


async def expect(code: ErrorCode, coro: object) -> KafkaError:
    with pytest.raises(KafkaError) as info:
        await coro  # type: ignore[misc]
    assert info.value.code == code, info.value
    return info.value


async def test_new_cluster_id_is_kafka_uuid_form(tmp_path: Path) -> None:
    backend = await started(tmp_path)
    assert isinstance(backend, ClusterBackend)
    cid = backend.image.cluster_id
    assert len(cid) == 22 and "=" not in cid and not cid.startswith("-")
    assert uuid_to_base64(base64_to_uuid(cid)) == cid
    assert backend.image.controller_id == 7
    assert backend.image.brokers == {7: NODE}
    assert (tmp_path / METADATA_FILE).exists()


async def test_create_single_node_partition_states(tmp_path: Path) -> None:
    backend = await started(tmp_path)
    info = await backend.create_topic("orders", 3, 1, {"retention.ms": "1000"})
    assert sorted(info.partitions) == [0, 1, 2]
    for p, state in info.partitions.items():
        assert state.partition == p
        assert (state.leader, state.leader_epoch, state.replicas, state.isr) == (7, 0, (7,), (7,))
    assert info.configs == {"retention.ms": "1000"}
    assert not info.internal
    assert backend.image.topics["orders"] is info
    assert backend.image.topic_by_id(info.topic_id) is info


async def test_defaults_when_minus_one(tmp_path: Path) -> None:
    backend = await started(tmp_path, **{"num.partitions": "4"})
    info = await backend.create_topic("t", -1, -1, {})
    assert len(info.partitions) == 4
    assert info.replication_factor == 1


async def test_validation_errors(tmp_path: Path) -> None:
    backend = await started(tmp_path)
    await backend.create_topic("t", 1, 1, {})
    await expect(ErrorCode.topic_already_exists, backend.create_topic("t", 1, 1, {}))
    await expect(ErrorCode.invalid_topic_exception, backend.create_topic("bad name", 1, 1, {}))
    await expect(ErrorCode.invalid_partitions, backend.create_topic("u", 0, 1, {}))
    await expect(ErrorCode.invalid_replication_factor, backend.create_topic("u", 1, 3, {}))
    await expect(ErrorCode.invalid_replication_factor, backend.create_topic("u", 1, 0, {}))
    await expect(ErrorCode.invalid_config, backend.create_topic("u", 1, 1, {"retention.ms": "soon"}))
    await expect(ErrorCode.invalid_config, backend.create_topic("u", 1, 1, {"no.such.key": "1"}))
    await expect(ErrorCode.invalid_replica_assignment, backend.create_topic("u", -1, -1, {}, {0: [8]}))
    await expect(ErrorCode.invalid_replica_assignment, backend.create_topic("u", -1, -1, {}, {0: [7, 7]}))
    await expect(ErrorCode.invalid_replica_assignment, backend.create_topic("u", -1, -1, {}, {1: [7]}))
    await expect(ErrorCode.invalid_request, backend.create_topic("u", 2, -1, {}, {0: [7]}))
    assert set(backend.image.topics) == {"t"}


async def test_manual_assignment_and_validate_only(tmp_path: Path) -> None:
    backend = await started(tmp_path)
    dry = await backend.create_topic("m", -1, -1, {}, {0: [7], 1: [7]}, validate_only=True)
    assert len(dry.partitions) == 2
    assert "m" not in backend.image.topics
    info = await backend.create_topic("m", -1, -1, {}, {0: [7], 1: [7]})
    assert len(info.partitions) == 2


async def test_internal_topics_flagged_and_not_deletable(tmp_path: Path) -> None:
    backend = await started(tmp_path)
    info = await backend.create_topic("__consumer_offsets", 2, 1, {"cleanup.policy": "compact"})
    assert info.internal
    await expect(ErrorCode.invalid_request, backend.delete_topic("__consumer_offsets"))
    assert "__consumer_offsets" in backend.image.topics


async def test_delete(tmp_path: Path) -> None:
    backend = await started(tmp_path)
    await backend.create_topic("d", 1, 1, {})
    deleted = await backend.delete_topic("d")
    assert deleted.name == "d"
    assert "d" not in backend.image.topics
    await expect(ErrorCode.unknown_topic_or_partition, backend.delete_topic("d"))


async def test_delete_disabled(tmp_path: Path) -> None:
    backend = await started(tmp_path, **{"delete.topic.enable": "false"})
    await backend.create_topic("d", 1, 1, {})
    await expect(ErrorCode.topic_deletion_disabled, backend.delete_topic("d"))


async def test_create_partitions(tmp_path: Path) -> None:
    backend = await started(tmp_path)
    info = await backend.create_topic("g", 2, 1, {})
    await expect(ErrorCode.invalid_partitions, backend.create_partitions("g", 1))
    await expect(ErrorCode.invalid_partitions, backend.create_partitions("g", 2))
    await expect(ErrorCode.unknown_topic_or_partition, backend.create_partitions("nope", 3))
    await expect(ErrorCode.invalid_replica_assignment, backend.create_partitions("g", 4, [[7]]))
    dry = await backend.create_partitions("g", 5, validate_only=True)
    assert len(dry.partitions) == 5 and len(backend.image.topics["g"].partitions) == 2
    grown = await backend.create_partitions("g", 4, [[7], [7]])
    assert sorted(grown.partitions) == [0, 1, 2, 3]
    assert grown.topic_id == info.topic_id
    assert grown.partitions[0] is info.partitions[0]


async def test_alter_topic_configs_replaces_overrides(tmp_path: Path) -> None:
    backend = await started(tmp_path)
    await backend.create_topic("c", 1, 1, {"retention.ms": "1000", "segment.bytes": "2097152"})
    altered = await backend.alter_topic_configs("c", {"cleanup.policy": "compact"})
    assert altered.configs == {"cleanup.policy": "compact"}
    assert backend.image.topics["c"].configs == {"cleanup.policy": "compact"}
    await expect(ErrorCode.invalid_config, backend.alter_topic_configs("c", {"segment.bytes": "x"}))
    await expect(ErrorCode.unknown_topic_or_partition, backend.alter_topic_configs("x", {}))
    await backend.alter_topic_configs("c", {"retention.ms": "5"}, validate_only=True)
    assert backend.image.topics["c"].configs == {"cleanup.policy": "compact"}


async def test_alter_broker_configs_applies_and_persists(tmp_path: Path) -> None:
    backend, config = make(tmp_path)
    await backend.start()
    await backend.alter_broker_configs(7, {"log.retention.ms": "12345"})
    assert config.get("log.retention.ms") == 12345
    assert config.source("log.retention.ms") == ConfigSource.DYNAMIC_BROKER_CONFIG
    assert backend.image.broker_configs == {7: {"log.retention.ms": "12345"}}
    await expect(ErrorCode.invalid_request, backend.alter_broker_configs(7, {"log.dirs": "/x"}))
    # Kafka 4.4 answers INVALID_REQUEST for a bad value of a dynamic key, and keeps unknown keys
    await expect(ErrorCode.invalid_request, backend.alter_broker_configs(7, {"log.retention.ms": "zero"}))
    await expect(ErrorCode.invalid_request, backend.alter_broker_configs(3, {}))
    await backend.alter_broker_configs(7, {"log.retention.ms": "12345", "plugin.key": "x"})
    assert config.get("plugin.key") == "x"
    await backend.alter_broker_configs(None, {"log.retention.bytes": "999", "plugin.default": "y"})
    assert backend.image.default_broker_configs == {"log.retention.bytes": "999", "plugin.default": "y"}
    assert config.source("log.retention.bytes") == ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG

    again, config2 = make(tmp_path)
    await again.start()
    assert config2.get("log.retention.ms") == 12345
    assert config2.get("plugin.key") == "x"
    assert config2.get("log.retention.bytes") == 999
    await again.alter_broker_configs(7, {})
    await again.alter_broker_configs(None, {})
    assert not config2.is_set("log.retention.ms") and not config2.is_set("log.retention.bytes")
    assert again.image.broker_configs == {} and again.image.default_broker_configs == {}


async def test_persistence_across_restart(tmp_path: Path) -> None:
    first = await started(tmp_path)
    a = await first.create_topic("a", 3, 1, {"retention.bytes": "100"})
    await first.create_topic("__transaction_state", 1, 1, {})
    await first.create_topic("b", 1, 1, {})
    await first.delete_topic("b")
    await first.create_partitions("a", 5)
    await first.stop()

    second = await started(tmp_path)
    assert second.image.cluster_id == first.image.cluster_id
    assert set(second.image.topics) == {"a", "__transaction_state"}
    assert second.image.topics["a"].topic_id == a.topic_id
    assert second.image.topics["a"].configs == {"retention.bytes": "100"}
    assert second.image.topics["a"] == first.image.topics["a"]
    assert second.image.topics["__transaction_state"].internal


async def test_file_written_atomically(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    backend = await started(tmp_path)
    await backend.create_topic("keep", 1, 1, {})
    before = (tmp_path / METADATA_FILE).read_bytes()

    import strom.cluster.local as local_mod

    def crash(src: object, dst: object) -> None:
        raise OSError("simulated crash before rename")

    monkeypatch.setattr(local_mod.os, "replace", crash)
    with pytest.raises(OSError):
        await backend.create_topic("lost", 1, 1, {})
    monkeypatch.undo()
    # the published image and the file are both unchanged; the torn temp file is ignored on restart
    assert "lost" not in backend.image.topics
    assert (tmp_path / METADATA_FILE).read_bytes() == before
    assert (tmp_path / (METADATA_FILE + ".tmp")).exists()
    restarted = await started(tmp_path)
    assert set(restarted.image.topics) == {"keep"}
    assert not (tmp_path / (METADATA_FILE + ".tmp")).exists()
    json.loads((tmp_path / METADATA_FILE).read_text())


async def test_listeners_see_every_change(tmp_path: Path) -> None:
    backend, _ = make(tmp_path)
    seen: list[tuple[MetadataImage, MetadataImage]] = []
    async_seen: list[set[str]] = []

    async def async_listener(old: MetadataImage, new: MetadataImage) -> None:
        async_seen.append(set(new.topics))

    def failing(old: MetadataImage, new: MetadataImage) -> None:
        raise RuntimeError("listener bug")

    backend.add_listener(lambda old, new: seen.append((old, new)))
    backend.add_listener(failing)
    backend.add_listener(async_listener)
    await backend.start()
    assert len(seen) == 1 and seen[0][0].topics == {} and seen[0][1] is backend.image
    await backend.create_topic("x", 1, 1, {})
    await backend.create_topic("y", 1, 1, {}, validate_only=True)
    await backend.create_partitions("x", 2)
    await backend.alter_topic_configs("x", {"retention.ms": "1"})
    await backend.delete_topic("x")
    assert len(seen) == 5
    for (_, new), (old, _) in itertools.pairwise(seen):
        assert new is old  # each change starts from the image the previous one published
    assert "x" not in seen[1][0].topics and "x" in seen[1][1].topics
    assert len(seen[2][1].topics["x"].partitions) == 2
    assert seen[3][1].topics["x"].configs == {"retention.ms": "1"}
    assert "x" not in seen[4][1].topics
    assert async_seen == [set(), {"x"}, {"x"}, {"x"}, set()]


async def test_topic_ids_are_unique(tmp_path: Path) -> None:
    backend = await started(tmp_path)
    ids = {(await backend.create_topic(f"t{i}", 1, 1, {})).topic_id for i in range(20)}
    assert len(ids) == 20
