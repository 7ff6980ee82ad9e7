"""`strom elect-leaders`: what `kafka-leader-election.sh` does (KIP-460), by Kafka's flag names.

    strom elect-leaders --election-type preferred --all-topic-partitions
    strom elect-leaders --election-type unclean --topic t --partition 0

Preferred elections move leadership back to each partition's first replica when it is alive and in the
ISR; unclean elections give a partition without a leader any live replica (data may be lost). The output
follows Kafka's tool: the partitions elected, those that already had the right leader (not an error), and
one line per failure; any failure makes the command exit 1.
"""

from __future__ import annotations

import click

from strom.cli.common import ClientOptions, client_options, emit_json, fail, run
from strom.protocol.errors import ErrorCode

ELECTION_TYPES = {"preferred": 0, "unclean": 1}


def _name(tp: tuple[str, int]) -> str:
    return f"{tp[0]}-{tp[1]}"


@click.command("elect-leaders")
@click.option(
    "--election-type",
    type=click.Choice(sorted(ELECTION_TYPES), case_sensitive=False),
    required=True,
    help="preferred or unclean.",
)
@click.option("--topic", default=None, help="Elect for this topic (all its partitions unless --partition).")
@click.option("--partition", type=int, default=None, help="With --topic: only this partition.")
@click.option("--all-topic-partitions", is_flag=True, help="Elect for every partition of the cluster.")
@client_options
def elect_leaders(
    election_type: str,
    topic: str | None,
    partition: int | None,
    all_topic_partitions: bool,
    opts: ClientOptions,
) -> None:
    """Elect preferred or unclean leaders (kafka-leader-election)."""
    if all_topic_partitions == (topic is not None):
        raise click.UsageError("give exactly one of --topic or --all-topic-partitions")
    if partition is not None and topic is None:
        raise click.UsageError("--partition needs --topic")
    kind = ELECTION_TYPES[election_type.lower()]

    async def go() -> dict[tuple[str, int], tuple[int, str | None]]:
        async with opts.client() as client:
            partitions: list[tuple[str, int]] | None = None
            if topic is not None:
                if partition is not None:
                    partitions = [(topic, partition)]
                else:
                    meta = await client.metadata([topic])
                    tmeta = meta.topics.get(topic)
                    if tmeta is None or tmeta.error_code:
                        code = tmeta.error_code if tmeta else ErrorCode.unknown_topic_or_partition.value
                        return {(topic, -1): (code, f"topic {topic}")}
                    partitions = [(topic, p) for p in sorted(tmeta.partitions)]
            return await client.elect_leaders(kind, partitions)

    results = run(go())
    elected = sorted(tp for tp, (code, _) in results.items() if code == ErrorCode.none.value)
    not_needed = sorted(
        tp for tp, (code, _) in results.items() if code == ErrorCode.election_not_needed.value
    )
    failed = {
        tp: (code, message)
        for tp, (code, message) in sorted(results.items())
        if code not in (ErrorCode.none.value, ErrorCode.election_not_needed.value)
    }
    label = election_type.upper()
    if opts.output == "json":
        emit_json(
            {
                "election_type": label,
                "elected": [_name(tp) for tp in elected],
                "not_needed": [_name(tp) for tp in not_needed],
                "failed": {
                    _name(tp): message or ErrorCode(code).name.upper()
                    for tp, (code, message) in failed.items()
                },
            }
        )
    else:
        if elected:
            names = ", ".join(map(_name, elected))
            click.echo(f"Successfully completed leader election ({label}) for partitions {names}")
        if not_needed:
            click.echo(f"Valid replica already elected for partitions {', '.join(map(_name, not_needed))}")
        for tp, (code, message) in failed.items():
            reason = ErrorCode(code).name.upper()
            detail = f"{message} ({reason})" if message else reason
            click.echo(f"Error completing leader election ({label}) for partition: {_name(tp)}: {detail}")
    if failed:
        fail(f"{len(failed)} replica(s) could not be elected")
