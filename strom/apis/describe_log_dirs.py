"""DescribeLogDirs (api key 35), versions 1-5.

Behaviour: for each of the broker's log directories (`log.dirs`), the partitions it holds (all, or the
requested topics/partitions) with their size in bytes; offset lag is 0 and is_future_key false (no
intra-broker moves). v4+ adds the directory's total and usable bytes (KIP-827), v5 whether the directory
is cordoned (KIP-1066): never, as Strom has no `cordoned.log.dirs`. Partitions that do not
exist are left out, as Kafka does.

Errors: NONE at the top (v3+) and per directory; KAFKA_STORAGE_ERROR for a directory that cannot be read (its
total/usable bytes are then -1), CLUSTER_AUTHORIZATION_FAILED (no DESCRIBE on the cluster; v3+ top level, no
results).
"""

from __future__ import annotations

import asyncio
import shutil
from collections import defaultdict
from pathlib import Path
from typing import Any

from strom.apis._admin_util import NO_THROTTLE, build, kio_module
from strom.protocol.errors import ErrorCode
from strom.protocol.registry import ApiSpec

API_KEY = 35
MIN_VERSION = 1
MAX_VERSION = 5


def _usage(dirs: list[Path]) -> dict[Path, tuple[int, int] | None]:
    usage: dict[Path, tuple[int, int] | None] = {}
    for d in dirs:
        try:
            du = shutil.disk_usage(d)
            usage[d] = (du.total, du.free)
        except OSError:
            usage[d] = None
    return usage


async def handle(ctx: Any, request: Any) -> Any:
    mod = kio_module("describe_log_dirs", ctx.api_version, "response")
    dirs = [Path(d).resolve() for d in ctx.broker.config.log_dirs]
    wanted: dict[str, set[int]] | None = None
    if request.topics is not None:
        wanted = defaultdict(set)
        for t in request.topics:
            wanted[t.topic].update(int(p) for p in t.partitions)
    by_dir: dict[Path, dict[str, list[tuple[int, int]]]] = {d: defaultdict(list) for d in dirs}
    for plog in ctx.broker.log_manager.all_logs():
        if wanted is not None and int(plog.partition) not in wanted.get(plog.topic, ()):
            continue
        parent = Path(plog.dir).resolve().parent
        if parent in by_dir:
            by_dir[parent][plog.topic].append((int(plog.partition), int(plog.size_in_bytes)))
    usage = await asyncio.to_thread(_usage, dirs)
    results = []
    for d in dirs:
        space = usage[d]
        topics = tuple(
            mod.DescribeLogDirsTopic(
                name=name,
                partitions=tuple(
                    mod.DescribeLogDirsPartition(
                        partition_index=p, partition_size=size, offset_lag=0, is_future_key=False
                    )
                    for p, size in sorted(parts)
                ),
            )
            for name, parts in sorted(by_dir[d].items())
        )
        results.append(
            build(
                mod.DescribeLogDirsResult,
                error_code=ErrorCode.none if space is not None else ErrorCode.kafka_storage_error,
                log_dir=str(d),
                topics=topics,
                total_bytes=space[0] if space else -1,
                usable_bytes=space[1] if space else -1,
                is_cordoned=False,
            )
        )
    return build(
        mod.DescribeLogDirsResponse,
        throttle_time=NO_THROTTLE,
        error_code=ErrorCode.none,
        results=tuple(results),
    )


SPEC = ApiSpec(API_KEY, MIN_VERSION, MAX_VERSION, handle, name="DescribeLogDirs")
