"""The coordinators honour group configs (GROUP resources) where Kafka 4.4 does: the session timeout and
heartbeat interval of consumer, share and streams groups, and a streams group's standby replicas (a change
of which is a new group epoch and target assignment, recorded in the group's metadata record). Groups
without configs keep the broker's settings; a value outside the broker's bounds is clamped into them."""

from __future__ import annotations

from typing import Any

from strom.config import BrokerConfig
from strom.coordinator.share.config import ShareGroupConfig
from strom.coordinator.streams import records as rec
from strom.group_config import evaluate
from strom.protocol.errors import ErrorCode
from tests.coordinator.consumer_harness import ConsumerHarness
from tests.coordinator.streams_harness import StreamsHarness
from tests.coordinator.test_share_groups import ShareHarness
from tests.coordinator.test_streams_groups import ready

BROKER = BrokerConfig(
    {"group.share.min.session.timeout.ms": "1000", "group.share.min.heartbeat.interval.ms": "100"}
)


class Configs:
    """The group configs lookup the shell gives the core, over raw override strings that tests change."""

    def __init__(self, raw: dict[str, dict[str, str]] | None = None) -> None:
        self.raw = raw or {}

    def __call__(self, group_id: str) -> dict[str, Any]:
        return evaluate(self.raw.get(group_id, {}), BROKER, group_id)


def test_consumer_group_session_timeout_and_heartbeat_interval() -> None:
    h = ConsumerHarness({"t": 2})
    configs = Configs(
        {"slow": {"consumer.session.timeout.ms": "60000", "consumer.heartbeat.interval.ms": "6000"}}
    )
    h.core.group_configs = configs
    slow = h.hb("m1", 0, group="slow")
    plain = h.hb("m2", 0, group="plain")
    assert (slow.error, slow.heartbeat_interval_ms) == (ErrorCode.none, 6000)
    assert (plain.error, plain.heartbeat_interval_ms) == (ErrorCode.none, 5000)
    h.advance(45001)
    assert set(h.group("slow").members) == {"m1"} and h.group("plain").members == {}
    h.advance(15000)
    assert h.group("slow").members == {}
    # a change applies at the member's next heartbeat
    joined = h.hb("m3", 0, group="slow")
    configs.raw["slow"] = {"consumer.heartbeat.interval.ms": "7000"}
    again = h.hb("m3", joined.member_epoch, group="slow")
    assert again.heartbeat_interval_ms == 7000
    h.advance(45001)
    assert h.group("slow").members == {}


def test_share_group_session_timeout_and_heartbeat_interval() -> None:
    h = ShareHarness()  # the broker's share session timeout is 10 s here
    h.core.share_config = ShareGroupConfig(session_timeout_ms=10000, heartbeat_interval_ms=5000)
    h.core.group_configs = Configs(
        {"g": {"share.session.timeout.ms": "3000", "share.heartbeat.interval.ms": "500"}}
    )
    joined = h.beat("a", 0)
    assert joined.result.heartbeat_interval_ms == 500
    h.advance(3001)
    assert h.core.share_groups["g"].members == {}


def test_streams_group_session_timeout_and_heartbeat_interval() -> None:
    h = StreamsHarness({"in": 2})
    h.core.group_configs = Configs(
        {"g": {"streams.session.timeout.ms": "50000", "streams.heartbeat.interval.ms": "9000"}}
    )
    ready(h)
    a = h.hb("a", 2, owned=({}, {}, {}))
    assert (a.error, a.heartbeat_interval_ms) == (ErrorCode.none, 9000)
    assert h.group().state.value == "Stable"
    h.advance(45001)
    assert set(h.group().members) == {"a"}
    h.advance(5000)
    assert h.group().members == {}


def test_a_streams_standby_change_is_a_new_assignment() -> None:
    h = StreamsHarness({"in": 2})
    configs = Configs({"g": {}})
    h.core.group_configs = configs
    ready(h)
    a = h.hb("a", 2, owned=({}, {}, {}))
    h.hb("b", 0)
    g = h.group()
    epoch = g.group_epoch
    assert not any(t.standby for t in g.target.values())

    configs.raw["g"]["streams.num.standby.replicas"] = "1"
    h.hb("a", a.member_epoch)
    assert g.group_epoch == epoch + 1
    assert sum(len(p) for t in g.target.values() for p in t.standby.values()) == 2
    records = dict(h.sink.appended[-1][1])
    metadata = rec.decode_group_metadata(records[rec.group_key(rec.GROUP_METADATA, "g")])
    assert metadata.last_assignment_configs == (("num.standby.replicas", "1"),)
    h.hb("a", g.members["a"].member_epoch)
    assert g.group_epoch == epoch + 1  # unchanged configs: no new epoch

    # more standbys than group.streams.max.standby.replicas (2) are clamped to it
    configs.raw["g"]["streams.num.standby.replicas"] = "5"
    h.hb("a", g.members["a"].member_epoch)
    assert g.assignment_configs == (("num.standby.replicas", "2"),)
