"""Every partition log of one broker, across its log.dirs (Kafka's LogManager).

Per log dir: `meta.properties` (version=1, node.id, cluster.id, directory.id; KIP-858),
`recovery-point-offset-checkpoint` and `log-start-offset-checkpoint` (Kafka's offset checkpoint format),
and the clean-shutdown marker `.kafka_cleanshutdown`: present only between a clean stop and the next
start, so a restart after a crash recovers every log from its recovery point. A KRaft broker's marker holds
Kafka's CleanShutdownFileHandler JSON, `{"version":0,"brokerEpoch":N}` (`broker_epoch`, set by the
broker once registered); the epoch read back when every log dir holds the same one is
`previous_broker_epoch`, which the next registration names to prove the shutdown was clean (KIP-966).

`load()` opens every `<topic>-<partition>` directory in a thread pool (num.recovery.threads.per.data.dir
per dir) and removes directories of deleted partitions (`<topic>-<p>.<uuid>-delete`). `start()` runs it
in a worker thread and starts the periodic tasks: retention every log.retention.check.interval.ms,
flushes (segments rolled, flush.ms), and checkpoints every log.flush.offset.checkpoint.interval.ms;
then the log cleaner (strom.storage.cleaner_manager) for compacted topics.
Each partition directory holds `partition.metadata` (KIP-516, Kafka's PartitionMetadataFile:
"version: 0" and "topic_id: <base64url id>"), written when the log is created for a topic id, or when an
existing log without one is first assigned one. `get_or_create_log` with another id than the recorded one
raises InconsistentTopicIdError (Kafka's InconsistentTopicIdException): the directory holds another topic's
log (the topic was deleted and re-created under the same name while this broker missed it), and the log is
not served. `topic_id(topic, partition)` is the id recorded for a log, which Fetch v13+ checks.

JBOD (several log.dirs, KIP-112/113): a new log goes to the live dir holding the fewest logs (current and
future), unless AlterReplicaLogDirs named a preferred dir for it first. A move between dirs is Kafka's
future replica: `create_future_log` opens `<topic>-<p>.<id>-future` in the destination, its owner copies
the current log into it (strom.replication.log_dir_mover), and `replace_current_with_future` swaps them:
the future directory takes the partition's name and the old one is renamed `-delete`, kept open (reads in
flight) and removed after file.delete.delay.ms. Future logs found at start-up are loaded and the move goes
on. A dir that cannot be read or written (an OSError at start-up, in a checkpoint, a flush, retention, or
reported by a log's owner through `fail_log_dir`) goes offline (Kafka's LogDirFailureChannel): its logs are
dropped from the manager without touching the disk again, `on_dir_failure(dir, keys)` tells the owner which
partitions went with it (they answer KAFKA_STORAGE_ERROR), and no log is created there any more. While some
dir is offline, a partition that should exist but has no log in a live dir is not re-created elsewhere
(KafkaStorageError, as Kafka's getOrCreateLog with isNew false). Only when every dir is offline does
loading fail.
Log mutations (retention deciding what to delete) run on the event loop; fsync and file removal run
through asyncio.to_thread. A log that reaches flush.messages asks for a flush at once (`Log.schedule_flush`):
a task flushes it in a worker thread, and flushes of one log never overlap (one lock per log).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import json
import logging
import os
import shutil
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from strom.config import BrokerConfig, LogConfig
from strom.protocol.errors import ErrorCode, KafkaError, KafkaStorageError
from strom.storage.checkpoint import (
    fsync_dir,
    read_meta_properties,
    read_offset_checkpoint,
    read_partition_metadata,
    uuid_to_kafka,
    write_meta_properties,
    write_offset_checkpoint,
    write_partition_metadata,
)
from strom.storage.cleaner_manager import CleanerConfig, LogCleaner, UpperBound
from strom.storage.log import FUTURE_DIR_SUFFIX, PARTITION_METADATA, Log, parse_log_dir_name

RECOVERY_POINT_CHECKPOINT = "recovery-point-offset-checkpoint"
LOG_START_OFFSET_CHECKPOINT = "log-start-offset-checkpoint"
CLEAN_SHUTDOWN_FILE = ".kafka_cleanshutdown"
META_PROPERTIES = "meta.properties"
DELETE_DIR_SUFFIX = "-delete"
# stands for a partition.metadata that cannot be read: no topic has this id (Kafka's Uuid.ZERO_UUID is
# reserved), so opening the log for any topic is refused as inconsistent
_UNREADABLE_TOPIC_ID = uuid.UUID(int=0)

_log = logging.getLogger(__name__)


class InconsistentTopicIdError(KafkaError):
    """A log's `partition.metadata` names another topic id than the one it is opened for (Kafka's
    InconsistentTopicIdException, INCONSISTENT_TOPIC_ID)."""

    code = ErrorCode.inconsistent_topic_id


class LogDirNotFoundError(KafkaError):
    """A log dir that is not one of this broker's log.dirs (Kafka's LogDirNotFoundException)."""

    code = ErrorCode.log_dir_not_found


class LogManager:
    """Owns the `Log` of every partition of this broker; see the module docstring."""

    def __init__(
        self,
        log_dirs: list[Path],
        broker_config: BrokerConfig,
        *,
        clock: Callable[[], float] = time.time,
        cluster_id: str | None = None,
        config_for_topic: Callable[[str], LogConfig] | None = None,
        flush_check_interval_ms: int = 1000,
    ) -> None:
        self.log_dirs = [Path(d) for d in log_dirs]
        self.broker_config = broker_config
        self.cluster_id = cluster_id
        self.directory_ids: dict[Path, str] = {}
        self._clock = clock
        self._config_for_topic = config_for_topic
        self._flush_check_interval_ms = flush_check_interval_ms
        self._logs: dict[tuple[str, int], Log] = {}
        self._log_dir_of: dict[tuple[str, int], Path] = {}
        # the topic id in each log's partition.metadata (KIP-516); absent for a log without one
        self._topic_ids: dict[tuple[str, int], uuid.UUID] = {}
        # future replicas of partitions moving between dirs (KIP-113), and where new logs should go
        self._future_logs: dict[tuple[str, int], Log] = {}
        self._preferred_dirs: dict[tuple[str, int], Path] = {}
        # log dirs that failed, with why; their logs are no longer held (KAFKA_STORAGE_ERROR)
        self.offline_dirs: dict[Path, str] = {}
        # told (dir, keys of the logs it held) when a dir goes offline; set by the logs' owner
        self.on_dir_failure: Callable[[Path, list[tuple[str, int]]], None] | None = None
        # old directories of moved partitions: closed and removed once their delete delay passes
        self._pending_closes: list[tuple[int, Log]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pending_dir_deletes: list[tuple[int, Path]] = []
        self._pending_lock = threading.Lock()
        self._tasks: list[asyncio.Task[None]] = []
        # flush.messages flushes in progress, and one lock per log so no two flushes of it overlap
        self._flush_tasks: dict[Log, asyncio.Task[None]] = {}
        self._flush_locks: dict[Log, asyncio.Lock] = {}
        self.loaded = False
        self.had_clean_shutdown = True
        # KIP-966: the broker epoch written into the clean-shutdown markers, and the one read back
        self.broker_epoch = -1
        self.previous_broker_epoch = -1
        self.cleaner: LogCleaner | None = None
        # set by the log's owner before start(): the offset cleaning of a partition must stay below
        # (its high watermark), or None for no bound
        self.cleanable_upper_bound: UpperBound | None = None

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)

    def default_config(self, topic: str) -> LogConfig:
        if self._config_for_topic is not None:
            return self._config_for_topic(topic)
        return self.broker_config.log_config()

    # loading ------------------------------------------------------------------------------------
    def load(self) -> None:
        """Open every log of every log dir (blocking; runs recovery where the last stop was unclean). A
        dir that fails to load goes offline; KafkaStorageError when none is left."""
        threads = int(self.broker_config.get("num.recovery.threads.per.data.dir"))
        jobs: list[tuple[Path, Path, int, int, bool]] = []
        for log_dir in self.log_dirs:
            try:
                jobs += self._scan_dir(log_dir)
            except (OSError, KafkaStorageError) as exc:
                self._mark_offline(log_dir, exc)
        if not self.live_log_dirs:
            raise KafkaStorageError(f"every log dir is offline: {sorted(map(str, self.offline_dirs))}")
        with ThreadPoolExecutor(max_workers=max(1, threads * len(self.log_dirs))) as pool:
            futures = [(job[0], pool.submit(self._open_one, *job)) for job in jobs]
            for job_dir, future in futures:
                try:
                    log_dir, log, topic_id = future.result()
                except OSError as exc:
                    self._mark_offline(job_dir, exc)
                    continue
                key = (log.topic, log.partition)
                if log.is_future:
                    self._future_logs[key] = log
                    continue
                self._logs[key] = log
                self._log_dir_of[key] = log_dir
                if topic_id is not None:
                    self._topic_ids[key] = topic_id
                log.schedule_flush = functools.partial(self._request_flush, log)
        # a dir that failed while its logs opened takes them offline with it
        for log_dir in list(self.offline_dirs):
            self._drop_dir_logs(log_dir)
        self.previous_broker_epoch = self._marker_epoch()
        # remove the markers only once every log is open: a crash while loading recovers again
        for log_dir in self.live_log_dirs:
            with contextlib.suppress(FileNotFoundError):
                (log_dir / CLEAN_SHUTDOWN_FILE).unlink()
        self.loaded = True

    def _scan_dir(self, log_dir: Path) -> list[tuple[Path, Path, int, int, bool]]:
        """The logs of one dir to open (blocking; OSError or KafkaStorageError when it is unusable)."""
        log_dir.mkdir(parents=True, exist_ok=True)
        self._write_meta_properties(log_dir)
        marker = log_dir / CLEAN_SHUTDOWN_FILE
        clean = marker.exists()
        self.had_clean_shutdown = self.had_clean_shutdown and clean
        recovery = read_offset_checkpoint(log_dir / RECOVERY_POINT_CHECKPOINT)
        starts = read_offset_checkpoint(log_dir / LOG_START_OFFSET_CHECKPOINT)
        jobs = []
        for entry in os.scandir(log_dir):
            if not entry.is_dir():
                continue
            if entry.name.endswith(DELETE_DIR_SUFFIX):
                shutil.rmtree(entry.path, ignore_errors=True)
                continue
            future = entry.name.endswith(FUTURE_DIR_SUFFIX)
            try:
                key = parse_log_dir_name(entry.name, future=future)
            except ValueError:
                continue  # "-stray" and foreign directories are left alone
            # a future log is checkpointed under its partition's key in its own dir
            jobs.append((log_dir, Path(entry.path), recovery.get(key, 0), starts.get(key, 0), clean))
        return jobs

    def _open_one(
        self, log_dir: Path, path: Path, recovery_point: int, log_start: int, clean: bool
    ) -> tuple[Path, Log, uuid.UUID | None]:
        topic, _ = parse_log_dir_name(path.name, future=path.name.endswith(FUTURE_DIR_SUFFIX))
        log = Log.open(
            path,
            self.default_config(topic),
            recovery_point=recovery_point,
            log_start_offset=log_start,
            clean_shutdown=clean,
            clock=self._clock,
        )
        try:
            topic_id = read_partition_metadata(path / PARTITION_METADATA)
        except (KafkaStorageError, ValueError, OSError) as exc:
            # an unreadable id can match no topic: the log stays on disk and is not served
            _log.error("%s: cannot read %s (%s); the log will not be served", path, PARTITION_METADATA, exc)
            topic_id = _UNREADABLE_TOPIC_ID
        return log_dir, log, topic_id

    def _write_meta_properties(self, log_dir: Path) -> None:
        path = log_dir / META_PROPERTIES
        existing = read_meta_properties(path)
        node_id = str(self.broker_config.node_id)
        if existing.get("node.id") not in (None, node_id):
            raise KafkaStorageError(
                f"{path}: stored node.id {existing['node.id']} does not match configured node.id {node_id}"
            )
        stored_cluster = existing.get("cluster.id")
        if self.cluster_id is not None and stored_cluster not in (None, self.cluster_id):
            raise KafkaStorageError(
                f"{path}: stored cluster.id {stored_cluster} does not match cluster id {self.cluster_id}"
            )
        if self.cluster_id is None and stored_cluster is not None:
            self.cluster_id = stored_cluster
        directory_id = existing.get("directory.id") or uuid_to_kafka(uuid.uuid4())
        self.directory_ids[log_dir] = directory_id
        props = {"version": "1", "node.id": node_id, "directory.id": directory_id}
        if self.cluster_id is not None:
            props["cluster.id"] = self.cluster_id
        if props != {k: v for k, v in existing.items() if k in props} or set(existing) - set(props):
            write_meta_properties(path, props)

    # lookups and lifecycle of logs --------------------------------------------------------------
    def get_log(self, topic: str, partition: int) -> Log | None:
        return self._logs.get((topic, partition))

    def all_logs(self) -> list[Log]:
        return list(self._logs.values())

    def log_dir_of(self, topic: str, partition: int) -> Path | None:
        """The log dir holding the partition's current log."""
        return self._log_dir_of.get((topic, partition))

    def future_log(self, topic: str, partition: int) -> Log | None:
        """The partition's future replica (a move between log dirs in progress), if any."""
        return self._future_logs.get((topic, partition))

    def all_future_logs(self) -> list[Log]:
        return list(self._future_logs.values())

    @property
    def live_log_dirs(self) -> list[Path]:
        return [d for d in self.log_dirs if d not in self.offline_dirs]

    def log_dir_for(self, path: str | Path) -> Path:
        """The configured log dir `path` names (compared as absolute paths, as Kafka does);
        LogDirNotFoundError if it is none of them, KafkaStorageError if it is offline."""
        wanted = Path(os.path.abspath(path))
        for log_dir in self.log_dirs:
            if Path(os.path.abspath(log_dir)) == wanted:
                if log_dir in self.offline_dirs:
                    raise KafkaStorageError(f"Log directory {wanted} is offline")
                return log_dir
        raise LogDirNotFoundError(f"Log dir {wanted} is not found in the config.")

    def set_preferred_log_dir(self, topic: str, partition: int, log_dir: Path) -> None:
        """Where the partition's log goes if it is created later (AlterReplicaLogDirs before the replica
        exists, Kafka's maybeUpdatePreferredLogDir)."""
        self._preferred_dirs[(topic, partition)] = log_dir

    def _next_log_dir(self, key: tuple[str, int]) -> Path:
        live = self.live_log_dirs
        preferred = self._preferred_dirs.get(key)
        if preferred in live:
            return preferred  # type: ignore[return-value]
        if not live:
            raise KafkaStorageError("every log dir is offline")
        if len(live) == 1:
            return live[0]
        # counted by hash, not by comparing paths one by one: a broker creating thousands of logs at
        # once asks this for each, and the pairwise count held the GIL for seconds (quadratic)
        held = collections.Counter(self._log_dir_of.values())
        held.update(log.dir.parent for log in self._future_logs.values())
        return min(live, key=lambda d: held[d])

    def topic_id(self, topic: str, partition: int) -> uuid.UUID | None:
        """The topic id recorded in the log's partition.metadata, or None (no log, or no id yet)."""
        return self._topic_ids.get((topic, partition))

    def get_or_create_log(
        self,
        topic: str,
        partition: int,
        config: LogConfig,
        topic_id: uuid.UUID | None = None,
        *,
        is_new: bool = True,
    ) -> Log:
        """The partition's log, created in the preferred or least loaded live log dir if absent; an
        existing log takes `config`. With a `topic_id`, the log's partition.metadata must name it (it is
        written if the log has none yet), else InconsistentTopicIdError and the log is left as it is.
        A log that should exist already (`is_new` false) while a dir is offline may be in that dir:
        KafkaStorageError instead of an empty log elsewhere."""
        key = (topic, partition)
        log = self._logs.get(key)
        if log is not None:
            if topic_id is not None:
                recorded = self._topic_ids.get(key)
                if recorded is None:
                    write_partition_metadata(log.dir / PARTITION_METADATA, topic_id)
                    self._topic_ids[key] = topic_id
                elif recorded != topic_id:
                    raise InconsistentTopicIdError(
                        f"log {log.dir} holds topic id {uuid_to_kafka(recorded)},"
                        f" not {uuid_to_kafka(topic_id)}"
                    )
            if log.config != config:
                log.update_config(config)
            return log
        if not is_new and self.offline_dirs:
            raise KafkaStorageError(
                f"Can not create log for {topic}-{partition} because log directories"
                f" {','.join(sorted(map(str, self.offline_dirs)))} are offline"
            )
        log_dir = self._next_log_dir(key)
        log = Log.open(log_dir / f"{topic}-{partition}", config, clean_shutdown=True, clock=self._clock)
        self._preferred_dirs.pop(key, None)
        if topic_id is not None:
            log.pending_topic_id = topic_id  # written before its first append (Kafka's lazy flush)
            self._topic_ids[key] = topic_id
        self._logs[key] = log
        self._log_dir_of[key] = log_dir
        log.schedule_flush = functools.partial(self._request_flush, log)
        return log

    def flush_pending_metadata(self) -> int:
        """Write the partition.metadata files of new logs that have none yet (blocking: run it in a worker
        thread, as Kafka schedules its flush-metadata-file task), until none is left; how many."""
        written = 0
        failed: set[int] = set()  # left pending: the first append tries again and reports the error
        while pending := [
            log
            for log in list(self._logs.values())
            if log.pending_topic_id is not None and id(log) not in failed
        ]:
            for log in pending:
                try:
                    log.flush_metadata_file()
                    written += 1
                except OSError as exc:
                    _log.error("%s: cannot write %s: %s", log.dir, PARTITION_METADATA, exc)
                    failed.add(id(log))
        return written

    def delete_log(self, topic: str, partition: int) -> None:
        """Close the log and rename its directory to `<topic>-<p>.<uuid>-delete`; the files are removed
        after file.delete.delay.ms by the retention task (or at the next start)."""
        key = (topic, partition)
        log = self._logs.pop(key, None)
        self._log_dir_of.pop(key, None)
        self._topic_ids.pop(key, None)
        self._preferred_dirs.pop(key, None)
        self.abandon_future_log(topic, partition)
        if log is None:
            return
        log.schedule_flush = None
        self._flush_locks.pop(log, None)
        log.close()
        target = log.dir.with_name(f"{log.dir.name}.{uuid.uuid4().hex}{DELETE_DIR_SUFFIX}")
        try:
            os.replace(log.dir, target)
        except FileNotFoundError:
            return
        expire = self._now_ms() + log.config.file_delete_delay_ms
        with self._pending_lock:
            self._pending_dir_deletes.append((expire, target))

    # moves between log dirs (KIP-113) -----------------------------------------------------------
    def create_future_log(self, topic: str, partition: int, log_dir: Path) -> Log | None:
        """The future replica of the partition in `log_dir` (blocking: creates it if absent); None when
        the current log is there already (a future elsewhere is dropped: the move is cancelled). A future
        in another dir is replaced, as Kafka does when the destination changes."""
        key = (topic, partition)
        current = self._logs.get(key)
        if current is None:
            raise KeyError(key)
        future = self._future_logs.get(key)
        if future is not None and future.dir.parent == log_dir:
            return future
        self.abandon_future_log(topic, partition)
        if self._log_dir_of.get(key) == log_dir:
            return None
        path = log_dir / f"{topic}-{partition}.{uuid.uuid4().hex}{FUTURE_DIR_SUFFIX}"
        future = Log.open(path, current.config, clean_shutdown=True, clock=self._clock)
        topic_id = self._topic_ids.get(key)
        if topic_id is not None:
            write_partition_metadata(path / PARTITION_METADATA, topic_id)
        self._future_logs[key] = future
        return future

    def abandon_future_log(self, topic: str, partition: int) -> None:
        """Drop the partition's future replica and its files (blocking)."""
        future = self._future_logs.pop((topic, partition), None)
        if future is not None:
            future.close()
            shutil.rmtree(future.dir, ignore_errors=True)

    def replace_current_with_future(self, topic: str, partition: int) -> Log:
        """The swap that ends a move (Kafka's replaceCurrentWithFutureLog): the future log, caught up by
        its owner, is closed, its directory renamed to `<topic>-<p>` and opened again as the current log;
        the old directory is renamed `-delete` and stays open for reads in flight until its delete delay
        passes. Runs on the loop thread, so no append lands in between. Returns the new current log."""
        key = (topic, partition)
        current, future = self._logs[key], self._future_logs.pop(key)
        if future.log_end_offset != current.log_end_offset:
            self._future_logs[key] = future
            raise ValueError(f"{future.dir.name} is not caught up with {current.dir.name}")
        final = future.dir.parent / current.dir.name
        start, end = current.log_start_offset, current.log_end_offset
        future.flush()
        future.close()
        doomed = current.dir.with_name(f"{current.dir.name}.{uuid.uuid4().hex}{DELETE_DIR_SUFFIX}")
        os.replace(current.dir, doomed)
        os.replace(future.dir, final)
        fsync_dir(final.parent)
        log = Log.open(
            final, current.config, recovery_point=end, log_start_offset=start, clean_shutdown=True,
            clock=self._clock,
        )  # fmt: skip
        current.schedule_flush = None
        self._flush_locks.pop(current, None)
        with self._pending_lock:
            self._pending_closes.append((self._now_ms() + current.config.file_delete_delay_ms, current))
        self._logs[key] = log
        self._log_dir_of[key] = final.parent
        log.schedule_flush = functools.partial(self._request_flush, log)
        return log

    # failed log dirs (KIP-112) ------------------------------------------------------------------
    def fail_log_dir(self, log_dir: Path, reason: BaseException | str) -> None:
        """Take `log_dir` offline (an I/O error hit it): its logs are dropped without touching the disk
        again and the owner is told which partitions went with it."""
        if log_dir in self.offline_dirs or log_dir not in self.log_dirs:
            return
        self._mark_offline(log_dir, reason)
        keys = self._drop_dir_logs(log_dir)
        if self.on_dir_failure is not None:
            self.on_dir_failure(log_dir, keys)

    def fail_log_dir_of(self, log: Log, reason: BaseException | str) -> None:
        """An I/O error on `log` (its owner caught an OSError): its dir goes offline."""
        self.fail_log_dir(log.dir.parent, reason)

    def _mark_offline(self, log_dir: Path, reason: BaseException | str) -> None:
        self.offline_dirs[log_dir] = str(reason)
        _log.error("log dir %s is offline: %s", log_dir, reason)

    def _drop_dir_logs(self, log_dir: Path) -> list[tuple[str, int]]:
        keys = [k for k, d in self._log_dir_of.items() if d == log_dir]
        for key in keys:
            log = self._logs.pop(key)
            self._log_dir_of.pop(key, None)
            log.schedule_flush = None
            self._flush_locks.pop(log, None)
            self._close_quietly(log)
        for key, future in list(self._future_logs.items()):
            if future.dir.parent == log_dir or key in keys:
                del self._future_logs[key]
                self._close_quietly(future)
        return keys

    @staticmethod
    def _close_quietly(log: Log) -> None:
        log.closed = True  # no more appends, flushes or reads through the manager
        for segment in log.segments():
            with contextlib.suppress(OSError):
                segment.close(trim=False)

    # periodic work ------------------------------------------------------------------------------
    def checkpoint(self) -> None:
        """Write both offset checkpoints of every live log dir (blocking; a dir that fails goes offline).
        Future logs are checkpointed in their own dir under their partition's key, as Kafka does."""
        for log_dir in self.live_log_dirs:
            logs = [(k, log) for k, log in list(self._logs.items()) if self._log_dir_of.get(k) == log_dir]
            logs += [(k, log) for k, log in list(self._future_logs.items()) if log.dir.parent == log_dir]
            try:
                write_offset_checkpoint(
                    log_dir / RECOVERY_POINT_CHECKPOINT, {k: log.recovery_point for k, log in logs}
                )
                write_offset_checkpoint(
                    log_dir / LOG_START_OFFSET_CHECKPOINT, {k: log.log_start_offset for k, log in logs}
                )
            except OSError as exc:
                self._fail_from_thread(log_dir, exc)

    def cleanup_logs(self, now_ms: int | None = None) -> int:
        """Retention pass over every log (mutates logs: run on the owning thread). Returns segments
        deleted."""
        now = self._now_ms() if now_ms is None else now_ms
        deleted = 0
        for log in list(self._logs.values()):
            if not log.closed:
                try:
                    deleted += log.delete_old_segments(now)
                except OSError as exc:
                    self.fail_log_dir_of(log, exc)
        return deleted

    def delete_expired_files(self, now_ms: int | None = None) -> None:
        """Remove `.deleted` segments and `-delete` directories whose delay passed (blocking)."""
        now = self._now_ms() if now_ms is None else now_ms
        for log in list(self._logs.values()):
            with contextlib.suppress(OSError):  # the next pass tries again
                log.delete_expired_files(now)
        with self._pending_lock:
            expired = [p for e, p in self._pending_dir_deletes if e <= now]
            self._pending_dir_deletes = [(e, p) for e, p in self._pending_dir_deletes if e > now]
            closing = [log for e, log in self._pending_closes if e <= now]
            self._pending_closes = [(e, log) for e, log in self._pending_closes if e > now]
        for log in closing:
            # the directory a moved partition left: closed once reads in flight had their time
            with contextlib.suppress(OSError):
                log.close()
            shutil.rmtree(log.dir, ignore_errors=True)
        for path in expired:
            shutil.rmtree(path, ignore_errors=True)

    async def flush_due_logs(self) -> None:
        now = self._now_ms()
        for log in list(self._logs.values()) + list(self._future_logs.values()):
            target = log.flush_due(now)
            if target is not None and not log.closed:
                try:
                    await self._flush(log, target)
                except OSError as exc:
                    self.fail_log_dir_of(log, exc)

    async def _flush(self, log: Log, target: int | None = None) -> None:
        """`log.flush(target)` in a worker thread, never overlapping another flush of the same log."""
        lock = self._flush_locks.setdefault(log, asyncio.Lock())
        async with lock:
            if log.closed:
                return
            future = asyncio.get_running_loop().run_in_executor(None, log.flush, target)
            try:
                await asyncio.shield(future)
            except asyncio.CancelledError:
                # the thread cannot be stopped: hold the lock until it ends so no second flush starts
                await asyncio.wait([future])
                raise

    def _request_flush(self, log: Log) -> None:
        """`Log.schedule_flush`: flush.messages reached. Called on the loop thread inside an append."""
        task = self._flush_tasks.get(log)
        if task is not None and not task.done():
            return  # the running task checks again when its flush ends
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # used without a loop (blocking tools): the log stays due for whoever flushes it
        self._flush_tasks[log] = loop.create_task(self._flush_while_due(log))

    async def _flush_while_due(self, log: Log) -> None:
        try:
            # appends during a flush may make the log due again; one task covers them all
            while not log.closed and log.flush_messages_due:
                await self._flush(log)
        except OSError as exc:
            self.fail_log_dir_of(log, exc)
        except Exception:  # the next append or periodic check tries again
            _log.exception("flush of %s-%d failed", log.topic, log.partition)
        finally:
            if self._flush_tasks.get(log) is asyncio.current_task():
                del self._flush_tasks[log]

    def _fail_from_thread(self, log_dir: Path, exc: OSError) -> None:
        """A worker thread's I/O error: the dir goes offline on the loop that owns the logs."""
        loop = self._loop
        if loop is None or loop.is_closed():
            self._mark_offline(log_dir, exc)
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            self.fail_log_dir(log_dir, exc)
        else:
            loop.call_soon_threadsafe(self.fail_log_dir, log_dir, exc)

    async def _every(self, interval_ms: int, work: Callable[[], object]) -> None:
        interval = max(interval_ms, 1) / 1000
        while True:
            await asyncio.sleep(interval)
            try:
                result = work()
                if asyncio.iscoroutine(result):
                    await result
            except asyncio.CancelledError:
                raise
            except Exception:  # a failing pass must not stop the next one
                _log.exception("periodic log manager task failed")

    async def _retention_pass(self) -> None:
        self.cleanup_logs()
        await asyncio.to_thread(self.delete_expired_files)

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        if not self.loaded:
            await asyncio.to_thread(self.load)
        cfg = self.broker_config
        retention_ms = int(cfg.get("log.retention.check.interval.ms"))
        checkpoint_ms = int(cfg.get("log.flush.offset.checkpoint.interval.ms")) or 60000
        self._tasks = [
            asyncio.create_task(self._every(retention_ms, self._retention_pass)),
            asyncio.create_task(self._every(self._flush_check_interval_ms, self.flush_due_logs)),
            asyncio.create_task(
                self._every(checkpoint_ms, lambda: asyncio.to_thread(self.checkpoint)),
            ),
        ]
        self.cleaner = LogCleaner(
            self.all_logs,
            self.live_log_dirs,
            CleanerConfig.from_broker(cfg),
            clock=self._clock,
            upper_bound=self.cleanable_upper_bound,
        )
        await self.cleaner.start()

    async def stop(self) -> None:
        """Stop the tasks, flush and close every log, write checkpoints and the clean-shutdown marker."""
        if self.cleaner is not None:
            await self.cleaner.stop()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        await asyncio.gather(*self._flush_tasks.values(), return_exceptions=True)
        for lock in list(self._flush_locks.values()):
            async with lock:  # a flush thread still running ends before shutdown flushes again
                pass
        await asyncio.to_thread(self.shutdown)

    def shutdown(self) -> None:
        """Blocking part of `stop`. Offline dirs are not touched (no clean-shutdown marker: they are
        recovered when they come back)."""
        for log in list(self._logs.values()) + list(self._future_logs.values()):
            if not log.closed:
                try:
                    log.flush()
                    log.close()
                except OSError as exc:
                    self._mark_offline(log.dir.parent, exc)
        self.checkpoint()
        self.delete_expired_files(now_ms=2**62)
        content = (
            json.dumps({"version": 0, "brokerEpoch": self.broker_epoch}, separators=(",", ":"))
            if self.broker_epoch >= 0
            else ""
        )
        for log_dir in self.live_log_dirs:
            with contextlib.suppress(OSError):
                (log_dir / CLEAN_SHUTDOWN_FILE).write_text(content)

    def _marker_epoch(self) -> int:
        """Kafka's readBrokerEpochFromCleanShutdownFiles: the broker epoch every log dir's marker holds,
        or -1 (a dir offline or without a marker, an unreadable marker, or dirs that disagree)."""
        if self.offline_dirs:
            return -1
        epochs = set()
        for log_dir in self.live_log_dirs:
            try:
                data = json.loads((log_dir / CLEAN_SHUTDOWN_FILE).read_text() or "{}")
                epochs.add(int(data["brokerEpoch"]))
            except (OSError, ValueError, KeyError, TypeError):
                return -1
        return epochs.pop() if len(epochs) == 1 else -1
