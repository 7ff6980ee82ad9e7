"""Read-path benchmark: the cost of `Log.read` as a fetch uses it.

Prints one JSON object. For each batch size it writes a log of several segments, then times
  - `locate_us`: `read(offset, 1)` at the start, middle and end of the log (index search + short scan),
  - `fetch_us`: `read(offset, max_bytes, max_offset=high watermark)` at the same offsets, the call a
    consumer fetch makes (finding the start batch and bounding the slice by max_bytes and the upper offset),
  - `sequential`: a consumer-style loop (read, advance to the next offset after the slice, read ...) over
    the whole log: microseconds per read and the MB/s of slices handed out (no payload is read; a broker
    would sendfile the slices).
Medians over 5 rounds. Use --size to run on less than the default 256 MiB.

    python benchmarks/read_bench.py --size 64MiB --batch-bytes 16384 1024
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from collections.abc import Callable
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
    record_size = max(1, min(1000, batch_bytes // 4))
    count = max(1, (batch_bytes - 61) // (record_size + 12))
    records = [Record(i, 0, None, b"x" * record_size) for i in range(count)]
    return build_batch(records, base_timestamp=now_ms)


def _median_us(call: Callable[[], object], repeat: int) -> float:
    rounds = []
    for _ in range(5):
        started = time.perf_counter()
        for _ in range(repeat):
            call()
        rounds.append((time.perf_counter() - started) / repeat * 1e6)
    return sorted(rounds)[2]


def _next_offsets(log: Log) -> dict[tuple[int, int], int]:
    """(id of a segment's read file, file position) -> the offset a consumer asks for next when a slice
    ends there; built once, outside the timings, so advancing costs a dict lookup."""
    table: dict[tuple[int, int], int] = {}
    for segment in log.segments():
        key = id(segment.read_file)
        for position, header in segment.scan(0):
            table[(key, position)] = header.base_offset
        table[(key, segment.size)] = segment.next_offset
    return table


def sequential(log: Log, max_bytes: int, table: dict[tuple[int, int], int]) -> tuple[float, float]:
    """Read the whole log as a consumer does; (microseconds per read, MB/s of slices)."""
    hw = log.log_end_offset
    results = []
    for _ in range(3):
        offset = log.log_start_offset
        reads = 0
        handed = 0
        started = time.perf_counter()
        while offset < hw:
            piece = log.read(offset, max_bytes, max_offset=hw)
            reads += 1
            handed += piece.length
            offset = table[(id(piece.file), piece.position + piece.length)]
        elapsed = time.perf_counter() - started
        results.append((elapsed / reads * 1e6, handed / elapsed / 1e6))
    results.sort()
    return results[1]


def bench_one(
    root: Path, batch_bytes: int, total: int, segment_bytes: int, repeat: int, max_bytes: int
) -> dict:
    now_ms = int(time.time() * 1000)
    config = LogConfig(segment_bytes=segment_bytes)
    log = Log.open(root / f"bench-{batch_bytes}", config)
    try:
        raw = make_batch(batch_bytes, now_ms)
        for _ in range(max(1, total // len(raw))):
            log.append(raw, leader_epoch=0, now_ms=now_ms)
        end = log.log_end_offset
        positions = {"start": 0, "middle": end // 2, "end": max(0, end - 1)}
        table = _next_offsets(log)
        per_read_us, mb_per_s = sequential(log, max_bytes, table)
        return {
            "batch_bytes": len(raw),
            "log_bytes": log.size_in_bytes,
            "segments": log.segment_count,
            "max_bytes": max_bytes,
            "locate_us": {
                n: round(_median_us(lambda o=o: log.read(o, 1), repeat), 2) for n, o in positions.items()
            },
            "fetch_us": {
                n: round(_median_us(lambda o=o: log.read(o, max_bytes, max_offset=end), repeat), 2)
                for n, o in positions.items()
            },
            "sequential": {"us_per_read": round(per_read_us, 2), "slice_mb_per_s": round(mb_per_s)},
        }
    finally:
        log.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="256MiB", help="log size per batch size (default 256MiB)")
    parser.add_argument("--batch-bytes", type=int, nargs="+", default=[16 * 1024, 1024])
    parser.add_argument("--segment-bytes", default="64MiB")
    parser.add_argument("--max-bytes", type=int, default=1024 * 1024, help="fetch max bytes per read")
    parser.add_argument("--repeat", type=int, default=2000, help="reads per position and round")
    parser.add_argument("--dir", default=None, help="directory for the logs (default: a temp dir)")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(dir=args.dir, prefix="strom-read-bench-"))
    try:
        results = [
            bench_one(
                root, size, parse_size(args.size), parse_size(args.segment_bytes), args.repeat, args.max_bytes
            )
            for size in args.batch_bytes
        ]
        print(json.dumps(results, indent=2))
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
