"""Rebalance latency of the group coordinator: time from the last member's JoinGroup to every member
holding its assignment (SyncGroup answered), for groups of 1, 10 and 100 members, over the wire against
an embedded broker (group.initial.rebalance.delay.ms=0). Prints JSON; never passes or fails on speed.

Members are raw protocol clients (strom.client) so that 100 members fit in one process; each member's
subscription and assignment are the consumer protocol's bytes for one topic.

    python benchmarks/group_bench.py [--sizes 1,10,100]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import io
import json
import struct
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kio.schema.join_group.v5.request import JoinGroupRequest, JoinGroupRequestProtocol
from kio.schema.sync_group.v3.request import SyncGroupRequest, SyncGroupRequestAssignment
from kio.static.primitive import i32Timedelta

from strom.testing.embedded import EmbeddedBroker


def subscription(topic: str) -> bytes:
    raw = topic.encode()
    return struct.pack(">hih", 0, 1, len(raw)) + raw + struct.pack(">i", -1)


async def open_connection(host: str, port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection(host, port)


async def send(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: object, corr: int
) -> object:
    from kio.index import load_response_schema
    from kio.schema.request_header.v1.header import RequestHeader
    from kio.serial import entity_reader, entity_writer

    buf = io.BytesIO()
    header = RequestHeader(
        request_api_key=request.__api_key__,
        request_api_version=request.__version__,
        correlation_id=corr,
        client_id="bench",
    )
    entity_writer(RequestHeader)(buf, header)
    entity_writer(type(request))(buf, request)
    body = buf.getvalue()
    writer.write(struct.pack(">i", len(body)) + body)
    await writer.drain()
    size = struct.unpack(">i", await reader.readexactly(4))[0]
    payload = await reader.readexactly(size)
    response_cls = load_response_schema(request.__api_key__, request.__version__)
    value, _ = entity_reader(response_cls)(memoryview(payload)[4:], 0)
    return value


async def member(host: str, port: int, group: str, topic: str, joined: asyncio.Event) -> float:
    """Join and sync like a consumer would: rejoin on REBALANCE_IN_PROGRESS, with a fresh id on
    UNKNOWN_MEMBER_ID, until an assignment arrives. Returns when it did."""
    reader, writer = await open_connection(host, port)
    member_id = ""
    corr = 0
    try:
        while True:
            join = JoinGroupRequest(
                group_id=group,
                session_timeout=i32Timedelta.parse(datetime.timedelta(seconds=30)),
                rebalance_timeout=i32Timedelta.parse(datetime.timedelta(seconds=60)),
                member_id=member_id,
                group_instance_id=None,
                protocol_type="consumer",
                protocols=(JoinGroupRequestProtocol(name="range", metadata=subscription(topic)),),
            )
            joined.set()
            corr += 1
            resp = await send(reader, writer, join, corr)
            if resp.error_code != 0:
                member_id = resp.member_id if resp.error_code == 79 else ""
                continue
            member_id = resp.member_id
            assignments: tuple[SyncGroupRequestAssignment, ...] = ()
            if resp.leader == resp.member_id:
                assignments = tuple(
                    SyncGroupRequestAssignment(member_id=m.member_id, assignment=b"\x00\x00\x00\x00\x00\x00")
                    for m in resp.members
                )
            sync = SyncGroupRequest(
                group_id=group,
                generation_id=resp.generation_id,
                member_id=member_id,
                group_instance_id=None,
                assignments=assignments,
            )
            corr += 1
            sresp = await send(reader, writer, sync, corr)
            if sresp.error_code == 0:
                return time.perf_counter()
            if sresp.error_code != 27:  # not REBALANCE_IN_PROGRESS: start over
                member_id = ""
    finally:
        writer.close()


async def one_round(host: str, port: int, size: int) -> float:
    group = f"bench-{uuid.uuid4().hex[:8]}"
    events = [asyncio.Event() for _ in range(size)]
    tasks = [asyncio.create_task(member(host, port, group, "bench", e)) for e in events]
    for e in events:
        await e.wait()
    last_join = time.perf_counter()
    done = await asyncio.gather(*tasks)
    return max(done) - last_join


async def main_async(sizes: list[int], rounds: int) -> dict[str, object]:
    from kio.schema.find_coordinator.v1.request import FindCoordinatorRequest

    async with EmbeddedBroker() as broker:
        host, port = broker.bootstrap_servers.rsplit(":", 1)
        reader, writer = await open_connection(host, int(port))
        # FindCoordinator creates __consumer_offsets, as a client's first step would.
        await send(reader, writer, FindCoordinatorRequest(key="bench", key_type=0), 0)
        writer.close()
        await asyncio.sleep(0.5)
        results: dict[str, object] = {}
        for size in sizes:
            samples = [await one_round(host, int(port), size) for _ in range(rounds)]
            results[str(size)] = {
                "rounds": rounds,
                "min_ms": round(min(samples) * 1000, 2),
                "median_ms": round(sorted(samples)[len(samples) // 2] * 1000, 2),
                "max_ms": round(max(samples) * 1000, 2),
            }
        return {"benchmark": "group_rebalance_join_to_all_synced", "members": results}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="1,10,100")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    print(json.dumps(asyncio.run(main_async(sizes, args.rounds)), indent=2))


if __name__ == "__main__":
    main()
