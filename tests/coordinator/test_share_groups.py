"""Share groups (KIP-932) in the group coordinator core with a fake clock: joining, every member getting
every initialized partition, leaving, the session timeout, validation messages, and replay of the
__consumer_offsets records giving back the same group."""

from __future__ import annotations

from strom.coordinator.share.config import ShareGroupConfig
from strom.coordinator.share.heartbeat import ShareHeartbeatRequest, ShareHeartbeatResult
from strom.protocol.errors import ErrorCode
from tests.coordinator.consumer_harness import ConsumerHarness
from tests.coordinator.harness import Box


class ShareHarness(ConsumerHarness):
    def __init__(self) -> None:
        super().__init__({"t": 2})
        self.core.share_config = ShareGroupConfig(session_timeout_ms=10000, max_size=3)

    def beat(self, member: str, epoch: int, topics: tuple[str, ...] | None = ("t",)) -> ShareHeartbeatResult:
        req = ShareHeartbeatRequest("g", member, epoch, None, topics if epoch == 0 else None, "c", "/h")
        box = Box()
        self.core.share_heartbeat(req, self.now, box)
        return box.value  # type: ignore[no-any-return]

    def initialize(self, result: ShareHeartbeatResult) -> None:
        box = Box()
        self.core.share_initialized("g", result.to_initialize, self.now, box)
        assert box.value is ErrorCode.none


def test_members_split_the_partitions() -> None:
    h = ShareHarness()
    first = h.beat("a", 0)
    assert first.result.error is ErrorCode.none and first.result.assignment == {}
    assert first.to_initialize == {h.ids["t"]: ("t", frozenset({0, 1}))}
    h.initialize(first)
    a = h.beat("a", first.result.member_epoch)
    assert a.result.assignment == {h.ids["t"]: frozenset({0, 1})}
    # two members, two partitions: one each (Kafka's simple assignor shares a partition only when
    # there are more members than partitions), a keeping one of its own
    b = h.beat("b", 0)
    assert not b.to_initialize
    a = h.beat("a", a.result.member_epoch)
    t = h.ids["t"]
    assert sorted([a.result.assignment[t], b.result.assignment[t]]) == [frozenset({0}), frozenset({1})]
    group = h.core.share_groups["g"]
    assert group.state.value == "Stable" and set(group.members) == {"a", "b"}
    described = h.core.share_describe("g")
    assert sorted(m.assignment for m in described.members) == [[(t, "t", [0])], [(t, "t", [1])]]
    listed = h.core.list_groups(None, {"share"})[1]
    assert [(g.group_id, g.group_type, g.state) for g in listed] == [("g", "share", "Stable")]


def test_validation_and_fencing() -> None:
    h = ShareHarness()
    r = h.beat("a", 0, topics=None).result
    assert r.error is ErrorCode.invalid_request
    assert r.message == "SubscribedTopicNames must be set in first request."
    assert h.beat("", 0).result.message == "MemberId can't be empty."
    assert h.beat("x", 3).result.error is ErrorCode.group_id_not_found
    joined = h.beat("a", 0).result
    assert h.beat("x", 3).result.error is ErrorCode.unknown_member_id
    assert h.beat("a", joined.member_epoch + 5).result.error is ErrorCode.fenced_member_epoch
    h.beat("b", 0)
    h.beat("c", 0)
    assert h.beat("d", 0).result.error is ErrorCode.group_max_size_reached


def test_leave_and_session_timeout() -> None:
    h = ShareHarness()
    h.initialize(h.beat("a", 0))
    h.beat("b", 0)
    left = h.beat("a", -1).result
    assert left.member_epoch == -1
    assert set(h.core.share_groups["g"].members) == {"b"}
    h.advance(10001)
    assert h.core.share_groups["g"].members == {}
    assert h.core.share_groups["g"].state.value == "Empty"


def test_replay_gives_back_the_group() -> None:
    h = ShareHarness()
    h.initialize(h.beat("a", 0))
    epoch = h.beat("a", h.core.share_groups["g"].members["a"].member_epoch).result.member_epoch
    h.beat("b", 0)
    h.beat("b", -1)
    records = [r for batch in h.sink.appended for r in batch[1]]
    partition = h.core.partition_for("g")
    h.core.unload(partition)
    assert "g" not in h.core.share_groups
    h.core.begin_loading(partition)
    for key, value in records:
        h.core.load_record(partition, key, value)
    h.core.finish_loading(partition, h.now)
    group = h.core.share_groups["g"]
    assert set(group.members) == {"a"}
    assert group.members["a"].member_epoch == epoch
    assert group.members["a"].assigned == {h.ids["t"]: frozenset({0, 1})}
    assert group.initialized == {h.ids["t"]: ("t", frozenset({0, 1}))}
    assert h.beat("a", epoch).result.error is ErrorCode.none
