"""Moves partitions between this broker's log dirs while they keep serving (JBOD, KIP-113).

Kafka's ReplicaAlterLogDirsThread, without the network: for each partition with a future replica
(strom.storage.log_manager: `<topic>-<p>.<id>-future` in the destination dir) a task copies the current
log's batches into the future log as a follower would (offsets and leader epochs kept), from the current
log start offset on. When the future log reaches the current log end, the swap runs on the loop thread
with nothing in between: the last batches are copied, the aborted-transaction entries and leader epochs
the future lacks are added, the log manager renames the directories (`replace_current_with_future`) and
the partition continues on the new log (`Partition.replace_log`). Appends during the copy simply make the
mover copy more; it swaps once it is within `swap_lag_bytes` of the end.

The current log may change under the copy: retention or DeleteRecords moving its start past the copy
position (the future restarts at the new start), or a follower's truncation below the future's end (the
future is truncated to the offset where their leader epochs agree, Kafka's OffsetForLeaderEpoch rule).
Batches are read in a worker thread (pread) and appended on the loop thread (logs are not thread-safe).
An I/O error on the destination takes that dir offline (the move ends, the partition stays where it was);
on the source, the partition goes offline with its dir.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from strom.protocol.errors import KafkaError, OffsetOutOfRangeError
from strom.storage.log import Log
from strom.storage.log_manager import LogManager

log = logging.getLogger("strom.log_dir_mover")

__all__ = ["LogDirMover"]

Key = tuple[str, int]


class LogDirMover:
    """One copy task per moving partition; `partition_of(key)` is the partition that owns the current log
    (None once it is gone, which ends the move)."""

    def __init__(
        self,
        log_manager: LogManager,
        partition_of: Callable[[Key], Any],
        *,
        chunk_bytes: int = 1 << 20,
        swap_lag_bytes: int = 1 << 20,
        idle_s: float = 0.05,
    ) -> None:
        self.log_manager = log_manager
        self.partition_of = partition_of
        self.chunk_bytes = chunk_bytes
        self.swap_lag_bytes = swap_lag_bytes
        self.idle_s = idle_s
        self.tasks: dict[Key, asyncio.Task[None]] = {}
        self.moves_done = 0

    def start(self, key: Key) -> None:
        """Copy the partition into its future log (already created), unless a copy runs already."""
        task = self.tasks.get(key)
        if task is not None and not task.done():
            return
        self.tasks[key] = asyncio.create_task(self._run(key), name=f"log-dir-move-{key[0]}-{key[1]}")

    async def cancel(self, key: Key) -> None:
        task = self.tasks.pop(key, None)
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def stop(self) -> None:
        for key in list(self.tasks):
            await self.cancel(key)

    async def _run(self, key: Key) -> None:
        try:
            await self._copy_until_swapped(key)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("moving %s-%d between log dirs failed; it stays where it is", *key)
        finally:
            if self.tasks.get(key) is asyncio.current_task():
                del self.tasks[key]

    async def _copy_until_swapped(self, key: Key) -> None:
        manager = self.log_manager
        while True:
            future = manager.future_log(*key)
            part = self.partition_of(key)
            if future is None or future.closed or part is None:
                return  # cancelled, or the partition or a dir went away
            current: Log = part.log
            if current.closed:
                return
            self._reconcile(current, future)
            lag = current.size_in_bytes - future.size_in_bytes
            if future.log_end_offset >= current.log_end_offset or lag <= self.swap_lag_bytes:
                if self._swap(key, part, current, future):
                    return
                continue
            chunk = await self._read(current, future.log_end_offset)
            if chunk is None:
                continue  # the current log moved under the read: reconcile again
            if not chunk:
                await asyncio.sleep(self.idle_s)
                continue
            appended = self._append(future, chunk)
            if appended is False:
                return
            if appended is None:
                await asyncio.sleep(self.idle_s)

    def _reconcile(self, current: Log, future: Log) -> None:
        """Bring the future log back in line with the current one (start moved up, or truncated)."""
        if future.log_start_offset < current.log_start_offset:
            if future.log_end_offset <= current.log_start_offset:
                future.truncate_fully_and_start_at(current.log_start_offset)
            else:
                future.delete_records_before(current.log_start_offset)
        if future.log_end_offset > current.log_start_offset:
            epoch = future.leader_epoch_cache.latest_epoch
            if epoch >= 0:
                _epoch, end = current.end_offset_for_epoch(epoch)
                if 0 <= end < future.log_end_offset:
                    future.truncate_to(end)
            if future.log_end_offset > current.log_end_offset:
                future.truncate_to(current.log_end_offset)

    async def _read(self, current: Log, offset: int) -> bytes | None:
        try:
            piece = current.read(offset, self.chunk_bytes, min_one_batch=True)
        except OffsetOutOfRangeError:
            return None
        if piece.length == 0:
            return b""
        try:
            data = await asyncio.to_thread(piece.read_bytes)
        except (OSError, ValueError):
            # the segment was deleted or closed meanwhile (retention, a swap of the cleaner)
            return None
        return data

    def _append(self, future: Log, chunk: bytes) -> bool | None:
        """True: appended; None: refused (a read that raced a truncation: reconcile and read again);
        False: the destination failed (its dir is offline now)."""
        try:
            future.append(chunk, leader_epoch=-1, assign_offsets=False)
        except OSError as exc:
            self.log_manager.fail_log_dir_of(future, exc)
            return False
        except KafkaError as exc:
            log.info("move of %s-%d: %s; copying again", future.topic, future.partition, exc)
            return None
        return True

    def _swap(self, key: Key, part: Any, current: Log, future: Log) -> bool:
        """Copy the rest and swap, all on the loop thread; False when the rest could not be read at once
        (the copy goes on)."""
        while future.log_end_offset < current.log_end_offset:
            try:
                piece = current.read(future.log_end_offset, 1 << 30, min_one_batch=True)
                data = piece.read_bytes()
            except (OffsetOutOfRangeError, OSError, ValueError):
                return False
            if not data:
                return False
            appended = self._append(future, data)
            if appended is False:
                return True  # the destination failed: the move is over
            if appended is None:
                return False
        for entry in current.aborted_txns.entries:
            if entry.last_offset >= future.log_start_offset and not future.aborted_txns.contains(
                entry.producer_id, entry.last_offset
            ):
                future.append_aborted_txn(entry)
        for epoch, start in current.leader_epoch_cache.entries():
            if epoch > future.leader_epoch_cache.latest_epoch:
                future.leader_epoch_cache.assign(epoch, max(start, future.log_start_offset))
        try:
            new_log = self.log_manager.replace_current_with_future(*key)
        except OSError as exc:
            self.log_manager.fail_log_dir_of(future, exc)
            return True
        part.replace_log(new_log)
        self.moves_done += 1
        log.info("%s-%d moved to log dir %s", key[0], key[1], new_log.dir.parent)
        return True
