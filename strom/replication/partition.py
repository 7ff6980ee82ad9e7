"""One partition on this broker: the only owner of its log, its high watermark, ISR and producer state.

Leader appends (`append_as_leader`) validate the batch headers (magic 2, CRC-32C, sizes), check
max.message.bytes (MESSAGE_TOO_LARGE), run the idempotent-producer checks (KIP-98; duplicates answer with
the first copy's offsets), append, and then advance the high watermark. The high watermark is the minimum
log end offset over the ISR; on a single node the ISR is {self}, so it follows the log end at once. acks=-1
waits for the high watermark to pass the batch (`wait_for_high_watermark`), the shape the replicated case
needs; acks=-1 with an ISR smaller than min.insync.replicas answers NOT_ENOUGH_REPLICAS and appends nothing.

Readers that wait (the fetch purgatory) register an `asyncio.Event` with `add_waiter`; every append and high
watermark move sets it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from strom.protocol.errors import ErrorCode, KafkaError, RecordTooLargeError
from strom.protocol.record_batch import BatchHeader, validate_batches
from strom.storage.producer_state import ProducerStateManager

log = logging.getLogger("strom.partition")

__all__ = ["AppendResult", "NotEnoughReplicasError", "Partition"]


class NotEnoughReplicasError(KafkaError):
    code = ErrorCode.not_enough_replicas


@dataclass(frozen=True, slots=True)
class AppendResult:
    """What Produce answers for one partition."""

    first_offset: int
    last_offset: int
    log_append_time: int
    log_start_offset: int
    duplicate: bool = False


class Partition:
    def __init__(
        self,
        topic: str,
        partition: int,
        log: Any,
        *,
        node_id: int,
        leader_epoch: int = 0,
        isr: tuple[int, ...] = (),
        clock: Callable[[], float],
    ) -> None:
        self.topic = topic
        self.partition = partition
        self.log = log
        self.node_id = node_id
        self.leader_epoch = leader_epoch
        self.isr: tuple[int, ...] = isr or (node_id,)
        self.clock = clock
        self.producer_state = ProducerStateManager(log.dir)
        self._waiters: set[asyncio.Event] = set()
        self._hw_waiters: list[tuple[int, asyncio.Future[None]]] = []
        self.high_watermark = log.log_end_offset

    # --- state -------------------------------------------------------------------------------------
    @property
    def log_start_offset(self) -> int:
        return int(self.log.log_start_offset)

    @property
    def log_end_offset(self) -> int:
        return int(self.log.log_end_offset)

    @property
    def is_leader(self) -> bool:
        return True

    def load_producer_state(self) -> None:
        """Load the newest producer snapshot and replay the batches after it (blocking)."""
        start = self.producer_state.load_snapshot(self.log_end_offset)
        start = max(start, self.log_start_offset)
        if start < self.log_end_offset:
            self.producer_state.replay(self.log.iter_batches(start))

    def take_producer_snapshot(self) -> None:
        self.producer_state.take_snapshot(self.log_end_offset)

    # --- waiting -----------------------------------------------------------------------------------
    def add_waiter(self, event: asyncio.Event) -> None:
        self._waiters.add(event)

    def remove_waiter(self, event: asyncio.Event) -> None:
        self._waiters.discard(event)

    def _wake(self) -> None:
        for event in self._waiters:
            event.set()

    async def wait_for_high_watermark(self, offset: int, timeout: float) -> bool:
        """Wait until the high watermark reaches `offset`; False on timeout (REQUEST_TIMED_OUT)."""
        if self.high_watermark >= offset:
            return True
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        item = (offset, fut)
        self._hw_waiters.append(item)
        try:
            await asyncio.wait_for(asyncio.shield(fut), timeout)
            return True
        except TimeoutError:
            return False
        finally:
            if item in self._hw_waiters:
                self._hw_waiters.remove(item)

    def _advance_high_watermark(self) -> None:
        # The ISR is {self} on a single node; with followers this becomes min(LEO over the ISR).
        new_hw = self.log_end_offset
        if new_hw <= self.high_watermark:
            return
        self.high_watermark = new_hw
        for offset, fut in self._hw_waiters:
            if offset <= new_hw and not fut.done():
                fut.set_result(None)

    # --- appending ---------------------------------------------------------------------------------
    def check_min_isr(self) -> None:
        min_isr = int(self.log.config.min_insync_replicas)
        if len(self.isr) < min_isr:
            raise NotEnoughReplicasError(
                f"ISR {list(self.isr)} of {self.topic}-{self.partition} below min.insync.replicas={min_isr}"
            )

    def append_as_leader(self, records: bytes | bytearray | memoryview, *, acks: int) -> AppendResult:
        """Validate and append a produce request's record set; raises KafkaError with nothing written."""
        if acks == -1:
            self.check_min_isr()
        headers: list[BatchHeader] = validate_batches(records)
        max_bytes = int(self.log.config.max_message_bytes)
        for header in headers:
            if header.size > max_bytes:
                raise RecordTooLargeError(
                    f"batch of {header.size} bytes over max.message.bytes {max_bytes} for {self.topic}"
                )
        if len(headers) == 1 and headers[0].has_producer_id:
            duplicate = self.producer_state.check(headers[0])
            if duplicate is not None:
                return AppendResult(
                    duplicate.first_offset, duplicate.last_offset, -1, self.log_start_offset, True
                )
        else:
            for header in headers:
                if self.producer_state.check(header) is not None:
                    raise KafkaError(
                        "duplicate batch inside a multi-batch request", ErrorCode.duplicate_sequence_number
                    )
        info = self.log.append(records, leader_epoch=self.leader_epoch, headers=headers)
        offset = int(info.first_offset)
        for header in headers:
            if header.has_producer_id:
                last = offset + header.last_offset_delta
                self.producer_state.update(header, offset, last, header.max_timestamp)
            offset += header.last_offset_delta + 1
        self._advance_high_watermark()
        self._wake()
        return AppendResult(
            int(info.first_offset), int(info.last_offset), int(info.log_append_time), self.log_start_offset
        )

    # --- reading -----------------------------------------------------------------------------------
    def read(
        self, offset: int, max_bytes: int, *, min_one_batch: bool = True, committed_only: bool = True
    ) -> Any:
        """A slice of the log from `offset`; consumers see nothing at or above the high watermark."""
        max_offset = self.high_watermark if committed_only else None
        return self.log.read(offset, max_bytes, max_offset=max_offset, min_one_batch=min_one_batch)

    def on_log_truncated(self) -> None:
        self.high_watermark = min(self.high_watermark, self.log_end_offset)
        self.producer_state.truncate_snapshots_above(self.log_end_offset)
        self._wake()

    def on_log_start_moved(self) -> None:
        if self.high_watermark < self.log_start_offset:
            self.high_watermark = self.log_start_offset
        self._wake()
