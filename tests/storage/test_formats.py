"""Byte-level checks of the on-disk files against Kafka's formats: segment names, .log contents,
.index and .timeindex entries, offset checkpoints, leader-epoch-checkpoint, partition.metadata and
meta.properties."""

from __future__ import annotations

import itertools
import struct
import uuid

from strom.config import BrokerConfig, LogConfig
from strom.storage.checkpoint import (
    read_offset_checkpoint,
    read_partition_metadata,
    uuid_from_kafka,
    uuid_to_kafka,
    write_offset_checkpoint,
    write_partition_metadata,
)
from strom.storage.leader_epoch import LeaderEpochFileCache
from strom.storage.log_manager import LogManager


def _entries(raw: bytes, fmt: str) -> list[tuple[int, ...]]:
    return list(struct.iter_unpack(fmt, raw))


def test_segment_files_and_index_entries(open_log, clock, batch):
    config = LogConfig(segment_bytes=5000, index_interval_bytes=200, segment_index_bytes=1024)
    log = open_log(config)
    raws = []
    for i in range(40):
        raw = batch([b"x" * 40, b"y" * 40], timestamp=clock.ms + (i % 7) * 10 + i)
        raws.append(raw)
        log.append(raw, leader_epoch=5)
    names = sorted(p.name for p in log.dir.iterdir())
    assert "00000000000000000000.log" in names and "00000000000000000000.index" in names
    assert "00000000000000000000.timeindex" in names
    second = log.segments()[1]
    assert second.log_path.name == f"{second.base_offset:020d}.log"
    # the .log holds the batches as sent, with base offset and leader epoch written in
    first_file = (log.dir / "00000000000000000000.log").read_bytes()
    assert first_file[:8] == struct.pack(">q", 0) and first_file[12:16] == struct.pack(">i", 5)
    assert first_file[8:12] == raws[0][8:12] and first_file[16:].startswith(raws[0][16:])
    # a rolled segment's index files are trimmed to their entries
    idx = (log.dir / "00000000000000000000.index").read_bytes()
    tidx = (log.dir / "00000000000000000000.timeindex").read_bytes()
    assert len(idx) % 8 == 0 and 0 < len(idx) < 1024
    assert len(tidx) % 12 == 0 and 0 < len(tidx) < 1024
    # .index: (relative offset int32, position int32): the batch holding the offset starts there
    positions = {}
    pos = 0
    for i, raw in enumerate(raws):
        positions[2 * i + 1] = pos  # each batch holds 2 records; key = its last offset
        pos += len(raw)
    for rel, position in _entries(idx, ">ii"):
        assert positions[rel] == position
    # .timeindex: (timestamp int64, relative offset int32), timestamps strictly increasing
    ts_entries = _entries(tidx, ">qi")
    assert all(a[0] < b[0] for a, b in itertools.pairwise(ts_entries))
    assert ts_entries[-1][0] == log.segments()[0].max_timestamp
    # the active segment's indexes are preallocated to segment.index.bytes (rounded down to an entry)
    active = log.active_segment
    assert active.offset_index.path.stat().st_size == 1024
    assert active.time_index.path.stat().st_size == 1020
    log.close()
    assert active.offset_index.path.stat().st_size == 8 * active.offset_index.entries


def test_offset_checkpoint_format(tmp_path):
    path = tmp_path / "recovery-point-offset-checkpoint"
    write_offset_checkpoint(path, {("orders", 1): 42, ("orders", 0): 7, ("my-topic.x", 12): 0})
    assert path.read_text() == "0\n3\nmy-topic.x 12 0\norders 0 7\norders 1 42\n"
    assert read_offset_checkpoint(path) == {("orders", 1): 42, ("orders", 0): 7, ("my-topic.x", 12): 0}
    assert not list(tmp_path.glob("*.tmp"))


def test_kafka_written_checkpoint_is_read(tmp_path):
    path = tmp_path / "log-start-offset-checkpoint"
    path.write_text("0\n2\n__consumer_offsets 3 100\nfoo 0 5\n")
    assert read_offset_checkpoint(path) == {("__consumer_offsets", 3): 100, ("foo", 0): 5}


def test_leader_epoch_checkpoint_format(tmp_path):
    path = tmp_path / "leader-epoch-checkpoint"
    cache = LeaderEpochFileCache(path)
    cache.assign(0, 0)
    cache.assign(2, 10)
    cache.assign(5, 37)
    assert path.read_text() == "0\n3\n0 0\n2 10\n5 37\n"
    assert LeaderEpochFileCache(path).entries() == [(0, 0), (2, 10), (5, 37)]


def test_partition_metadata_format(tmp_path):
    topic_id = uuid.UUID("5c6f8a3e-1b2d-4c5e-9f01-23456789abcd")
    path = tmp_path / "partition.metadata"
    write_partition_metadata(path, topic_id)
    text = path.read_text()
    assert text == f"version: 0\ntopic_id: {uuid_to_kafka(topic_id)}\n"
    assert len(uuid_to_kafka(topic_id)) == 22 and "=" not in text
    assert read_partition_metadata(path) == topic_id
    assert uuid_from_kafka("AAAAAAAAAAAAAAAAAAAAAA") == uuid.UUID(int=0)


def test_meta_properties(tmp_path):
    config = BrokerConfig({"node.id": "7", "log.dirs": str(tmp_path)})
    manager = LogManager(config.log_dirs, config, cluster_id="MkU3OEVBNTcwNTJENDM2Qk")
    manager.load()
    props = {}
    for line in (tmp_path / "meta.properties").read_text().splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            props[key] = value
    assert props["version"] == "1" and props["node.id"] == "7"
    assert props["cluster.id"] == "MkU3OEVBNTcwNTJENDM2Qk"
    assert len(props["directory.id"]) == 22
    manager.shutdown()
    again = LogManager(config.log_dirs, config, cluster_id="MkU3OEVBNTcwNTJENDM2Qk")
    again.load()
    assert again.directory_ids[tmp_path] == props["directory.id"]  # stable across restarts
    again.shutdown()
