"""Replication cost: acks=all on a replication-factor-3 topic against acks=1 on a replication-factor-1 topic,
on the same 3-broker cluster (`strom serve` processes on a real ZooKeeper, loopback), same run.

Prints one JSON object: for each case the messages and MiB per second and the delivery latency
percentiles (ms) seen by a confluent-kafka producer. Numbers only, never pass/fail.

    python benchmarks/replication_bench.py --messages 50000 --size 200
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from typing import Any

from confluent_kafka import Producer

from strom.testing.cluster import ProcessCluster, create_topic, layout, wait_until
from strom.testing.zookeeper import running_zookeeper


def run_case(cluster: ProcessCluster, topic: str, acks: str, messages: int, size: int) -> dict[str, Any]:
    producer = Producer(
        {"bootstrap.servers": cluster.bootstrap_servers, "acks": acks, "linger.ms": 5, "batch.size": 262144}
    )
    payload = b"x" * size
    latencies: list[float] = []
    errors = 0

    def done(err: object, _msg: object, sent: float) -> None:
        nonlocal errors
        if err is not None:
            errors += 1
        else:
            latencies.append((time.perf_counter() - sent) * 1000)

    # warm-up: metadata, connections, leaders known
    producer.produce(topic, payload)
    producer.flush(30)
    started = time.perf_counter()
    for i in range(messages):
        sent = time.perf_counter()
        while True:
            try:
                producer.produce(
                    topic, payload, key=str(i).encode(), on_delivery=lambda e, m, s=sent: done(e, m, s)
                )
                break
            except BufferError:
                producer.poll(0.01)
        if i % 1000 == 0:
            producer.poll(0)
    producer.flush(120)
    elapsed = time.perf_counter() - started
    latencies.sort()

    def pct(q: float) -> float:
        return round(latencies[min(len(latencies) - 1, int(q * len(latencies)))], 2) if latencies else -1.0

    return {
        "topic": topic,
        "acks": acks,
        "messages": messages,
        "message_bytes": size,
        "seconds": round(elapsed, 3),
        "messages_per_s": round(messages / elapsed),
        "mib_per_s": round(messages * size / elapsed / 2**20, 2),
        "latency_ms_p50": pct(0.5),
        "latency_ms_p99": pct(0.99),
        "latency_ms_mean": round(statistics.fmean(latencies), 2) if latencies else -1.0,
        "errors": errors,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=30000)
    parser.add_argument("--size", type=int, default=200)
    parser.add_argument("--partitions", type=int, default=3)
    args = parser.parse_args()
    with running_zookeeper() as zk, ProcessCluster(3, f"{zk.connect}/bench") as cluster:
        create_topic(cluster, "rf3", partitions=args.partitions, rf=3, min_insync_replicas="2")
        create_topic(cluster, "rf1", partitions=args.partitions, rf=1)
        wait_until(lambda: all(len(i) == 3 for _l, _r, i in layout(cluster, "rf3").values()), what="ISRs")
        results = [
            run_case(cluster, "rf1", "1", args.messages, args.size),
            run_case(cluster, "rf3", "all", args.messages, args.size),
        ]
    rf1, rf3 = results
    print(
        json.dumps(
            {
                "benchmark": "replication",
                "brokers": 3,
                "partitions": args.partitions,
                "cases": results,
                "rf3_acks_all_vs_rf1_acks_1_throughput": round(
                    rf3["messages_per_s"] / rf1["messages_per_s"], 3
                ),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
