"""`strom topics create|list|describe|alter|delete`: what `kafka-topics.sh` does, by Kafka's flag names.

`describe` prints Kafka's layout, one header line per topic and one line per partition
(`Topic: t<TAB>Partition: 0<TAB>Leader: 1<TAB>Replicas: 1<TAB>Isr: 1`), so scripts written for
kafka-topics keep working.
"""

from __future__ import annotations

import click

from strom.cli.common import ClientOptions, client_options, emit_json, parse_key_values, run
from strom.client.cluster import ClusterClient, TopicMeta
from strom.protocol.errors import ErrorCode, KafkaError


@click.group("topics")
def topics() -> None:
    """Create, list, describe, alter and delete topics."""


@topics.command("create")
@click.argument("topic")
@click.option("--partitions", type=int, default=-1, help="Number of partitions (broker default if omitted).")
@click.option("--replication-factor", type=int, default=-1, help="Replicas per partition (broker default).")
@click.option("--config", "configs", multiple=True, help="Topic config override key=value (repeatable).")
@click.option("--if-not-exists", is_flag=True, help="Succeed quietly if the topic already exists.")
@client_options
def create(
    topic: str,
    partitions: int,
    replication_factor: int,
    configs: tuple[str, ...],
    if_not_exists: bool,
    opts: ClientOptions,
) -> None:
    """Create TOPIC."""
    overrides = parse_key_values(configs, "--config")

    async def go() -> None:
        async with opts.client() as client:
            try:
                await client.create_topic(topic, partitions, replication_factor, overrides)
            except KafkaError as exc:
                if if_not_exists and exc.code == ErrorCode.topic_already_exists:
                    return
                raise
        if opts.output == "json":
            emit_json({"topic": topic, "created": True})
        else:
            click.echo(f"Created topic {topic}.")

    run(go())


@topics.command("list")
@click.option("--exclude-internal", is_flag=True, help="Leave out internal topics.")
@client_options
def list_topics(exclude_internal: bool, opts: ClientOptions) -> None:
    """List topic names."""

    async def go() -> list[str]:
        async with opts.client() as client:
            meta = await client.metadata(None)
        return sorted(t.name for t in meta.topics.values() if not (exclude_internal and t.internal))

    names = run(go())
    if opts.output == "json":
        emit_json(names)
    else:
        for name in names:
            click.echo(name)


async def _topic_configs(client: ClusterClient, name: str) -> dict[str, str]:
    """The topic's overrides (DYNAMIC_TOPIC_CONFIG entries), as kafka-topics shows them."""
    result = await client.describe_configs(2, name)
    return {str(c.name): str(c.value) for c in result.configs if int(c.config_source) == 1}


@topics.command("describe")
@click.argument("topic", required=False)
@click.option("--under-replicated-partitions", is_flag=True, help="Only partitions whose ISR is short.")
@client_options
def describe(topic: str | None, under_replicated_partitions: bool, opts: ClientOptions) -> None:
    """Describe TOPIC (or every topic): partitions, leaders, replicas, ISR, config overrides."""

    async def go() -> list[tuple[TopicMeta, dict[str, str]]]:
        async with opts.client() as client:
            meta = await client.metadata(None if topic is None else [topic])
            out = []
            for tmeta in sorted(meta.topics.values(), key=lambda t: t.name):
                if tmeta.error_code:
                    raise KafkaError(f"topic {tmeta.name}", code=ErrorCode(tmeta.error_code))
                out.append((tmeta, await _topic_configs(client, tmeta.name)))
            return out

    described = run(go())
    if opts.output == "json":
        emit_json(
            [
                {
                    "topic": t.name,
                    "topic_id": str(t.topic_id),
                    "internal": t.internal,
                    "configs": cfg,
                    "partitions": [
                        {
                            "partition": p.partition,
                            "leader": p.leader,
                            "replicas": list(p.replicas),
                            "isr": list(p.isr),
                        }
                        for p in sorted(t.partitions.values(), key=lambda p: p.partition)
                        if not under_replicated_partitions or len(p.isr) < len(p.replicas)
                    ],
                }
                for t, cfg in described
            ]
        )
        return
    for tmeta, cfg in described:
        parts = sorted(tmeta.partitions.values(), key=lambda p: p.partition)
        rf = len(parts[0].replicas) if parts else 0
        if not under_replicated_partitions:
            click.echo(
                f"Topic: {tmeta.name}\tTopicId: {tmeta.topic_id}\tPartitionCount: {len(parts)}\t"
                f"ReplicationFactor: {rf}\tConfigs: {','.join(f'{k}={v}' for k, v in sorted(cfg.items()))}"
            )
        for p in parts:
            if under_replicated_partitions and len(p.isr) >= len(p.replicas):
                continue
            leader = p.leader if p.leader >= 0 else "none"
            click.echo(
                f"\tTopic: {tmeta.name}\tPartition: {p.partition}\tLeader: {leader}"
                f"\tReplicas: {','.join(map(str, p.replicas))}\tIsr: {','.join(map(str, p.isr))}"
            )


@topics.command("alter")
@click.argument("topic")
@click.option("--partitions", type=int, required=True, help="New total number of partitions (grow only).")
@client_options
def alter(topic: str, partitions: int, opts: ClientOptions) -> None:
    """Grow TOPIC to --partitions partitions."""

    async def go() -> None:
        async with opts.client() as client:
            await client.create_partitions(topic, partitions)

    run(go())
    if opts.output == "json":
        emit_json({"topic": topic, "partitions": partitions})
    else:
        click.echo(f"Topic {topic} now has {partitions} partitions.")


@topics.command("delete")
@click.argument("topic")
@client_options
def delete(topic: str, opts: ClientOptions) -> None:
    """Delete TOPIC."""

    async def go() -> None:
        async with opts.client() as client:
            await client.delete_topic(topic)

    run(go())
    if opts.output == "json":
        emit_json({"topic": topic, "deleted": True})
    else:
        click.echo(f"Deleted topic {topic}.")
