"""`strom cluster`, `strom log-dirs` and `strom offsets`: what `kafka-cluster.sh`, `kafka-log-dirs.sh` and
`kafka-get-offsets.sh` show.

`offsets` prints `topic:partition:offset` lines like GetOffsetShell; `--time` takes `latest` (-1),
`earliest` (-2), `max-timestamp` (-3) or a timestamp in milliseconds (the first offset at or after it).
"""

from __future__ import annotations

import click

from strom.cli.common import ClientOptions, client_options, emit_json, emit_table, run
from strom.protocol.errors import ErrorCode, KafkaError

_TIMES = {"latest": -1, "earliest": -2, "max-timestamp": -3}


@click.command("cluster")
@client_options
def cluster(opts: ClientOptions) -> None:
    """Show the cluster id, the controller and the brokers."""

    async def go() -> tuple[str, int, list[tuple[int, str, int, str | None]]]:
        async with opts.client() as client:
            response = await client.describe_cluster()
        brokers = sorted((int(b.broker_id), str(b.host), int(b.port), b.rack) for b in response.brokers)
        return str(response.cluster_id), int(response.controller_id), brokers

    cluster_id, controller, brokers = run(go())
    if opts.output == "json":
        emit_json(
            {
                "cluster_id": cluster_id,
                "controller": controller,
                "brokers": [{"id": i, "host": h, "port": p, "rack": r} for i, h, p, r in brokers],
            }
        )
        return
    click.echo(f"Cluster ID: {cluster_id}")
    click.echo(f"Controller: {controller}")
    emit_table(["ID", "HOST", "PORT", "RACK"], brokers)


@click.command("log-dirs")
@click.option("--broker", "brokers", type=int, multiple=True, help="Broker id (repeatable; default all).")
@client_options
def log_dirs(brokers: tuple[int, ...], opts: ClientOptions) -> None:
    """Show each broker's log dirs and the size of every partition in them."""

    async def go() -> list[tuple[int, str, str, int, int]]:
        rows: list[tuple[int, str, str, int, int]] = []
        async with opts.client() as client:
            meta = await client.metadata([])
            for node in brokers or sorted(meta.brokers):
                response = await client.describe_log_dirs(node)
                for result in response.results:
                    for topic in result.topics:
                        for part in topic.partitions:
                            rows.append(
                                (
                                    node,
                                    str(result.log_dir),
                                    f"{topic.name}-{part.partition_index}",
                                    int(part.partition_size),
                                    int(part.offset_lag),
                                )
                            )
        return rows

    rows = run(go())
    if opts.output == "json":
        emit_json(
            [
                {"broker": b, "log_dir": d, "partition": p, "size": s, "offset_lag": lag}
                for b, d, p, s, lag in rows
            ]
        )
    else:
        emit_table(["BROKER", "LOG-DIR", "PARTITION", "SIZE", "OFFSET-LAG"], rows)


@click.command("offsets")
@click.argument("topic")
@click.option(
    "--time",
    "time_spec",
    default="latest",
    show_default=True,
    help="latest, earliest, max-timestamp, or a timestamp in ms.",
)
@click.option("--partitions", default=None, help="Comma-separated partition ids (default all).")
@client_options
def offsets(topic: str, time_spec: str, partitions: str | None, opts: ClientOptions) -> None:
    """Print topic:partition:offset for each partition of TOPIC at --time."""
    try:
        timestamp = _TIMES[time_spec] if time_spec in _TIMES else int(time_spec)
    except ValueError:
        raise click.BadParameter(
            f"{time_spec!r} is not latest, earliest, max-timestamp or a number", param_hint="--time"
        ) from None

    async def go() -> dict[int, tuple[int, int]]:
        async with opts.client() as client:
            meta = await client.metadata([topic])
            tmeta = meta.topics.get(topic)
            if tmeta is None or tmeta.error_code:
                code = tmeta.error_code if tmeta else ErrorCode.unknown_topic_or_partition.value
                raise KafkaError(f"topic {topic}", code=ErrorCode(code))
            wanted = (
                sorted(tmeta.partitions) if partitions is None else [int(p) for p in partitions.split(",")]
            )
            return await client.list_offsets(topic, wanted, timestamp)

    result = run(go())
    if opts.output == "json":
        emit_json([{"topic": topic, "partition": p, "offset": o} for p, (o, _ts) in sorted(result.items())])
    else:
        for partition, (offset, _ts) in sorted(result.items()):
            click.echo(f"{topic}:{partition}:{offset}")
