"""KRaft cluster timings, Strom beside Apache Kafka 4.4, each a cluster of three combined nodes
(process.roles=broker,controller, static controller.quorum.voters) started the same way from
server.properties on the same machine, one kind after the other (benchmarks.peers.mixed_cluster):

- elect_and_serve_s: from launching the three processes until the quorum has a leader and a CreateTopics
  of one partition with replication factor 3 succeeded through the brokers (JVM start-up included for
  Kafka, interpreter start-up for Strom);
- create_partitions_s: from a CreateTopics of --partitions partitions (replication factor 3, in topics of
  100 partitions, one request) until Metadata shows a leader for every one of them (both name a leader
  as soon as their metadata does, before the leader has opened the partition's log);
  create_partitions_writable_s: until a record with acks=all was acknowledged by every partition, which
  both reach only with every replica's log created;
- failover_elected_s / failover_serving_s: kill -9 of the active controller until another controller
  reports itself the quorum's leader (DescribeQuorum), and until a CreateTopics (replication factor 2:
  the killed node was a broker too; each try given 2 s) succeeds again.
  Both runs use controller.quorum.election.timeout.ms=1000 and fetch timeout 2000, so the figure is
  dominated by those timeouts on both.

Prints JSON; never passes or fails on speed.

    python benchmarks/kraft_bench.py [--kinds strom,kafka] [--partitions 2000] [--rounds 1]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

# run from a checkout without installing: this tree's strom, not another copy on the path
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.peers.mixed_cluster import MixedCluster

NODES = (1, 2, 3)
SETTINGS = {
    "controller.quorum.election.timeout.ms": "1000",
    "controller.quorum.fetch.timeout.ms": "2000",
    "broker.session.timeout.ms": "3000",
    "broker.heartbeat.interval.ms": "500",
    "offsets.topic.replication.factor": "3",
    "num.partitions": "1",
}
TOPIC_SIZE = 100


def _until(condition: Callable[[], bool], timeout: float, what: str) -> float:
    """Seconds until `condition` holds, polling every 20 ms."""
    start = time.monotonic()
    while not condition():
        if time.monotonic() - start > timeout:
            raise TimeoutError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)
    return time.monotonic() - start


def _admin(cluster: MixedCluster) -> object:
    from confluent_kafka.admin import AdminClient

    return AdminClient(
        {"bootstrap.servers": cluster.bootstrap_servers, "socket.connection.setup.timeout.ms": 2000,
         "log_level": 3}
    )  # fmt: skip


def _create(
    cluster: MixedCluster, topics: dict[str, int], replication_factor: int = 3, timeout: float = 30
) -> bool:
    from confluent_kafka.admin import NewTopic

    try:
        admin = _admin(cluster)
        futures = admin.create_topics(  # type: ignore[attr-defined]
            [NewTopic(name, partitions, replication_factor) for name, partitions in topics.items()],
            request_timeout=timeout,
        )
        for future in futures.values():
            future.result(timeout)
        return True
    except Exception:  # not served yet: the caller polls
        return False


def _leaders_everywhere(cluster: MixedCluster, topics: dict[str, int]) -> bool:
    try:
        listed = _admin(cluster).list_topics(timeout=10).topics  # type: ignore[attr-defined]
    except Exception:  # not served yet: the caller polls
        return False
    for name, partitions in topics.items():
        meta = listed.get(name)
        if meta is None or meta.error is not None or len(meta.partitions) != partitions:
            return False
        if any(p.leader < 0 for p in meta.partitions.values()):
            return False
    return True


def _write_everywhere(cluster: MixedCluster, topics: dict[str, int]) -> None:
    """One record to every partition with acks=all, retried until each is acknowledged."""
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": cluster.bootstrap_servers, "acks": "all", "log_level": 3,
                         "delivery.timeout.ms": 600_000, "linger.ms": 5})  # fmt: skip
    failed: list[object] = []
    for name, partitions in topics.items():
        for p in range(partitions):
            producer.produce(name, b"v", partition=p, on_delivery=lambda err, _m: err and failed.append(err))
    if producer.flush(600) != 0 or failed:
        raise RuntimeError(f"records not acknowledged: {failed[:3]}")


def _round(kafka: bool, partitions: int) -> dict[str, float]:
    with MixedCluster(combined=len(NODES), kafka=set(NODES) if kafka else (), settings=SETTINGS) as cluster:
        start = time.monotonic()
        for node in NODES:
            cluster.start(node, wait=False)
        _until(lambda: cluster.active_controller() is not None, 120, "a quorum leader")
        _until(lambda: _create(cluster, {f"ready-{uuid.uuid4().hex[:6]}": 1}), 120, "a first CreateTopics")
        elect_and_serve = time.monotonic() - start

        topics = {f"bench-{i}": TOPIC_SIZE for i in range(max(1, partitions // TOPIC_SIZE))}
        start = time.monotonic()
        assert _create(cluster, topics), "CreateTopics failed"
        _until(lambda: _leaders_everywhere(cluster, topics), 600, "a leader for every partition")
        create_partitions = time.monotonic() - start
        _write_everywhere(cluster, topics)
        writable = time.monotonic() - start

        active = cluster.active_controller()
        assert active is not None
        start = time.monotonic()
        cluster.kill(active[0])
        others = [n for n in NODES if n != active[0]]
        _until(lambda: (now := cluster.active_controller(others)) is not None and now[0] != active[0], 60,
               "a new quorum leader")  # fmt: skip
        elected = time.monotonic() - start
        # replication factor 2: the killed node is also one of the three brokers. Each try gives up after
        # 2 s: Metadata may still name the killed node as the controller (Kafka's brokers name a random
        # unfenced broker, and the killed one stays unfenced for broker.session.timeout.ms), and a request
        # queued for it would otherwise wait out a 30 s timeout, on either kind
        _until(lambda: _create(cluster, {f"after-{uuid.uuid4().hex[:6]}": 1}, 2, timeout=2), 60,
               "CreateTopics after it")  # fmt: skip
        return {
            "elect_and_serve_s": round(elect_and_serve, 3),
            "create_partitions_s": round(create_partitions, 3),
            "create_partitions_writable_s": round(writable, 3),
            "failover_elected_s": round(elected, 3),
            "failover_serving_s": round(time.monotonic() - start, 3),
        }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--kinds", default="strom,kafka")
    parser.add_argument("--partitions", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    report: dict[str, object] = {
        "benchmark": "kraft_cluster",
        "nodes": f"{len(NODES)} combined (broker,controller)",
        "partitions": (args.partitions // TOPIC_SIZE) * TOPIC_SIZE,
        "replication_factor": 3,
    }
    for kind in args.kinds.split(","):
        rounds = []
        for _ in range(args.rounds):
            rounds.append(_round(kind == "kafka", args.partitions))
            print(kind, json.dumps(rounds[-1]), file=sys.stderr, flush=True)  # progress of a long run
        report[kind] = {key: statistics.median(r[key] for r in rounds) for key in rounds[0]}
        if args.rounds > 1:
            report[kind]["rounds"] = rounds  # type: ignore[index]
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
