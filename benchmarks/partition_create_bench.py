"""Storage side of partition creation: open many new partition logs, append one small record to each,
close them cleanly and open them again, timing each phase.

What a broker does for each partition it is given (Log.open of a new directory), without the network,
the controller or replication, so file-system costs stand out: the files each phase leaves in a
partition directory are listed too. Rounds use fresh directories; the numbers are medians.
Prints one JSON object; never passes or fails on speed.

    python benchmarks/partition_create_bench.py [--partitions 2000] [--rounds 3] [--dir DIR]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

# run from a checkout without installing: this tree's strom, not another copy on the path
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from strom.config import LogConfig
from strom.protocol.records import Record, build_batch
from strom.storage.log import Log


def _files(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


def one_round(root: Path, partitions: int, config: LogConfig) -> dict[str, object]:
    record = build_batch([Record(0, 0, b"key", b"v" * 100)], base_timestamp=int(time.time() * 1000))
    dirs = [root / f"bench-{i}" for i in range(partitions)]
    out: dict[str, object] = {}
    started = time.perf_counter()
    logs = [Log.open(d, config) for d in dirs]
    out["open_new_s"] = time.perf_counter() - started
    out["files_after_open"] = _files(dirs[0])
    started = time.perf_counter()
    for log in logs:
        log.append(record, leader_epoch=0)
    out["first_append_s"] = time.perf_counter() - started
    started = time.perf_counter()
    for log in logs:
        log.close()
    out["close_s"] = time.perf_counter() - started
    out["files_after_close"] = _files(dirs[0])
    started = time.perf_counter()
    logs = [Log.open(d, config, clean_shutdown=True, recovery_point=1) for d in dirs]
    out["reopen_s"] = time.perf_counter() - started
    for log in logs:
        log.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--partitions", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--dir", default=None, help="parent of the partition directories (default: a temp dir)"
    )
    args = parser.parse_args()
    config = LogConfig()
    rounds = []
    for _ in range(args.rounds):
        root = Path(tempfile.mkdtemp(prefix="strom-create-", dir=args.dir))
        try:
            rounds.append(one_round(root, args.partitions, config))
        finally:
            shutil.rmtree(root, ignore_errors=True)
    result: dict[str, object] = {"benchmark": "partition_create", "partitions": args.partitions}
    each: dict[str, list[float]] = {}
    for key in ("open_new_s", "first_append_s", "close_s", "reopen_s"):
        values = [float(r[key]) for r in rounds]  # type: ignore[arg-type]
        result[key] = round(statistics.median(values), 3)
        each[key] = [round(v, 3) for v in values]
    result["rounds"] = each
    result["files_after_open"] = rounds[-1]["files_after_open"]
    result["files_after_close"] = rounds[-1]["files_after_close"]
    print(json.dumps(result))


if __name__ == "__main__":
    main()
