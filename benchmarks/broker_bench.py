"""Broker throughput, side by side: Strom, Apache Kafka 4.x and Tansu, driven by confluent-kafka.

For each broker and record size (default 1 KiB and 16 KiB, incompressible values, no compression,
acks=all, one partition) it produces a bounded number of bytes, then reads them back from offset 0 with
assign(), and prints JSON: MB/s and records/s for produce and consume, and the ratios strom/tansu and
strom/kafka. Brokers run one after the other on loopback (never concurrently: the machine is small), each
with a short warm-up. Every loop is bounded in bytes and in time. Prints numbers only; never pass/fail.

After the throughput phases each case measures latency at a fixed moderate rate (`--latency-rate`
records/s for `--latency-seconds`, acks=all, linger.ms `--latency-linger-ms` (librdkafka's default 5),
at most 5 requests in flight as the Java producer): produce latency per record from send to its
delivery callback, and end-to-end latency from send to receipt by a consumer reading the same partition
(the send time travels in the value); p50, p99 and max in milliseconds.

`--tls` also runs Strom and Kafka through an SSL listener (client certificates required) and through a
SASL_SSL listener (SCRAM-SHA-512 over TLS, no client certificate), each beside the PLAINTEXT one and
configured from the same broker properties for both (certificates made with openssl for the run; the SCRAM
user is created with AlterUserScramCredentials over PLAINTEXT): results `strom-tls`, `kafka-tls`,
`strom-sasl_ssl`, `kafka-sasl_ssl`, with the ratios of Strom to Kafka per protocol and strom-tls/strom
(what TLS costs; Strom's fetches cannot use sendfile through TLS). `--security` picks the protocols.

    python benchmarks/broker_bench.py [--brokers strom,kafka,tansu] [--mib 32] [--sizes 1024,16384] [--tls]
        [--security plaintext,ssl,sasl_ssl] [--latency-rate 2000] [--latency-seconds 5]
        [--latency-linger-ms 5]
"""

from __future__ import annotations

import argparse
import json
import math
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
from confluent_kafka.admin import (
    AdminClient,
    NewTopic,
    ScramCredentialInfo,
    ScramMechanism,
    UserScramCredentialUpsertion,
)

from benchmarks.peers import brokers, tools
from benchmarks.peers.process import BrokerProcess
from strom.testing.certs import Pki, make_pki

MB = 1_000_000
SECURITY = ("plaintext", "ssl", "sasl_ssl")
RESULT_SUFFIX = {"plaintext": "", "ssl": "-tls", "sasl_ssl": "-sasl_ssl"}
SCRAM_USER, SCRAM_PASSWORD = "bench", "bench-secret"
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
    deadline = time.monotonic() + 30
    while True:
        try:
            admin.create_topics([NewTopic(name, partitions, 1)])[name].result(timeout=10)
            break
        except KafkaException:
            # a SCRAM user created a moment ago may not be applied yet (Kafka's metadata log): retry
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        md = admin.list_topics(name, timeout=5).topics.get(name)
        if (
            md is not None
            and md.error is None
            and len(md.partitions) == partitions
            and all(p.leader >= 0 for p in md.partitions.values())
        ):
            return name
        time.sleep(0.1)
    raise RuntimeError(f"topic {name} not ready")


def new_producer(client: Client) -> Producer:
    return Producer(
        {
            **client,
            "acks": "all",
            "linger.ms": 5,
            "batch.size": 1_000_000,
            "queue.buffering.max.kbytes": 262_144,
            "compression.codec": "none",
            "enable.idempotence": False,
        }
    )


def produce(
    producer: Producer,
    topic: str,
    size: int,
    total_bytes: int,
    time_limit: float,
    clock: Callable[[], float] = time.perf_counter,
) -> dict[str, float]:
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


def consume(
    client: Client,
    topic: str,
    partitions: int,
    expected: int,
    time_limit: float,
    clock: Callable[[], float] = time.perf_counter,
) -> dict[str, float]:
    """Read `expected` records from offset 0 of every partition with assign()."""
    consumer = Consumer(
        {
            **client,
            "group.id": "bench-unused",
            "enable.auto.commit": False,
            "fetch.max.bytes": 52_428_800,
            "max.partition.fetch.bytes": 10_485_760,
            "queued.max.messages.kbytes": 262_144,
        }
    )
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


def latency(
    client: Client,
    topic: str,
    size: int,
    rate: float,
    seconds: float,
    linger_ms: float = 5,
    clock: Callable[[], float] = time.perf_counter,
) -> dict[str, Any]:
    """Send `size`-byte records at `rate` per second for `seconds` (acks=all) while a consumer
    reads the partition from its end: per-record produce latency (send to delivery callback) and
    end-to-end latency (send to receipt; the send time is the value's first 8 bytes). Milliseconds."""
    producer = Producer(
        {
            **client,
            "acks": "all",
            "linger.ms": linger_ms,
            # as the Java producer (and an idempotent librdkafka one): with librdkafka's default of a
            # million, a broker that serves one connection's requests one at a time (Kafka) falls
            # behind for good once it answers slower than one request per linger.ms
            "max.in.flight.requests.per.connection": 5,
            "compression.codec": "none",
            "enable.idempotence": False,
        }
    )
    consumer = Consumer(
        {**client, "group.id": "bench-unused", "enable.auto.commit": False, "fetch.wait.max.ms": 100}
    )
    _low, high = consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)
    consumer.assign([TopicPartition(topic, 0, high)])
    filler = os.urandom(max(0, size - 8))
    produce_ms: list[float] = []
    e2e_ms: list[float] = []
    errors: list[Any] = []
    count = max(1, int(rate * seconds))
    interval = 1.0 / rate

    def on_delivery(err: Any, msg: Any) -> None:
        if err is not None:
            errors.append(err)
        else:
            sent = int.from_bytes(msg.value()[:8], "big") / 1e9
            produce_ms.append((clock() - sent) * 1000)

    def receive() -> None:
        for msg in consumer.consume(num_messages=1000, timeout=0):
            if msg.error() is None:
                e2e_ms.append((clock() - int.from_bytes(msg.value()[:8], "big") / 1e9) * 1000)

    try:
        # one record through before the clock starts: connections, metadata, the consumer's first fetch
        producer.produce(topic, value=bytes(size), partition=0)
        producer.flush(30)
        warm_deadline = clock() + 30
        while not consumer.consume(num_messages=1, timeout=0.1) and clock() < warm_deadline:
            pass
        start = clock()
        for i in range(count):
            due = start + i * interval
            while (now := clock()) < due:
                producer.poll(0)
                receive()
                if due - now > 0.002:
                    time.sleep(min(due - now - 0.001, 0.01))
            producer.produce(
                topic,
                value=int(clock() * 1e9).to_bytes(8, "big") + filler,
                partition=0,
                on_delivery=on_delivery,
            )
            producer.poll(0)
        producer.flush(30)
        deadline = clock() + 30
        while len(e2e_ms) < count and clock() < deadline:
            receive()
            time.sleep(0.001)
        achieved = count / (clock() - start)
    finally:
        consumer.close()
    out: dict[str, Any] = {
        "rate": rate,
        "records": count,
        "achieved_rate": round(achieved, 1),
        "produce_ms": _percentiles(produce_ms),
        "end_to_end_ms": _percentiles(e2e_ms),
    }
    if errors or len(produce_ms) != count or len(e2e_ms) != count:
        out["incomplete"] = {
            "delivered": len(produce_ms),
            "received": len(e2e_ms),
            "errors": [str(e) for e in errors[:3]],
        }
    return out


def _percentiles(samples: list[float]) -> dict[str, float]:
    if not samples:
        return {}
    ordered = sorted(samples)

    def at(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1)], 2)

    return {"p50": at(0.5), "p99": at(0.99), "max": round(ordered[-1], 2)}


def _rates(records: int, nbytes: int, seconds: float) -> dict[str, float]:
    return {
        "records": records,
        "bytes": nbytes,
        "seconds": round(seconds, 3),
        "mb_per_s": round(nbytes / MB / seconds, 2),
        "records_per_s": round(records / seconds, 1),
    }


def start_secured(name: str, security: str, pki: Pki) -> tuple[BrokerProcess, Client]:
    """Strom or Kafka with an SSL (client certificates required) or SASL_SSL (SCRAM-SHA-512) listener
    beside PLAINTEXT, both brokers from the same properties; the client settings of that listener."""
    port = tools.free_port()
    settings = {
        "ssl.keystore.type": "PEM",
        "ssl.keystore.location": str(pki.broker.keystore),
        "ssl.truststore.type": "PEM",
        "ssl.truststore.location": str(pki.ca),
    }
    tls = {"bootstrap.servers": f"127.0.0.1:{port}", "ssl.ca.location": str(pki.ca)}
    if security == "ssl":
        settings["ssl.client.auth"] = "required"
        client = {
            **tls,
            "security.protocol": "SSL",
            "ssl.certificate.location": str(pki.client.cert),
            "ssl.key.location": str(pki.client.key),
        }
    else:
        settings["sasl.enabled.mechanisms"] = "SCRAM-SHA-512"
        settings["listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config"] = (
            "org.apache.kafka.common.security.scram.ScramLoginModule required;"
        )
        client = {
            **tls,
            "security.protocol": "SASL_SSL",
            "sasl.mechanism": "SCRAM-SHA-512",
            "sasl.username": SCRAM_USER,
            "sasl.password": SCRAM_PASSWORD,
        }
    start = brokers.start_strom if name == "strom" else brokers.start_kafka
    proc = start(settings=settings, listeners={security.upper(): (security.upper(), port)})
    if security == "sasl_ssl":
        try:
            admin = AdminClient({"bootstrap.servers": proc.bootstrap})
            info = ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, 8192)
            upsert = UserScramCredentialUpsertion(SCRAM_USER, info, SCRAM_PASSWORD.encode())
            for future in admin.alter_user_scram_credentials([upsert]).values():
                future.result(timeout=30)
        except BaseException:
            proc.stop()
            raise
    return proc, client


def bench_broker(
    name: str,
    sizes: list[int],
    total_bytes: int,
    partitions: int,
    time_limit: float,
    security: str = "plaintext",
    pki: Pki | None = None,
    latency_rate: float = 2000,
    latency_seconds: float = 5,
    latency_linger_ms: float = 5,
) -> dict[str, Any]:
    if security != "plaintext":
        assert pki is not None
        proc, client = start_secured(name, security, pki)
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
            if latency_seconds > 0:
                out[str(size)]["latency"] = latency(
                    client, topic, size, latency_rate, latency_seconds, latency_linger_ms
                )
        return out
    finally:
        proc.stop()


def ratios(results: dict[str, Any], num: str, den: str) -> dict[str, Any]:
    if num not in results or den not in results or "error" in results[num] or "error" in results[den]:
        return {}
    out = {}
    for size, r in results[num].items():
        other = results[den][size]
        out[size] = {
            phase: round(r[phase]["mb_per_s"] / other[phase]["mb_per_s"], 3)
            for phase in ("produce", "consume")
            if other[phase]["mb_per_s"]
        }
        # latency the other way round: above 1 means the numerator's p99 is lower (better)
        for kind in ("produce_ms", "end_to_end_ms"):
            mine = r.get("latency", {}).get(kind, {}).get("p99")
            theirs = other.get("latency", {}).get(kind, {}).get("p99")
            if mine and theirs:
                out[size][f"{kind.removesuffix('_ms')}_p99_inverse"] = round(theirs / mine, 3)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--brokers", default="strom,kafka,tansu")
    parser.add_argument("--sizes", default="1024,16384", help="record value sizes in bytes")
    parser.add_argument("--mib", type=float, default=128, help="MiB produced per broker and size")
    parser.add_argument("--partitions", type=int, default=1)
    parser.add_argument("--time-limit", type=float, default=60, help="seconds per produce or consume phase")
    parser.add_argument(
        "--tls",
        action="store_true",
        help="also run strom and kafka through SSL and SASL_SSL listeners "
        "(same as --security plaintext,ssl,sasl_ssl)",
    )
    parser.add_argument(
        "--security", default=None, help="comma-separated protocols to run: plaintext, ssl, sasl_ssl"
    )
    parser.add_argument("--latency-rate", type=float, default=2000, help="records/s of the latency phase")
    parser.add_argument(
        "--latency-seconds", type=float, default=5, help="length of the latency phase (0: none)"
    )
    parser.add_argument("--latency-linger-ms", type=float, default=5, help="the latency producer's linger.ms")
    args = parser.parse_args(argv)

    names = [b for b in args.brokers.split(",") if b]
    unknown = set(names) - set(STARTERS)
    if unknown:
        parser.error(f"unknown brokers {sorted(unknown)}; choose from {sorted(STARTERS)}")
    if {"kafka", "tansu"} & set(names):
        tools.ensure_tools()
    sizes = [int(s) for s in args.sizes.split(",")]
    total = int(args.mib * 1024 * 1024)
    protocols = args.security.split(",") if args.security else (list(SECURITY) if args.tls else ["plaintext"])
    if set(protocols) - set(SECURITY):
        parser.error(f"unknown protocols {sorted(set(protocols) - set(SECURITY))}; choose from {SECURITY}")

    load_start = [round(x, 2) for x in os.getloadavg()]
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="strom-bench-pki-") as pki_dir:
        secured = any(p != "plaintext" for p in protocols)
        pki = make_pki(Path(pki_dir)) if secured else None
        runs = [
            (name, proto)
            for proto in SECURITY
            if proto in protocols
            for name in names
            if proto == "plaintext" or name in ("strom", "kafka")
        ]
        for name, proto in runs:
            key = name + RESULT_SUFFIX[proto]
            try:
                results[key] = bench_broker(
                    name,
                    sizes,
                    total,
                    args.partitions,
                    args.time_limit,
                    proto,
                    pki,
                    args.latency_rate,
                    args.latency_seconds,
                    args.latency_linger_ms,
                )
            except Exception as exc:  # one broker failing must not hide the others' numbers
                results[key] = {"error": f"{type(exc).__name__}: {exc}"[:2000]}
    report = {
        "config": {
            "sizes": sizes,
            "mib_per_case": args.mib,
            "partitions": args.partitions,
            "acks": "all",
            "compression": "none",
            "client": "confluent-kafka",
            "security": protocols,
            "latency": {
                "rate": args.latency_rate,
                "seconds": args.latency_seconds,
                "linger_ms": args.latency_linger_ms,
            },
            "load_average_start": load_start,
            "load_average_end": [round(x, 2) for x in os.getloadavg()],
            "note": "consume also reads the warm-up records (a quarter of the bytes, at most 8 MiB)",
            "kafka_version": tools.KAFKA_VERSION,
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
        },
        "results": results,
        "ratios": {
            "strom/tansu": ratios(results, "strom", "tansu"),
            "strom/kafka": ratios(results, "strom", "kafka"),
            "strom-tls/kafka-tls": ratios(results, "strom-tls", "kafka-tls"),
            "strom-sasl_ssl/kafka-sasl_ssl": ratios(results, "strom-sasl_ssl", "kafka-sasl_ssl"),
            "strom-tls/strom": ratios(results, "strom-tls", "strom"),
        },
    }
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
