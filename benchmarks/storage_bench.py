"""Storage benchmark: append throughput of 16 KiB batches and the cost of locating an offset.

Prints one JSON object. Locating an offset is a binary search over the sparse offset index plus a scan
of at most about one index.interval.bytes, so its cost should stay flat (log n) between the start,
middle and end of the log. Use --size to run on less than the default 1 GiB.

    python benchmarks/storage_bench.py --size 256MiB
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

from strom.config import LogConfig
from strom.protocol.records import Record, build_batch
from strom.storage.log import Log

_UNITS = {"k": 1024, "m": 1024**2, "g": 1024**3}


def parse_size(text: str) -> int:
    cleaned = text.strip().lower().removesuffix("ib").removesuffix("b")
    if cleaned and cleaned[-1] in _UNITS:
        return int(float(cleaned[:-1]) * _UNITS[cleaned[-1]])
    return int(cleaned)


def make_batch(batch_bytes: int, now_ms: int) -> bytes:
    record_size = 1000
    count = max(1, (batch_bytes - 61) // (record_size + 12))
    records = [Record(i, 0, None, b"x" * record_size) for i in range(count)]
    return build_batch(records, base_timestamp=now_ms)


def locate_us(log: Log, offset: int, repeat: int) -> float:
    """Median over 5 rounds of the mean time of `log.read(offset, 1)` (index search + short scan)."""
    rounds = []
    for _ in range(5):
        started = time.perf_counter()
        for _ in range(repeat):
            log.read(offset, 1)
        rounds.append((time.perf_counter() - started) / repeat * 1e6)
    return sorted(rounds)[2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="1GiB", help="total log size to write (default 1GiB)")
    parser.add_argument("--batch-bytes", type=int, default=16 * 1024)
    parser.add_argument("--segment-bytes", default="1GiB")
    parser.add_argument("--repeat", type=int, default=2000, help="lookups per position")
    parser.add_argument("--dir", default=None, help="directory for the log (default: a temp dir)")
    args = parser.parse_args()
    total = parse_size(args.size)
    root = Path(tempfile.mkdtemp(dir=args.dir, prefix="strom-bench-"))
    now_ms = int(time.time() * 1000)
    config = LogConfig(segment_bytes=min(parse_size(args.segment_bytes), 2**31 - 1))
    log = Log.open(root / "bench-0", config)
    try:
        raw = make_batch(args.batch_bytes, now_ms)
        batches = max(1, total // len(raw))
        started = time.perf_counter()
        for _ in range(batches):
            log.append(raw, leader_epoch=0, now_ms=now_ms)
        append_s = time.perf_counter() - started
        written = batches * len(raw)
        end = log.log_end_offset
        positions = {"start": 0, "middle": end // 2, "end": max(0, end - 1)}
        result = {
            "log_bytes": written,
            "batch_bytes": len(raw),
            "batches": batches,
            "segments": log.segment_count,
            "index_entries": sum(s.offset_index.entries for s in log.segments()),
            "append_mb_per_s": round(written / append_s / 1e6, 1),
            "append_batches_per_s": round(batches / append_s),
            "locate_us": {n: round(locate_us(log, off, args.repeat), 2) for n, off in positions.items()},
        }
        print(json.dumps(result, indent=2))
    finally:
        log.close()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
