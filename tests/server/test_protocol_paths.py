"""Registry discovery, ApiVersions from the registry, legacy Fetch decoding (v0-3, kafka-go), fetch sessions
(KIP-227) and in-order pipelined responses."""

from __future__ import annotations

import asyncio
import struct

import pytest
from kio.schema.api_versions.v3.request import ApiVersionsRequest
from kio.schema.fetch.v12.request import FetchPartition, FetchRequest, FetchTopic
from kio.schema.metadata.v1.request import MetadataRequest, MetadataRequestTopic
from kio.static.primitive import i8, i32, i64
from wire_helpers import connect, ms, produce_request

from strom.apis import build_registry
from strom.apis.fetch import decode_legacy
from strom.protocol.errors import ErrorCode, InvalidRequestError
from strom.protocol.records import Record, build_batch
from strom.testing.embedded import EmbeddedBroker


def test_registry_collects_data_path_apis() -> None:
    registry = build_registry()
    # exact version ranges are checked against Kafka's by tests/compat/test_api_versions_parity.py
    for key, lo, hi in [(0, 3, 9), (1, 0, 12), (2, 1, 7), (3, 0, 13), (18, 0, 5), (22, 0, 4), (23, 2, 4)]:
        spec = registry.get(key)
        assert spec is not None and spec.min_version == lo and spec.max_version >= hi
    assert registry.get(9999) is None


def test_legacy_fetch_decode() -> None:
    body = struct.pack(">iiii", -1, 500, 1, 1000)
    body += (
        struct.pack(">i", 1)
        + struct.pack(">h", 3)
        + b"abc"
        + struct.pack(">i", 1)
        + struct.pack(">iqi", 2, 77, 4096)
    )
    params = decode_legacy(3, memoryview(body))
    assert (params.replica_id, params.max_wait_ms, params.min_bytes, params.max_bytes) == (-1, 500, 1, 1000)
    assert params.topics[0][0] == "abc"
    part = params.topics[0][1][0]
    assert (part.partition, part.fetch_offset, part.partition_max_bytes) == (2, 77, 4096)
    with pytest.raises(InvalidRequestError):
        decode_legacy(3, memoryview(body[:-3]))


async def test_api_versions_lists_registry(broker: EmbeddedBroker) -> None:
    conn = await connect(broker)
    try:
        resp = await conn.request(ApiVersionsRequest(client_software_name="t", client_software_version="1"))
        advertised = {int(k.api_key): (int(k.min_version), int(k.max_version)) for k in resp.api_keys}
        listed = {s.api_key: (s.listed_min_version, s.max_version) for s in build_registry().specs()}
        assert advertised == listed
        bad = await conn.request(
            ApiVersionsRequest(client_software_name="-bad-", client_software_version="1")
        )
        assert bad.error_code == ErrorCode.invalid_request
    finally:
        await conn.close()


def _fetch(session_id: int, epoch: int, parts: list[tuple[int, int]]) -> FetchRequest:
    return FetchRequest(
        replica_id=i32(-1),
        max_wait=ms(0),
        min_bytes=i32(0),
        max_bytes=i32(1 << 20),
        isolation_level=i8(0),
        session_id=i32(session_id),
        session_epoch=i32(epoch),
        topics=tuple(
            FetchTopic(
                topic="s",
                partitions=tuple(
                    FetchPartition(partition=i32(p), fetch_offset=i64(o), partition_max_bytes=i32(1 << 20))
                    for p, o in parts
                ),
            )
            for _ in [0]
            if parts
        ),
        forgotten_topics_data=(),
        rack_id="",
    )


async def test_incremental_fetch_session(tmp_path: object) -> None:
    async with EmbeddedBroker({"num.partitions": "2"}) as embedded:
        conn = await connect(embedded)
        try:
            await conn.request(MetadataRequest(topics=(MetadataRequestTopic(name="s"),)))
            full = await conn.request(_fetch(0, 0, [(0, 0), (1, 0)]))
            assert full.error_code == ErrorCode.none and full.session_id != 0
            assert len(full.responses[0].partitions) == 2
            sid = int(full.session_id)
            # nothing changed: an incremental fetch lists no partitions
            quiet = await conn.request(_fetch(sid, 1, []))
            assert quiet.session_id == sid and quiet.responses == ()
            batch = build_batch([Record(0, 0, None, b"x")])
            produce = produce_request("s", {1: batch}, acks=1, timeout_ms=1000)
            await conn.request(produce)
            changed = await conn.request(_fetch(sid, 2, []))
            assert [int(p.partition_index) for p in changed.responses[0].partitions] == [1]
            assert changed.responses[0].partitions[0].high_watermark == 1
            wrong = await conn.request(_fetch(sid, 7, []))
            assert wrong.error_code == ErrorCode.invalid_fetch_session_epoch
        finally:
            await conn.close()


async def test_pipelined_responses_keep_request_order(broker: EmbeddedBroker) -> None:
    conn = await connect(broker)
    try:
        await conn.request(MetadataRequest(topics=(MetadataRequestTopic(name="p"),)))
        # a slow fetch (waits for data) followed by fast requests: answers must still come in order
        slow = asyncio.create_task(
            conn.request(
                FetchRequest(
                    replica_id=i32(-1),
                    max_wait=ms(400),
                    min_bytes=i32(1),
                    max_bytes=i32(1 << 20),
                    isolation_level=i8(0),
                    session_id=i32(0),
                    session_epoch=i32(-1),
                    topics=(
                        FetchTopic(
                            topic="p",
                            partitions=(
                                FetchPartition(
                                    partition=i32(0), fetch_offset=i64(0), partition_max_bytes=i32(1024)
                                ),
                            ),
                        ),
                    ),
                    forgotten_topics_data=(),
                    rack_id="",
                )
            )
        )
        await asyncio.sleep(0.05)
        fast = asyncio.create_task(
            conn.request(ApiVersionsRequest(client_software_name="t", client_software_version="1"))
        )
        done, _ = await asyncio.wait({slow, fast}, return_when=asyncio.FIRST_COMPLETED)
        assert slow in done, "a later response overtook an earlier one"
        await fast
    finally:
        await conn.close()
