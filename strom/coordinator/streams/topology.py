"""The topology of a streams group checked against the cluster's topics (Kafka's InternalTopicManager).

A topology is a list of subtopologies; each reads source topics and repartition source topics, may write
repartition sink topics, and keeps state in changelog topics. Configuring it decides:

- the partition count of every repartition topic: the one the topology gives, else the largest input of
  the subtopologies writing to it (repeated until every count is known; a repartition topic nobody writes
  or a loop is a configuration error);
- the partition count of every changelog topic: the subtopology's task count, the largest partition count
  among its inputs;
- the statuses members are told (StreamsGroupHeartbeatResponse status codes): 1 MISSING_SOURCE_TOPICS
  ("Source topics a, b are missing."), 2 INCORRECTLY_PARTITIONED_TOPICS (an internal topic exists with
  another partition count, or copartitioned source topics differ), 3 MISSING_INTERNAL_TOPICS ("Internal
  topics are missing: a, b"), with the internal topics to create: each with its partition count, the
  topology's replication factor (-1 or 0: the broker's default.replication.factor) and the configs the
  client sent (cleanup.policy=compact for changelogs; delete, retention.ms=-1 and a segment size for
  repartition topics).

A ready topology has no status: each subtopology has tasks 0..n-1 for its n input partitions, and it is
stateful when it has changelog topics (standby tasks are only for those).
"""

from __future__ import annotations

from strom.coordinator.consumer.group import TopicsView
from strom.coordinator.streams.group import ConfiguredTopology
from strom.coordinator.streams.records import TopologyValue

STALE_TOPOLOGY = 0
MISSING_SOURCE_TOPICS = 1
INCORRECTLY_PARTITIONED_TOPICS = 2
MISSING_INTERNAL_TOPICS = 3
SHUTDOWN_APPLICATION = 4


def _summary(names: list[str]) -> str:
    return ", ".join(names) if names else "<none>"


def configure(topology: TopologyValue, topics: TopicsView) -> ConfiguredTopology:
    out = ConfiguredTopology(topology.epoch)
    existing = {name: meta.partitions for name, meta in topics.by_name.items()}
    missing = sorted({t for s in topology.subtopologies for t in s.source_topics if t not in existing})
    if missing:
        out.statuses.append((MISSING_SOURCE_TOPICS, f"Source topics {_summary(missing)} are missing."))
        return out
    counts: dict[str, int] = {}
    declared = {t.name: t for s in topology.subtopologies for t in s.repartition_source_topics}
    for name, info in declared.items():
        if info.partitions > 0:
            counts[name] = info.partitions
    writers = {
        name: [s for s in topology.subtopologies if name in s.repartition_sink_topics] for name in declared
    }

    def inputs(sub: object) -> list[int] | None:
        """Partition counts of a subtopology's inputs; None while one is still unknown."""
        values = [existing[t] for t in sub.source_topics]  # type: ignore[attr-defined]
        for t in sub.repartition_source_topics:  # type: ignore[attr-defined]
            if t.name not in counts:
                return None
            values.append(counts[t.name])
        return values

    while len(counts) < len(declared):
        progressed = False
        for name in declared:
            if name in counts:
                continue
            sizes = [inputs(w) for w in writers[name]]
            if not writers[name] or any(v is None for v in sizes):
                continue
            counts[name] = max((max(v) for v in sizes if v), default=1)  # type: ignore[arg-type]
            progressed = True
        if not progressed:
            out.statuses.append(
                (
                    INCORRECTLY_PARTITIONED_TOPICS,
                    "Failed to compute number of partitions for all repartition topics, because a "
                    "repartition source topic is never used as a sink topic.",
                )
            )
            return out
    to_create: list[tuple[str, int, int, tuple[tuple[str, str], ...]]] = []
    wrong: list[str] = []
    changelogs: list[tuple[str, int, int, tuple[tuple[str, str], ...]]] = []
    for s in topology.subtopologies:
        sizes = inputs(s) or []
        tasks = max(sizes, default=0)
        out.partitions[s.subtopology_id] = tasks
        for t in s.state_changelog_topics:
            changelogs.append((t.name, tasks, t.replication_factor, t.configs))
        # copartitioned source topics must have the same number of partitions
        for group in s.copartition_groups:
            names = [s.source_topics[i] for i in group.source_topics if i < len(s.source_topics)]
            names += [
                s.repartition_source_topics[i].name
                for i in group.repartition_source_topics
                if i < len(s.repartition_source_topics)
            ]
            if len({existing.get(n, counts.get(n)) for n in names}) > 1:
                out.statuses.append(
                    (
                        INCORRECTLY_PARTITIONED_TOPICS,
                        "Following topics do not have the same number of partitions: "
                        f"[{', '.join(sorted(names))}]",
                    )
                )
                return out
    out.stateful = frozenset(s.subtopology_id for s in topology.subtopologies if s.state_changelog_topics)
    repartitions = [(n, counts[n], i.replication_factor, i.configs) for n, i in declared.items()]
    for name, partitions, replication, configs in [*repartitions, *changelogs]:
        have = existing.get(name)
        if have is None:
            to_create.append((name, partitions, replication, configs))
        elif have != partitions:
            wrong.append(name)
    if wrong:
        out.statuses.append(
            (
                INCORRECTLY_PARTITIONED_TOPICS,
                "Following internal topics have an unexpected number of partitions: "
                f"{_summary(sorted(wrong))}",
            )
        )
        return out
    if to_create:
        out.to_create = to_create
        detail = f"Internal topics are missing: {_summary([t[0] for t in to_create])}"
        out.statuses.append((MISSING_INTERNAL_TOPICS, detail))
    return out
