"""Share group (KIP-932, Kafka's queues) consume throughput with 1, 4 and 16 members on one partition, on
Strom and on Apache Kafka 4.4 started one after the other on the same machine (benchmarks.peers). Prints
JSON; never passes or fails on speed.

The consumers are Kafka 4.4's own: `kafka-share-consumer-perf-test` (ShareConsumerPerformance, one JVM
with `--threads` KafkaShareConsumers in the implicit acknowledgement mode, so every record is fetched,
acquired and acknowledged). Each member count gets a fresh group whose start offset is set to the earliest
first (kafka-share-groups --reset-offsets --to-earliest, before any member joins), so every run consumes
the same `--records` records that were produced once with confluent-kafka. The figures are the tool's
own (from its first fetch to the last record) and the records each member got, which shows how evenly
one partition's records were shared.

    python benchmarks/share_bench.py [--brokers strom,kafka] [--members 1,4,16] [--records 200000]
                                     [--size 512]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

from benchmarks.peers import brokers, tools

TOPIC = "share-bench"
STARTERS = {"strom": brokers.start_strom, "kafka": brokers.start_kafka}
SHARE_GROUPS = "org.apache.kafka.tools.consumer.group.ShareGroupCommand"
PERF_TOOL = "org.apache.kafka.tools.ShareConsumerPerformance"


def fill_topic(bootstrap: str, records: int, size: int) -> None:
    """One partition holding `records` incompressible values of `size` bytes."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(TOPIC, 1, 1)])[TOPIC].result(60)
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5, "batch.size": 1 << 20})
    value = uuid.uuid4().bytes * (size // 16 + 1)
    for i in range(records):
        while True:
            try:
                producer.produce(TOPIC, value[i % 16: i % 16 + size])
                break
            except BufferError:
                producer.poll(0.1)
    if producer.flush(120) != 0:
        raise RuntimeError("records still unsent after 120 s")


def run_tool(main_class: str, *args: str, timeout: float) -> str:
    done = subprocess.run(tools.java_command(main_class, *args, heap="1g"), capture_output=True, text=True,
                          timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(f"{main_class} failed:\n{done.stdout}\n{done.stderr[-3000:]}")
    return done.stdout


def consume(bootstrap: str, members: int, records: int) -> dict[str, object]:
    group = f"share-bench-{members}-{uuid.uuid4().hex[:6]}"
    run_tool(SHARE_GROUPS, "--bootstrap-server", bootstrap, "--reset-offsets", "--to-earliest",
             "--group", group, "--topic", TOPIC, "--execute", timeout=120)
    out = run_tool(PERF_TOOL, "--bootstrap-server", bootstrap, "--topic", TOPIC, "--group", group,
                   "--num-records", str(records), "--threads", str(members), "--timeout", "30000",
                   "--show-consumer-stats", timeout=600)
    # Per member: "Share consumer N having client id ... consumption metrics- start, end, MB, MB/s, rec/s,
    # records, fetch ms"; then one line of the same columns for the whole run.
    lines = out.splitlines()
    per_member = [int(line.rsplit(",", 2)[1]) for line in lines if line.startswith("Share consumer")]
    total = [line for line in lines if line[:1].isdigit()][-1].split(", ")
    return {
        "records": int(total[5]),
        "mb_per_s": float(total[3]),
        "records_per_s": round(float(total[4])),
        "elapsed_ms": int(total[6]),
        "records_per_member": sorted(per_member, reverse=True),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--brokers", default="strom,kafka")
    parser.add_argument("--members", default="1,4,16")
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--size", type=int, default=512)
    args = parser.parse_args()
    report: dict[str, object] = {
        "benchmark": "share_group_consume_one_partition", "records": args.records, "value_bytes": args.size,
    }
    for name in args.brokers.split(","):
        broker = STARTERS[name]()
        try:
            fill_topic(broker.bootstrap, args.records, args.size)
            report[name] = {
                m: consume(broker.bootstrap, int(m), args.records) for m in args.members.split(",")
            }
        finally:
            broker.stop()
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
