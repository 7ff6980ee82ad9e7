"""`strom groups list|describe|delete|reset-offsets`: what `kafka-consumer-groups.sh` does.

`describe GROUP` prints kafka-consumer-groups' columns (GROUP TOPIC PARTITION CURRENT-OFFSET
LOG-END-OFFSET LAG CONSUMER-ID HOST CLIENT-ID): one row per partition with a committed offset or an
owner, the owner found by decoding each member's assignment (the consumer protocol's
ConsumerProtocolAssignment). `--state` and `--members` print the other two views.
`reset-offsets GROUP` plans new committed offsets (`--to-earliest`, `--to-latest`, `--to-offset N`,
`--shift-by N`, `--to-datetime ISO-8601`) for `--topic T[:p,p]` or `--all-topics`, clamped to the
partition's range as Kafka does; it prints the plan and only commits with `--execute`, and only while
the group has no members (Kafka's "Assignments can only be reset if the group is inactive").
"""

from __future__ import annotations

import datetime
import struct
from dataclasses import dataclass

import click

from strom.cli.common import ClientOptions, client_options, emit_json, emit_table, fail, run
from strom.client.cluster import ClusterClient
from strom.protocol.errors import ErrorCode, KafkaError

_I16 = struct.Struct(">h")
_I32 = struct.Struct(">i")


def decode_assignment(data: bytes) -> list[tuple[str, int]]:
    """(topic, partition) pairs of a ConsumerProtocolAssignment (any version: the leading fields are the
    same); [] for empty or non-consumer assignments."""
    if len(data) < 6:
        return []
    out: list[tuple[str, int]] = []
    try:
        pos = 2  # version
        (topics,) = _I32.unpack_from(data, pos)
        pos += 4
        for _ in range(max(topics, 0)):
            (name_len,) = _I16.unpack_from(data, pos)
            pos += 2
            name = bytes(data[pos : pos + name_len]).decode()
            pos += name_len
            (count,) = _I32.unpack_from(data, pos)
            pos += 4
            for _ in range(max(count, 0)):
                (partition,) = _I32.unpack_from(data, pos)
                pos += 4
                out.append((name, partition))
    except (struct.error, UnicodeDecodeError):
        return out
    return out


@dataclass(frozen=True, slots=True)
class Member:
    member_id: str
    client_id: str
    host: str
    assignment: list[tuple[str, int]]


@dataclass(frozen=True, slots=True)
class GroupView:
    group: str
    state: str
    protocol: str
    members: list[Member]
    committed: dict[tuple[str, int], int]


async def _view(client: ClusterClient, group: str) -> GroupView:
    described = await client.describe_group(group)
    members = [
        Member(
            str(m.member_id),
            str(m.client_id),
            str(m.client_host).lstrip("/"),
            decode_assignment(bytes(m.member_assignment)),
        )
        for m in described.members
    ]
    committed = await client.fetch_committed(group)
    state = str(described.group_state)
    if state == "Dead" and not committed and not members:
        raise KafkaError(f"Consumer group '{group}' does not exist.", code=ErrorCode.group_id_not_found)
    return GroupView(group, state, str(described.protocol_data), members, committed)


async def _end_offsets(
    client: ClusterClient, keys: set[tuple[str, int]], when: int
) -> dict[tuple[str, int], int]:
    by_topic: dict[str, list[int]] = {}
    for topic, partition in keys:
        by_topic.setdefault(topic, []).append(partition)
    out: dict[tuple[str, int], int] = {}
    for topic, partitions in by_topic.items():
        for p, (offset, _ts) in (await client.list_offsets(topic, sorted(partitions), when)).items():
            out[(topic, p)] = offset
    return out


@click.group("groups")
def groups() -> None:
    """List, describe, delete consumer groups and reset their offsets."""


@groups.command("list")
@click.option("--state", "states", multiple=True, help="Only groups in this state (repeatable).")
@client_options
def list_groups(states: tuple[str, ...], opts: ClientOptions) -> None:
    """List consumer groups."""

    async def go() -> list[tuple[str, str, str]]:
        async with opts.client() as client:
            return await client.list_groups(states)

    found = run(go())
    if opts.output == "json":
        emit_json([{"group": g, "protocol_type": t, "state": s} for g, t, s in found])
    elif states:
        emit_table(["GROUP", "STATE"], [(g, s) for g, _t, s in found])
    else:
        for group, _t, _s in found:
            click.echo(group)


@groups.command("describe")
@click.argument("group")
@click.option("--state", "show_state", is_flag=True, help="Show the group's state and member count.")
@click.option("--members", "show_members", is_flag=True, help="Show the members and their partitions.")
@client_options
def describe(group: str, show_state: bool, show_members: bool, opts: ClientOptions) -> None:
    """Show GROUP's partitions with offsets and lag (or --state, --members)."""

    async def go() -> tuple[GroupView, dict[tuple[str, int], int], int]:
        async with opts.client() as client:
            view = await _view(client, group)
            keys = set(view.committed) | {tp for m in view.members for tp in m.assignment}
            ends = await _end_offsets(client, keys, -1) if keys else {}
            return view, ends, await client.find_coordinator(group)

    view, ends, coordinator = run(go())
    if show_state:
        row = (view.group, coordinator, view.protocol or None, view.state, len(view.members))
        if opts.output == "json":
            emit_json(
                dict(
                    zip(("group", "coordinator", "assignment_strategy", "state", "members"), row, strict=True)
                )
            )
        else:
            emit_table(["GROUP", "COORDINATOR (ID)", "ASSIGNMENT-STRATEGY", "STATE", "#MEMBERS"], [row])
        return
    if show_members:
        rows = [
            (
                view.group,
                m.member_id,
                m.host,
                m.client_id,
                len(m.assignment),
                ",".join(f"{t}-{p}" for t, p in sorted(m.assignment)) or None,
            )
            for m in view.members
        ]
        if opts.output == "json":
            emit_json(
                [
                    dict(
                        zip(
                            ("group", "consumer_id", "host", "client_id", "partitions", "assignment"),
                            r,
                            strict=True,
                        )
                    )
                    for r in rows
                ]
            )
        else:
            emit_table(["GROUP", "CONSUMER-ID", "HOST", "CLIENT-ID", "#PARTITIONS", "ASSIGNMENT"], rows)
        return
    owner = {tp: m for m in view.members for tp in m.assignment}
    table = []
    for tp in sorted(set(view.committed) | set(owner)):
        current = view.committed.get(tp)
        end = ends.get(tp)
        lag = end - current if current is not None and end is not None else None
        m = owner.get(tp)
        table.append(
            (
                view.group,
                tp[0],
                tp[1],
                current,
                end,
                lag,
                m.member_id if m else None,
                m.host if m else None,
                m.client_id if m else None,
            )
        )
    headers = [
        "GROUP",
        "TOPIC",
        "PARTITION",
        "CURRENT-OFFSET",
        "LOG-END-OFFSET",
        "LAG",
        "CONSUMER-ID",
        "HOST",
        "CLIENT-ID",
    ]
    if opts.output == "json":
        emit_json(
            {
                "group": view.group,
                "state": view.state,
                "partitions": [
                    dict(zip([h.lower().replace("-", "_") for h in headers], r, strict=True)) for r in table
                ],
            }
        )
        return
    if not view.members:
        click.echo(f"\nConsumer group '{group}' has no active members.\n")
    emit_table(headers, table)


@groups.command("delete")
@click.argument("group")
@client_options
def delete(group: str, opts: ClientOptions) -> None:
    """Delete GROUP and its committed offsets (it must have no members)."""

    async def go() -> None:
        async with opts.client() as client:
            await client.delete_group(group)

    run(go())
    if opts.output == "json":
        emit_json({"group": group, "deleted": True})
    else:
        click.echo(f"Deletion of requested consumer groups ('{group}') was successful.")


def _parse_topics(specs: tuple[str, ...]) -> dict[str, list[int] | None]:
    """'topic' or 'topic:0,1' -> {topic: partitions or None for all}."""
    out: dict[str, list[int] | None] = {}
    for spec in specs:
        name, _, parts = spec.partition(":")
        try:
            out[name] = [int(p) for p in parts.split(",")] if parts else None
        except ValueError:
            raise click.BadParameter(
                f"expected TOPIC or TOPIC:P,P, got {spec!r}", param_hint="--topic"
            ) from None
    return out


def _parse_datetime(value: str) -> int:
    """ISO-8601 (Kafka's yyyy-MM-ddTHH:mm:SS.sss with optional zone; UTC when none) -> epoch ms."""
    try:
        when = datetime.datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(
            f"{value!r} is not an ISO-8601 date-time", param_hint="--to-datetime"
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.UTC)
    return int(when.timestamp() * 1000)


@groups.command("reset-offsets")
@click.argument("group")
@click.option("--topic", "topics", multiple=True, help="TOPIC or TOPIC:P,P (repeatable).")
@click.option("--all-topics", is_flag=True, help="Every topic the group has offsets for.")
@click.option("--to-earliest", is_flag=True)
@click.option("--to-latest", is_flag=True)
@click.option("--to-offset", type=int, default=None)
@click.option("--shift-by", type=int, default=None)
@click.option("--to-datetime", default=None, help="ISO-8601, e.g. 2024-01-31T12:00:00.000")
@click.option("--execute", is_flag=True, help="Commit the plan (default: print it only).")
@click.option("--dry-run", is_flag=True, help="Print the plan only (the default).")
@client_options
def reset_offsets(
    group: str,
    topics: tuple[str, ...],
    all_topics: bool,
    to_earliest: bool,
    to_latest: bool,
    to_offset: int | None,
    shift_by: int | None,
    to_datetime: str | None,
    execute: bool,
    dry_run: bool,
    opts: ClientOptions,
) -> None:
    """Plan (and with --execute, commit) new offsets for GROUP."""
    chosen = [to_earliest, to_latest, to_offset is not None, shift_by is not None, to_datetime is not None]
    if sum(chosen) != 1:
        fail("give exactly one of --to-earliest, --to-latest, --to-offset, --shift-by, --to-datetime", 2)
    if bool(topics) == all_topics:
        fail("give --topic or --all-topics", 2)
    if execute and dry_run:
        fail("--execute and --dry-run do not go together", 2)
    wanted = _parse_topics(topics)
    stamp = _parse_datetime(to_datetime) if to_datetime is not None else None

    async def go() -> dict[tuple[str, int], int]:
        async with opts.client() as client:
            described = await client.describe_group(group)
            if described.members:
                raise KafkaError(
                    f"Assignments can only be reset if the group '{group}' is inactive, but the current "
                    f"state is {described.group_state}.",
                    code=ErrorCode.non_empty_group,
                )
            committed = await client.fetch_committed(group)
            keys: set[tuple[str, int]] = set()
            if all_topics:
                keys = set(committed)
            else:
                meta = await client.metadata(list(wanted))
                for name, parts in wanted.items():
                    tmeta = meta.topics.get(name)
                    if tmeta is None or tmeta.error_code:
                        code = tmeta.error_code if tmeta else ErrorCode.unknown_topic_or_partition.value
                        raise KafkaError(f"topic {name}", code=ErrorCode(code))
                    keys |= {(name, p) for p in (parts if parts is not None else tmeta.partitions)}
            if not keys:
                return {}
            low = await _end_offsets(client, keys, -2)
            high = await _end_offsets(client, keys, -1)
            plan: dict[tuple[str, int], int] = {}
            by_time = await _end_offsets(client, keys, stamp) if stamp is not None else {}
            for tp in sorted(keys):
                if to_earliest:
                    target = low[tp]
                elif to_latest:
                    target = high[tp]
                elif to_offset is not None:
                    target = to_offset
                elif shift_by is not None:
                    target = committed.get(tp, high[tp]) + shift_by
                else:
                    target = by_time[tp] if by_time.get(tp, -1) >= 0 else high[tp]
                plan[tp] = min(max(target, low[tp]), high[tp])
            if execute:
                await client.commit_offsets(group, plan)
            return plan

    plan = run(go())
    rows = [(group, t, p, o) for (t, p), o in sorted(plan.items())]
    if opts.output == "json":
        emit_json(
            {
                "group": group,
                "executed": execute,
                "offsets": [{"topic": t, "partition": p, "new_offset": o} for _g, t, p, o in rows],
            }
        )
    else:
        emit_table(["GROUP", "TOPIC", "PARTITION", "NEW-OFFSET"], rows)
