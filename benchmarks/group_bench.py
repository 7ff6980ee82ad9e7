"""Rebalance time of a group coordinator for groups of 1, 10 and 100 members, with the classic protocol
(JoinGroup/SyncGroup) and the consumer protocol (KIP-848 ConsumerGroupHeartbeat), on Strom and on Apache
Kafka 4.4 started one after the other on the same machine (benchmarks.peers). Prints JSON; never passes or
fails on speed.

- classic: time from the last member's first JoinGroup to every member holding its SyncGroup answer.
  Members are raw protocol clients so that 100 fit in one process; the leader assigns nothing (the
  coordinator's work is the subject, not the client's assignor).
- consumer: time from the last member's first heartbeat to the group being reconciled: every member at
  one epoch, holding (and having acknowledged in a heartbeat) its fair share of a 100-partition topic, the
  shares disjoint and covering every partition. Members heartbeat as a KIP-848 client does: at once when
  their assignment changed, otherwise after the heartbeat interval the coordinator gives. Both brokers run
  with group.consumer.heartbeat.interval.ms=HB (default 100, `--heartbeat-ms`), so that revocations, which
  a member only learns of from its next heartbeat, do not dominate the figure at Kafka's 5 s default, and
  with group.consumer.assignment.interval.ms=0 (both recompute a target assignment at most once a second
  by default, which would measure the interval rather than the rebalance).

Both brokers get group.initial.rebalance.delay.ms=0 (the single-node preset of benchmarks.peers).

    python benchmarks/group_bench.py [--brokers strom,kafka] [--protocols classic,consumer]
                                     [--sizes 1,10,100] [--rounds 3] [--heartbeat-ms 100]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import datetime
import json
import statistics
import struct
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kio.schema.consumer_group_heartbeat.v1.request import ConsumerGroupHeartbeatRequest, TopicPartitions
from kio.schema.create_topics.v7.request import CreatableTopic, CreateTopicsRequest
from kio.schema.describe_groups.v5.request import DescribeGroupsRequest
from kio.schema.find_coordinator.v4.request import FindCoordinatorRequest
from kio.schema.join_group.v9.request import JoinGroupRequest, JoinGroupRequestProtocol
from kio.schema.sync_group.v5.request import SyncGroupRequest, SyncGroupRequestAssignment
from kio.static.primitive import i8, i16, i32, i32Timedelta

from benchmarks.peers import brokers
from strom.client.connection import BrokerConnection

TOPIC = "bench"
PARTITIONS = 100
MEMBER_ID_REQUIRED = 79
REBALANCE_IN_PROGRESS = 27
STARTERS = {"strom": brokers.start_strom, "kafka": brokers.start_kafka}


def _ms(seconds: float) -> i32Timedelta:
    return i32Timedelta.parse(datetime.timedelta(seconds=seconds))


def subscription(topic: str) -> bytes:
    """ConsumerProtocolSubscription v0 with one topic and no user data."""
    raw = topic.encode()
    return struct.pack(">hih", 0, 1, len(raw)) + raw + struct.pack(">i", -1)


async def classic_member(host: str, port: int, group: str, joined: asyncio.Event) -> float:
    """Join and sync like a consumer would: rejoin on REBALANCE_IN_PROGRESS, with the id the coordinator
    handed out on MEMBER_ID_REQUIRED (KIP-394), until an assignment arrives. Returns when it did; any
    other error ends the benchmark."""
    conn = await BrokerConnection.open(host, port, client_id="bench", negotiate=False)
    member_id = ""
    try:
        while True:
            join = JoinGroupRequest(
                group_id=group, session_timeout=_ms(30), rebalance_timeout=_ms(60), member_id=member_id,
                group_instance_id=None, protocol_type="consumer", reason=None,
                protocols=(JoinGroupRequestProtocol(name="range", metadata=subscription(TOPIC)),),
            )
            joined.set()
            resp = await conn.request(join, timeout=120)
            if resp.error_code == MEMBER_ID_REQUIRED:
                member_id = resp.member_id
                continue
            if resp.error_code != 0:
                raise RuntimeError(f"JoinGroup failed: {resp.error_code}")
            member_id = resp.member_id
            assignments: tuple[SyncGroupRequestAssignment, ...] = ()
            if resp.leader == resp.member_id:
                assignments = tuple(
                    SyncGroupRequestAssignment(member_id=m.member_id, assignment=b"\x00\x00\x00\x00\x00\x00")
                    for m in resp.members
                )
            sync = SyncGroupRequest(
                group_id=group, generation_id=resp.generation_id, member_id=member_id, group_instance_id=None,
                protocol_type="consumer", protocol_name=resp.protocol_name, assignments=assignments,
            )
            sresp = await conn.request(sync, timeout=120)
            if sresp.error_code == 0:
                return time.perf_counter()
            if sresp.error_code != REBALANCE_IN_PROGRESS:
                raise RuntimeError(f"SyncGroup failed: {sresp.error_code}")
    finally:
        await conn.close()


@dataclass
class ReconciliationWatch:
    """What every member of a consumer-protocol group last acknowledged; `done` is set the first time the
    group is reconciled and balanced (every member at one epoch, the assignments a partition of the topic,
    each member holding its fair share: a group whose later members still wait for partitions is not
    done even though it is consistent)."""

    size: int
    acknowledged: dict[str, tuple[int, frozenset[int]]] = field(default_factory=dict)
    done: asyncio.Event = field(default_factory=asyncio.Event)
    done_at: float = 0.0

    def update(self, member_id: str, epoch: int, partitions: frozenset[int]) -> None:
        self.acknowledged[member_id] = (epoch, partitions)
        if self.done.is_set() or len(self.acknowledged) < self.size:
            return
        epochs = {e for e, _ in self.acknowledged.values()}
        owned = [p for _, parts in self.acknowledged.values() for p in parts]
        fair = (PARTITIONS // self.size, -(-PARTITIONS // self.size))
        balanced = all(fair[0] <= len(parts) <= fair[1] for _, parts in self.acknowledged.values())
        if len(epochs) == 1 and balanced and sorted(owned) == list(range(PARTITIONS)):
            self.done_at = time.perf_counter()
            self.done.set()


def owned_partitions(topic_id: uuid.UUID, owned: frozenset[int]) -> tuple[TopicPartitions, ...]:
    """The TopicPartitions a heartbeat reports: none when joining or holding nothing."""
    if not owned:
        return ()
    return (TopicPartitions(topic_id=topic_id, partitions=tuple(i32(p) for p in sorted(owned))),)


async def consumer_member(host: str, port: int, group: str, topic_id: uuid.UUID, joined: asyncio.Event,
                          watch: ReconciliationWatch) -> float:
    """A KIP-848 member: joins with epoch 0 and a client-chosen id (v1), acknowledges each new assignment
    in its next heartbeat at once, leaves (epoch -1) when the group is reconciled."""
    conn = await BrokerConnection.open(host, port, client_id="bench", negotiate=False)
    member_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
    epoch = 0
    owned: frozenset[int] = frozenset()
    first = True
    try:
        while not watch.done.is_set():
            request = ConsumerGroupHeartbeatRequest(
                group_id=group, member_id=member_id, member_epoch=i32(epoch), instance_id=None, rack_id=None,
                rebalance_timeout=_ms(60),
                subscribed_topic_names=(TOPIC,) if first else None,
                subscribed_topic_regex=None, server_assignor="uniform" if first else None,
                topic_partitions=owned_partitions(topic_id, owned),
            )
            joined.set()
            first = False
            resp = await conn.request(request, timeout=60)
            if resp.error_code != 0:
                raise RuntimeError(f"heartbeat failed: {resp.error_code} {resp.error_message}")
            epoch = int(resp.member_epoch)
            changed = False
            if resp.assignment is not None:
                new = frozenset(int(p) for tp in resp.assignment.topic_partitions for p in tp.partitions)
                changed = new != owned
                owned = new
            if changed:
                continue  # acknowledge the new assignment now, as a client does
            watch.update(member_id, epoch, owned)
            interval = resp.heartbeat_interval.total_seconds()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(watch.done.wait(), interval)
        leave = ConsumerGroupHeartbeatRequest(
            group_id=group, member_id=member_id, member_epoch=i32(-1), instance_id=None, rack_id=None,
            rebalance_timeout=_ms(60), subscribed_topic_names=None, subscribed_topic_regex=None,
            server_assignor=None, topic_partitions=None,
        )
        await conn.request(leave, timeout=30)
        return watch.done_at
    finally:
        await conn.close()


async def timed_round(size: int, start_member: Callable[[asyncio.Event], Awaitable[float]]) -> float:
    """Start `size` members at once; seconds from the last one's first request to the last one done."""
    events = [asyncio.Event() for _ in range(size)]
    tasks = [asyncio.create_task(start_member(e)) for e in events]
    for e in events:
        await e.wait()
    last_join = time.perf_counter()
    done = await asyncio.gather(*tasks)
    return max(done) - last_join


async def prepare(host: str, port: int) -> uuid.UUID:
    """Create the benchmark topic; returns its topic id (the consumer protocol names topics by id)."""
    conn = await BrokerConnection.open(host, port, client_id="bench")
    try:
        create = CreateTopicsRequest(
            topics=(CreatableTopic(name=TOPIC, num_partitions=i32(PARTITIONS), replication_factor=i16(1),
                                   assignments=(), configs=()),),
            timeout=_ms(30), validate_only=False,
        )
        resp = await conn.request(create, timeout=60)
        topic = resp.topics[0]
        if topic.error_code not in (0, 36):  # 36: TOPIC_ALREADY_EXISTS
            raise RuntimeError(f"CreateTopics failed: {topic.error_code} {topic.error_message}")
        return topic.topic_id
    finally:
        await conn.close()


async def wait_for_coordinator(host: str, port: int, group: str) -> None:
    """FindCoordinator, then DescribeGroups, until the group's coordinator answers both: the first request
    creates __consumer_offsets, and Kafka names a coordinator before it has loaded the group's partition
    (NOT_COORDINATOR meanwhile), so no round should count either."""
    conn = await BrokerConnection.open(host, port, client_id="bench", negotiate=False)
    find = FindCoordinatorRequest(key_type=i8(0), coordinator_keys=(group,))
    describe = DescribeGroupsRequest(groups=(group,), include_authorized_operations=False)
    try:
        deadline = time.monotonic() + 60
        while ((await conn.request(find)).coordinators[0].error_code != 0
               or (await conn.request(describe)).groups[0].error_code != 0):
            if time.monotonic() > deadline:
                raise RuntimeError(f"no coordinator for {group} after 60 s")
            await asyncio.sleep(0.1)
    finally:
        await conn.close()


def summary(samples: list[float]) -> dict[str, float | int]:
    return {
        "rounds": len(samples),
        "min_ms": round(min(samples) * 1000, 1),
        "median_ms": round(statistics.median(samples) * 1000, 1),
        "max_ms": round(max(samples) * 1000, 1),
    }


async def measure(
    host: str, port: int, protocols: list[str], sizes: list[int], rounds: int
) -> dict[str, object]:
    topic_id = await prepare(host, port)
    results: dict[str, object] = {}
    for protocol in protocols:
        per_size: dict[str, object] = {}
        for size in sizes:
            samples = []
            for _ in range(rounds):
                group = f"bench-{protocol}-{uuid.uuid4().hex[:8]}"
                await wait_for_coordinator(host, port, group)
                if protocol == "classic":
                    samples.append(
                        await timed_round(size, lambda e, g=group: classic_member(host, port, g, e)))
                else:
                    watch = ReconciliationWatch(size)
                    samples.append(await timed_round(
                        size, lambda e, g=group, w=watch: consumer_member(host, port, g, topic_id, e, w)))
            per_size[str(size)] = summary(samples)
        results[protocol] = per_size
    return results


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--brokers", default="strom,kafka")
    parser.add_argument("--protocols", default="classic,consumer")
    parser.add_argument("--sizes", default="1,10,100")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--heartbeat-ms", type=int, default=100)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    protocols = args.protocols.split(",")
    settings = {
        "group.consumer.heartbeat.interval.ms": str(args.heartbeat_ms),
        "group.consumer.min.heartbeat.interval.ms": str(args.heartbeat_ms),
        "group.consumer.max.size": str(max(sizes)),
        # both brokers recompute a target assignment at most once a second by default: measure without
        "group.consumer.assignment.interval.ms": "0",
    }
    report: dict[str, object] = {
        "benchmark": "group_rebalance_time",
        "partitions": PARTITIONS,
        "heartbeat_interval_ms": args.heartbeat_ms,
    }
    for name in args.brokers.split(","):
        broker = STARTERS[name](settings=settings)
        try:
            host, port = broker.bootstrap.rsplit(":", 1)
            report[name] = asyncio.run(measure(host, int(port), protocols, sizes, args.rounds))
        finally:
            broker.stop()
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
