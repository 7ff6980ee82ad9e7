"""`strom produce TOPIC`: what `kafka-console-producer.sh` does: one record per input line.

Lines come from stdin or `--file`. `--key-separator SEP` splits each line into key and value at the first
SEP (Kafka's `parse.key=true` with `key.separator`); `--header k=v` adds headers to every record.
Keyed records go to `murmur2(key) % partitions` (Kafka's default partitioner, so keys land where Java
and librdkafka's `murmur2_random` put them); unkeyed records fill one batch per partition in turn (the
sticky partitioner, KIP-480). `--partition` pins every record. Records travel in v2 batches of up to
`--batch-size` records, compressed with `--compression`, acknowledged per `--acks`. The topic is created
on first use when the broker allows auto-creation, as the console producer does.
A progress bar shows the bytes read from a large `--file` on a terminal.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, nullcontext
from typing import IO, Any

import click

from strom.cli.common import ClientOptions, client_options, emit_json, parse_key_values, run
from strom.client.cluster import ClusterClient, raise_for_error
from strom.protocol.errors import ErrorCode
from strom.protocol.records import Record, build_batch

CODECS = {"none": 0, "gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4}
_ACKS = {"all": -1, "-1": -1, "1": 1, "0": 0}
_MAX_BATCH_BYTES = 1 << 20


def murmur2(data: bytes) -> int:
    """Kafka's `Utils.murmur2` (seed 0x9747b28c), as a signed 32-bit int."""
    m, r = 0x5BD1E995, 24
    length = len(data)
    h = (0x9747B28C ^ length) & 0xFFFFFFFF
    end = length - length % 4
    for i in range(0, end, 4):
        k = int.from_bytes(data[i : i + 4], "little")
        k = (k * m) & 0xFFFFFFFF
        k ^= k >> r
        k = (k * m) & 0xFFFFFFFF
        h = ((h * m) & 0xFFFFFFFF) ^ k
    tail = length % 4
    if tail >= 3:
        h ^= data[end + 2] << 16
    if tail >= 2:
        h ^= data[end + 1] << 8
    if tail >= 1:
        h ^= data[end]
        h = (h * m) & 0xFFFFFFFF
    h ^= h >> 13
    h = (h * m) & 0xFFFFFFFF
    h ^= h >> 15
    return h - (1 << 32) if h & 0x80000000 else h


def partition_for_key(key: bytes, partitions: int) -> int:
    """Kafka's default partitioner for a keyed record: toPositive(murmur2(key)) % partitions."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions


def split_line(line: bytes, separator: bytes | None) -> tuple[bytes | None, bytes]:
    """(key, value) of one input line; without a separator the whole line is the value. A line lacking
    the separator is an error, as in the console producer."""
    if separator is None:
        return None, line
    key, sep, value = line.partition(separator)
    if not sep:
        raise click.ClickException(f"no key separator {separator.decode()!r} in line {line[:80]!r}")
    return key, value


def iter_lines(stream: IO[bytes]) -> Iterator[bytes]:
    for raw in stream:
        yield raw.rstrip(b"\n").removesuffix(b"\r")


class _Batcher:
    """Collects records per partition and sends each full batch; remembers the offsets it got."""

    def __init__(self, client: ClusterClient, topic: str, *, acks: int, codec: int, batch_size: int) -> None:
        self.client = client
        self.topic = topic
        self.acks = acks
        self.codec = codec
        self.batch_size = batch_size
        self.pending: dict[int, list[Record]] = {}
        self.pending_bytes: dict[int, int] = {}
        self.sent = 0
        self.offsets: dict[int, list[int]] = {}

    async def add(self, partition: int, key: bytes | None, value: bytes, headers: list[Any]) -> bool:
        """Queue one record; returns True when its partition's batch was sent (the batch is full)."""
        records = self.pending.setdefault(partition, [])
        records.append(Record(len(records), 0, key, value, headers))
        size = self.pending_bytes.get(partition, 0) + len(value) + (len(key) if key else 0) + 16
        self.pending_bytes[partition] = size
        if len(records) >= self.batch_size or size >= _MAX_BATCH_BYTES:
            await self.send(partition)
            return True
        return False

    async def send(self, partition: int) -> None:
        records = self.pending.pop(partition, [])
        self.pending_bytes.pop(partition, None)
        if not records:
            return
        batch = build_batch(records, codec=self.codec, base_timestamp=int(time.time() * 1000))
        base = await self.client.produce(self.topic, partition, batch, acks=self.acks)
        self.sent += len(records)
        if base >= 0:
            span = self.offsets.setdefault(partition, [base, base])
            span[1] = base + len(records) - 1

    async def flush(self) -> None:
        for partition in list(self.pending):
            await self.send(partition)


async def _partition_count(client: ClusterClient, topic: str) -> int:
    """Partitions of the topic, asking the broker to auto-create it (LEADER_NOT_AVAILABLE while it does)."""
    for _attempt in range(20):
        meta = await client.metadata([topic], auto_create=True)
        tmeta = meta.topics.get(topic)
        code = tmeta.error_code if tmeta else ErrorCode.unknown_topic_or_partition.value
        if code == ErrorCode.leader_not_available.value or (tmeta and not tmeta.partitions):
            await asyncio.sleep(0.1)
            continue
        raise_for_error(code, what=f"topic {topic}")
        assert tmeta is not None
        return len(tmeta.partitions)
    raise_for_error(ErrorCode.leader_not_available.value, what=f"topic {topic}")
    raise AssertionError("unreachable")


def _progress(file: str | None) -> tuple[AbstractContextManager[Any], Any]:
    """A rich progress bar over the bytes of --file, on a terminal only."""
    if file is None or not sys.stderr.isatty():
        return nullcontext(), None
    from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn

    progress = Progress(
        "[progress.description]{task.description}", BarColumn(), DownloadColumn(), TimeRemainingColumn()
    )
    task = progress.add_task("producing", total=os.path.getsize(file))
    return progress, (progress, task)


@click.command("produce")
@click.argument("topic")
@click.option(
    "--file",
    "file",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="Read lines from FILE instead of stdin.",
)
@click.option("--key-separator", default=None, help="Split each line into key SEP value at the first SEP.")
@click.option("--header", "headers", multiple=True, help="Header k=v added to every record (repeatable).")
@click.option("--partition", type=int, default=None, help="Send every record to this partition.")
@click.option("--acks", type=click.Choice(list(_ACKS)), default="all", show_default=True)
@click.option(
    "--compression",
    "--compression-codec",
    "compression",
    type=click.Choice(list(CODECS)),
    default="none",
    show_default=True,
)
@click.option(
    "--batch-size", type=click.IntRange(1), default=500, show_default=True, help="Records per batch."
)
@client_options
def produce(
    topic: str,
    file: str | None,
    key_separator: str | None,
    headers: tuple[str, ...],
    partition: int | None,
    acks: str,
    compression: str,
    batch_size: int,
    opts: ClientOptions,
) -> None:
    """Produce one record per line of stdin (or --file) to TOPIC."""
    header_list = [(k, v.encode()) for k, v in parse_key_values(headers, "--header").items()]
    separator = key_separator.encode() if key_separator else None

    async def go() -> _Batcher:
        async with opts.client() as client:
            count = await _partition_count(client, topic)
            if partition is not None and not 0 <= partition < count:
                raise_for_error(
                    ErrorCode.unknown_topic_or_partition.value, f"topic {topic} has no partition {partition}"
                )
            batcher = _Batcher(
                client, topic, acks=_ACKS[acks], codec=CODECS[compression], batch_size=batch_size
            )
            sticky = 0
            bar, handle = _progress(file)
            stream: IO[bytes] = open(file, "rb") if file else sys.stdin.buffer  # noqa: SIM115
            try:
                with bar:
                    for line in iter_lines(stream):
                        key, value = split_line(line, separator)
                        if partition is not None:
                            target = partition
                        elif key is not None:
                            target = partition_for_key(key, count)
                        else:
                            target = sticky
                        if await batcher.add(target, key, value, header_list) and target == sticky:
                            sticky = (sticky + 1) % count
                        if handle is not None:
                            handle[0].update(handle[1], completed=stream.tell())
                    await batcher.flush()
            finally:
                if file:
                    stream.close()
            return batcher

    batcher = run(go())
    if opts.output == "json":
        emit_json(
            {
                "topic": topic,
                "records": batcher.sent,
                "partitions": {
                    str(p): {"first_offset": a, "last_offset": b}
                    for p, (a, b) in sorted(batcher.offsets.items())
                },
            }
        )
    else:
        click.echo(f"Produced {batcher.sent} records to {topic}.", err=True)
