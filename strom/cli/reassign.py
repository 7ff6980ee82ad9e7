"""`strom reassign`: what `kafka-reassign-partitions.sh` does (KIP-455), by Kafka's flag names.

    strom reassign --reassignment-json-file plan.json --execute [--wait] [--timeout 300]
    strom reassign --reassignment-json-file plan.json --verify
    strom reassign --reassignment-json-file plan.json --cancel
    strom reassign --list

The plan is Kafka's JSON, `{"version":1,"partitions":[{"topic":"t","partition":0,"replicas":[2,3]}]}`
(`log_dirs` entries are accepted and ignored). `--execute` prints the current assignment first (save it to
roll back, as Kafka's tool says) and starts the moves; with `--wait` it then waits for them to finish,
with a progress bar on a terminal. `--verify` prints one status line per partition and exits 0 only when
every partition is done and has the planned replicas (1 otherwise, with one line on stderr), so scripts
can poll it. Errors of single partitions are printed and make the command exit 1.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

import click

from strom.cli.common import ClientOptions, client_options, emit_json, fail, run
from strom.client.cluster import ClusterClient
from strom.protocol.errors import ErrorCode

TopicPartition = tuple[str, int]
Plan = dict[TopicPartition, list[int]]


def _name(tp: TopicPartition) -> str:
    return f"{tp[0]}-{tp[1]}"


def load_plan(path: str) -> Plan:
    """Kafka's reassignment JSON -> {(topic, partition): replicas}; click.BadParameter if malformed."""
    try:
        doc = json.loads(Path(path).read_text())
        entries = doc["partitions"]
        plan: Plan = {}
        for entry in entries:
            key = (str(entry["topic"]), int(entry["partition"]))
            if key in plan:
                raise ValueError(f"partition {_name(key)} appears more than once")
            plan[key] = [int(r) for r in entry["replicas"]]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise click.BadParameter(f"{path}: {exc}", param_hint="--reassignment-json-file") from exc
    if not plan:
        raise click.BadParameter(f"{path}: no partitions", param_hint="--reassignment-json-file")
    return plan


def plan_json(plan: Plan) -> str:
    """Kafka's compact JSON of an assignment."""
    return json.dumps(
        {
            "version": 1,
            "partitions": [
                {"topic": t, "partition": p, "replicas": r, "log_dirs": ["any"] * len(r)}
                for (t, p), r in sorted(plan.items())
            ],
        },
        separators=(",", ":"),
    )


async def _current(client: ClusterClient, partitions: list[TopicPartition]) -> Plan:
    meta = await client.metadata(sorted({t for t, _ in partitions}))
    out: Plan = {}
    for topic, partition in partitions:
        tmeta = meta.topics.get(topic)
        pmeta = tmeta.partitions.get(partition) if tmeta is not None else None
        if pmeta is not None:
            out[(topic, partition)] = list(pmeta.replicas)
    return out


def _report_errors(results: dict[TopicPartition, tuple[int, str | None]]) -> list[str]:
    return [
        f"{_name(tp)}: {message or ErrorCode(code).name.upper()} ({ErrorCode(code).name.upper()})"
        for tp, (code, message) in sorted(results.items())
        if code
    ]


@click.command("reassign")
@click.option(
    "--reassignment-json-file",
    "json_file",
    type=click.Path(exists=True, dir_okay=False),
    help="Kafka's reassignment JSON.",
)
@click.option("--execute", "mode", flag_value="execute", help="Start the reassignment in the file.")
@click.option("--verify", "mode", flag_value="verify", help="Check whether the reassignment finished.")
@click.option("--cancel", "mode", flag_value="cancel", help="Cancel the reassignments in the file.")
@click.option("--list", "mode", flag_value="list", help="List the reassignments in progress.")
@click.option("--wait", is_flag=True, help="With --execute: wait until the reassignment finishes.")
@click.option("--timeout", type=float, default=300.0, show_default=True, help="Seconds --wait waits.")
@client_options
def reassign(
    json_file: str | None, mode: str | None, wait: bool, timeout: float, opts: ClientOptions
) -> None:
    """Move partition replicas between brokers (kafka-reassign-partitions)."""
    if mode is None:
        raise click.UsageError("one of --execute, --verify, --cancel or --list is required")
    if mode == "list":
        _list(opts)
        return
    if json_file is None:
        raise click.UsageError(f"--{mode} needs --reassignment-json-file")
    plan = load_plan(json_file)
    if mode == "execute":
        _execute(plan, wait, timeout, opts)
    elif mode == "verify":
        _verify(plan, opts)
    else:
        _cancel(plan, opts)


def _list(opts: ClientOptions) -> None:
    async def go() -> dict[TopicPartition, tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]]:
        async with opts.client() as client:
            return await client.list_partition_reassignments()

    ongoing = run(go())
    if opts.output == "json":
        emit_json(
            [
                {"topic": t, "partition": p, "replicas": list(r), "adding": list(a), "removing": list(d)}
                for (t, p), (r, a, d) in sorted(ongoing.items())
            ]
        )
        return
    if not ongoing:
        click.echo("No partition reassignments found.")
        return
    click.echo("Current partition reassignments:")
    for tp, (replicas, adding, removing) in sorted(ongoing.items()):
        click.echo(
            f"{_name(tp)}: replicas: {','.join(map(str, replicas))}. "
            f"adding: {','.join(map(str, adding))}. removing: {','.join(map(str, removing))}."
        )


def _execute(plan: Plan, wait: bool, timeout: float, opts: ClientOptions) -> None:
    async def go() -> tuple[Plan, dict[TopicPartition, tuple[int, str | None]], list[TopicPartition]]:
        async with opts.client() as client:
            current = await _current(client, list(plan))
            if opts.output == "text":
                click.echo("Current partition replica assignment\n")
                click.echo(plan_json(current))
                click.echo("\nSave this to use as the --reassignment-json-file option during rollback")
            results = await client.alter_partition_reassignments(dict(plan.items()))
            started = sorted(tp for tp, (code, _) in results.items() if not code)
            unfinished: list[TopicPartition] = []
            if wait and started:
                unfinished = await _wait(client, {tp: plan[tp] for tp in started}, timeout, opts)
            return current, results, unfinished

    current, results, unfinished = run(go())
    errors = _report_errors(results)
    started = sorted(tp for tp, (code, _) in results.items() if not code)
    if opts.output == "json":
        emit_json(
            {
                "current": json.loads(plan_json(current)),
                "started": [_name(tp) for tp in started],
                "errors": errors,
                "unfinished": [_name(tp) for tp in unfinished] if wait else None,
            }
        )
    else:
        if started:
            click.echo(f"Successfully started partition reassignments for {','.join(map(_name, started))}")
        if wait and started and not unfinished:
            click.echo("Partition reassignments completed.")
    if errors:
        fail("Error reassigning partition(s):\n" + "\n".join(errors))
    if unfinished:
        fail(f"timed out after {timeout:g} s waiting for {','.join(map(_name, unfinished))}")


async def _wait(
    client: ClusterClient, plan: Plan, timeout: float, opts: ClientOptions
) -> list[TopicPartition]:
    """Poll until no partition of `plan` is being reassigned; returns those still moving at the timeout."""
    deadline = time.monotonic() + timeout
    total = len(plan)
    progress = None
    if sys.stdout.isatty() and opts.output == "text":
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        progress = Progress(
            TextColumn("Reassigning"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), transient=True
        )
        progress.start()
        task = progress.add_task("reassign", total=total)
    try:
        while True:
            ongoing = await client.list_partition_reassignments(list(plan))
            moving = sorted(tp for tp in plan if tp in ongoing)
            if progress is not None:
                progress.update(task, completed=total - len(moving))
            if not moving or time.monotonic() >= deadline:
                return moving
            await asyncio.sleep(0.5)
    finally:
        if progress is not None:
            progress.stop()


def _verify(plan: Plan, opts: ClientOptions) -> None:
    async def go() -> tuple[dict[TopicPartition, Any], Plan]:
        async with opts.client() as client:
            ongoing = await client.list_partition_reassignments(list(plan))
            current = await _current(client, list(plan))
            return ongoing, current

    ongoing, current = run(go())
    status: dict[TopicPartition, str] = {}
    lines: list[str] = []
    for tp, target in sorted(plan.items()):
        if tp in ongoing:
            status[tp] = "in_progress"
            lines.append(f"Reassignment of partition {_name(tp)} is still in progress.")
        elif tp not in current:
            status[tp] = "missing"
            lines.append(f"Partition {_name(tp)} does not exist.")
        elif current[tp] == target:
            status[tp] = "completed"
            lines.append(f"Reassignment of partition {_name(tp)} is completed.")
        else:
            status[tp] = "different"
            lines.append(
                f"There is no active reassignment of partition {_name(tp)}, but replica set is "
                f"{current[tp]} rather than {target}."
            )
    if opts.output == "json":
        emit_json([{"partition": _name(tp), "status": s} for tp, s in sorted(status.items())])
    else:
        click.echo("Status of partition reassignment:")
        for line in lines:
            click.echo(line)
    pending = sum(1 for s in status.values() if s != "completed")
    if pending:
        fail(f"{pending} partition reassignment(s) not completed")


def _cancel(plan: Plan, opts: ClientOptions) -> None:
    async def go() -> dict[TopicPartition, tuple[int, str | None]]:
        async with opts.client() as client:
            return await client.alter_partition_reassignments(dict.fromkeys(plan))

    results = run(go())
    cancelled = sorted(tp for tp, (code, _) in results.items() if not code)
    errors = _report_errors(results)
    if opts.output == "json":
        emit_json({"cancelled": [_name(tp) for tp in cancelled], "errors": errors})
    elif cancelled:
        click.echo(f"Successfully cancelled partition reassignments for: {','.join(map(_name, cancelled))}")
    if errors:
        fail("Error cancelling partition reassignment(s):\n" + "\n".join(errors))
