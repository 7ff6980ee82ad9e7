"""Formatting without Kafka at hand: feature levels per release, the voters flag, snapshots (batching,
atomic write, header/footer checks) and the start-up check of formatted directories."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from strom.config import BrokerConfig
from strom.metadata.errors import MetadataParseError
from strom.metadata.features import (
    FeatureError,
    bootstrap_records,
    effective_feature_levels,
    metadata_version,
)
from strom.metadata.formatter import (
    FormatOptions,
    FormatterError,
    NodeStorage,
    check_formatted,
    format_storage,
    random_uuid,
)
from strom.metadata.records import FeatureLevelRecord, TopicRecord
from strom.metadata.serde import ApiMessageAndVersion
from strom.metadata.snapshot import read_snapshot, write_snapshot
from strom.metadata.voters import VoterParseError, parse_dynamic_voters
from strom.storage.checkpoint import uuid_to_kafka


def test_release_versions_and_default_levels() -> None:
    assert metadata_version("3.9").version == "3.9-IV0"
    assert metadata_version("4.4").version == "4.4-IV2"  # the release's last metadata.version
    with pytest.raises(FeatureError, match=r"Unknown metadata\.version '4\.5-IV0'"):
        metadata_version("4.5-IV0")  # not production in Kafka 4.4
    levels = effective_feature_levels(metadata_version("3.9-IV0"), {}, dynamic_quorum=True)
    assert levels["kraft.version"] == 1 and levels["metadata.version"] == 21
    records = bootstrap_records(metadata_version("3.9-IV0"), levels)
    first = FeatureLevelRecord(name="metadata.version", feature_level=21)
    assert records[0] == ApiMessageAndVersion(first, 0)
    assert all(r.message.name != "kraft.version" for r in records)  # type: ignore[attr-defined]
    names = [r.message.name for r in records[1:]]  # type: ignore[attr-defined]
    assert names == sorted(names)


def test_dynamic_voters_flag() -> None:
    voters = parse_dynamic_voters("0@[::1]:8082:JEXY6aqzQY-32P5TStzaFg,1@ex.com:8083:MvDxzVmcRsaTz33bUuRU6A")
    assert [(v.node_id, v.host, v.port) for v in voters.values()] == [(0, "::1", 8082), (1, "ex.com", 8083)]
    for bad, message in [("0localhost:1:JEXY6aqzQY-32P5TStzaFg", "No @"),
                         ("0@localhost:1", "No colon following port"),
                         ("0@a:1:JEXY6aqzQY-32P5TStzaFg,0@b:2:MvDxzVmcRsaTz33bUuRU6A", "more than once")]:
        with pytest.raises(VoterParseError, match=message):
            parse_dynamic_voters(bad)


def test_random_uuid_is_never_reserved() -> None:
    for _ in range(200):
        value = random_uuid()
        assert value.int > 1 and not uuid_to_kafka(value).startswith("-")


def test_snapshot_batches_and_refuses_incomplete_files(tmp_path: Path) -> None:
    records = [ApiMessageAndVersion(TopicRecord(name=f"t{i}", topic_id=uuid.uuid4()), 0) for i in range(50)]
    path = tmp_path / "00000000000000000050-0000000003.checkpoint"
    write_snapshot(path, records, kraft_version=1, voters=None, timestamp_ms=5, epoch=3, max_batch_bytes=200)
    snapshot = read_snapshot(path)
    assert snapshot.records == records
    assert snapshot.kraft_version is not None and snapshot.voters is None
    assert not list(tmp_path.glob("*.part"))
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) - 20])  # the footer batch torn off
    with pytest.raises(MetadataParseError, match="incomplete snapshot"):
        read_snapshot(path)


def _node(tmp_path: Path) -> NodeStorage:
    return NodeStorage.from_config(BrokerConfig({
        "process.roles": "broker,controller", "node.id": "3", "controller.quorum.voters": "3@localhost:9093",
        "listeners": "PLAINTEXT://:9092,CONTROLLER://:9093", "controller.listener.names": "CONTROLLER",
        "log.dirs": f"{tmp_path}/a,{tmp_path}/b", "metadata.log.dir": f"{tmp_path}/m",
    }))


def test_check_formatted(tmp_path: Path) -> None:
    node = _node(tmp_path)
    with pytest.raises(FormatterError, match=f"No `meta.properties` found in {tmp_path}/a"):
        check_formatted(node)
    format_storage(node, FormatOptions(cluster_id="abc"), out=lambda _line: None)
    assert check_formatted(node) == "abc"
    other = NodeStorage.from_config(BrokerConfig({
        "process.roles": "broker,controller", "node.id": "4", "controller.quorum.voters": "3@localhost:9093",
        "controller.listener.names": "CONTROLLER", "log.dirs": f"{tmp_path}/a",
    }))
    with pytest.raises(FormatterError, match=r"doesn't match the configured node\.id 4"):
        check_formatted(other)
    with pytest.raises(FormatterError, match=r"Invalid cluster\.id"):
        format_storage(node, FormatOptions(cluster_id="xyz", ignore_formatted=True), out=lambda _line: None)
