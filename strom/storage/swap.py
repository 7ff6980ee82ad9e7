"""Swapping cleaned segments into a log, crash-safely, with Kafka's file suffixes.

The log cleaner writes a replacement for a group of old segments as `<base>.log.cleaned` (with
`.index.cleaned` and `.timeindex.cleaned`), named by the first old segment's base offset. Swapping it in
follows Kafka's `LocalLog.replaceSegments`:

  1. rename the cleaned files to `.swap`              (from here on the new data is the truth)
  2. rename each old segment's files to `.deleted`     (removed later, after file.delete.delay.ms)
  3. rename the `.swap` files to their live names
  4. open the new segment and put it in the log in place of the old ones.

A process that dies between any two renames leaves files that `complete_interrupted_swaps` (run before a
log is loaded, as Kafka's LogLoader does) turns back into a consistent log: `.cleaned` files are dropped
(the old segments are still whole), index `.swap` files are dropped (indexes are rebuilt), and a
`.log.swap` replaces every live segment whose base offset lies in [swap base, swap next offset) before
it is renamed to `.log`. An old segment of the group that survives that rule holds only records the
cleaner removed as superseded, so keeping it leaves a log that is merely less clean, never wrong.

Renames are cheap metadata operations; they run on the event-loop thread that owns the log, so no reader
ever sees half a swap. The directory fsync that makes them durable runs afterwards in a worker thread.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from strom.protocol.record_batch import BATCH_HEADER_SIZE, LOG_OVERHEAD, parse_header
from strom.storage.segment import (
    CLEANED_SUFFIX,
    INDEX_SUFFIX,
    LOG_SUFFIX,
    SWAP_SUFFIX,
    TIME_INDEX_SUFFIX,
    Segment,
    segment_name,
)

if TYPE_CHECKING:
    from strom.storage.log import Log

__all__ = [
    "SwapAbortedError",
    "SwapStep",
    "complete_interrupted_swaps",
    "file_paths",
    "remove_files",
    "swap_in",
]

_FILE_SUFFIXES = (LOG_SUFFIX, INDEX_SUFFIX, TIME_INDEX_SUFFIX)

# Called with a step name after each rename; tests use it to stop the process at every step.
SwapStep = Callable[[str], None]


class SwapAbortedError(Exception):
    """The log changed under the cleaner (truncated, retention removed a segment, closed): the cleaned
    files were discarded and the log is untouched."""


@dataclass(slots=True)
class CleanedGroup:
    """The cleaned replacement (files with `.cleaned` suffix) of `old` segments, ready to swap."""

    base_offset: int
    old: list[Segment]
    old_sizes: list[int]


def file_paths(directory: Path, base_offset: int, suffix: str) -> list[Path]:
    """The .log, .index and .timeindex paths of a segment, each with `suffix` appended."""
    stem = segment_name(base_offset)
    return [directory / (stem + kind + suffix) for kind in _FILE_SUFFIXES]


def remove_files(directory: Path, base_offset: int, suffix: str) -> None:
    for path in file_paths(directory, base_offset, suffix):
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def _next_offset_of(path: Path, base_offset: int) -> int:
    """The offset after the last whole batch of a .log file (header-only scan)."""
    next_offset = base_offset
    fd = os.open(path, os.O_RDONLY)
    try:
        size = os.fstat(fd).st_size
        pos = 0
        while size - pos >= BATCH_HEADER_SIZE:
            header = parse_header(os.pread(fd, BATCH_HEADER_SIZE, pos))
            if header.batch_length < BATCH_HEADER_SIZE - LOG_OVERHEAD or pos + header.size > size:
                break
            next_offset = header.next_offset
            pos += header.size
    finally:
        os.close(fd)
    return next_offset


def complete_interrupted_swaps(directory: Path) -> list[int]:
    """Finish (or undo) swaps a crash interrupted; returns the base offsets of the swapped-in segments.

    Run before the log's segments are opened. The swapped-in segments have no index files afterwards,
    so loading rebuilds them.
    """
    swaps: list[int] = []
    for entry in os.scandir(directory):
        name = entry.name
        if name.endswith(CLEANED_SUFFIX):
            os.unlink(entry.path)
        elif name.endswith(SWAP_SUFFIX):
            stem = name[: -len(SWAP_SUFFIX)]
            if stem.endswith(LOG_SUFFIX) and stem[: -len(LOG_SUFFIX)].isdigit():
                swaps.append(int(stem[: -len(LOG_SUFFIX)]))
            else:
                os.unlink(entry.path)  # index swap files: rebuilt from the log
    if not swaps:
        return []
    swaps.sort()
    low = swaps[0]
    high = max(_next_offset_of(directory / (segment_name(b) + LOG_SUFFIX + SWAP_SUFFIX), b) for b in swaps)
    high = max(high, swaps[-1] + 1)
    for entry in os.scandir(directory):
        for kind in _FILE_SUFFIXES:
            stem = entry.name[: -len(kind)]
            if entry.name.endswith(kind) and stem.isdigit() and low <= int(stem) < high:
                os.unlink(entry.path)  # an old segment the interrupted swap replaces
    for base in swaps:
        remove_files(directory, base, "")
        os.replace(
            directory / (segment_name(base) + LOG_SUFFIX + SWAP_SUFFIX),
            directory / (segment_name(base) + LOG_SUFFIX),
        )
    return swaps


def _move(src: Path, dst: Path) -> None:
    """Rename one file of a cleaned segment. Index files are created lazily, so tolerate a missing one
    (the segment then rebuilds it when it is opened); the .log must be there."""
    try:
        os.replace(src, dst)
    except FileNotFoundError:
        if src.name[len(segment_name(0)) :].startswith(LOG_SUFFIX):
            raise


def _check_unchanged(log: Log, group: CleanedGroup) -> None:
    if log.closed:
        raise SwapAbortedError(f"log {log.dir.name} was closed while it was cleaned")
    live = {id(segment) for segment in log.segments()[:-1]}  # never the active segment
    for segment, size in zip(group.old, group.old_sizes, strict=True):
        if id(segment) not in live or segment.deleted or segment.closed or segment.size != size:
            raise SwapAbortedError(
                f"segment {segment.base_offset} of {log.dir.name} changed while it was cleaned"
            )


def swap_in(log: Log, group: CleanedGroup, now_ms: int, on_step: SwapStep | None = None) -> Segment:
    """Replace `group.old` in `log` by the cleaned files (steps in the module docstring).

    Must run on the thread that owns the log. Raises SwapAbortedError (and removes the cleaned files)
    when the old segments are no longer exactly what was cleaned.
    """
    directory = log.dir
    base = group.base_offset
    try:
        _check_unchanged(log, group)
    except SwapAbortedError:
        remove_files(directory, base, CLEANED_SUFFIX)
        raise
    step = on_step or (lambda _name: None)
    # indexes first, the log last: the .log.swap is what recovery acts on
    cleaned = file_paths(directory, base, CLEANED_SUFFIX)
    swapped = file_paths(directory, base, SWAP_SUFFIX)
    for src, dst in reversed(list(zip(cleaned, swapped, strict=True))):
        _move(src, dst)
    step("renamed-to-swap")
    for i, segment in enumerate(group.old):
        segment.rename_to_deleted()
        step(f"old-deleted-{i}")
    live = file_paths(directory, base, "")
    for src, dst in zip(swapped, live, strict=True):
        _move(src, dst)
        step(f"swap-to-live-{dst.suffix}")
    segment = Segment(directory, base, log.config, now_ms)
    if not segment.load():
        segment.recover(log.config.max_message_bytes)
        segment.on_becoming_inactive()
    log.replace_segments(segment, group.old, now_ms)
    step("replaced")
    return segment
