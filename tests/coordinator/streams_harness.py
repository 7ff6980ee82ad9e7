"""Drives the streams-group (KIP-1071) part of the sans-io coordinator core with a fake clock, a fake
__consumer_offsets sink and a fixed set of topics."""

from __future__ import annotations

import uuid
from typing import Any

from strom.coordinator.consumer.group import TopicMeta, TopicsView
from strom.coordinator.streams.config import StreamsGroupConfig
from strom.coordinator.streams.heartbeat import StreamsHeartbeatRequest, StreamsHeartbeatResult
from strom.coordinator.streams.records import Subtopology, TopicInfo, TopologyValue
from tests.coordinator.harness import Box, Harness

REPARTITION = "app-repartition"
CHANGELOG = "app-changelog"


def word_count(epoch: int = 0) -> TopologyValue:
    """Kafka Streams' word count: subtopology 0 reads `in` and writes the repartition topic, 1 counts
    from it into a store with a changelog."""
    return TopologyValue(
        epoch,
        (
            Subtopology("0", source_topics=("in",), repartition_sink_topics=(REPARTITION,)),
            Subtopology(
                "1",
                state_changelog_topics=(TopicInfo(CHANGELOG, 0, -1, (("cleanup.policy", "compact"),)),),
                repartition_source_topics=(TopicInfo(REPARTITION, 0, -1, (("cleanup.policy", "delete"),)),),
            ),
        ),
    )


class StreamsHarness(Harness):
    def __init__(self, topics: dict[str, int] | None = None, **streams: Any) -> None:
        super().__init__()
        # assign at once unless a test asks for Kafka's initial rebalance delay or assignment interval
        streams.setdefault("initial_rebalance_delay_ms", 0)
        streams.setdefault("assignment_interval_ms", 0)
        self.core.streams_config = StreamsGroupConfig(**streams)
        self.version = 0
        self.set_topics(topics or {"in": 2})
        self.core.topics_view = lambda: self.view

    def set_topics(self, topics: dict[str, int]) -> None:
        self.version += 1
        metas = [TopicMeta(uuid.uuid5(uuid.NAMESPACE_DNS, n), n, p) for n, p in topics.items()]
        self.view = TopicsView(metas, self.version)

    def create_internal(self) -> None:
        """The internal topics the last answer asked for now exist."""
        topics = {n: m.partitions for n, m in self.view.by_name.items()}
        for name, partitions, _rf, _configs in self.group().configured.to_create:
            topics[name] = partitions
        self.set_topics(topics)

    def hb(
        self,
        member: str,
        epoch: int,
        *,
        process: str | None = None,
        owned: tuple[dict[str, list[int]], ...] | None = None,
        topology: TopologyValue | None = None,
        group: str = "g",
        instance: str | None = None,
        shutdown: bool = False,
    ) -> StreamsHeartbeatResult:
        if epoch == 0:
            topology = topology or word_count()
            owned = owned if owned is not None else ({}, {}, {})
        req = StreamsHeartbeatRequest(
            group_id=group,
            member_id=member,
            member_epoch=epoch,
            instance_id=instance,
            rebalance_timeout_ms=30000 if epoch == 0 else -1,
            topology=topology,
            owned=None if owned is None else tuple({s: set(p) for s, p in k.items()} for k in owned),  # type: ignore[arg-type]
            process_id=(process or f"p-{member}") if epoch == 0 else process,
            shutdown_application=shutdown,
            client_id="c",
            client_host="/127.0.0.1",
        )
        box = Box()
        self.core.streams_heartbeat(req, self.now, box)
        return box.value  # type: ignore[no-any-return]

    def group(self, group_id: str = "g") -> Any:
        return self.core.streams_groups[group_id]


def active(result: StreamsHeartbeatResult) -> dict[str, list[int]] | None:
    if result.tasks is None:
        return None
    return {s: sorted(p) for s, p in result.tasks.active.items() if p}


def standby(result: StreamsHeartbeatResult) -> dict[str, list[int]] | None:
    if result.tasks is None:
        return None
    return {s: sorted(p) for s, p in result.tasks.standby.items() if p}
