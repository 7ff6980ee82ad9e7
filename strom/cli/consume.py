"""`strom consume TOPIC`: what `kafka-console-consumer.sh` and `kcat -C` do.

Starting point per partition: `--offset` (a number, `earliest` or `latest`; negative N means N before
the end, as kcat's `-o -N`), else the group's committed offset with `--group`, else the beginning with
`--from-beginning`, else the end. `--max-messages` and `--timeout-ms` (idle time) end the run, so does
`--exit` once every partition is caught up (kcat `-e`). `--isolation-level read_committed` reads only up
to the last stable offset and drops the records of aborted transactions (KIP-98); transaction markers
(control batches) are never printed, whatever the isolation level. With `--group` the consumed
positions are committed on exit (a simple, non-member commit: the group does not see this consumer as a
member).

`--format` is `text` (the value, one per line), `json` (one object per line) or a kcat format string:
%t topic, %p partition, %o offset, %k key, %v value, %T timestamp (ms), %h headers (k=v,k=v),
%K key length, %S value length, %% a percent sign; \\n, \\t and \\r are escapes.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import click

from strom.cli.common import bootstrap_option, command_config_option, connection_options, fail, run
from strom.client.cluster import ClusterClient
from strom.protocol.control_records import ABORT, marker_type
from strom.protocol.errors import ErrorCode, KafkaError
from strom.protocol.record_batch import iter_batches
from strom.protocol.records import decode_records

_ISOLATION = {"read_uncommitted": 0, "read_committed": 1}
_ESCAPES = {"\\n": "\n", "\\t": "\t", "\\r": "\r"}


@dataclass(frozen=True, slots=True)
class Message:
    topic: str
    partition: int
    offset: int
    timestamp: int
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes | None]]


def decode_messages(
    topic: str,
    partition: int,
    data: bytes,
    start: int,
    aborted: Iterable[tuple[int, int]] = (),
) -> list[Message]:
    """The records of fetched batches at or after `start`. Control batches (transaction markers) are
    never records, and a partial tail is skipped.

    `aborted` is the Fetch response's aborted transactions, (producer id, first offset), as a
    read_committed fetch returns them. As Kafka's consumer does (KIP-98), walking the batches in offset
    order, a producer becomes aborted once a batch reaches the first offset of one of its aborted
    transactions, its transactional batches are dropped from then on, and its ABORT marker ends that.
    """
    pending = sorted(aborted, key=lambda txn: txn[1])
    next_pending = 0
    aborted_producers: set[int] = set()
    out: list[Message] = []
    view = memoryview(data)
    for pos, header in iter_batches(view):
        # batches before `start` still go through this bookkeeping: a transaction aborted there may
        # reach past `start`, and its marker may lie before it
        while next_pending < len(pending) and pending[next_pending][1] <= header.last_offset:
            aborted_producers.add(pending[next_pending][0])
            next_pending += 1
        if header.is_control:
            if header.producer_id in aborted_producers and (
                marker_type(view[pos : pos + header.size]) == ABORT
            ):
                aborted_producers.discard(header.producer_id)
            continue
        if header.is_transactional and header.producer_id in aborted_producers:
            continue
        if header.last_offset < start:
            continue
        log_append = header.timestamp_type == 1
        for record in decode_records(view[pos : pos + header.size]):
            offset = header.base_offset + record.offset_delta
            if offset < start:
                continue
            ts = header.max_timestamp if log_append else header.base_timestamp + record.timestamp_delta
            out.append(Message(topic, partition, offset, ts, record.key, record.value, record.headers))
    return out


def _text(raw: bytes | None) -> str:
    return "" if raw is None else raw.decode("utf-8", errors="replace")


def render(message: Message, fmt: str) -> str:
    """One message in a kcat-style format string (no trailing newline added)."""
    out: list[str] = []
    i = 0
    while i < len(fmt):
        ch = fmt[i]
        if ch == "\\" and fmt[i : i + 2] in _ESCAPES:
            out.append(_ESCAPES[fmt[i : i + 2]])
            i += 2
            continue
        if ch != "%" or i + 1 == len(fmt):
            out.append(ch)
            i += 1
            continue
        code = fmt[i + 1]
        i += 2
        if code == "t":
            out.append(message.topic)
        elif code == "p":
            out.append(str(message.partition))
        elif code == "o":
            out.append(str(message.offset))
        elif code == "k":
            out.append(_text(message.key))
        elif code == "v":
            out.append(_text(message.value))
        elif code == "T":
            out.append(str(message.timestamp))
        elif code == "h":
            out.append(",".join(f"{k}={_text(v)}" for k, v in message.headers))
        elif code == "K":
            out.append(str(-1 if message.key is None else len(message.key)))
        elif code == "S":
            out.append(str(-1 if message.value is None else len(message.value)))
        elif code == "%":
            out.append("%")
        else:
            out.append("%" + code)
    return "".join(out)


def as_json(message: Message) -> str:
    def field(raw: bytes | None) -> str | None:
        if raw is None:
            return None
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            return "base64:" + base64.b64encode(raw).decode()

    return json.dumps(
        {
            "topic": message.topic,
            "partition": message.partition,
            "offset": message.offset,
            "timestamp": message.timestamp,
            "key": field(message.key),
            "value": field(message.value),
            "headers": {k: field(v) for k, v in message.headers},
        }
    )


async def _start_offsets(
    client: ClusterClient,
    topic: str,
    partitions: list[int],
    offset: str | None,
    group: str | None,
    from_beginning: bool,
) -> dict[int, int]:
    earliest = await client.list_offsets(topic, partitions, -2)
    latest = await client.list_offsets(topic, partitions, -1)
    committed = await client.fetch_committed(group) if group else {}
    out: dict[int, int] = {}
    for p in partitions:
        low, high = earliest[p][0], latest[p][0]
        if offset is not None:
            if offset in ("earliest", "beginning"):
                out[p] = low
            elif offset in ("latest", "end"):
                out[p] = high
            else:
                n = int(offset)
                out[p] = max(low, high + n) if n < 0 else min(max(n, low), high)
        elif (topic, p) in committed:
            out[p] = committed[(topic, p)]
        else:
            out[p] = low if from_beginning else high
    return out


class _OutputClosedError(Exception):
    """stdout was closed by its reader (`| head`): stop consuming, commit, exit quietly."""


@dataclass(slots=True)
class _Run:
    printed: int = 0


async def _consume(
    client: ClusterClient,
    topic: str,
    partition: int | None,
    offset: str | None,
    group: str | None,
    from_beginning: bool,
    max_messages: int | None,
    timeout_ms: int | None,
    exit_at_end: bool,
    isolation: int,
    emit: Any,
    state: _Run,
) -> None:
    meta = await client.metadata([topic])
    tmeta = meta.topics.get(topic)
    if tmeta is None or tmeta.error_code:
        code = tmeta.error_code if tmeta else ErrorCode.unknown_topic_or_partition.value
        raise KafkaError(f"topic {topic}", code=ErrorCode(code))
    if partition is not None and partition not in tmeta.partitions:
        raise KafkaError(
            f"topic {topic} has no partition {partition}", code=ErrorCode.unknown_topic_or_partition
        )
    partitions = [partition] if partition is not None else sorted(tmeta.partitions)
    positions = await _start_offsets(client, topic, partitions, offset, group, from_beginning)
    start_positions = dict(positions)
    try:
        await _poll(
            client,
            topic,
            partitions,
            positions,
            max_messages,
            timeout_ms,
            exit_at_end,
            isolation,
            emit,
            state,
        )
    except _OutputClosedError:
        pass
    finally:
        if group:
            moved = {(topic, p): o for p, o in positions.items() if o != start_positions[p]}
            if moved:
                await client.commit_offsets(group, moved)


async def _poll(
    client: ClusterClient,
    topic: str,
    partitions: list[int],
    positions: dict[int, int],
    max_messages: int | None,
    timeout_ms: int | None,
    exit_at_end: bool,
    isolation: int,
    emit: Any,
    state: _Run,
) -> None:
    """Fetch round after round, printing and advancing `positions`, until an end condition."""
    loop = asyncio.get_running_loop()
    idle_since = loop.time()
    while max_messages is None or state.printed < max_messages:
        results = await asyncio.gather(
            *(
                client.fetch(topic, p, positions[p], max_wait_ms=200, isolation_level=isolation)
                for p in partitions
            )
        )
        got_any = False
        caught_up = True
        for p, fetched in zip(partitions, results, strict=True):
            data = fetched.records
            aborted = fetched.aborted_transactions if isolation == 1 else ()
            complete = True
            for message in decode_messages(topic, p, data, positions[p], aborted):
                if max_messages is not None and state.printed >= max_messages:
                    complete = False
                    break
                try:
                    emit(message)
                except BrokenPipeError:
                    raise _OutputClosedError from None
                state.printed += 1
                positions[p] = message.offset + 1
                got_any = True
            if complete:
                # batches without visible records (markers, aborted data, compacted gaps) after the
                # last printed record: step past them
                last = [h.next_offset for _pos, h in iter_batches(memoryview(data))]
                if last:
                    positions[p] = max(positions[p], last[-1])
            hw, lso = fetched.high_watermark, fetched.last_stable_offset
            end = lso if isolation == 1 and lso >= 0 else hw
            if positions[p] < end:
                caught_up = False
        if exit_at_end and caught_up:
            return
        if got_any:
            idle_since = loop.time()
        elif timeout_ms is not None and (loop.time() - idle_since) * 1000 >= timeout_ms:
            return


@click.command("consume")
@click.argument("topic")
@bootstrap_option
@command_config_option
@click.option("--from-beginning", is_flag=True, help="Start at the earliest offset when none is committed.")
@click.option("--offset", default=None, help="earliest, latest, an offset, or -N (N before the end).")
@click.option("--partition", type=int, default=None, help="Only this partition.")
@click.option("--group", default=None, help="Start from, and commit to, this group's offsets.")
@click.option("--max-messages", type=click.IntRange(0), default=None, help="Exit after this many.")
@click.option("--timeout-ms", type=click.IntRange(0), default=None, help="Exit after this long idle.")
@click.option("--exit", "-e", "exit_at_end", is_flag=True, help="Exit once every partition is caught up.")
@click.option(
    "--isolation-level", type=click.Choice(list(_ISOLATION)), default="read_uncommitted", show_default=True
)
@click.option(
    "--format",
    "fmt",
    default="text",
    show_default=True,
    help="text, json, or a kcat format string (%t %p %o %k %v %T %h %K %S).",
)
def consume(
    topic: str,
    bootstrap: str,
    command_config: str | None,
    from_beginning: bool,
    offset: str | None,
    partition: int | None,
    group: str | None,
    max_messages: int | None,
    timeout_ms: int | None,
    exit_at_end: bool,
    isolation_level: str,
    fmt: str,
) -> None:
    """Print the records of TOPIC."""
    connection = connection_options(bootstrap, command_config, "text")
    if offset is not None and offset not in ("earliest", "beginning", "latest", "end"):
        try:
            int(offset)
        except ValueError:
            raise click.BadParameter(f"{offset!r} is not an offset", param_hint="--offset") from None
    if offset is not None and from_beginning:
        fail("--offset and --from-beginning do not go together", code=2)

    out = sys.stdout
    if fmt == "json":

        def emit(message: Message) -> None:
            out.write(as_json(message) + "\n")
    else:
        pattern = "%v\n" if fmt == "text" else fmt

        def emit(message: Message) -> None:
            out.write(render(message, pattern))

    state = _Run()

    async def go() -> None:
        async with connection.client() as client:
            await _consume(
                client,
                topic,
                partition,
                offset,
                group,
                from_beginning,
                max_messages,
                timeout_ms,
                exit_at_end,
                _ISOLATION[isolation_level],
                emit,
                state,
            )

    try:
        run(go())
        out.flush()
    except KeyboardInterrupt:
        pass
    except BrokenPipeError:
        pass
    if out.closed or _stdout_broken(out):
        # keep the interpreter's final flush of a closed pipe from printing a traceback
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115
    click.echo(f"Processed a total of {state.printed} messages", err=True)


def _stdout_broken(out: Any) -> bool:
    try:
        out.flush()
    except (BrokenPipeError, ValueError):
        return True
    return False
