"""One share-partition (KIP-932): the records of one topic partition as one share group sees them, kept by
the partition's leader. Sans-io: the caller hands in the batches it read and the time.

- The share-partition start offset (SPSO) is the first record not yet done with; every record below it
  is acknowledged or archived. Records from the SPSO up to `end_offset` (one past the share-partition end
  offset) are in flight, each with a state: AVAILABLE (0), ACQUIRED (1), ACKNOWLEDGED (2) or ARCHIVED (4),
  Kafka's RecordState codes. Records at or past `end_offset` were never acquired.
- Acquiring (ShareFetch) takes AVAILABLE records first (redeliveries), then new ones, whole batches at a
  time, for one member: the delivery count goes up by one and an acquisition lock runs for
  group.share.record.lock.duration.ms. Records may be in flight only up to the SPSO plus
  group.share.partition.max.record.locks; past that nothing new is acquired until the SPSO moves.
- Acknowledging (ShareFetch/ShareAcknowledge; KIP-932 and KIP-1222's RENEW) works on records the member
  holds: ACCEPT makes them ACKNOWLEDGED, REJECT and GAP (offsets a batch does not hold) ARCHIVED, RELEASE
  makes them AVAILABLE again, RENEW restarts their lock. A record the member does not hold fails its
  batch with INVALID_RECORD_STATE and changes nothing.
- A released record (RELEASE, an expired lock, its member's session closing) whose delivery count reached
  group.share.delivery.count.limit is ARCHIVED instead of becoming AVAILABLE.
- Whenever the records at the SPSO are done, the SPSO moves past them and they leave the map.

The persisted form (`state_batches`) is Kafka's: ranges of (first, last, delivery state, delivery count),
where an ACQUIRED record is written as AVAILABLE (a lock does not outlive its leader).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass

from strom.protocol.errors import ErrorCode


class RecordState(enum.IntEnum):
    AVAILABLE = 0
    ACQUIRED = 1
    ACKNOWLEDGED = 2
    ARCHIVED = 4


class AckType(enum.IntEnum):
    GAP = 0
    ACCEPT = 1
    RELEASE = 2
    REJECT = 3
    RENEW = 4


@dataclass(slots=True)
class InFlight:
    state: RecordState
    delivery_count: int = 0
    member_id: str | None = None
    deadline_ms: int = 0


@dataclass(frozen=True, slots=True)
class StateBatch:
    first_offset: int
    last_offset: int
    delivery_state: int
    delivery_count: int


@dataclass(frozen=True, slots=True)
class FetchedBatch:
    """What acquisition needs of a record batch read from the log."""

    base_offset: int
    last_offset: int
    is_control: bool = False


@dataclass(frozen=True, slots=True)
class Acquired:
    first_offset: int
    last_offset: int
    delivery_count: int


@dataclass(frozen=True, slots=True)
class ShareLimits:
    lock_duration_ms: int = 30000
    delivery_count_limit: int = 5
    max_record_locks: int = 2000


_DONE = (RecordState.ACKNOWLEDGED, RecordState.ARCHIVED)


class SharePartition:
    def __init__(
        self,
        start_offset: int,
        limits: ShareLimits,
        *,
        state_epoch: int = 0,
        batches: Iterable[StateBatch] = (),
    ) -> None:
        self.limits = limits
        self.start_offset = start_offset
        self.end_offset = start_offset
        self.state_epoch = state_epoch
        self.records: dict[int, InFlight] = {}
        for b in batches:
            for offset in range(max(b.first_offset, start_offset), b.last_offset + 1):
                state = RecordState(b.delivery_state)
                if state is RecordState.ACQUIRED:
                    state = RecordState.AVAILABLE
                self.records[offset] = InFlight(state, b.delivery_count)
            self.end_offset = max(self.end_offset, b.last_offset + 1)
        # offsets inside the in-flight window the stored batches did not name were never delivered
        for offset in range(self.start_offset, self.end_offset):
            self.records.setdefault(offset, InFlight(RecordState.AVAILABLE, 0))
        self._advance()

    # --- reading the state ---------------------------------------------------------------------------

    def fetch_offset(self) -> int:
        """Where the next read of the log should start: the first AVAILABLE in-flight record, else the
        end of the in-flight window."""
        for offset in range(self.start_offset, self.end_offset):
            if self.records[offset].state is RecordState.AVAILABLE:
                return offset
        return self.end_offset

    def can_acquire(self) -> bool:
        """Whether an acquisition could take anything: an AVAILABLE record, or room for new ones."""
        if self.end_offset < self.start_offset + self.limits.max_record_locks:
            return True
        return any(r.state is RecordState.AVAILABLE for r in self.records.values())

    def acquired_by(self, member_id: str) -> list[int]:
        return [
            o for o, r in self.records.items() if r.state is RecordState.ACQUIRED and r.member_id == member_id
        ]

    def next_deadline(self) -> int | None:
        deadlines = [r.deadline_ms for r in self.records.values() if r.state is RecordState.ACQUIRED]
        return min(deadlines) if deadlines else None

    def state_batches(self) -> list[StateBatch]:
        """The in-flight records as Kafka persists them: runs of equal (state, delivery count), an
        ACQUIRED record written as AVAILABLE."""
        out: list[StateBatch] = []
        run: list[int] | None = None  # [first, last, state, count]
        for offset in range(self.start_offset, self.end_offset):
            r = self.records[offset]
            state = RecordState.AVAILABLE if r.state is RecordState.ACQUIRED else r.state
            if run is not None and run[1] == offset - 1 and run[2] == state and run[3] == r.delivery_count:
                run[1] = offset
                continue
            if run is not None:
                out.append(StateBatch(*run))
            run = [offset, offset, int(state), r.delivery_count]
        if run is not None:
            out.append(StateBatch(*run))
        return out

    # --- moving the window ---------------------------------------------------------------------------

    def move_start(self, offset: int) -> None:
        """The log's start moved past records not yet done with (retention, DeleteRecords), or the
        SPSO was reset: nothing below `offset` can be delivered any more."""
        if offset <= self.start_offset:
            return
        for o in range(self.start_offset, min(offset, self.end_offset)):
            self.records.pop(o, None)
        self.start_offset = offset
        self.end_offset = max(self.end_offset, offset)
        self._advance()

    def _advance(self) -> bool:
        moved = False
        while self.start_offset < self.end_offset and self.records[self.start_offset].state in _DONE:
            del self.records[self.start_offset]
            self.start_offset += 1
            moved = True
        return moved

    # --- acquiring -----------------------------------------------------------------------------------

    def acquire(
        self, member_id: str, batches: Iterable[FetchedBatch], max_records: int, now_ms: int
    ) -> tuple[list[Acquired], list[FetchedBatch]]:
        """Acquire for `member_id` from `batches` (read from the log at `fetch_offset()`, in offset order)
        up to `max_records` (whole batches: the last may take it past). Returns the acquired ranges
        (runs of one delivery count) and the batches that hold them."""
        acquired: list[int] = []
        used: list[FetchedBatch] = []
        window_end = self.start_offset + self.limits.max_record_locks
        deadline = now_ms + self.limits.lock_duration_ms
        for batch in batches:
            if len(acquired) >= max_records:
                break
            if batch.last_offset < self.start_offset:
                continue
            if batch.base_offset >= self.end_offset and batch.base_offset >= window_end:
                break
            taken = False
            # a gap between the window's end and this batch (compacted away, or never written)
            for o in range(self.end_offset, batch.base_offset):
                self.records[o] = InFlight(RecordState.ARCHIVED)
            self.end_offset = max(self.end_offset, batch.base_offset)
            for offset in range(max(batch.base_offset, self.start_offset), batch.last_offset + 1):
                r = self.records.get(offset)
                if r is None:
                    if offset < self.end_offset:
                        continue
                    if offset >= window_end:
                        break
                    # a control batch (transaction marker) holds nothing to deliver
                    if batch.is_control:
                        self.records[offset] = InFlight(RecordState.ARCHIVED)
                        self.end_offset = offset + 1
                        continue
                    r = self.records[offset] = InFlight(RecordState.AVAILABLE)
                    self.end_offset = offset + 1
                if r.state is not RecordState.AVAILABLE or batch.is_control:
                    continue
                r.state = RecordState.ACQUIRED
                r.delivery_count += 1
                r.member_id = member_id
                r.deadline_ms = deadline
                acquired.append(offset)
                taken = True
            if taken:
                used.append(batch)
        self._advance()
        return self._ranges(acquired), used

    def _ranges(self, offsets: list[int]) -> list[Acquired]:
        out: list[Acquired] = []
        for offset in offsets:
            count = self.records[offset].delivery_count
            if out and out[-1].last_offset == offset - 1 and out[-1].delivery_count == count:
                out[-1] = Acquired(out[-1].first_offset, offset, count)
            else:
                out.append(Acquired(offset, offset, count))
        return out

    # --- acknowledging and releasing -----------------------------------------------------------------

    def acknowledge(self, member_id: str, first: int, last: int, types: list[int], now_ms: int) -> ErrorCode:
        """Apply one acknowledgement batch: one type for the whole range, or one per offset."""
        if last < first or not types or (len(types) != 1 and len(types) != last - first + 1):
            return ErrorCode.invalid_request
        try:
            kinds = [AckType(t) for t in types]
        except ValueError:
            return ErrorCode.invalid_request
        for offset in range(first, last + 1):
            r = self.records.get(offset)
            if r is None or r.state is not RecordState.ACQUIRED or r.member_id != member_id:
                return ErrorCode.invalid_record_state
        for i, offset in enumerate(range(first, last + 1)):
            r = self.records[offset]
            kind = kinds[0] if len(kinds) == 1 else kinds[i]
            if kind is AckType.ACCEPT:
                self._finish(r, RecordState.ACKNOWLEDGED)
            elif kind in (AckType.REJECT, AckType.GAP):
                self._finish(r, RecordState.ARCHIVED)
            elif kind is AckType.RELEASE:
                self._release(r)
            else:  # RENEW: the member keeps it for another lock duration
                r.deadline_ms = now_ms + self.limits.lock_duration_ms
        self._advance()
        return ErrorCode.none

    def release_member(self, member_id: str) -> bool:
        """The member's session closed or its connection went away: what it holds goes back."""
        changed = False
        for r in self.records.values():
            if r.state is RecordState.ACQUIRED and r.member_id == member_id:
                self._release(r)
                changed = True
        self._advance()
        return changed

    def expire_locks(self, now_ms: int) -> bool:
        """Release the records whose acquisition lock ran out; whether any did."""
        changed = False
        for r in self.records.values():
            if r.state is RecordState.ACQUIRED and r.deadline_ms <= now_ms:
                self._release(r)
                changed = True
        self._advance()
        return changed

    def _release(self, r: InFlight) -> None:
        if r.delivery_count >= self.limits.delivery_count_limit:
            self._finish(r, RecordState.ARCHIVED)
        else:
            self._finish(r, RecordState.AVAILABLE)

    @staticmethod
    def _finish(r: InFlight, state: RecordState) -> None:
        r.state = state
        r.member_id = None
        r.deadline_ms = 0
