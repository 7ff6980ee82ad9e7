"""KIP-848 regex subscriptions resolve against every topic, internal ones included, as Kafka's
GroupMetadataManager.refreshRegularExpressions does (franz-go's Test848RegexBrokerResolves adopts an
internal topic the broker assigns); a regex that does not want them has to exclude them."""

from __future__ import annotations

import uuid

from strom.coordinator.consumer.group import TopicMeta, TopicsView
from tests.coordinator.consumer_harness import ConsumerHarness


def test_regex_matches_internal_topics_too() -> None:
    h = ConsumerHarness({"orders": 1})
    h.ids["__consumer_offsets"] = uuid.uuid5(uuid.NAMESPACE_DNS, "__consumer_offsets")
    h.version += 1
    h.view = TopicsView(
        [
            TopicMeta(h.ids["orders"], "orders", 1),
            TopicMeta(h.ids["__consumer_offsets"], "__consumer_offsets", 2, internal=True),
        ],
        h.version,
    )
    everything = h.hb("a", 0, regex="orders|__consumer_offsets")
    assert h.named(everything) == {"orders": [0], "__consumer_offsets": [0, 1]}
    regular = h.hb("b", 0, group="g2", regex="[a-z].*")
    assert h.named(regular) == {"orders": [0]}
