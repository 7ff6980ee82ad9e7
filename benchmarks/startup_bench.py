"""How fast `strom serve` is ready: seconds from process start to its address line and to the first
answered ApiVersions request, for an empty data dir and for one holding many partitions (clean restart).

    python benchmarks/startup_bench.py [--partitions 1000] [--runs 3]

Prints JSON; never pass/fail. Loopback only, every process is stopped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from statistics import median

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from strom.client.cluster import ClusterClient  # noqa: E402
from strom.client.connection import BrokerConnection  # noqa: E402
from strom.testing.ports import free_port  # noqa: E402


def start_once(data: Path, port: int) -> tuple[subprocess.Popen[str], float, float]:
    """Start the broker; return (process, seconds to the address line, seconds to an ApiVersions answer)."""
    started = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "strom.cli.main", "serve", "--data-dir", str(data), "--port", str(port)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None
    proc.stdout.readline()
    line_at = time.monotonic() - started

    async def ask() -> None:
        conn = await BrokerConnection.open("127.0.0.1", port, timeout=30)
        await conn.close()

    asyncio.run(ask())
    return proc, line_at, time.monotonic() - started


def stop(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def create_partitions(port: int, partitions: int) -> None:
    async def go() -> None:
        async with ClusterClient(f"127.0.0.1:{port}") as client:
            for start in range(0, partitions, 100):
                await client.create_topic(f"bench-{start // 100}", min(100, partitions - start), 1)

    asyncio.run(go())


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--partitions", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="strom-startup-"))
    results: dict[str, dict[str, float]] = {}
    try:
        empty_line, empty_ready = [], []
        for run in range(args.runs):
            proc, line_at, ready_at = start_once(root / f"empty-{run}", free_port())
            stop(proc)
            empty_line.append(line_at)
            empty_ready.append(ready_at)
        results["empty_data_dir"] = {
            "address_line_s": median(empty_line),
            "first_answer_s": median(empty_ready),
        }

        data, port = root / "full", free_port()
        proc, _line, _ready = start_once(data, port)
        create_partitions(port, args.partitions)
        stop(proc)
        full_line, full_ready = [], []
        for _run in range(args.runs):
            proc, line_at, ready_at = start_once(data, port)
            stop(proc)
            full_line.append(line_at)
            full_ready.append(ready_at)
        results[f"{args.partitions}_partitions_clean_restart"] = {
            "address_line_s": median(full_line),
            "first_answer_s": median(full_ready),
        }
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(json.dumps({"runs": args.runs, "results": results}, indent=2))


if __name__ == "__main__":
    main()
