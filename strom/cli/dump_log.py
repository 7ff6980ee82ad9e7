"""`strom dump-log FILE...`: what `kafka-dump-log.sh` does, offline, on Kafka's segment files.

- `.log`: one line per record batch in kafka-dump-log's layout (baseOffset, lastOffset, count, sequences,
  producer, epoch, flags, position, timestamp, size, magic, codec, crc, isvalid); with `--print-data`
  one `| offset: ...` line per record with its key, headers and payload. A corrupt or torn tail is
  reported and ends the file.
- `.index` (8-byte entries: relative offset, position) and `.timeindex` (12-byte entries: timestamp,
  relative offset): one line per entry, then a check against the `.log` beside it: every offset entry
  must point at the position of the batch ending at that offset, offsets and timestamps must not go
  backwards, and each time entry must name the batch holding that maximum timestamp. Trailing zero entries
  (the preallocated space of an active segment) are not entries. `--index-sanity-check` prints only
  whether each index passes; `--verify-index-only` prints only the mismatches.
Exit status 1 when any file is corrupt or any index check fails.
"""

from __future__ import annotations

import mmap
import struct
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import click

from strom.protocol.errors import KafkaError
from strom.protocol.record_batch import BATCH_HEADER_SIZE, LOG_OVERHEAD, BatchHeader, batch_crc, parse_header
from strom.protocol.records import decode_records

_CODECS = {0: "none", 1: "gzip", 2: "snappy", 3: "lz4", 4: "zstd"}
_INDEX_ENTRY = struct.Struct(">ii")
_TIME_ENTRY = struct.Struct(">qi")


@contextmanager
def _mapped(path: Path) -> Iterator[memoryview]:
    """The file's bytes, memory-mapped read-only (an empty file is an empty view)."""
    with path.open("rb") as f:
        size = path.stat().st_size
        if size == 0:
            yield memoryview(b"")
            return
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
            view = memoryview(mapped)
            try:
                yield view
            finally:
                view.release()


@dataclass(frozen=True, slots=True)
class BatchAt:
    position: int
    header: BatchHeader


def scan_log(buf: memoryview) -> tuple[list[BatchAt], str | None]:
    """Every whole batch of a segment, and a description of a torn or impossible tail (None if clean)."""
    batches: list[BatchAt] = []
    pos = 0
    while pos < len(buf):
        if len(buf) - pos < BATCH_HEADER_SIZE:
            return batches, f"partial batch header of {len(buf) - pos} bytes at position {pos}"
        header = parse_header(buf, pos)
        if header.batch_length < BATCH_HEADER_SIZE - LOG_OVERHEAD or pos + header.size > len(buf):
            return batches, f"batch at position {pos} claims {header.size} bytes, {len(buf) - pos} remain"
        batches.append(BatchAt(pos, header))
        pos += header.size
    return batches, None


def _bool(value: bool) -> str:
    return "true" if value else "false"


def batch_line(buf: memoryview, at: BatchAt) -> tuple[str, bool]:
    h = at.header
    valid = h.magic == 2 and batch_crc(buf, at.position, h.size) == h.crc
    ts_name = "LogAppendTime" if h.timestamp_type == 1 else "CreateTime"
    line = (
        f"baseOffset: {h.base_offset} lastOffset: {h.last_offset} count: {h.records_count} "
        f"baseSequence: {h.base_sequence} lastSequence: {h.last_sequence} producerId: {h.producer_id} "
        f"producerEpoch: {h.producer_epoch} partitionLeaderEpoch: {h.partition_leader_epoch} "
        f"isTransactional: {_bool(h.is_transactional)} isControl: {_bool(h.is_control)} "
        f"position: {at.position} {ts_name}: {h.max_timestamp} size: {h.size} magic: {h.magic} "
        f"compresscodec: {_CODECS.get(h.compression, str(h.compression))} crc: {h.crc} "
        f"isvalid: {_bool(valid)}"
    )
    return line, valid


def _show(raw: bytes | None) -> str:
    return "null" if raw is None else raw.decode("utf-8", errors="replace")


def record_lines(buf: memoryview, at: BatchAt) -> list[str]:
    h = at.header
    ts_name = "LogAppendTime" if h.timestamp_type == 1 else "CreateTime"
    lines = []
    for r in decode_records(buf[at.position : at.position + h.size]):
        ts = h.max_timestamp if h.timestamp_type == 1 else h.base_timestamp + r.timestamp_delta
        seq = h.base_sequence + r.offset_delta if h.base_sequence >= 0 else -1
        keys = ",".join(k for k, _v in r.headers)
        lines.append(
            f"| offset: {h.base_offset + r.offset_delta} {ts_name}: {ts} "
            f"keySize: {-1 if r.key is None else len(r.key)} "
            f"valueSize: {-1 if r.value is None else len(r.value)} sequence: {seq} headerKeys: [{keys}]"
            f" key: {_show(r.key)} payload: {_show(r.value)}"
        )
    return lines


def dump_log_file(path: Path, print_data: bool) -> bool:
    ok = True
    with _mapped(path) as buf:
        batches, tail = scan_log(buf)
        click.echo(f"Log starting offset: {_base_offset(path)}")
        for at in batches:
            line, valid = batch_line(buf, at)
            ok &= valid
            click.echo(line)
            if print_data and valid:
                try:
                    for record in record_lines(buf, at):
                        click.echo(record)
                except KafkaError as exc:
                    ok = False
                    click.echo(f"| cannot decode records: {exc}")
        if tail is not None:
            ok = False
            click.echo(f"Found a corrupt tail: {tail}")
    return ok


def _base_offset(path: Path) -> int:
    try:
        return int(path.stem)
    except ValueError:
        return 0


def read_index(buf: memoryview, entry: struct.Struct) -> list[tuple[int, int]]:
    """(a, b) entries of an index file up to the first all-zero entry after the first (preallocation)."""
    out = []
    for i in range(len(buf) // entry.size):
        a, b = entry.unpack_from(buf, i * entry.size)
        if i > 0 and a == 0 and b == 0:
            break
        out.append((a, b))
    if len(out) == 1 and out[0] == (0, 0) and entry is _TIME_ENTRY:
        return []  # a preallocated time index with no entries
    return out


def _log_batches(index_path: Path) -> list[BatchAt] | None:
    log_path = index_path.with_suffix(".log")
    if not log_path.exists():
        return None
    with _mapped(log_path) as buf:
        return scan_log(buf)[0]


def check_offset_index(entries: list[tuple[int, int]], base: int, batches: list[BatchAt]) -> list[str]:
    by_position = {b.position: b.header for b in batches}
    problems = []
    last = -1
    for rel, position in entries:
        offset = base + rel
        if offset <= last:
            problems.append(f"Index offset {offset} does not follow the previous entry {last}")
        last = offset
        header = by_position.get(position)
        if header is None:
            problems.append(f"Index offset: {offset}, position {position} is not the start of a batch")
        elif header.last_offset != offset:
            problems.append(f"Index offset: {offset}, log offset: {header.last_offset}")
    return problems


def check_time_index(entries: list[tuple[int, int]], base: int, batches: list[BatchAt]) -> list[str]:
    by_last = {b.header.last_offset: b.header for b in batches}
    problems = []
    last_ts = last_offset = -1
    for ts, rel in entries:
        offset = base + rel
        if ts < last_ts or offset < last_offset:
            problems.append(f"Found out of order entry: timestamp: {ts} offset: {offset}")
        last_ts, last_offset = ts, offset
        header = by_last.get(offset)
        if header is None:
            problems.append(f"Index offset: {offset} is not the last offset of a batch")
        elif header.max_timestamp != ts:
            problems.append(
                f"Index timestamp: {ts}, log timestamp: {header.max_timestamp} at offset {offset}"
            )
    return problems


def dump_index_file(path: Path, time_index: bool, sanity_only: bool, verify_only: bool) -> bool:
    with _mapped(path) as buf:
        entries = read_index(buf, _TIME_ENTRY if time_index else _INDEX_ENTRY)
    base = _base_offset(path)
    if not sanity_only and not verify_only:
        for a, b in entries:
            click.echo(
                f"timestamp: {a} offset: {base + b}" if time_index else f"offset: {base + a} position: {b}"
            )
    batches = _log_batches(path)
    if batches is None:
        click.echo(f"No log file {path.with_suffix('.log').name} to check the index against.")
        return True
    check = check_time_index if time_index else check_offset_index
    problems = check(entries, base, batches)
    if sanity_only:
        verdict = "passed" if not problems else "failed"
        click.echo(f"{path} {verdict} sanity check.")
    elif problems:
        click.echo(f"Mismatches in :{path}")
        for problem in problems:
            click.echo(f"  {problem}")
    return not problems


@click.command("dump-log")
@click.argument(
    "files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
@click.option("--print-data", "--deep-iteration", "print_data", is_flag=True, help="Print every record.")
@click.option("--index-sanity-check", is_flag=True, help="Only say whether each index passes its checks.")
@click.option("--verify-index-only", is_flag=True, help="Only print the index mismatches.")
def dump_log(
    files: tuple[Path, ...], print_data: bool, index_sanity_check: bool, verify_index_only: bool
) -> None:
    """Print the batches, records and index entries of Kafka segment files (.log, .index, .timeindex)."""
    ok = True
    for path in files:
        click.echo(f"Dumping {path}")
        if path.suffix == ".log":
            ok &= dump_log_file(path, print_data)
        elif path.suffix in (".index", ".timeindex"):
            ok &= dump_index_file(path, path.suffix == ".timeindex", index_sanity_check, verify_index_only)
        else:
            click.echo(f"Ignoring unknown file {path}", err=True)
            ok = False
    sys.exit(0 if ok else 1)
