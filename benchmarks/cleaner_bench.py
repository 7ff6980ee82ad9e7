"""Log cleaner benchmark; prints JSON, never passes or fails on speed.

1. Cleaner throughput: a compacted log of `--mb` MiB (batches of 50 records over `--keys` keys) is
   cleaned in one pass; MB/s is the input size over the pass's wall time (offset map + rewrite + swap,
   with the worker process already started).
2. Produce latency: confluent-kafka produces `--rate` records/s for `--seconds` to a compacted topic
   with small segments on an embedded broker, once with log.cleaner.enable=false and once with the
   cleaner running every 100 ms; p50/p99 are delivery latencies (produce() to delivery report). So
   that a heavy pass overlaps the measurement, `--dirty-mb` MiB are first written to a second topic
   with cleanup.policy=delete, which is switched to compact when the measurement starts.

    python benchmarks/cleaner_bench.py --mb 16 --seconds 5 --dirty-mb 16
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from strom.config import LogConfig
from strom.protocol.records import Record, build_batch
from strom.storage.cleaner import CleanResult
from strom.storage.cleaner_manager import CleanerConfig, LogCleaner
from strom.storage.log import Log


def cleaner_throughput(mb: int, keys: int, codec: int) -> dict[str, float]:
    config = LogConfig(segment_bytes=4 << 20, cleanup_policy=("compact",), min_cleanable_dirty_ratio=0.0)
    with tempfile.TemporaryDirectory() as tmp:
        log = Log.open(Path(tmp) / "bench-0", config)
        value = b"v" * 100
        i = 0
        while log.size_in_bytes < mb << 20:
            records = [Record(j, 0, b"key-%d" % ((i + j) % keys), value) for j in range(50)]
            log.append(build_batch(records, codec=codec), leader_epoch=0)
            i += 50
        log.roll()
        size = log.size_in_bytes
        cleaner = LogCleaner(lambda: [log], [Path(tmp)], CleanerConfig())

        async def timed_pass() -> tuple[CleanResult | None, float]:
            await cleaner.pool.start()
            started = time.perf_counter()
            result = await cleaner.clean_once()
            elapsed = time.perf_counter() - started
            await cleaner.pool.shutdown()
            return result, elapsed

        result, elapsed = asyncio.run(timed_pass())
        assert result is not None
        after = log.size_in_bytes
        log.close()
    return {
        "input_mb": round(size / 2**20, 2),
        "output_mb": round(after / 2**20, 3),
        "records_read": result.records_read,
        "records_kept": result.records_kept,
        "seconds": round(elapsed, 3),
        "mb_per_s": round(size / 2**20 / elapsed, 2),
    }


def _preload(admin: object, servers: str, topic: str, mb: int) -> None:
    """`mb` MiB over 20 000 keys to a new topic with cleanup.policy=delete and 1 MiB segments."""
    from confluent_kafka import Producer
    from confluent_kafka.admin import NewTopic

    configs = {"cleanup.policy": "delete", "segment.bytes": str(1 << 20)}
    admin.create_topics([NewTopic(topic, 1, 1, config=configs)])[topic].result(timeout=15)  # type: ignore[attr-defined]
    producer = Producer({"bootstrap.servers": servers, "linger.ms": 20, "acks": 1})
    value = b"d" * 200
    for n in range((mb << 20) // 220):
        while True:
            try:
                producer.produce(topic, key=b"bulk-%d" % (n % 20000), value=value)
                break
            except BufferError:
                producer.poll(0.01)
        producer.poll(0)
    producer.flush(60)


def _switch_to_compact(admin: object, topic: str) -> None:
    from confluent_kafka.admin import ConfigResource

    resource = ConfigResource(
        "topic",
        topic,
        set_config={
            "cleanup.policy": "compact",
            "segment.bytes": str(1 << 20),
            "min.cleanable.dirty.ratio": "0.01",
        },
    )
    for future in admin.alter_configs([resource]).values():  # type: ignore[attr-defined]
        future.result(timeout=15)


def produce_latency(cleaner_on: bool, rate: int, seconds: float, dirty_mb: int) -> dict[str, float]:
    from confluent_kafka import Producer
    from confluent_kafka.admin import AdminClient, NewTopic

    from strom.testing import EmbeddedBroker

    overrides = {"log.cleaner.enable": str(cleaner_on).lower(), "log.cleaner.backoff.ms": "100"}
    with EmbeddedBroker(overrides) as broker:
        topic = f"bench-{uuid.uuid4().hex[:6]}"
        admin = AdminClient({"bootstrap.servers": broker.bootstrap_servers})
        configs = {
            "cleanup.policy": "compact",
            "internal.segment.bytes": str(256 << 10),  # under segment.bytes' 1 MiB minimum
            "min.cleanable.dirty.ratio": "0.01",
        }
        admin.create_topics([NewTopic(topic, 1, 1, config=configs)])[topic].result(timeout=15)
        bulk = f"{topic}-bulk"
        if dirty_mb:
            _preload(admin, broker.bootstrap_servers, bulk, dirty_mb)
        producer = Producer({"bootstrap.servers": broker.bootstrap_servers, "linger.ms": 1, "acks": 1})
        latencies: list[float] = []

        def report(err: object, _msg: object, sent: float) -> None:
            if err is None:
                latencies.append(time.perf_counter() - sent)

        value = b"x" * 200
        total = int(rate * seconds)
        if dirty_mb:
            _switch_to_compact(admin, bulk)
        start = time.perf_counter()
        for n in range(total):
            due = start + n / rate
            while time.perf_counter() < due:
                producer.poll(0)
            sent = time.perf_counter()
            producer.produce(
                topic, key=b"k%d" % (n % 500), value=value, on_delivery=lambda e, m, s=sent: report(e, m, s)
            )
            producer.poll(0)
        producer.flush(30)
        cleaner = broker.broker.log_manager.cleaner if broker.broker else None
        passes = cleaner.passes if cleaner is not None else 0
    latencies.sort()
    return {
        "records": len(latencies),
        "p50_ms": round(statistics.median(latencies) * 1000, 3),
        "p99_ms": round(latencies[int(len(latencies) * 0.99) - 1] * 1000, 3),
        "cleaner_passes": passes,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=16)
    parser.add_argument("--keys", type=int, default=1000)
    parser.add_argument("--codec", type=int, default=0, help="0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd")
    parser.add_argument("--rate", type=int, default=2000)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--dirty-mb", type=int, default=16, help="cleaned during the latency run")
    args = parser.parse_args()
    out = {
        "cleaner_throughput": cleaner_throughput(args.mb, args.keys, args.codec),
        "produce_latency_without_cleaner": produce_latency(False, args.rate, args.seconds, args.dirty_mb),
        "produce_latency_with_cleaner": produce_latency(True, args.rate, args.seconds, args.dirty_mb),
    }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
