"""Broker throughput, side by side: Strom, Apache Kafka 4.x and Tansu, driven by confluent-kafka.

For each broker and record size (default 1 KiB and 16 KiB, incompressible values, no compression,
acks=all, one partition) it produces a bounded number of bytes, then reads them back from offset 0 with
assign(), and prints JSON: MB/s and records/s for produce and consume, and the ratios strom/tansu and
strom/kafka. Brokers run one after the other on loopback (never concurrently: the machine is small), each
with a short warm-up. Every loop is bounded in bytes and in time. Prints numbers only; never pass/fail.

`--tls` also runs Strom and Kafka with an SSL listener (client certificates required, certificates made
with openssl for the run) and drives them through it: results `strom-tls` and `kafka-tls`, with the ratios
strom-tls/kafka-tls and strom-tls/strom (what TLS costs; Strom's fetches cannot use sendfile through TLS).

    python benchmarks/broker_bench.py [--brokers strom,kafka,tansu] [--mib 32] [--sizes 1024,16384] [--tls]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from benchmarks.peers import brokers, tools
from benchmarks.peers.process import BrokerProcess
from strom.testing.certs import Pki, make_pki

MB = 1_000_000
STARTERS: dict[str, Callable[[], BrokerProcess]] = {
    "strom": lambda: brokers.start_strom(),
    "kafka": lambda: brokers.start_kafka(),
    "tansu": lambda: brokers.start_tansu(),
}


Client = dict[str, Any]
"""librdkafka settings that reach the broker: bootstrap.servers, and the ssl.* keys on a TLS run."""


def create_topic(client: Client, partitions: int) -> str:
    name = f"bench-{uuid.uuid4().hex[:10]}"
    admin = AdminClient(client)
    admin.create_topics([NewTopic(name, partitions, 1)])[name].result(timeout=30)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        md = admin.list_topics(name, timeout=5).topics.get(name)
        if md is not None and md.error is None and len(md.partitions) == partitions \
                and all(p.leader >= 0 for p in md.partitions.values()):
            return name
        time.sleep(0.1)
    raise RuntimeError(f"topic {name} not ready")


def new_producer(client: Client) -> Producer:
    return Producer({**client, "acks": "all", "linger.ms": 5,
                     "batch.size": 1_000_000, "queue.buffering.max.kbytes": 262_144,
                     "compression.codec": "none", "enable.idempotence": False})


def produce(producer: Producer, topic: str, size: int, total_bytes: int, time_limit: float,
            clock: Callable[[], float] = time.perf_counter) -> dict[str, float]:
    """Produce up to total_bytes of `size`-byte records (stops early at time_limit), wait for every ack."""
    value = os.urandom(size)
    count = max(1, total_bytes // size)
    errors: list[Any] = []
    delivered = 0

    def on_delivery(err: Any, _msg: Any) -> None:
        nonlocal delivered
        if err is not None:
            errors.append(err)
        else:
            delivered += 1

    start = clock()
    sent = 0
    while sent < count and clock() - start < time_limit:
        try:
            producer.produce(topic, value=value, on_delivery=on_delivery)
            sent += 1
        except BufferError:
            producer.poll(0.01)
        if sent % 1000 == 0:
            producer.poll(0)
    remaining = producer.flush(max(5.0, time_limit - (clock() - start) + 30))
    elapsed = clock() - start
    if errors or remaining or delivered != sent:
        raise RuntimeError(f"produce failed: {delivered}/{sent} delivered, errors {errors[:3]}")
    return _rates(sent, sent * size, elapsed)


def consume(client: Client, topic: str, partitions: int, expected: int, time_limit: float,
            clock: Callable[[], float] = time.perf_counter) -> dict[str, float]:
    """Read `expected` records from offset 0 of every partition with assign()."""
    consumer = Consumer({**client, "group.id": "bench-unused",
                         "enable.auto.commit": False, "fetch.max.bytes": 52_428_800,
                         "max.partition.fetch.bytes": 10_485_760, "queued.max.messages.kbytes": 262_144})
    consumer.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
    got = 0
    nbytes = 0
    start = clock()
    try:
        while got < expected and clock() - start < time_limit:
            # Never ask for more than what is left: consume() waits its full timeout for a short batch.
            for msg in consumer.consume(num_messages=min(10_000, expected - got), timeout=0.5):
                if msg.error():
                    raise KafkaException(msg.error())
                got += 1
                nbytes += len(msg.value())
        elapsed = clock() - start
    finally:
        consumer.close()
    return _rates(got, nbytes, elapsed)


def _rates(records: int, nbytes: int, seconds: float) -> dict[str, float]:
    return {"records": records, "bytes": nbytes, "seconds": round(seconds, 3),
            "mb_per_s": round(nbytes / MB / seconds, 2), "records_per_s": round(records / seconds, 1)}


def start_tls(name: str, pki: Pki) -> tuple[BrokerProcess, Client]:
    """Strom or Kafka with an SSL listener beside PLAINTEXT, from the same properties; the client settings
    of the SSL listener."""
    ssl_port = tools.free_port()
    settings = {"ssl.keystore.type": "PEM", "ssl.keystore.location": str(pki.broker.keystore),
                "ssl.truststore.type": "PEM", "ssl.truststore.location": str(pki.ca),
                "ssl.client.auth": "required"}
    start = brokers.start_strom if name == "strom" else brokers.start_kafka
    proc = start(settings=settings, listeners={"SSL": ("SSL", ssl_port)})
    return proc, {"bootstrap.servers": f"127.0.0.1:{ssl_port}", "security.protocol": "SSL",
                  "ssl.ca.location": str(pki.ca), "ssl.certificate.location": str(pki.client.cert),
                  "ssl.key.location": str(pki.client.key)}


def bench_broker(name: str, sizes: list[int], total_bytes: int, partitions: int,
                 time_limit: float, pki: Pki | None = None) -> dict[str, Any]:
    if pki is not None:
        proc, client = start_tls(name, pki)
    else:
        proc = STARTERS[name]()
        client = {"bootstrap.servers": proc.bootstrap}
    try:
        out: dict[str, Any] = {}
        for size in sizes:
            topic = create_topic(client, partitions)
            producer = new_producer(client)
            # Warm-up on the same topic and producer (connections, metadata, the JVM's JIT), not counted.
            warm = produce(producer, topic, size, min(total_bytes // 4, 8 * MB), time_limit)
            p = produce(producer, topic, size, total_bytes, time_limit)
            expected = int(warm["records"] + p["records"])
            c = consume(client, topic, partitions, expected, time_limit)
            if c["records"] != expected:
                c["incomplete"] = True
            out[str(size)] = {"produce": p, "consume": c}
        return out
    finally:
        proc.stop()


def ratios(results: dict[str, Any], num: str, den: str) -> dict[str, Any]:
    if num not in results or den not in results or "error" in results[num] or "error" in results[den]:
        return {}
    out = {}
    for size, r in results[num].items():
        other = results[den][size]
        out[size] = {phase: round(r[phase]["mb_per_s"] / other[phase]["mb_per_s"], 3)
                     for phase in ("produce", "consume") if other[phase]["mb_per_s"]}
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--brokers", default="strom,kafka,tansu")
    parser.add_argument("--sizes", default="1024,16384", help="record value sizes in bytes")
    parser.add_argument("--mib", type=float, default=128, help="MiB produced per broker and size")
    parser.add_argument("--partitions", type=int, default=1)
    parser.add_argument("--time-limit", type=float, default=60, help="seconds per produce or consume phase")
    parser.add_argument("--tls", action="store_true", help="also run strom and kafka through an SSL listener")
    args = parser.parse_args(argv)

    names = [b for b in args.brokers.split(",") if b]
    unknown = set(names) - set(STARTERS)
    if unknown:
        parser.error(f"unknown brokers {sorted(unknown)}; choose from {sorted(STARTERS)}")
    if {"kafka", "tansu"} & set(names):
        tools.ensure_tools()
    sizes = [int(s) for s in args.sizes.split(",")]
    total = int(args.mib * 1024 * 1024)

    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="strom-bench-pki-") as pki_dir:
        pki = make_pki(Path(pki_dir)) if args.tls else None
        runs = [(name, None) for name in names]
        runs += [(name, pki) for name in names if pki is not None and name in ("strom", "kafka")]
        for name, run_pki in runs:
            key = f"{name}-tls" if run_pki is not None else name
            try:
                results[key] = bench_broker(name, sizes, total, args.partitions, args.time_limit, run_pki)
            except Exception as exc:  # one broker failing must not hide the others' numbers
                results[key] = {"error": f"{type(exc).__name__}: {exc}"[:2000]}
    report = {
        "config": {"sizes": sizes, "mib_per_case": args.mib, "partitions": args.partitions, "acks": "all",
                   "compression": "none", "client": "confluent-kafka",
                   "note": "consume also reads the warm-up records (a quarter of the bytes, at most 8 MiB)",
                   "kafka_version": tools.KAFKA_VERSION,
                   "python": platform.python_version(), "cpus": os.cpu_count()},
        "results": results,
        "ratios": {"strom/tansu": ratios(results, "strom", "tansu"),
                   "strom/kafka": ratios(results, "strom", "kafka"),
                   "strom-tls/kafka-tls": ratios(results, "strom-tls", "kafka-tls"),
                   "strom-tls/strom": ratios(results, "strom-tls", "strom")},
    }
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
