"""DescribeLogDirs (api key 35), versions 1-5.

Behaviour: for each of the broker's log directories (`log.dirs`), the partitions it holds (all, or the
requested topics/partitions) with their size in bytes. Offset lag as Kafka's getLogEndOffsetLag: for a
current replica max(high watermark - log end offset, 0), for a future replica (a move between log dirs in
progress, AlterReplicaLogDirs, KIP-113; `is_future_key` true) the current log end offset minus the
future's. v4+ adds the directory's total and usable bytes (KIP-827), v5 whether the directory is cordoned
(KIP-1066): never, as Strom has no `cordoned.log.dirs`. Partitions that do not exist are left out, as Kafka
does.

Errors: NONE at the top (v3+) and per directory; KAFKA_STORAGE_ERROR for a directory that is offline or
cannot be read (KIP-112: no partitions, total/usable bytes -1), CLUSTER_AUTHORIZATION_FAILED (no DESCRIBE
on the cluster; v3+ top level, no results).
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
    log_manager = ctx.broker.log_manager
    configured = list(log_manager.log_dirs)
    dirs = [Path(d).resolve() for d in configured]
    wanted: dict[str, set[int]] | None = None
    if request.topics is not None:
        wanted = defaultdict(set)
        for t in request.topics:
            wanted[t.topic].update(int(p) for p in t.partitions)
    # (partition, size, offset lag, is future) per topic per dir
    by_dir: dict[Path, dict[str, list[tuple[int, int, int, bool]]]] = {d: defaultdict(list) for d in dirs}
    replica_manager = ctx.broker.replica_manager
    for plog in log_manager.all_logs() + log_manager.all_future_logs():
        topic, index = plog.topic, int(plog.partition)
        if wanted is not None and index not in wanted.get(topic, ()):
            continue
        parent = Path(plog.dir).resolve().parent
        if parent not in by_dir:
            continue
        current = log_manager.get_log(topic, index)
        part = replica_manager.get_partition(topic, index)
        if plog.is_future:
            lag = current.log_end_offset - plog.log_end_offset if current is not None else -1
        else:
            lag = max(part.high_watermark - plog.log_end_offset, 0) if part is not None else -1
        by_dir[parent][topic].append((index, int(plog.size_in_bytes), lag, plog.is_future))
    offline = {Path(d).resolve() for d in log_manager.offline_dirs}
    usage = await asyncio.to_thread(_usage, [d for d in dirs if d not in offline])
    results = []
    for d in dirs:
        space = usage.get(d)
        topics = tuple(
            mod.DescribeLogDirsTopic(
                name=name,
                partitions=tuple(
                    mod.DescribeLogDirsPartition(
                        partition_index=p, partition_size=size, offset_lag=lag, is_future_key=future
                    )
                    for p, size, lag, future in sorted(parts)
                ),
            )
            for name, parts in sorted(by_dir[d].items())
        ) if space is not None else ()
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
