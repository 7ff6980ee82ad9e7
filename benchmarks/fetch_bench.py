"""Fetch throughput by topic name (Fetch v12) and by topic id (Fetch v18, KIP-516) against `strom serve`.

Writes --mib MiB of incompressible 1 KiB records into partitions of one topic with confluent-kafka, then
reads them back over one connection with raw Fetch requests, one run per (version, mode): `sessionless`
full fetches, and `session` (a KIP-227 session opened by the first request, incremental after). Each run
walks every partition from offset 0 to the high watermark, --max-bytes per partition per request, and
reports MB/s of record bytes, requests/s and the median request latency. v18 names the topic by id, so the
broker resolves ids to names and keys its session by id: the numbers show what that costs. Runs
alternate between versions, --rounds times; a 2-core machine shared with other work varies by tens of
percent between runs, so compare within one run. Prints one JSON object and never judges the numbers.

    python benchmarks/fetch_bench.py --mib 256 --partitions 4
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import os
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any

# run from a checkout without installing: this tree's strom, not another copy on the path
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic
from kio.schema.fetch.v12 import request as v12
from kio.schema.fetch.v18 import request as v18
from kio.schema.metadata.v12.request import MetadataRequest, MetadataRequestTopic
from kio.static.primitive import i8, i32, i32Timedelta, i64

from benchmarks.peers import brokers
from strom.client.connection import BrokerConnection

RECORD_BYTES = 1024


def produce(bootstrap: str, topic: str, partitions: int, total_bytes: int) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, partitions, 1)])[topic].result(30)
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5, "batch.size": 1 << 20,
                         "compression.type": "none", "acks": 1})
    value = os.urandom(RECORD_BYTES)
    for i in range(total_bytes // RECORD_BYTES):
        while True:
            try:
                producer.produce(topic, value, partition=i % partitions)
                break
            except BufferError:
                producer.poll(0.05)
    assert producer.flush(120) == 0


def fetch_request(version: int, topic: str, topic_id: uuid.UUID, offsets: dict[int, int], max_bytes: int,
                  session_id: int, epoch: int) -> Any:
    wait = i32Timedelta.parse(datetime.timedelta(0))
    common: dict[str, Any] = dict(max_wait=wait, min_bytes=i32(1), max_bytes=i32(1 << 30),
                                  isolation_level=i8(0), session_id=i32(session_id),
                                  session_epoch=i32(epoch), forgotten_topics_data=(), rack_id="")
    if version == 12:
        parts12 = tuple(
            v12.FetchPartition(partition=i32(p), fetch_offset=i64(o), partition_max_bytes=i32(max_bytes))
            for p, o in offsets.items()
        )
        topics12 = (v12.FetchTopic(topic=topic, partitions=parts12),) if parts12 else ()
        return v12.FetchRequest(replica_id=i32(-1), topics=topics12, **common)
    parts18 = tuple(
        v18.FetchPartition(partition=i32(p), fetch_offset=i64(o), partition_max_bytes=i32(max_bytes))
        for p, o in offsets.items()
    )
    topics18 = (v18.FetchTopic(topic_id=topic_id, partitions=parts18),) if parts18 else ()
    return v18.FetchRequest(topics=topics18, **common)


def _next_offset(records: bytes | None, current: int) -> tuple[int, int]:
    """The offset after the last whole batch of `records`, and its record bytes."""
    data = bytes(records or b"")
    pos, nxt = 0, current
    while pos + 61 <= len(data):
        base = int.from_bytes(data[pos:pos + 8], "big", signed=True)
        length = int.from_bytes(data[pos + 8:pos + 12], "big", signed=True)
        if pos + 12 + length > len(data):
            break
        last_delta = int.from_bytes(data[pos + 23:pos + 27], "big", signed=True)
        nxt = base + last_delta + 1
        pos += 12 + length
    return nxt, pos


async def read_all(bootstrap: str, topic: str, topic_id: uuid.UUID, partitions: int, version: int,
                   session: bool, max_bytes: int, ends: dict[int, int]) -> dict[str, float]:
    host, port = bootstrap.rsplit(":", 1)
    conn = await BrokerConnection.open(host, int(port))
    offsets = {p: 0 for p in range(partitions)}
    session_id, epoch = 0, (0 if session else -1)
    total = 0
    latencies: list[float] = []
    started = time.perf_counter()
    try:
        while any(offsets[p] < ends[p] for p in offsets):
            # a session remembers the partitions; after the first request only moved offsets are sent
            wanted = offsets
            if session and epoch > 0:
                wanted = {p: o for p, o in offsets.items() if o < ends[p]}
            request = fetch_request(version, topic, topic_id, wanted, max_bytes, session_id, epoch)
            sent = time.perf_counter()
            resp = await conn.request(request, timeout=60)
            latencies.append(time.perf_counter() - sent)
            assert resp.error_code == 0, resp.error_code
            if session:
                session_id, epoch = int(resp.session_id), epoch + 1
            for t in resp.responses:
                for part in t.partitions:
                    assert part.error_code == 0, part.error_code
                    p = int(part.partition_index)
                    offsets[p], size = _next_offset(part.records, offsets[p])
                    total += size
    finally:
        await conn.close()
    elapsed = time.perf_counter() - started
    return {"mb_per_s": round(total / elapsed / 1e6, 1), "requests_per_s": round(len(latencies) / elapsed),
            "median_request_ms": round(statistics.median(latencies) * 1000, 3), "bytes": total}


async def topic_info(bootstrap: str, topic: str) -> tuple[uuid.UUID, dict[int, int]]:
    host, port = bootstrap.rsplit(":", 1)
    conn = await BrokerConnection.open(host, int(port))
    try:
        md = await conn.request(MetadataRequest(topics=(MetadataRequestTopic(topic_id=None, name=topic),),
                                                allow_auto_topic_creation=False,
                                                include_topic_authorized_operations=False))
        topic_id = md.topics[0].topic_id
        ends = {}
        for p in range(len(md.topics[0].partitions)):
            req = fetch_request(12, topic, topic_id, {p: 0}, 1, 0, -1)
            resp = await conn.request(req)
            ends[p] = int(resp.responses[0].partitions[0].high_watermark)
        return topic_id, ends
    finally:
        await conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--mib", type=int, default=256, help="MiB to write and read back")
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--max-bytes", type=int, default=1 << 20, help="partition max bytes per request")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    proc = brokers.start_strom()
    try:
        topic = "fetch-bench"
        produce(proc.bootstrap, topic, args.partitions, args.mib << 20)
        topic_id, ends = asyncio.run(topic_info(proc.bootstrap, topic))
        runs: dict[str, list[dict[str, float]]] = {}
        for _ in range(args.rounds):
            for version in (12, 18):
                for session in (False, True):
                    name = f"v{version}_{'session' if session else 'sessionless'}"
                    result = asyncio.run(read_all(proc.bootstrap, topic, topic_id, args.partitions, version,
                                                  session, args.max_bytes, ends))
                    runs.setdefault(name, []).append(result)
        summary = {name: {key: statistics.median(r[key] for r in results) for key in results[0]}
                   for name, results in runs.items()}
        print(json.dumps({"mib": args.mib, "partitions": args.partitions, "max_bytes": args.max_bytes,
                          "rounds": args.rounds, "median": summary, "runs": runs}, indent=2))
    finally:
        proc.stop()


if __name__ == "__main__":
    main()
