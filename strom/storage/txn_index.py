"""Kafka's aborted-transaction index (`<base offset>.txnindex`, KIP-98).

Every ABORT marker appended to a partition adds one 34-byte entry to the index file of the segment the
marker lands in: version int16 (0), producer_id int64, first_offset int64 (the transaction's first offset
in this partition), last_offset int64 (the marker's offset), last_stable_offset int64 (the partition's
LSO once the transaction completed). A read_committed Fetch answers, with each partition's records, the
aborted transactions that overlap what it returns (`collect`), and the consumer drops their batches.

`TxnIndex` is one file; `AbortedTxnIndex` is a log's set of them, keyed by segment base offset, with the
entries of all of them in memory in marker order (aborts are rare and entries small). It follows the
log's segments: truncation drops entries at or above the cut, deleting a segment deletes its file, and a
cleaner swap moves the entries of the replaced segments into the file of the new one.
"""

from __future__ import annotations

import bisect
import contextlib
import os
import struct
from dataclasses import dataclass
from pathlib import Path

from strom.protocol.errors import CorruptRecordError

__all__ = ["ENTRY_SIZE", "TXN_INDEX_SUFFIX", "AbortedTxn", "AbortedTxnIndex", "TxnIndex"]

TXN_INDEX_SUFFIX = ".txnindex"
_ENTRY = struct.Struct(">hqqqq")
ENTRY_SIZE = _ENTRY.size  # 34
_VERSION = 0


@dataclass(frozen=True, slots=True)
class AbortedTxn:
    producer_id: int
    first_offset: int
    last_offset: int
    last_stable_offset: int

    def encode(self) -> bytes:
        return _ENTRY.pack(
            _VERSION, self.producer_id, self.first_offset, self.last_offset, self.last_stable_offset
        )


def index_path(directory: Path, base_offset: int) -> Path:
    return Path(directory) / f"{base_offset:020d}{TXN_INDEX_SUFFIX}"


class TxnIndex:
    """One `.txnindex` file: appended to, read whole, truncated by rewriting."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def read(self) -> list[AbortedTxn]:
        """Every whole entry; a torn tail (a crash mid-write) is ignored. CorruptRecordError on an
        unknown version."""
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return []
        out: list[AbortedTxn] = []
        for pos in range(0, len(data) - len(data) % ENTRY_SIZE, ENTRY_SIZE):
            version, pid, first, last, lso = _ENTRY.unpack_from(data, pos)
            if version != _VERSION:
                raise CorruptRecordError(f"{self.path.name}: entry version {version}")
            out.append(AbortedTxn(pid, first, last, lso))
        return out

    def append(self, entry: AbortedTxn) -> None:
        with open(self.path, "ab") as fh:
            fh.write(entry.encode())

    def rewrite(self, entries: list[AbortedTxn]) -> None:
        """Replace the file's content (atomically); an empty list removes the file."""
        if not entries:
            self.delete()
            return
        tmp = self.path.with_name(self.path.name + ".tmp")
        with open(tmp, "wb") as fh:
            fh.write(b"".join(e.encode() for e in entries))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)

    def flush(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            fd = os.open(self.path, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)

    def delete(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


class AbortedTxnIndex:
    """The aborted transactions of one log, across its segments' `.txnindex` files."""

    def __init__(self, directory: Path) -> None:
        self.dir = Path(directory)
        self._files: dict[int, list[AbortedTxn]] = {}
        self._entries: list[tuple[int, int, AbortedTxn]] = []  # (last_offset, segment base, entry)

    def load(self, segment_bases: list[int]) -> None:
        """Read the files of the given segments; files of segments that are gone are removed."""
        present = set(segment_bases)
        self._files.clear()
        for entry in os.scandir(self.dir):
            name = entry.name
            if not name.endswith(TXN_INDEX_SUFFIX) or not name[: -len(TXN_INDEX_SUFFIX)].isdigit():
                continue
            base = int(name[: -len(TXN_INDEX_SUFFIX)])
            if base not in present:
                os.unlink(entry.path)
                continue
            try:
                entries = TxnIndex(Path(entry.path)).read()
            except CorruptRecordError:
                os.unlink(entry.path)
                continue
            if entries:
                self._files[base] = entries
        self._reindex()

    def _reindex(self) -> None:
        self._entries = sorted(
            ((e.last_offset, base, e) for base, entries in self._files.items() for e in entries),
            key=lambda item: (item[0], item[1]),
        )

    @property
    def entries(self) -> list[AbortedTxn]:
        return [e for _, _, e in self._entries]

    def contains(self, producer_id: int, last_offset: int) -> bool:
        i = bisect.bisect_left(self._entries, last_offset, key=lambda item: item[0])
        while i < len(self._entries) and self._entries[i][0] == last_offset:
            if self._entries[i][2].producer_id == producer_id:
                return True
            i += 1
        return False

    def append(self, segment_base: int, entry: AbortedTxn) -> None:
        """Add an entry to the index file of the segment holding its marker."""
        TxnIndex(index_path(self.dir, segment_base)).append(entry)
        self._files.setdefault(segment_base, []).append(entry)
        if self._entries and self._entries[-1][0] > entry.last_offset:
            self._reindex()
        else:
            self._entries.append((entry.last_offset, segment_base, entry))

    def collect(self, fetch_offset: int, upper_bound: int) -> list[AbortedTxn]:
        """Aborted transactions overlapping [fetch_offset, upper_bound): Kafka's collectAbortedTxns."""
        i = bisect.bisect_left(self._entries, fetch_offset, key=lambda item: item[0])
        return [e for _, _, e in self._entries[i:] if e.first_offset < upper_bound]

    def truncate_to(self, offset: int) -> None:
        """Drop entries whose marker is at or above `offset` (the log was cut there)."""
        changed = False
        for base, entries in list(self._files.items()):
            kept = [e for e in entries if e.last_offset < offset]
            if len(kept) != len(entries):
                changed = True
                TxnIndex(index_path(self.dir, base)).rewrite(kept)
                if kept:
                    self._files[base] = kept
                else:
                    del self._files[base]
        if changed:
            self._reindex()

    def drop_segments(self, bases: list[int]) -> None:
        """The segments are deleted (retention, DeleteRecords, truncation): so are their entries."""
        changed = False
        for base in bases:
            TxnIndex(index_path(self.dir, base)).delete()
            changed |= self._files.pop(base, None) is not None
        if changed:
            self._reindex()

    def merge_segments(self, new_base: int, old_bases: list[int]) -> None:
        """A cleaner swap replaced `old_bases` with one segment at `new_base`: keep their entries in
        its file (written before the old files go, so a crash in between keeps every entry)."""
        merged = [e for base in sorted(old_bases) for e in self._files.get(base, [])]
        if not merged:
            return
        TxnIndex(index_path(self.dir, new_base)).rewrite(merged)
        for base in old_bases:
            if base != new_base:
                TxnIndex(index_path(self.dir, base)).delete()
            self._files.pop(base, None)
        self._files[new_base] = merged
        self._reindex()

    def clear(self) -> None:
        self.drop_segments(list(self._files))

    def flush(self) -> None:
        for base in list(self._files):
            TxnIndex(index_path(self.dir, base)).flush()
