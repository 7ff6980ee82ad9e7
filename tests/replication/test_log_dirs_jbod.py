"""JBOD: several log.dirs on one broker (KIP-112/113), over the wire.

- New partitions go to the dir holding the fewest logs.
- AlterReplicaLogDirs moves a partition while producers keep appending to it: DescribeLogDirs shows the
  future replica meanwhile, the partition ends in the new dir with every record, the old directory is
  renamed `-delete`, and a restart finds it where it moved.
- LOG_DIR_NOT_FOUND, REPLICA_NOT_AVAILABLE (remembered for the replica's creation), NONE for the dir it is
  in already.
- A failed dir (an I/O error on an append, or a dir unusable at start-up) takes only its partitions offline:
  KAFKA_STORAGE_ERROR for them, the others keep serving, DescribeLogDirs reports the dir's error.
"""

from __future__ import annotations

import asyncio
import errno
import shutil
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from kio.schema.alter_replica_log_dirs.v2 import request as ard
from kio.schema.describe_log_dirs.v4 import request as dld
from kio.schema.metadata.v12.request import MetadataRequest, MetadataRequestTopic
from kio.static.primitive import i32
from wire_helpers import connect, fetch_request, produce_request, records

from strom.client.connection import BrokerConnection
from strom.protocol.errors import ErrorCode
from strom.protocol.records import build_batch, decode_records
from strom.storage.segment import Segment
from strom.testing.embedded import EmbeddedBroker

TOPIC = "jbod"


@pytest.fixture
def dirs() -> AsyncIterator[tuple[Path, Path]]:
    root = Path(tempfile.mkdtemp(prefix="strom-jbod-"))
    yield root / "d1", root / "d2"
    shutil.rmtree(root, ignore_errors=True)


def _settings(dirs: tuple[Path, Path], **extra: str) -> dict[str, str]:
    return {
        "log.dirs": f"{dirs[0]},{dirs[1]}",
        "num.partitions": "4",
        "file.delete.delay.ms": "100",
        "log.retention.check.interval.ms": "100",
        **extra,
    }


async def _create(conn: BrokerConnection, topic: str = TOPIC) -> None:
    await conn.request(
        MetadataRequest(
            topics=(MetadataRequestTopic(name=topic, topic_id=None),),
            allow_auto_topic_creation=True,
            include_topic_authorized_operations=False,
        )
    )


Described = dict[str, tuple[int, dict[tuple[str, int, bool], int]]]


async def _describe(conn: BrokerConnection) -> Described:
    """dir -> (error code, {(topic, partition, is_future): offset lag})."""
    resp = await conn.request(dld.DescribeLogDirsRequest(topics=None))
    return {
        r.log_dir: (
            r.error_code,
            {(t.name, p.partition_index, p.is_future_key): p.offset_lag
             for t in r.topics for p in t.partitions},
        )
        for r in resp.results
    }


async def _alter(conn: BrokerConnection, path: Path | str, topic: str, *parts: int) -> dict[int, int]:
    request = ard.AlterReplicaLogDirsRequest(
        dirs=(ard.AlterReplicaLogDir(path=str(path), topics=(
            ard.AlterReplicaLogDirTopic(name=topic, partitions=tuple(i32(p) for p in parts)),)),),
    )  # fmt: skip
    resp = await conn.request(request)
    return {p.partition_index: p.error_code for t in resp.results for p in t.partitions}


async def _produce(conn: BrokerConnection, partition: int, n: int, start: int) -> int:
    resp = await conn.request(produce_request(TOPIC, {partition: build_batch(records(n, start))}))
    return resp.responses[0].partition_responses[0].error_code


async def _read_all(conn: BrokerConnection, partition: int) -> list[bytes]:
    values: list[bytes] = []
    offset = 0
    while True:
        resp = await conn.request(fetch_request(TOPIC, {partition: offset}, partition_max_bytes=4096))
        part = resp.responses[0].partitions[0]
        assert part.error_code == ErrorCode.none
        if not part.records:
            return values
        batch = decode_records(part.records)
        values += [r.value for r in batch]
        offset += len(batch)


def _dir_of(describe: Described, partition: int) -> set[tuple[str, bool]]:
    """(dir, is future) of every replica of the partition."""
    return {
        (d, f) for d, (_e, parts) in describe.items() for (t, p, f) in parts if t == TOPIC and p == partition
    }


async def test_placement_and_move_while_producing(dirs: tuple[Path, Path]) -> None:
    d1, d2 = (str(d.resolve()) for d in dirs)
    async with EmbeddedBroker(_settings(dirs)) as embedded:
        conn = await connect(embedded)
        try:
            await _create(conn)
            for p in range(4):
                assert await _produce(conn, p, 5, 0) == ErrorCode.none
            described = await _describe(conn)
            counts = {d: sum(t == TOPIC for (t, _p, _f) in parts) for d, (_e, parts) in described.items()}
            assert counts == {d1: 2, d2: 2}
            (src, _), = _dir_of(described, 0)
            dest = d2 if src == d1 else d1
            # enough data for many copy steps, so the copy takes a while
            sent = 5
            for _ in range(60):
                assert await _produce(conn, 0, 20, sent) == ErrorCode.none
                sent += 20
            # slow the copy down so the future replica is seen
            mover = embedded.broker.replica_manager.mover
            mover.chunk_bytes, mover.swap_lag_bytes, mover.idle_s = 512, 0, 0.01
            assert await _alter(conn, dest, TOPIC, 0) == {0: ErrorCode.none}
            seen_future = False
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                assert await _produce(conn, 0, 3, sent) == ErrorCode.none
                sent += 3
                where = _dir_of(await _describe(conn), 0)
                seen_future = seen_future or (dest, True) in where
                if where == {(dest, False)}:
                    break
                await asyncio.sleep(0.01)
            assert _dir_of(await _describe(conn), 0) == {(dest, False)}
            assert seen_future
            values = await _read_all(conn, 0)
            assert values == [f"v{i}".encode() for i in range(sent)]
            assert await _produce(conn, 0, 2, sent) == ErrorCode.none
            sent += 2
            left = [p.name for p in Path(src).iterdir() if p.name.startswith(f"{TOPIC}-0")]
            assert left and all(name.endswith("-delete") for name in left)
            # the same dir again: nothing to do
            assert await _alter(conn, dest, TOPIC, 0) == {0: ErrorCode.none}
            assert await _alter(conn, "/nowhere", TOPIC, 0) == {0: ErrorCode.log_dir_not_found}
            assert await _alter(conn, dest, "later", 0) == {0: ErrorCode.replica_not_available}
            await _create(conn, "later")
            await asyncio.sleep(0.2)
            assert {(d, t) for d, (_e, parts) in (await _describe(conn)).items() for (t, p, _f) in parts
                    if t == "later" and p == 0} == {(dest, "later")}  # fmt: skip
        finally:
            await conn.close()
    # after a restart the partition is where it moved, whole
    async with EmbeddedBroker(_settings(dirs)) as embedded:
        conn = await connect(embedded)
        try:
            assert _dir_of(await _describe(conn), 0) == {(dest, False)}
            assert await _read_all(conn, 0) == [f"v{i}".encode() for i in range(sent)]
        finally:
            await conn.close()


async def test_io_error_takes_only_its_dir_offline(
    dirs: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    d1, d2 = (str(d.resolve()) for d in dirs)
    async with EmbeddedBroker(_settings(dirs)) as embedded:
        conn = await connect(embedded)
        try:
            await _create(conn)
            for p in range(4):
                assert await _produce(conn, p, 5, 0) == ErrorCode.none
            described = await _describe(conn)
            in_d2 = sorted(p for (_d, _f), p in ((next(iter(_dir_of(described, p))), p) for p in range(4))
                           if _d == d2)  # fmt: skip
            in_d1 = sorted(set(range(4)) - set(in_d2))
            failing = Path(d2)
            real_append = Segment.append

            def failing_append(self: Segment, *args: object, **kwargs: object) -> object:
                if Path(self.log_path).resolve().parent.parent == failing:
                    raise OSError(errno.EIO, "Input/output error")
                return real_append(self, *args, **kwargs)

            monkeypatch.setattr(Segment, "append", failing_append)
            assert await _produce(conn, in_d2[0], 1, 5) == ErrorCode.kafka_storage_error
            for p in in_d2:
                assert await _produce(conn, p, 1, 5) == ErrorCode.kafka_storage_error
                resp = await conn.request(fetch_request(TOPIC, {p: 0}))
                assert resp.responses[0].partitions[0].error_code == ErrorCode.kafka_storage_error
            for p in in_d1:
                assert await _produce(conn, p, 1, 5) == ErrorCode.none
                assert len(await _read_all(conn, p)) == 6
            described = await _describe(conn)
            assert described[d2] == (ErrorCode.kafka_storage_error, {})
            assert described[d1][0] == ErrorCode.none
            # no move into or out of an offline dir
            assert await _alter(conn, d2, TOPIC, in_d1[0]) == {in_d1[0]: ErrorCode.kafka_storage_error}
            assert await _alter(conn, d1, TOPIC, in_d2[0]) == {in_d2[0]: ErrorCode.kafka_storage_error}
        finally:
            await conn.close()


async def test_dir_unusable_at_start(dirs: tuple[Path, Path]) -> None:
    d1, d2 = (str(d.resolve()) for d in dirs)
    async with EmbeddedBroker(_settings(dirs)) as embedded:
        conn = await connect(embedded)
        try:
            await _create(conn)
            for p in range(4):
                assert await _produce(conn, p, 5, 0) == ErrorCode.none
            described = await _describe(conn)
        finally:
            await conn.close()
    in_d2 = [p for p in range(4) if (d2, False) in _dir_of(described, p)]
    # meta.properties that cannot be read (a directory in its place): the dir is unusable, even for root
    meta = dirs[1] / "meta.properties"
    meta.unlink()
    meta.mkdir()
    async with EmbeddedBroker(_settings(dirs)) as embedded:
        conn = await connect(embedded)
        try:
            described = await _describe(conn)
            assert described[d2] == (ErrorCode.kafka_storage_error, {})
            for p in range(4):
                code = await _produce(conn, p, 1, 5)
                assert code == (ErrorCode.kafka_storage_error if p in in_d2 else ErrorCode.none), p
            # nothing of the offline dir was re-created in the live one
            assert not any(_dir_of(described, p) for p in in_d2)
            assert d1 in described
        finally:
            await conn.close()
