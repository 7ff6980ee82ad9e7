"""Drives the consumer-group (KIP-848) part of the sans-io coordinator core with a fake clock, a fake
__consumer_offsets sink and a fixed set of topics."""

from __future__ import annotations

import uuid
from typing import Any

from strom.coordinator.consumer.config import ConsumerGroupConfig
from strom.coordinator.consumer.group import TopicMeta, TopicsView
from strom.coordinator.consumer.results import HeartbeatRequest, HeartbeatResult
from tests.coordinator.harness import Box, Harness


class ConsumerHarness(Harness):
    def __init__(self, topics: dict[str, int] | None = None, **consumer: Any) -> None:
        super().__init__()
        # assign at once unless a test asks for Kafka's assignment interval
        consumer.setdefault("assignment_interval_ms", 0)
        self.core.consumer_config = ConsumerGroupConfig(**consumer)
        self.version = 0
        self.ids: dict[str, uuid.UUID] = {}
        self.set_topics(topics or {"t": 4})
        self.core.topics_view = lambda: self.view

    def set_topics(self, topics: dict[str, int]) -> None:
        for name in topics:
            self.ids.setdefault(name, uuid.uuid5(uuid.NAMESPACE_DNS, name))
        self.version += 1
        self.view = TopicsView([TopicMeta(self.ids[n], n, p) for n, p in topics.items()], self.version)

    def hb(
        self,
        member: str,
        epoch: int,
        *,
        group: str = "g",
        topics: tuple[str, ...] | None = None,
        regex: str | None = None,
        owned: dict[str, list[int]] | None = None,
        instance: str | None = None,
        assignor: str | None = None,
        rebalance_timeout: int | None = None,
        version: int = 1,
    ) -> HeartbeatResult:
        if epoch == 0:
            if topics is None and regex is None:
                topics = ("t",)
            owned = {} if owned is None else owned
            rebalance_timeout = 30000 if rebalance_timeout is None else rebalance_timeout
        req = HeartbeatRequest(
            group_id=group,
            member_id=member,
            member_epoch=epoch,
            instance_id=instance,
            rebalance_timeout_ms=-1 if rebalance_timeout is None else rebalance_timeout,
            subscribed_topic_names=topics,
            subscribed_topic_regex=regex,
            server_assignor=assignor,
            owned=None if owned is None else {self.ids[t]: set(ps) for t, ps in owned.items()},
            client_id="c",
            client_host="/127.0.0.1",
            version=version,
        )
        box = Box()
        self.core.consumer_heartbeat(req, self.now, box)
        return box.value  # type: ignore[no-any-return]

    def named(self, result: HeartbeatResult) -> dict[str, list[int]] | None:
        if result.assignment is None:
            return None
        names = {v: k for k, v in self.ids.items()}
        return {names[t]: sorted(ps) for t, ps in result.assignment.items() if ps}

    def group(self, group_id: str = "g") -> Any:
        return self.core.consumer_groups[group_id]
